"""Contact-compliance (TCPA / Regulation F) risk job: journey + complaints (+ accounts) -> gold_compliance_risk.

    run(spark, cfg, journey, complaints, accounts, output, as_of) -> summary dict

Stages (all in Spark; pandas only inside the pandas UDFs):
 1. read and validate the inputs: missing required columns fail the run (InputValidationError naming
    them); bad rows (null key, unparseable timestamp, unknown direction/status) are quarantined to
    `<output>_quarantine/<table>` and counted, never dropped silently;
 2. resolve each contact's time zone (distinct phone/postal pairs through a pandas UDF, joined back);
 3. event-level rule evidence with window functions over epoch seconds (7-day range windows, last
    conversation before each call, processing deadline after a revocation) and a range join of
    contacts against open TCPA complaints;
 4. customer features (15 of the seed, aligned per customer), complaint sentiment (pandas UDF);
 5. Isolation Forest trained on a sample on the driver, broadcast, applied to every customer by a
    pandas UDF; calibrated score in [0, 1];
 6. reasons, rule and risk scores, risk tier; Parquet written with overwrite (dynamic per as_of_date
    partition), run summary JSON beside the output (`<output>_summary.json`).
Complaint text is used only inside the sentiment UDF and never written.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from advanced_anomaly_detection.compliance import rules as R
from advanced_anomaly_detection.compliance import schema as S
from advanced_anomaly_detection.config import ComplianceConfig, Config
from advanced_anomaly_detection.errors import InputValidationError, UserError

log = logging.getLogger(__name__)

DAY = 86400
REASON_TYPE = T.ArrayType(
    T.StructType(
        [
            T.StructField("code", T.StringType()),
            T.StructField("regulation", T.StringType()),
            T.StructField("count", T.LongType()),
            T.StructField("first_event", T.TimestampType()),
            T.StructField("last_event", T.TimestampType()),
            T.StructField("detail", T.StringType()),
        ]
    )
)
ZONE_TYPE = T.StructType(
    [T.StructField("zones", T.ArrayType(T.StringType())), T.StructField("zone_status", T.StringType())]
)
# Columns never written anywhere (quarantine included).
PRIVATE_COLUMNS = ("complaint_description",)


# =============================================================================================
# 1. reading and validation
# =============================================================================================


@dataclass
class Validated:
    name: str
    staged: DataFrame  # _raw_<col> texts, typed columns, _reject_reason (null = accepted)
    columns: List[str]  # typed columns of the clean table (missing optional ones as nulls)
    raw_columns: List[str]  # columns kept for the quarantine (never the complaint text)
    present_optional: List[str]
    missing_optional: List[str]
    rows: int = 0
    rejected_counts: Dict[str, int] = field(default_factory=dict)
    by_key: Dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> DataFrame:
        return self.staged.where(F.col("_reject_reason").isNull()).select(*self.columns)

    @property
    def rejected(self) -> DataFrame:
        return self.staged.where(F.col("_reject_reason").isNotNull()).select(
            *[F.col(f"_raw_{c}").alias(c) for c in self.raw_columns], "_reject_reason"
        )

    @property
    def accepted(self) -> int:
        return self.rows - sum(self.rejected_counts.values())


def _format_of(path: str) -> str:
    lower = path.lower().rstrip("/")
    for suffix, fmt in ((".csv", "csv"), (".csv.gz", "csv"), (".parquet", "parquet"), (".json", "json"), (".jsonl", "json")):
        if lower.endswith(suffix):
            return fmt
    p = Path(path)
    if p.is_dir():
        names = [f.name.lower() for f in p.rglob("*") if f.is_file() and not f.name.startswith(("_", "."))]
        if names and all(n.endswith((".csv", ".csv.gz")) for n in names):
            return "csv"
        if names and all(n.endswith((".json", ".jsonl")) for n in names):
            return "json"
    return "parquet"


def read_table(spark: SparkSession, path: str, name: str, multiline_csv: bool = False) -> DataFrame:
    """Read CSV (header, every column as text), JSON lines or Parquet, chosen by the path's suffix."""
    if "://" not in path and not Path(path).exists():
        raise InputValidationError(f"{name}: input not found: {path}")
    fmt = _format_of(path)
    from pyspark.errors import AnalysisException

    try:
        if fmt == "csv":
            reader = spark.read.option("header", True).option("inferSchema", False).option("mode", "PERMISSIVE")
            if multiline_csv:
                reader = reader.option("multiLine", True).option("escape", '"')
            return reader.csv(path)
        if fmt == "json":
            return spark.read.json(path)
        return spark.read.parquet(path)
    except AnalysisException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputValidationError(f"{name}: cannot read {path} as {fmt}: {first}") from None


def _match_columns(df: DataFrame, expected: Sequence[str]) -> DataFrame:
    """Rename columns that match an expected name up to case and surrounding spaces."""
    wanted = {c.lower(): c for c in expected}
    for col in df.columns:
        target = wanted.get(col.strip().lower())
        if target and col != target and target not in df.columns:
            df = df.withColumnRenamed(col, target)
    return df


def _text(c: Column) -> Column:
    t = F.trim(c.cast("string"))
    return F.when(t == "", None).otherwise(t)


def _typed(df: DataFrame, col: str, kind: str) -> Column:
    """The typed value of one column; null where the text does not parse (never an error, ANSI or not)."""
    src_type = df.schema[col].dataType
    raw = F.col(col)
    if kind == "string":
        return _text(raw)
    if kind in ("timestamp", "date"):
        if isinstance(src_type, (T.TimestampType, T.TimestampNTZType, T.DateType)):
            value = raw.cast("timestamp")
        else:
            value = F.try_to_timestamp(_text(raw))
        return F.to_date(value) if kind == "date" else value
    if kind == "long":
        if isinstance(src_type, T.NumericType):
            value = raw.cast("long")
        else:
            value = F.expr(f"try_cast(try_cast(trim(`{col}`) as double) as bigint)")
        return F.when(value >= 0, value)  # negative counts are bad rows
    raise ValueError(f"unknown column kind {kind}")


