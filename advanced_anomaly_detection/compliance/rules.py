"""Compliance rules: reason codes, the regulation each one rests on, and what it needs.

The Spark job evaluates these rules (advanced_anomaly_detection/spark/compliance_job.py); this module
is the single list of what exists, so the job, the summary, the docs and the evaluation agree. It
also holds small pure reference implementations of the time logic (local calling hours, processing
deadlines) that the tests compare the Spark expressions against.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple
from zoneinfo import ZoneInfo

REGULATORY = "regulatory"
THRESHOLD = "threshold"
MODEL = "model"


@dataclass(frozen=True)
class Rule:
    code: str  # reason code written into `reasons`
    config_key: str  # attribute of ComplianceConfig.rules
    flag_column: str  # boolean column of gold_compliance_risk
    kind: str  # regulatory | threshold | model
    regulation: str  # citation written into `reasons`
    description: str
    # Optional journey columns the rule needs; a tuple of alternatives means "any one of them".
    needs: Tuple[Tuple[str, ...], ...] = ()
    # Complaint columns it needs (same form); non-empty also means it needs a complaints table.
    complaint_needs: Tuple[Tuple[str, ...], ...] = ()


RULES: Tuple[Rule, ...] = (
    Rule(
        code="REGF_CALL_FREQUENCY",
        config_key="regf_call_frequency",
        flag_column="rule_regf_call_frequency",
        kind=REGULATORY,
        regulation="12 CFR 1006.14(b)(2)(i) (Regulation F)",
        description="more than 7 outbound call attempts within 7 consecutive days",
    ),
    Rule(
        code="REGF_CALL_AFTER_CONVERSATION",
        config_key="regf_call_after_conversation",
        flag_column="rule_regf_call_after_conversation",
        kind=REGULATORY,
        regulation="12 CFR 1006.14(b)(2)(ii) (Regulation F)",
        description="outbound call within 7 days after a telephone conversation",
        needs=(("call_outcome",),),
    ),
    Rule(
        code="TCPA_QUIET_HOURS",
        config_key="quiet_hours",
        flag_column="rule_tcpa_quiet_hours",
        kind=REGULATORY,
        regulation="47 CFR 64.1200(c)(1) (TCPA); 12 CFR 1006.6(b)(1)(i)",
        description="outbound call or text before 8 a.m. or after 9 p.m. in the called party's local time",
    ),
    Rule(
        code="TCPA_AFTER_REVOCATION",
        config_key="revocation",
        flag_column="rule_tcpa_after_revocation",
        kind=REGULATORY,
        regulation="47 CFR 64.1200(a)(10) and (d)(3) (TCPA)",
        description="outbound call or text after consent revocation / do-not-call request "
        "beyond the processing period",
        needs=(("consent_revoked_ts", "dnc_requested_ts"),),
    ),
    Rule(
        code="TCPA_OPEN_COMPLAINT_CONTACT",
        config_key="open_complaint",
        flag_column="rule_tcpa_open_complaint_contact",
        kind=REGULATORY,
        regulation="47 CFR 64.1200(a)(10) (revocation by any reasonable means); 12 CFR 1006.14(a)",
        description="outbound call or text while a TCPA-related complaint of the customer is open",
        complaint_needs=(("contact_reason_primary_1", "complaint_description"),),
    ),
    Rule(
        code="HIGH_INTERACTION_VOLUME",
        config_key="high_interaction",
        flag_column="rule_high_interaction_volume",
        kind=THRESHOLD,
        regulation="internal threshold (seed rule)",
        description="total interactions in the lookback window above the configured threshold",
    ),
    Rule(
        code="NEGATIVE_COMPLAINT_SENTIMENT",
        config_key="negative_sentiment",
        flag_column="rule_negative_complaint_sentiment",
        kind=THRESHOLD,
        regulation="internal threshold (seed rule)",
        description="mean complaint-text polarity at or below the configured threshold",
        complaint_needs=(("complaint_description",),),
    ),
)

MODEL_REASON = Rule(
    code="MODEL_ANOMALY",
    config_key="",
    flag_column="model_flag",
    kind=MODEL,
    regulation="Isolation Forest on customer features (internal model)",
    description="calibrated model score at or above compliance.model.threshold",
)

RULES_BY_CODE: Dict[str, Rule] = {r.code: r for r in RULES}
ALL_REASON_CODES: Tuple[str, ...] = tuple(r.code for r in RULES) + (MODEL_REASON.code,)
REGULATORY_CODES: Tuple[str, ...] = tuple(r.code for r in RULES if r.kind == REGULATORY)

RISK_TIERS = ("low", "medium", "high", "critical")


def rule_config(cfg, rule: Rule):
    """The rule's config section (cfg: ComplianceConfig)."""
    return getattr(cfg.rules, rule.config_key)