def validate(
    df: DataFrame,
    name: str,
    required: Dict[str, str],
    optional: Dict[str, str],
    checks: Sequence[Tuple[str, Column]] = (),
) -> Validated:
    """Check columns, type them and split off bad rows with a reason (no action is run here).

    `checks` are extra (reason, bad-row condition on the typed columns) pairs, evaluated in order
    after the generic ones.
    """
    df = _match_columns(df, list(required) + list(optional))
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputValidationError(
            f"{name}: missing required column(s) {missing}; found {sorted(df.columns)} "
            f"(see docs/compliance.md for the {name} schema)"
        )
    present_optional = [c for c in optional if c in df.columns]
    missing_optional = [c for c in optional if c not in df.columns]
    kinds = {**required, **{c: optional[c] for c in present_optional}}
    staged = df.select(
        *[F.col(c).cast("string").alias(f"_raw_{c}") for c in kinds if c not in PRIVATE_COLUMNS],
        *[_typed(df, c, kind).alias(c) for c, kind in kinds.items()],
    )
    for c in missing_optional:
        staged = staged.withColumn(c, F.lit(None).cast(optional[c] if optional[c] != "long" else "bigint"))
    staged = staged.withColumn("_reject_reason", _reason_chain(kinds, required, checks))
    return Validated(
        name,
        staged,
        columns=list(kinds) + missing_optional,
        raw_columns=[c for c in kinds if c not in PRIVATE_COLUMNS],
        present_optional=present_optional,
        missing_optional=missing_optional,
    )


def _reason_chain(kinds: Dict[str, str], required: Dict[str, str], checks) -> Column:
    """The first reason a staged row is rejected for (null when accepted)."""
    conds: List[Tuple[str, Column]] = []
    for col, kind in kinds.items():
        value = F.col(col)
        if kind == "string" or col in PRIVATE_COLUMNS:
            bad = F.lit(False)
        else:  # text present, typed value null: unparseable (or a negative count)
            bad = _text(F.col(f"_raw_{col}")).isNotNull() & value.isNull()
        # A missing visit count is zero visits, not a bad row.
        if col in required and col != "visit_count":
            conds.append((f"null_{col}", value.isNull() & ~bad))
        if kind != "string":
            conds.append((f"unparseable_{col}" if kind in ("timestamp", "date") else f"bad_{col}", bad))
    conds.extend(checks)
    chain = F.lit(None).cast("string")
    for reason, cond in reversed(conds):
        chain = F.when(cond, F.lit(reason)).otherwise(chain)
    return chain


def _check_rejected_fraction(v: Validated, max_fraction: float, examples: Dict[str, str]) -> None:
    if v.rows == 0:
        return
    bad = sum(v.rejected_counts.values())
    if bad / v.rows > max_fraction:
        worst = max(v.rejected_counts, key=v.rejected_counts.get)
        example = examples.get(worst, "")
        raise InputValidationError(
            f"{v.name}: {bad:,} of {v.rows:,} rows rejected ({bad / v.rows:.0%} > "
            f"compliance.max_rejected_fraction={max_fraction:g}), mostly {worst} ({v.rejected_counts[worst]:,})"
            + (f", e.g. {example}" if example else "")
            + (
                "; timestamps must be ISO 8601 (e.g. 2026-11-20 14:03:00, UTC unless an offset is given)"
                if worst.startswith("unparseable_")
                else ""
            )
        )


def _example(v: Validated, reason: str) -> str:
    col = ""
    for prefix in ("unparseable_", "bad_", "null_"):
        if reason.startswith(prefix):
            col = reason[len(prefix):]
    if col not in v.rejected.columns:
        return ""
    row = v.rejected.where(F.col("_reject_reason") == reason).select(col).limit(1).collect()
    return f"{col}={row[0][0]!r}" if row else ""


def _journey_checks() -> List[Tuple[str, Column]]:
    known = F.create_map(*[F.lit(x) for kv in S.DIRECTIONS.items() for x in kv])
    return [("bad_direction", known[F.lower(F.col("direction"))].isNull() & F.col("direction").isNotNull())]


def _complaint_checks() -> List[Tuple[str, Column]]:
    known = F.create_map(*[F.lit(x) for kv in S.COMPLAINT_STATUSES.items() for x in kv])
    return [
        (
            "bad_complaint_status",
            known[F.lower(F.col("complaint_status"))].isNull() & F.col("complaint_status").isNotNull(),
        )
    ]


# =============================================================================================
# 2.-3. events: time zones and rule evidence
# =============================================================================================


def _in(col: Column, values: Sequence[str]) -> Column:
    return F.lower(col).isin(list(values))


def prepare_events(journey: DataFrame, cc: ComplianceConfig) -> DataFrame:
    """Normalised events with channel flags (journey: validated clean rows)."""
    ch = cc.channels
    direction = F.create_map(*[F.lit(x) for kv in S.DIRECTIONS.items() for x in kv])[F.lower("direction")]
    ev = journey.withColumns(
        {
            "event_nm": F.lower("event_nm"),
            "direction": direction,
            "ts": F.col("event_ts").cast("long"),
            "visit_count": F.coalesce("visit_count", F.lit(0).cast("long")),
        }
    )
    is_call = _in(F.col("event_nm"), ch.call_events)
    is_text = _in(F.col("event_nm"), ch.text_events)
    outbound = F.col("direction") == "outbound"
    conversation = F.coalesce(_in(F.col("call_outcome"), ch.conversation_outcomes), F.lit(False))
    return ev.withColumns(
        {
            "is_call": is_call,
            "is_text": is_text,
            "is_outbound": outbound,
            "is_contact": outbound & (is_call | is_text),
            "is_outbound_call": outbound & is_call,
            "is_conversation": is_call & conversation,
            "is_opt_out": (F.col("direction") == "inbound") & _in(F.col("event_nm"), ch.opt_out_events),
        }
    )


def resolve_event_zones(ev: DataFrame, cc: ComplianceConfig) -> DataFrame:
    """Add `zones` (array of IANA names to check) and `zone_status` to outbound calls/texts.

    Distinct (phone_number, postal_code) pairs go through a pandas UDF once each and are joined back.
    """
    qh = cc.rules.quiet_hours
    source, fallback = qh.zone_source, tuple(qh.fallback_zones)

    @F.pandas_udf(ZONE_TYPE)
    def zones_udf(phone: pd.Series, postal: pd.Series) -> pd.DataFrame:
        from advanced_anomaly_detection.compliance.timezones import resolve_zones

        out = [resolve_zones(p, z, source, fallback) for p, z in zip(phone, postal)]
        return pd.DataFrame({"zones": [list(z) for z, _ in out], "zone_status": [s for _, s in out]})

    pairs = (
        ev.where("is_contact")
        .select(_text(F.col("phone_number")).alias("_phone"), _text(F.col("postal_code")).alias("_postal"))
        .distinct()
    )
    pairs = pairs.withColumn("_z", zones_udf("_phone", "_postal")).select(
        "_phone", "_postal", F.col("_z.zones").alias("zones"), F.col("_z.zone_status").alias("zone_status")
    )
    ev = ev.withColumn("_phone", F.when(F.col("is_contact"), _text(F.col("phone_number")))).withColumn(
        "_postal", F.when(F.col("is_contact"), _text(F.col("postal_code")))
    )
    cond = (
        F.col("is_contact")
        & ev["_phone"].eqNullSafe(pairs["_phone"])
        & ev["_postal"].eqNullSafe(pairs["_postal"])
    )
    joined = ev.join(pairs, on=cond, how="left")
    return joined.drop(pairs["_phone"]).drop(pairs["_postal"]).drop("_phone", "_postal")


def _outside_hours(ts: Column, zone: Column, start_hour: int, end_hour: int) -> Column:
    local = F.from_utc_timestamp(ts, zone)
    sod = F.hour(local) * 3600 + F.minute(local) * 60 + F.second(local)
    return (sod < start_hour * 3600) | (sod > end_hour * 3600)


def _deadline(rev_date: Column, rc, holidays: Sequence[dt.date]) -> Column:
    """Last allowed contact date after a revocation on rev_date (N business or calendar days)."""
    n = rc.processing_days
    if n == 0:
        return rev_date
    if not rc.business_days:
        return F.date_add(rev_date, n)
    hol = F.array(*[F.lit(d) for d in holidays]) if holidays else F.array().cast("array<date>")
    days = F.sequence(F.date_add(rev_date, 1), F.date_add(rev_date, 3 * n + 20))
    business = F.filter(days, lambda x: (~F.dayofweek(x).isin(1, 7)) & (~F.array_contains(hol, x)))
    # 3n + 20 calendar days always hold n business days (at most 2 weekend days and a few holidays a week).
    return F.element_at(business, n)


def event_rule_evidence(
    ev: DataFrame, cc: ComplianceConfig, active: Dict[str, str], holidays: Sequence[dt.date]
) -> DataFrame:
    """Per-event flags of the event-level rules, plus the all-events 7-day count (a feature).

    `active`: rule code -> "" when it runs (R.rule_availability). Windows are by time (epoch seconds)
    per customer, never by row: a range of `window_days * 86400 - 1` seconds back from each event
    holds exactly the events less than `window_days` x 24 h before it.
    """
    by_time = Window.partitionBy("temp_key").orderBy("ts")
    whole = Window.partitionBy("temp_key")
    rules = cc.rules
    feat_w = cc.features.interaction_window_days * DAY
    fr, ac, qh, rc = rules.regf_call_frequency, rules.regf_call_after_conversation, rules.quiet_hours, rules.revocation
    call_w = fr.window_days * DAY
    ev = ev.withColumns(
        {
            "n_window_all": F.count(F.lit(1)).over(by_time.rangeBetween(-(feat_w - 1), 0)),
            "_calls_in_window": F.sum(F.col("is_outbound_call").cast("int")).over(
                by_time.rangeBetween(-(call_w - 1), 0)
            ),
            # Latest conversation at least one second before this event (never the event itself).
            "_last_conv": F.max(F.when(F.col("is_conversation"), F.col("ts"))).over(
                by_time.rangeBetween(Window.unboundedPreceding, -1)
            ),
            "revocation_ts": F.least(
                F.min("consent_revoked_ts").over(whole),
                F.min("dnc_requested_ts").over(whole),
                F.min(F.when(F.col("is_opt_out"), F.col("event_ts"))).over(whole),
            ),
            # Event-type concentration: events of this type for this customer.
            "n_same_type": F.count(F.lit(1)).over(Window.partitionBy("temp_key", "event_nm")),
        }
    )
    off = F.lit(False)
    outside = F.exists("zones", lambda z: _outside_hours(F.col("event_ts"), z, qh.start_hour, qh.end_hour))
    deadline = _deadline(F.to_date("revocation_ts"), rc, holidays)
    after_revocation = F.when(
        F.col("is_contact") & F.col("revocation_ts").isNotNull() & (F.col("event_ts") > F.col("revocation_ts")),
        F.to_date("event_ts") > deadline,
    ).otherwise(off)
    flags = {
        "ev_regf_call_frequency": F.col("is_outbound_call") & (F.col("_calls_in_window") > fr.max_calls)
        if active["REGF_CALL_FREQUENCY"] == ""
        else off,
        "ev_regf_call_after_conversation": (
            F.col("is_outbound_call")
            & F.col("_last_conv").isNotNull()
            & ((F.col("ts") - F.col("_last_conv")) < ac.days * DAY)
        )
        if active["REGF_CALL_AFTER_CONVERSATION"] == ""
        else off,
        "ev_tcpa_quiet_hours": F.col("is_contact") & F.coalesce(outside, off)
        if active["TCPA_QUIET_HOURS"] == ""
        else off,
        "ev_tcpa_after_revocation": after_revocation if active["TCPA_AFTER_REVOCATION"] == "" else off,
    }
    return ev.withColumns(flags)