def rule_availability(cfg, journey_columns: Iterable[str], complaint_columns: Iterable[str]) -> Dict[str, str]:
    """code -> "" when the rule runs, else why it does not (disabled in config, missing columns)."""
    have_j, have_c = set(journey_columns), set(complaint_columns)
    out: Dict[str, str] = {}
    for rule in RULES:
        if not rule_config(cfg, rule).enabled:
            out[rule.code] = f"disabled in config (compliance.rules.{rule.config_key}.enabled=false)"
            continue
        missing = {"journey": _missing(rule.needs, have_j), "complaints": _missing(rule.complaint_needs, have_c)}
        out[rule.code] = "; ".join(f"{table} column(s) missing: {m}" for table, m in missing.items() if m)
    return out


def _missing(needs: Tuple[Tuple[str, ...], ...], have: Set[str]) -> str:
    """The needs none of whose alternatives is in `have`, as "a or b, c"; "" when all are met."""
    return ", ".join(" or ".join(alt) for alt in needs if not any(c in have for c in alt))


# --- reference implementations of the time logic (the Spark job implements the same) -------------


def outside_calling_hours(ts_utc: dt.datetime, zones: Sequence[str], start_hour: int = 8, end_hour: int = 21) -> bool:
    """True when the contact at `ts_utc` falls outside [start_hour:00, end_hour:00] local time in any zone.

    "Before 8 a.m. or after 9 p.m." (47 CFR 64.1200(c)(1)): 8:00:00 and 21:00:00 are allowed,
    7:59:59 and 21:00:01 are not.
    """
    if ts_utc.tzinfo is None:
        ts_utc = ts_utc.replace(tzinfo=dt.timezone.utc)
    for zone in zones:
        local = ts_utc.astimezone(ZoneInfo(zone))
        sod = local.hour * 3600 + local.minute * 60 + local.second
        if sod < start_hour * 3600 or sod > end_hour * 3600:
            return True
    return False


@lru_cache(maxsize=8)
def holiday_dates(country: Optional[str], first_year: int, last_year: int) -> Tuple[dt.date, ...]:
    """Public holidays of `country` (the `holidays` package, offline) between the years, sorted."""
    if not country:
        return ()
    import holidays

    try:
        table = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    except NotImplementedError:
        raise ValueError(f"holidays: unknown country code {country!r}") from None
    return tuple(sorted(table.keys()))


def processing_deadline(
    revoked_on: dt.date, days: int, business_days: bool = True, holidays: Sequence[dt.date] = ()
) -> dt.date:
    """Last date on which contact is still allowed after a revocation received on `revoked_on`.

    With business days, the N-th weekday (Mon-Fri, not a holiday) after the revocation date.
    """
    if days == 0:
        return revoked_on
    if not business_days:
        return revoked_on + dt.timedelta(days=days)
    hol = set(holidays)
    d, left = revoked_on, days
    while left:
        d += dt.timedelta(days=1)
        if d.weekday() < 5 and d not in hol:
            left -= 1
    return d


def tier_for(regulatory_counts: Dict[str, int], threshold_rules: int, model_flag: bool, cfg) -> str:
    """Risk tier from the rules broken (code -> count) and the model flag (cfg: ComplianceConfig)."""
    broken = {c: n for c, n in regulatory_counts.items() if n > 0}
    if broken and (
        len(broken) >= cfg.risk.critical_min_regulatory_rules
        or max(broken.values()) >= cfg.risk.critical_min_violations
    ):
        return "critical"
    if broken:
        return "high"
    if threshold_rules > 0 or model_flag:
        return "medium"
    return "low"


def describe_rules() -> List[Dict[str, str]]:
    """Rows for docs and `aad score-compliance --list-rules`."""
    return [
        {"code": r.code, "kind": r.kind, "regulation": r.regulation, "description": r.description}
        for r in RULES + (MODEL_REASON,)
    ]