def open_complaint_contacts(ev: DataFrame, complaints: DataFrame, cc: ComplianceConfig) -> DataFrame:
    """temp_key, count, first/last event of outbound contacts while a TCPA complaint was open."""
    oc = cc.rules.open_complaint
    text = F.lower(F.concat_ws(" ", F.coalesce("contact_reason_primary_1", F.lit("")), F.coalesce("complaint_description", F.lit(""))))
    related = F.lit(False)
    for kw in oc.keywords:
        related = related | text.contains(kw)
    closed_at = F.when(
        F.col("complaint_status") == "closed", F.coalesce("case_edit_date", "complaint_create_date")
    )  # closed without an edit date: no known open period
    intervals = complaints.where(related).select(
        F.col("temp_key").alias("_ck"),
        F.col("complaint_create_date").alias("_open_from"),
        closed_at.alias("_open_until"),
    )
    contact = F.col("is_contact")
    if oc.include_email:
        contact = contact | (F.col("is_outbound") & (F.col("event_nm") == "email"))
    contacts = ev.where(contact).select("temp_key", "event_ts")
    cond = (
        (contacts["temp_key"] == intervals["_ck"])
        & (contacts["event_ts"] >= intervals["_open_from"])
        & (intervals["_open_until"].isNull() | (contacts["event_ts"] < intervals["_open_until"]))
    )
    hits = contacts.join(intervals, cond, "left_semi")
    return hits.groupBy("temp_key").agg(
        F.count(F.lit(1)).alias("oc_count"),
        F.min("event_ts").alias("oc_first"),
        F.max("event_ts").alias("oc_last"),
    )


# =============================================================================================
# 4. customer features
# =============================================================================================


def event_features(ev: DataFrame, as_of_end: dt.datetime, cc: ComplianceConfig) -> DataFrame:
    active_from = as_of_end - dt.timedelta(days=cc.features.active_days)

    def rule_agg(flag: str, prefix: str) -> List[Column]:
        return [
            F.sum(F.col(flag).cast("int")).alias(f"{prefix}_count"),
            F.min(F.when(F.col(flag), F.col("event_ts"))).alias(f"{prefix}_first"),
            F.max(F.when(F.col(flag), F.col("event_ts"))).alias(f"{prefix}_last"),
        ]

    return ev.groupBy("temp_key").agg(
        F.count(F.lit(1)).alias("total_interactions"),
        F.countDistinct("event_nm").alias("unique_event_types"),
        F.max("n_window_all").alias("max_7day_interactions"),
        F.sum("visit_count").alias("total_visits"),
        (F.max("n_same_type") / F.count(F.lit(1))).alias("event_type_concentration"),
        (F.max("event_ts") >= F.lit(active_from)).alias("is_active"),
        F.sum(F.col("is_outbound_call").cast("int")).alias("outbound_calls"),
        F.sum((F.col("is_outbound") & F.col("is_text")).cast("int")).alias("outbound_texts"),
        F.min("event_ts").alias("first_event_ts"),
        F.max("event_ts").alias("last_event_ts"),
        F.max_by("postal_code", F.when(F.col("postal_code").isNotNull(), F.col("ts"))).alias("journey_postal_code"),
        F.sum((F.col("is_contact") & (F.col("zone_status") == "unknown")).cast("int")).alias("contacts_zone_unknown"),
        F.sum((F.col("is_contact") & (F.col("zone_status") == "ambiguous")).cast("int")).alias(
            "contacts_zone_ambiguous"
        ),
        F.sum((F.col("ev_tcpa_quiet_hours") & (F.col("zone_status") != "exact")).cast("int")).alias(
            "qh_uncertain"
        ),
        F.min("revocation_ts").alias("revocation_ts"),
        *rule_agg("ev_regf_call_frequency", "fr"),
        *rule_agg("ev_regf_call_after_conversation", "ac"),
        *rule_agg("ev_tcpa_quiet_hours", "qh"),
        *rule_agg("ev_tcpa_after_revocation", "rv"),
    )


def complaint_features(complaints: DataFrame, cc: ComplianceConfig, with_text: bool) -> DataFrame:
    """Per-customer complaint features; sentiment through a pandas UDF (text dropped right after)."""
    max_chars = cc.features.sentiment_max_chars
    thr = cc.rules.negative_sentiment.threshold

    @F.pandas_udf("double")
    def polarity_udf(texts: pd.Series) -> pd.Series:
        from advanced_anomaly_detection.compliance.sentiment import polarity_series

        return polarity_series(texts, max_chars)

    c = complaints
    if with_text:
        c = c.withColumn("polarity", polarity_udf("complaint_description"))
    else:
        c = c.withColumn("polarity", F.lit(None).cast("double"))
    c = c.drop("complaint_description")
    status = F.col("complaint_status")
    prev = F.lag("complaint_create_date").over(Window.partitionBy("temp_key").orderBy("complaint_create_date"))
    c = c.withColumn(
        "_repeat",
        prev.isNotNull()
        & ((F.col("complaint_create_date").cast("long") - prev.cast("long")) <= cc.features.repeat_complaint_days * DAY),
    )
    resolution = F.when(
        (status == "closed") & F.col("case_edit_date").isNotNull() & (F.col("case_edit_date") >= F.col("complaint_create_date")),
        (F.col("case_edit_date").cast("long") - F.col("complaint_create_date").cast("long")) / float(DAY),
    )
    negative = F.col("polarity") <= thr
    return c.groupBy("temp_key").agg(
        F.count(F.lit(1)).alias("complaints_total"),
        F.sum((status == "open").cast("int")).alias("complaints_open"),
        F.sum((status == "pending").cast("int")).alias("complaints_pending"),
        F.sum((status == "closed").cast("int")).alias("complaints_closed"),
        F.countDistinct(F.lower("contact_reason_primary_1")).alias("complaint_reason_diversity"),
        F.avg(resolution).alias("avg_resolution_days"),
        F.sum(F.col("_repeat").cast("int")).alias("repeat_complaints"),
        F.avg("polarity").alias("avg_complaint_sentiment"),
        F.count("polarity").alias("complaints_with_text"),
        F.sum(F.coalesce(negative, F.lit(False)).cast("int")).alias("ns_count"),
        F.min(F.when(negative, F.col("complaint_create_date"))).alias("ns_first"),
        F.max(F.when(negative, F.col("complaint_create_date"))).alias("ns_last"),
        F.max_by("postal_code", F.when(F.col("postal_code").isNotNull(), F.col("complaint_create_date"))).alias(
            "complaint_postal_code"
        ),
    )


_COMPLAINT_FEATURE_TYPES = (
    ("complaints_total", "bigint"), ("complaints_open", "bigint"), ("complaints_pending", "bigint"),
    ("complaints_closed", "bigint"), ("complaint_reason_diversity", "bigint"), ("avg_resolution_days", "double"),
    ("repeat_complaints", "bigint"), ("avg_complaint_sentiment", "double"), ("complaints_with_text", "bigint"),
    ("ns_count", "bigint"), ("ns_first", "timestamp"), ("ns_last", "timestamp"), ("complaint_postal_code", "string"),
)
_ZERO_FILL = (
    "total_interactions", "unique_event_types", "max_7day_interactions", "total_visits", "outbound_calls",
    "outbound_texts", "contacts_zone_unknown", "contacts_zone_ambiguous", "qh_uncertain",
    "complaints_total", "complaints_open", "complaints_pending", "complaints_closed",
    "complaint_reason_diversity", "repeat_complaints", "complaints_with_text", "ns_count",
    "fr_count", "ac_count", "qh_count", "rv_count", "oc_count",
)


def customer_table(
    ev_feat: DataFrame,
    comp_feat: Optional[DataFrame],
    oc: Optional[DataFrame],
    accounts: Optional[DataFrame],
    as_of: dt.date,
    cc: ComplianceConfig,
) -> DataFrame:
    """One row per customer seen in any input: event, complaint, account and postal-code features."""
    keys = ev_feat.select("temp_key")
    if comp_feat is not None:
        keys = keys.unionByName(comp_feat.select("temp_key"))
    if accounts is not None:
        keys = keys.unionByName(accounts.select("temp_key"))
    cust = keys.distinct().join(ev_feat, "temp_key", "left")
    added: Dict[str, Column] = {}
    if comp_feat is not None:
        cust = cust.join(comp_feat, "temp_key", "left")
    else:
        added.update({c: F.lit(None).cast(t) for c, t in _COMPLAINT_FEATURE_TYPES})
    if oc is not None:
        cust = cust.join(oc, "temp_key", "left")
    else:
        added.update({"oc_count": F.lit(None).cast("bigint"), "oc_first": F.lit(None).cast("timestamp"),
                      "oc_last": F.lit(None).cast("timestamp")})
    if accounts is not None:
        acc = accounts.groupBy("temp_key").agg(F.datediff(F.lit(as_of), F.min("account_open_date")).alias("_tenure"))
        cust = cust.join(acc, "temp_key", "left")
        added["tenure_days"] = F.when(F.col("_tenure") >= 0, F.col("_tenure"))
    else:
        added["tenure_days"] = F.lit(None).cast("int")
    cust = cust.withColumns(added).drop("_tenure")
    filled = {c: F.coalesce(F.col(c), F.lit(0).cast("bigint")) for c in _ZERO_FILL}
    filled.update(
        is_active=F.coalesce("is_active", F.lit(False)),
        event_type_concentration=F.coalesce("event_type_concentration", F.lit(0.0)),
        postal_code=F.coalesce("journey_postal_code", "complaint_postal_code"),
    )
    cust = cust.withColumns(filled).drop("journey_postal_code", "complaint_postal_code")
    cust = cust.withColumns(
        {
            "complaint_to_visit_ratio": F.col("complaints_total") / F.greatest(F.col("total_visits"), F.lit(1)),
            "resolved_to_open_ratio": F.col("complaints_closed")
            / F.greatest(F.col("complaints_open") + F.col("complaints_pending"), F.lit(1)),
        }
    )
    # Postal-code features: complaints per customer, and mean interactions per customer ranked across
    # codes (one row per postal code: small enough for an unpartitioned window).
    postal = (
        cust.where(F.col("postal_code").isNotNull())
        .groupBy("postal_code")
        .agg(
            (F.sum("complaints_total") / F.count(F.lit(1))).alias("postal_complaint_density"),
            F.avg("total_interactions").alias("_postal_mean_interactions"),
        )
    )
    rank = F.percent_rank().over(Window.orderBy("_postal_mean_interactions"))
    postal = postal.select(
        "postal_code",
        "postal_complaint_density",
        (rank >= cc.features.high_interaction_postal_quantile).alias("_high_postal"),
    )
    return (
        cust.join(postal, "postal_code", "left")
        .withColumn("high_interaction_postal", F.coalesce("_high_postal", F.lit(False)))
        .drop("_high_postal")
    )


# =============================================================================================
# 5.-6. rules per customer, model, risk
# =============================================================================================


def _reason(rule: R.Rule, count: Column, first: Column, last: Column, detail: Optional[Column] = None) -> Column:
    return F.struct(
        F.lit(rule.code).alias("code"),
        F.lit(rule.regulation).alias("regulation"),
        count.cast("long").alias("count"),
        first.cast("timestamp").alias("first_event"),
        last.cast("timestamp").alias("last_event"),
        (detail if detail is not None else F.lit(None).cast("string")).alias("detail"),
    )


def apply_rules(cust: DataFrame, cc: ComplianceConfig, active: Dict[str, str]) -> DataFrame:
    """Rule flags (null when the rule did not run) and the rule part of `reasons`."""
    ni = cc.rules.high_interaction
    ns = cc.rules.negative_sentiment
    evidence = {
        "REGF_CALL_FREQUENCY": (F.col("fr_count") > 0, F.col("fr_count"), F.col("fr_first"), F.col("fr_last"), None),
        "REGF_CALL_AFTER_CONVERSATION": (
            F.col("ac_count") > 0, F.col("ac_count"), F.col("ac_first"), F.col("ac_last"), None
        ),
        "TCPA_QUIET_HOURS": (
            F.col("qh_count") > 0,
            F.col("qh_count"),
            F.col("qh_first"),
            F.col("qh_last"),
            F.when(
                F.col("qh_uncertain") > 0,
                F.format_string(
                    "%d of %d with unknown or ambiguous time zone (every candidate zone checked)",
                    F.col("qh_uncertain"),
                    F.col("qh_count"),
                ),
            ),
        ),
        "TCPA_AFTER_REVOCATION": (
            F.col("rv_count") > 0,
            F.col("rv_count"),
            F.col("rv_first"),
            F.col("rv_last"),
            F.format_string("revoked %s", F.date_format("revocation_ts", "yyyy-MM-dd HH:mm:ss")),
        ),
        "TCPA_OPEN_COMPLAINT_CONTACT": (
            F.col("oc_count") > 0, F.col("oc_count"), F.col("oc_first"), F.col("oc_last"), None
        ),
        "HIGH_INTERACTION_VOLUME": (
            F.col("total_interactions") > ni.threshold,
            F.col("total_interactions"),
            F.col("first_event_ts"),
            F.col("last_event_ts"),
            F.lit(f"threshold {ni.threshold}"),
        ),
        "NEGATIVE_COMPLAINT_SENTIMENT": (
            (F.col("complaints_with_text") >= ns.min_complaints) & (F.col("avg_complaint_sentiment") <= ns.threshold),
            F.col("ns_count"),
            F.col("ns_first"),
            F.col("ns_last"),
            F.format_string("mean polarity %.2f (threshold %.2f)", F.col("avg_complaint_sentiment"), F.lit(ns.threshold)),
        ),
    }
    flags = {
        rule.flag_column: (
            F.coalesce(evidence[rule.code][0], F.lit(False)) if active[rule.code] == "" else F.lit(None).cast("boolean")
        )
        for rule in R.RULES
    }
    cust = cust.withColumns(flags)
    structs = [
        F.when(F.col(rule.flag_column), _reason(rule, *evidence[rule.code][1:]))
        for rule in R.RULES
        if active[rule.code] == ""
    ]
    on = {r.code: F.coalesce(F.col(r.flag_column), F.lit(False)) for r in R.RULES}
    reg = [r for r in R.RULES if r.kind == R.REGULATORY]
    thr = [r for r in R.RULES if r.kind == R.THRESHOLD]
    n_reg = sum((on[r.code].cast("int") for r in reg), F.lit(0))
    n_thr = sum((on[r.code].cast("int") for r in thr), F.lit(0))
    max_reg = F.greatest(*[F.when(on[r.code], evidence[r.code][1]).otherwise(0) for r in reg], F.lit(0))
    rk = cc.risk
    cust = cust.withColumns(
        {
            "_rule_reasons": F.filter(F.array(*structs), lambda x: x.isNotNull())
            if structs
            else F.array().cast(REASON_TYPE),
            "_n_regulatory": n_reg,
            "_n_threshold": n_thr,
            "_max_regulatory_count": max_reg.cast("long"),
        }
    )
    return cust.withColumn(
        "rule_score",
        1
        - F.pow(F.lit(1 - rk.regulatory_rule_weight), F.col("_n_regulatory"))
        * F.pow(F.lit(1 - rk.threshold_rule_weight), F.col("_n_threshold")),
    )


def train_model(spark: SparkSession, cust: DataFrame, cc: ComplianceConfig, n_customers: int):
    """(model or None, info dict). Trains on a seeded uniform sample collected to the driver."""
    from advanced_anomaly_detection.compliance.model import fit_or_none

    mc = cc.model
    info: Dict[str, object] = {"enabled": mc.enabled, "threshold": mc.threshold}
    if not mc.enabled:
        info["status"] = "disabled in config (compliance.model.enabled=false)"
        return None, info
    fraction = min(1.0, 1.2 * mc.sample_size / max(n_customers, 1))
    sample = cust.select(*S.MODEL_FEATURES)
    if fraction < 1.0:
        sample = sample.sample(fraction=fraction, seed=mc.random_state)
    pdf = sample.limit(mc.sample_size).toPandas()
    for col in S.BOOLEAN_FEATURES:
        pdf[col] = pdf[col].astype(float)
    t0 = time.time()
    model, status = fit_or_none(pdf, mc)
    info["status"] = status
    info["sample_rows"] = int(len(pdf))
    if model is not None:
        info.update(model.describe())
        info["fit_seconds"] = round(time.time() - t0, 2)
        log.info("isolation forest trained on %d customers (%d features) in %.1fs", len(pdf), len(model.features_), time.time() - t0)
    return model, info


def score_model(spark: SparkSession, cust: DataFrame, model) -> DataFrame:
    """model_score for every customer: the model is broadcast once, applied by a pandas UDF."""
    if model is None:
        return cust.withColumn("model_score", F.lit(None).cast("double"))
    bc = spark.sparkContext.broadcast(model)
    features = list(model.features_)

    @F.pandas_udf("double")
    def score_udf(batch: pd.DataFrame) -> pd.Series:
        frame = batch.astype({c: float for c in batch.columns if batch[c].dtype == bool})
        return pd.Series(bc.value.score(frame), index=batch.index)

    inputs = F.struct(*[F.col(c).cast("double").alias(c) for c in features])
    return cust.withColumn("model_score", score_udf(inputs))


def finalise(cust: DataFrame, cc: ComplianceConfig, as_of: dt.date, run_id: str, model_ran: bool) -> DataFrame:
    mc, rk = cc.model, cc.risk
    model_flag = (F.col("model_score") >= mc.threshold) if model_ran else F.lit(None).cast("boolean")
    cust = cust.withColumns({"model_flag": model_flag, "model_score": F.col("model_score")})
    model_reason = F.when(
        F.coalesce(F.col("model_flag"), F.lit(False)),
        F.struct(
            F.lit(R.MODEL_REASON.code).alias("code"),
            F.lit(R.MODEL_REASON.regulation).alias("regulation"),
            F.lit(None).cast("long").alias("count"),
            F.col("first_event_ts").alias("first_event"),
            F.col("last_event_ts").alias("last_event"),
            F.format_string("model score %.4f (threshold %.4f)", F.col("model_score"), F.lit(mc.threshold)).alias("detail"),
        ),
    )
    reasons = F.filter(F.concat(F.col("_rule_reasons"), F.array(model_reason)), lambda x: x.isNotNull())
    flagged = (F.col("_n_regulatory") + F.col("_n_threshold") > 0) | F.coalesce(F.col("model_flag"), F.lit(False))
    tier = (
        F.when(
            (F.col("_n_regulatory") >= rk.critical_min_regulatory_rules)
            | ((F.col("_n_regulatory") > 0) & (F.col("_max_regulatory_count") >= rk.critical_min_violations)),
            "critical",
        )
        .when(F.col("_n_regulatory") > 0, "high")
        .when((F.col("_n_threshold") > 0) | F.coalesce(F.col("model_flag"), F.lit(False)), "medium")
        .otherwise("low")
    )
    cust = cust.withColumns(
        {
            "reasons": reasons.cast(REASON_TYPE),
            "risk_score": 1
            - (1 - F.col("rule_score")) * (1 - rk.model_weight * F.coalesce(F.col("model_score"), F.lit(0.0))),
            "is_flagged": flagged,
            "risk_tier": tier,
            "as_of_date": F.lit(as_of),
            "run_id": F.lit(run_id),
        }
    )
    columns = (
        ["temp_key"]
        + list(S.FEATURES)
        + list(S.CONTEXT_COLUMNS)
        + [r.flag_column for r in R.RULES]
        + list(S.OUTPUT_TAIL)
    )
    return cust.select(*columns)


# =============================================================================================
# run
# =============================================================================================


def _as_of_date(value) -> Optional[dt.date]:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise UserError(f"--as-of: expected a date YYYY-MM-DD, got {value!r}") from None


def _write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small text file to any Hadoop file system (local, gs://, hdfs://)."""
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
        return
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.create(hpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def _writer(df: DataFrame, partitioned: bool):
    w = df.write.mode("overwrite")
    if partitioned:
        w = w.partitionBy("as_of_date").option("partitionOverwriteMode", "dynamic")
    return w


def _stage_counts(tables: Sequence[Tuple[Validated, Optional[Column]]]) -> None:
    """One action over all staged tables: rows per table and reject reason (and, for accepted rows,
    per an extra key such as the event date, kept in `Validated.by_key`)."""
    parts = []
    for v, extra in tables:
        key = F.when(F.col("_reject_reason").isNull(), extra).cast("string") if extra is not None else F.lit(None)
        parts.append(
            v.staged.groupBy(F.col("_reject_reason").alias("_r"), key.cast("string").alias("_g"))
            .count()
            .withColumn("_t", F.lit(v.name))
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    rows = union.collect()
    for v, _ in tables:
        mine = [r for r in rows if r["_t"] == v.name]
        v.rows = sum(int(r["count"]) for r in mine)
        v.rejected_counts = _reason_counts(mine)
        v.by_key = {r["_g"]: int(r["count"]) for r in mine if r["_r"] is None and r["_g"] is not None}


def run(
    spark: SparkSession,
    cfg,
    journey: str,
    complaints: str,
    accounts: Optional[str],
    output: str,
    as_of=None,
) -> Dict[str, object]:
    """Score every customer; write gold_compliance_risk to `output`; return (and write) the run summary."""
    cc: ComplianceConfig = cfg.compliance if isinstance(cfg, Config) else cfg
    started = time.time()
    if not cc.enabled:
        return {"status": "disabled", "message": "compliance.enabled is false; nothing was scored"}
    output = output.rstrip("/")
    as_of_arg = _as_of_date(as_of)
    run_id = f"compliance-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    quarantine_root = output + "_quarantine"
    summary: Dict[str, object] = {"job": "score_compliance_risk", "run_id": run_id, "output": output}
    persisted: List[DataFrame] = []

    def persist(df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(df)
        return df

    try:
        # ---- 1. read + validate --------------------------------------------------------------
        j = validate(read_table(spark, journey, "journey"), "journey", S.JOURNEY_REQUIRED, S.JOURNEY_OPTIONAL,
                     _journey_checks())
        c = validate(read_table(spark, complaints, "complaints", multiline_csv=True), "complaints",
                     S.COMPLAINTS_REQUIRED, S.COMPLAINTS_OPTIONAL, _complaint_checks())
        a = (
            validate(read_table(spark, accounts, "accounts"), "accounts", S.ACCOUNTS_REQUIRED, S.ACCOUNTS_OPTIONAL)
            if accounts
            else None
        )
        j.staged = persist(j.staged)
        c.staged = persist(c.staged)
        # Rows per table and reason; journey rows per event date (as-of default, window counts).
        _stage_counts([(j, F.to_date("event_ts")), (c, F.to_date("complaint_create_date"))] + ([(a, None)] if a else []))
        per_day = {dt.date.fromisoformat(d): n for d, n in j.by_key.items()}
        for v in (j, c, a):
            if v is not None:
                examples = {r: _example(v, r) for r in v.rejected_counts} if v.rows and (
                    sum(v.rejected_counts.values()) / v.rows > cc.max_rejected_fraction) else {}
                _check_rejected_fraction(v, cc.max_rejected_fraction, examples)
        if j.accepted == 0:
            raise InputValidationError(f"journey: no usable rows in {journey}")

        as_of_date = as_of_arg or max(per_day)
        as_of_end = dt.datetime.combine(as_of_date + dt.timedelta(days=1), dt.time())
        window_start = as_of_end - dt.timedelta(days=cc.lookback_days)
        after = sum(n for d, n in per_day.items() if d >= as_of_date + dt.timedelta(days=1))
        before = sum(n for d, n in per_day.items() if d < window_start.date())
        complaints_after = sum(n for d, n in c.by_key.items() if dt.date.fromisoformat(d) > as_of_date)
        summary.update(as_of=as_of_date.isoformat(), as_of_source="argument" if as_of_arg else "latest journey event")
        log.info("as of %s: journey %d rows (%d rejected, %d after as-of, %d before lookback); inputs read in %.1fs",
                 as_of_date, j.rows, j.rows - j.accepted, after, before, time.time() - started)

        active = R.rule_availability(cc, j.present_optional, c.present_optional)
        skipped = {code: why for code, why in active.items() if why}
        for code, why in skipped.items():
            log.warning("rule %s not evaluated: %s", code, why)

        # ---- quarantine ------------------------------------------------------------------------
        quarantined = {}
        for v in (j, c, a):
            if v is not None and v.rejected_counts:
                path = f"{quarantine_root}/{v.name}"
                q = v.rejected.withColumn("run_id", F.lit(run_id)).withColumn("as_of_date", F.lit(as_of_date))
                _writer(q, cc.partition_by_as_of).parquet(path)
                quarantined[v.name] = path
                log.warning("%s: %d rows quarantined to %s (%s)", v.name, sum(v.rejected_counts.values()), path,
                            ", ".join(f"{k}={n}" for k, n in sorted(v.rejected_counts.items())))

        # ---- 2.-3. events ------------------------------------------------------------------------
        ev = j.clean.where((F.col("event_ts") >= F.lit(window_start)) & (F.col("event_ts") < F.lit(as_of_end)))
        ev = prepare_events(ev, cc)
        ev = resolve_event_zones(ev, cc)
        years = (window_start.year - 1, as_of_date.year + 1)
        rc = cc.rules.revocation
        holidays = R.holiday_dates(rc.holiday_country, *years) if rc.business_days else ()
        ev = persist(event_rule_evidence(ev, cc, active, holidays))

        comp = c.clean.where(F.col("complaint_create_date") < F.lit(as_of_end))
        comp = comp.withColumn("complaint_status", F.create_map(
            *[F.lit(x) for kv in S.COMPLAINT_STATUSES.items() for x in kv])[F.lower("complaint_status")])
        comp = persist(comp)
        oc = open_complaint_contacts(ev, comp, cc) if active["TCPA_OPEN_COMPLAINT_CONTACT"] == "" else None
        comp_feat = complaint_features(comp, cc, with_text="complaint_description" in c.present_optional)

        # ---- 4. customers ------------------------------------------------------------------------
        cust = customer_table(event_features(ev, as_of_end, cc), comp_feat, oc, a.clean if a else None, as_of_date, cc)
        cust = persist(apply_rules(cust, cc, active))
        t_stage = time.time()
        n_customers = cust.count()
        log.info("features and rules of %d customers in %.1fs", n_customers, time.time() - t_stage)

        # ---- 5. model ----------------------------------------------------------------------------
        model, model_info = train_model(spark, cust, cc, n_customers)
        scored = score_model(spark, cust, model)
        out = finalise(scored, cc, as_of_date, run_id, model is not None)

        # ---- 6. write + summary -------------------------------------------------------------------
        t_stage = time.time()
        _writer(out, cc.partition_by_as_of).parquet(output)
        log.info("scored and wrote %s in %.1fs", output, time.time() - t_stage)
        written = spark.read.parquet(output)
        if cc.partition_by_as_of:
            written = written.where(F.col("as_of_date") == F.lit(as_of_date))
        written = written.where(F.col("run_id") == run_id)
        reason_sums = [
            F.sum(F.array_contains(F.col("reasons.code"), code).cast("int")).alias(f"reason_{code}")
            for code in R.ALL_REASON_CODES
        ]
        tier_sums = [F.sum((F.col("risk_tier") == t).cast("int")).alias(f"tier_{t}") for t in R.RISK_TIERS]
        stats = written.agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum(F.col("is_flagged").cast("int")).alias("flagged"),
            F.sum(F.coalesce(F.col("model_flag"), F.lit(False)).cast("int")).alias("model_flagged"),
            F.sum("contacts_zone_unknown").alias("zone_unknown"),
            F.sum("contacts_zone_ambiguous").alias("zone_ambiguous"),
            F.sum(F.col("outbound_calls") + F.col("outbound_texts")).alias("contacts"),
            *reason_sums,
            *tier_sums,
        ).collect()[0]
        by_reason = {code: int(stats[f"reason_{code}"] or 0) for code in R.ALL_REASON_CODES}
        tiers = {t: int(stats[f"tier_{t}"] or 0) for t in R.RISK_TIERS}
        model_info["flagged"] = int(stats["model_flagged"] or 0)

        summary.update(
            status="ok",
            customers_scored=int(stats["customers"]),
            customers_flagged=int(stats["flagged"] or 0),
            flagged_by_reason={code: int(by_reason.get(code, 0)) for code in R.ALL_REASON_CODES},
            risk_tiers={t: int(tiers.get(t, 0)) for t in R.RISK_TIERS},
            rules={code: ("ran" if not why else f"skipped: {why}") for code, why in active.items()},
            rules_skipped=skipped,
            model=model_info,
            time_zones={
                "outbound_calls_and_texts": int(stats["contacts"] or 0),
                "zone_unknown_checked_fallback": int(stats["zone_unknown"] or 0),
                "zone_ambiguous_checked_all": int(stats["zone_ambiguous"] or 0),
                "fallback_zones": list(cc.rules.quiet_hours.fallback_zones),
            },
            inputs={
                "journey": _input_summary(j, journey, {"after_as_of": after, "before_lookback": before}),
                "complaints": _input_summary(c, complaints, {"after_as_of": complaints_after}),
                "accounts": _input_summary(a, accounts) if a else None,
            },
            quarantine=quarantined,
            summary_path=output + "_summary.json",
            elapsed_s=round(time.time() - started, 1),
        )
        _write_text(spark, output + "_summary.json", json.dumps(summary, indent=2, default=str))
        log.info("compliance run %s: %d customers, %d flagged, in %.1fs", run_id, summary["customers_scored"],
                 summary["customers_flagged"], summary["elapsed_s"])
        return summary
    finally:
        for df in persisted:
            df.unpersist()


def _reason_counts(rows) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for r in rows:
        if r["_r"] is not None:
            out[r["_r"]] = out.get(r["_r"], 0) + int(r["count"])
    return out


def _input_summary(v: Validated, path: str, outside: Optional[Dict[str, int]] = None) -> Dict[str, object]:
    out: Dict[str, object] = {
        "path": path,
        "rows": v.rows,
        "accepted": v.accepted,
        "rejected": dict(sorted(v.rejected_counts.items())),
        "missing_optional_columns": v.missing_optional,
    }
    if outside is not None:
        out["outside_window"] = outside
    return out
