"""Typed, validated configuration.

The defaults live here and only here (``config/defaults.yaml`` is a dump of them, kept in sync by a
test). A run layers: defaults <- an override YAML file <- ``--set key.path=value`` overrides.
Invalid configuration fails before any data is read, with the key and the problem in the message.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from advanced_anomaly_detection.schema import SIGNALS  # noqa: F401 (re-exported)

DETECTOR_NAMES = ("baseline", "prophet", "isolation_forest", "changepoint", "lstm")
# Spelled out for type checkers, which cannot read a Literal from a tuple; must equal schema.SIGNALS.
Signal = Literal[
    "views", "carts", "purchases", "revenue", "view_to_cart_rate", "cart_to_purchase_rate", "conversion_rate"
]


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the key."""


class _Section(BaseModel):
    # Unknown keys are errors: a typo in a YAML file must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IOConfig(_Section):
    gold_path: Optional[str] = None
    output_path: Optional[str] = None
    # Where rejected input rows go; default: "<output_path>_quarantine".
    quarantine_path: Optional[str] = None
    model_dir: Optional[str] = None
    # Per-brand detector fits kept between nights (detectors with refit_days > 1; one Parquet snapshot
    # per night); default "<model_dir>/fits". Without either, every fit is made afresh each night.
    fits_path: Optional[str] = None


class RunConfig(_Section):
    # Days of history before the first scored date that detectors fit on.
    lookback_days: int = Field(56, ge=7)
    # Minimum history a brand needs before it is scored (else: scoring_status=insufficient_history).
    min_history_days: int = Field(14, ge=1)
    # Hard cap on a series' length inside one worker (bounds worker memory).
    max_series_hours: int = Field(24 * 120, ge=24 * 8)


class FeatureConfig(_Section):
    rolling_windows_hours: List[int] = Field(default_factory=lambda: [24, 168])
    lags_hours: List[int] = Field(default_factory=lambda: [1, 24, 168])
    time_features: bool = True

    @field_validator("rolling_windows_hours", "lags_hours")
    @classmethod
    def _positive(cls, v: List[int]) -> List[int]:
        bad = [x for x in v if x <= 0]
        if bad:
            raise ValueError(f"windows and lags must be positive hours, got {bad}")
        return v


class BaselineConfig(_Section):
    """Robust seasonal, count-aware baseline (hour-of-day x day-of-week profile, NB/binomial z)."""

    enabled: bool = True
    signals: List[Signal] = Field(
        default_factory=lambda: ["views", "purchases", "revenue", "view_to_cart_rate", "cart_to_purchase_rate"]
    )
    # Days of recent history the hour-of-day profile and funnel rates are estimated from.
    profile_days: int = Field(28, ge=7)
    # Days used to re-level the profile to the recent trend.
    level_days: int = Field(7, ge=1)
    # Residuals beyond this many robust sigmas are clipped when estimating the profile and dispersion.
    winsor_sigma: float = Field(4.0, gt=0)
    # Evidence is also accumulated over these trailing windows (hours), so a moderate shift that lasts
    # (a cart-rate drop of a few sigma an hour for six hours) is found, not only single extreme hours.
    windows_hours: List[int] = Field(default_factory=lambda: [1, 3, 6])

    @field_validator("windows_hours")
    @classmethod
    def _windows(cls, v: List[int]) -> List[int]:
        if not v or any(h <= 0 for h in v):
            raise ValueError(f"windows must be positive hours, got {v}")
        return sorted(set(v))


class ProphetConfig(_Section):
    enabled: bool = True
    # Views only: with purchases as well the ensemble scored the same on both labelled benchmarks
    # (README) at twice Prophet's cost; the baseline, changepoint and LSTM watch purchases.
    signals: List[Signal] = Field(default_factory=lambda: ["views"])
    daily_seasonality: bool = True
    weekly_seasonality: bool = True
    changepoint_prior_scale: float = Field(0.05, gt=0)
    # Prophet's default is 1000 posterior samples per forecast; it dominates run time.
    uncertainty_samples: int = Field(0, ge=0)
    interval_width: float = Field(0.95, gt=0, lt=1)
    # Fit on at most this many days of history (Prophet cost grows with length; four weeks hold four
    # cycles of the weekly pattern).
    history_days: int = Field(28, ge=7)
    # Seed of NumPy's global RNG before Prophet samples (only used when uncertainty_samples > 0).
    random_state: int = 0
    # CmdStan's L-BFGS relative-gradient tolerance (null: CmdStan's default, 1e7). 1e9 ends the MAP
    # search earlier: a fit takes ~55 ms instead of ~80 and its fitted values move by under 1%
    # (measured on 28-day hourly series, whose hourly noise is 5% and more); the ~40 ms left is
    # CmdStan's fixed cost (process start, I/O) and Prophet's preprocessing.
    tol_rel_grad: Optional[float] = Field(1e9, gt=0)
    # A brand's fit is made on one night and reused on the nights after it, this many nights at most
    # (1: refit every night); each brand has its own refit night in the cycle (a hash of the brand),
    # so a night refits ~1/refit_days of the brands. Reuse needs io.fits_path or a model dir. A reused
    # fit scores exactly as a backfill scores its later days (one fit on the history before its first
    # day), the regime the 14-day `aad evaluate` measures; a fit costs ~75 ms of CmdStan per brand, a
    # reused one ~3 ms.
    refit_days: int = Field(7, ge=1)


class IsolationForestConfig(_Section):
    enabled: bool = True
    # 25 trees of 256 samples. The fit is scikit-learn's Python overhead per tree (~1.5 ms), not
    # arithmetic: 25 trees cost 38 ms a brand, 50 cost 70, 100 ~140. Its scores only feed the
    # ensemble (it almost never flags alone). With 50 -> 25 trees, LSTM reference windows 720 -> 480
    # and Prophet's looser tolerance, ensemble F1 moved by -0.008, -0.029, 0.000 on three benchmarks
    # (one window is ~0.02).
    n_estimators: int = Field(25, ge=10)
    max_samples: int = Field(256, ge=16)
    contamination: Literal["auto"] = "auto"
    random_state: int = 0
    # Signals whose level, funnel rate and same-hour-yesterday / last-week deviations are features.
    signals: List[Signal] = Field(
        default_factory=lambda: ["views", "carts", "purchases", "revenue", "view_to_cart_rate", "cart_to_purchase_rate"]
    )


class ChangepointConfig(_Section):
    enabled: bool = True
    signals: List[Signal] = Field(default_factory=lambda: ["views", "purchases", "conversion_rate"])
    model: Literal["l2", "l1", "normal", "rbf"] = "l2"
    min_size: int = Field(6, ge=2)
    jump: int = Field(1, ge=1)
    # Penalty = penalty_factor * log(n) * variance of the normalised signal (BIC-like).
    penalty_factor: float = Field(3.0, gt=0)
    # Only the last N days of history are segmented (PELT is O(n) to O(n^2)).
    history_days: int = Field(28, ge=2)
    # A breakpoint's score decays with this e-folding time (hours) after the hour the shift begins.
    decay_hours: float = Field(6.0, gt=0)


class LSTMConfig(_Section):
    enabled: bool = True
    signals: List[Signal] = Field(default_factory=lambda: ["views", "carts", "purchases", "conversion_rate"])
    window_hours: int = Field(168, ge=4)
    latent_dim: int = Field(16, ge=1)
    units: int = Field(32, ge=1)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(256, ge=1)
    # Training samples this many windows per brand rather than every overlapping window
    # (32 windows x 1,000 brands x 3 epochs: about 3-5 min on 2 CPU cores).
    windows_per_brand: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    # Training reads a deterministic sample of at most this many brands (bounds driver memory).
    max_training_brands: int = Field(1000, ge=1)
    force_retrain: bool = False
    random_state: int = 0


class DetectorsConfig(_Section):
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    prophet: ProphetConfig = Field(default_factory=ProphetConfig)
    isolation_forest: IsolationForestConfig = Field(default_factory=IsolationForestConfig)
    changepoint: ChangepointConfig = Field(default_factory=ChangepointConfig)
    lstm: LSTMConfig = Field(default_factory=LSTMConfig)

    def enabled(self) -> List[str]:
        return [name for name in DETECTOR_NAMES if getattr(self, name).enabled]


class SeverityConfig(_Section):
    """Ensemble-score thresholds, increasing. A flagged hour below `low` is still reported as low."""

    low: float = Field(0.9995, ge=0, le=1)
    medium: float = Field(0.99999, ge=0, le=1)
    high: float = Field(0.999999, ge=0, le=1)
    critical: float = Field(0.9999999, ge=0, le=1)

    @model_validator(mode="after")
    def _increasing(self) -> "SeverityConfig":
        values = [self.low, self.medium, self.high, self.critical]
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"thresholds must increase low < medium < high < critical, got {values}")
        return self


class EnsembleConfig(_Section):
    weights: Dict[str, float] = Field(
        # Roughly in proportion to each detector's F1 alone on the labelled benchmark (README).
        default_factory=lambda: {
            "baseline": 0.35,
            "prophet": 0.15,
            "isolation_forest": 0.10,
            "changepoint": 0.20,
            "lstm": 0.20,
        }
    )
    # evidence_mean: weighted mean of -log10(1 - score), mapped back to [0, 1] (a weighted geometric
    # mean of tail probabilities); mean: weighted arithmetic mean of the calibrated scores.
    method: Literal["evidence_mean", "mean"] = "evidence_mean"
    # An hour is anomalous when the weighted mean of calibrated scores reaches this...
    # (0.9995 ~ one false hour per 2,000 normal hours if calibrated; the hours of one incident are
    # correlated, so alert events are far rarer: 1.8-2.9 false per 1000 brand-days measured). Chosen
    # by `aad evaluate` pooled over three benchmarks (seeds 11, 23, 31), checked on a fourth (README).
    threshold: float = Field(0.9995, gt=0, lt=1)
    # ...and at least this many detectors (capped at the number that ran) individually reach
    # `detector_threshold`.
    min_agreement: int = Field(1, ge=1)
    detector_threshold: float = Field(0.99, gt=0, lt=1)
    # A single detector this extreme flags the hour even when the others see nothing (some anomalies,
    # e.g. a checkout outage, show in one detector's signals only). 1 - 1e-7 is three orders of
    # magnitude beyond `threshold`, so the multiple-testing cost of the five detectors stays small.
    # null disables it.
    single_detector_threshold: Optional[float] = Field(0.9999999, gt=0, lt=1)
    severity: SeverityConfig = Field(default_factory=SeverityConfig)
    # `aad score-series` uses this threshold instead: a generic series is fitted on days, not months,
    # of its own history, so its calibrated tails are conservative (exponential at the lightest) and
    # 0.9999 misses moderate spikes. Chosen with `aad evaluate-series` (README), not on the funnel.
    series_threshold: float = Field(0.999, gt=0, lt=1)
    # ... except for series whose cadence has no day or week to block by (months, weeks, seconds,
    # positions): there a history of n points cannot vouch for a tail rarer than about 1 in n, so the bar
    # is 1 - 1/n, within [series_threshold_floor, series_threshold] (monthly data: 0.99; measured with
    # `aad evaluate-series --freqs month,7D,10s,positions`, README).
    series_threshold_floor: float = Field(0.99, gt=0, lt=1)
    # Two alarms on a generic series are joined into one run of flags when the ensemble's evidence
    # (-log10 of one minus its score) stays above this fraction of the bar's everywhere between them: one
    # incident whose evidence wavers about the bar (a level shift until the next refit, a burst of noise)
    # is one alert event, not a dozen. 1: off.
    series_bridge_fraction: float = Field(0.5, gt=0, le=1)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: Dict[str, float]) -> Dict[str, float]:
        unknown = sorted(set(v) - set(DETECTOR_NAMES))
        if unknown:
            raise ValueError(f"unknown detector(s) {unknown}; known: {list(DETECTOR_NAMES)}")
        negative = {k: w for k, w in v.items() if w < 0}
        if negative:
            raise ValueError(f"weights must be >= 0, got {negative}")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {total:.6g}")
        return v


class VolumeGateConfig(_Section):
    """Counts carry information that rates hide: gates on expected volume before a flag counts."""

    # An hour whose expected views are below this is never flagged on a rate signal.
    min_expected_views_for_rates: float = Field(20.0, ge=0)
    # An hour whose expected count is below this is never flagged on that count signal.
    min_expected_count: float = Field(3.0, ge=0)
    # Expected views at which volume no longer lowers confidence.
    full_confidence_views: float = Field(500.0, gt=0)


class AlertConfig(_Section):
    # Flagged hours of one brand at most this many hours apart form one alert event.
    merge_gap_hours: int = Field(1, ge=0)
    min_duration_hours: int = Field(1, ge=1)
    # After an alert event, further events of the same brand within this many hours are suppressed.
    suppression_hours: int = Field(0, ge=0)


class SparkConfig(_Section):
    app_name: str = "advanced_anomaly_detection"
    # None: local[*] unless spark-submit / the cluster already set a master.
    master: Optional[str] = None
    # Brands are scored one shuffle partition per task: with a few large partitions the last one
    # leaves cores idle (1,000 brands on 2 cores: 316 s with 8, 298 s with 32).
    shuffle_partitions: int = Field(32, ge=1)
    # A small run gets fewer partitions: every scoring task costs ~0.6 s before its first brand
    # (shuffle read, window features, Arrow hand-off), so a task takes at least this many brands
    # (100 brands on 2 cores: 46 s with 32 tasks, 28-35 s with 4). Runs of shuffle_partitions x this
    # many brands or more are not affected.
    min_brands_per_task: int = Field(25, ge=1)
    # Arrow batch size for applyInPandas (rows per batch handed to Python).
    arrow_max_records_per_batch: int = Field(10000, ge=100)
    # Heap of a local-mode JVM started by our code (driver and tasks in one process); ignored under
    # spark-submit or on a cluster, where --driver-memory / the cluster decide.
    local_driver_memory: str = Field("2g", pattern=r"^[0-9]+[kmgtKMGT]?$")
    conf: Dict[str, str] = Field(default_factory=dict)


def _lower_unique(values: List[str], what: str) -> List[str]:
    out = []
    for v in values:
        v = str(v).strip().lower()
        if not v:
            raise ValueError(f"{what}: empty name")
        if v not in out:
            out.append(v)
    return out


class ComplianceChannelsConfig(_Section):
    """How journey `event_nm` / `call_outcome` values map to the channels the rules reason about."""

    # event_nm values that are telephone calls (Regulation F frequency, TCPA quiet hours).
    call_events: List[str] = Field(default_factory=lambda: ["call", "phone_call", "voice"])
    # event_nm values that are text messages (TCPA applies to texts as to calls).
    text_events: List[str] = Field(default_factory=lambda: ["sms", "text"])
    # Inbound event_nm values that revoke consent / request do-not-call at their timestamp
    # (e.g. an SMS "STOP" reply), in addition to the consent_revoked_ts / dnc_requested_ts columns.
    opt_out_events: List[str] = Field(
        default_factory=lambda: ["opt_out", "stop", "dnc_request", "consent_revoked", "revoke_consent"]
    )
    # call_outcome values that mean a telephone conversation took place (Regulation F (b)(2)(ii)).
    conversation_outcomes: List[str] = Field(
        default_factory=lambda: ["connected", "conversation", "answered", "right_party_contact", "rpc"]
    )

    @field_validator("call_events", "text_events", "opt_out_events", "conversation_outcomes")
    @classmethod
    def _names(cls, v: List[str]) -> List[str]:
        if not v:
            raise ValueError("must name at least one value")
        return _lower_unique(v, "channel")

    @model_validator(mode="after")
    def _disjoint(self) -> "ComplianceChannelsConfig":
        both = sorted(set(self.call_events) & set(self.text_events))
        if both:
            raise ValueError(f"event names {both} are listed as both call_events and text_events")
        return self


class RegFFrequencyRuleConfig(_Section):
    """12 CFR 1006.14(b)(2)(i): more than `max_calls` call attempts within `window_days` consecutive days."""

    enabled: bool = True
    max_calls: int = Field(7, ge=1)
    window_days: int = Field(7, ge=1)


class RegFAfterConversationRuleConfig(_Section):
    """12 CFR 1006.14(b)(2)(ii): a call within `days` after a telephone conversation."""

    enabled: bool = True
    days: int = Field(7, ge=1)


class QuietHoursRuleConfig(_Section):
    """47 CFR 64.1200(c)(1) / 12 CFR 1006.6(b)(1)(i): calls and texts only 8 a.m.-9 p.m. local time."""

    enabled: bool = True
    # Local wall-clock seconds of day allowed: [start_hour:00, end_hour:00] inclusive.
    start_hour: int = Field(8, ge=0, le=23)
    end_hour: int = Field(21, ge=1, le=24)
    # Where the called party's zone comes from: "both" checks the phone's and the postal code's zones
    # (a call must be allowed in every candidate zone), otherwise the first that resolves wins.
    zone_source: Literal["both", "phone_first", "postal_first"] = "both"
    # Zones checked when neither phone nor postal code resolves (both coasts by default).
    fallback_zones: List[str] = Field(default_factory=lambda: ["America/New_York", "America/Los_Angeles"])

    @field_validator("fallback_zones")
    @classmethod
    def _zones(cls, v: List[str]) -> List[str]:
        from zoneinfo import ZoneInfo

        if not v:
            raise ValueError("at least one fallback zone is needed")
        for name in v:
            try:
                ZoneInfo(name)
            except Exception:  # noqa: BLE001  (ZoneInfoNotFoundError, ValueError for odd names)
                raise ValueError(f"unknown IANA time zone {name!r}") from None
        return v

    @model_validator(mode="after")
    def _order(self) -> "QuietHoursRuleConfig":
        if self.start_hour >= self.end_hour:
            raise ValueError(f"start_hour ({self.start_hour}) must be before end_hour ({self.end_hour})")
        return self


class RevocationRuleConfig(_Section):
    """47 CFR 64.1200(a)(10) and (d)(3): honour consent revocation / do-not-call within the processing period."""

    enabled: bool = True
    # Contacts are allowed up to and including this many days after the revocation date...
    processing_days: int = Field(10, ge=0, le=60)
    # ...counted in business days (Mon-Fri, without `holiday_country` public holidays) or calendar days.
    business_days: bool = True
    # ISO country for the `holidays` package (None: weekends only).
    holiday_country: Optional[str] = "US"

    @field_validator("holiday_country")
    @classmethod
    def _country(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        import holidays

        if v not in holidays.list_supported_countries():
            raise ValueError(f"holidays has no calendar for country {v!r} (use an ISO code such as 'US', or null)")
        return v


class OpenComplaintRuleConfig(_Section):
    """Outbound call/text while a TCPA-related complaint is open (revocation by any reasonable means)."""

    enabled: bool = True
    # A complaint is TCPA-related when its reason or description contains one of these (case-insensitive
    # substrings: "calls" also matches "robocalls").
    keywords: List[str] = Field(
        default_factory=lambda: [
            "communication tactic",
            "calls",
            "calling",
            "called",
            "autodial",
            "do not call",
            "do-not-call",
            "text message",
            "texting",
            "harass",
            "telemarket",
            "tcpa",
        ]
    )
    # Outbound event types that count as contact (default: calls and texts).
    include_email: bool = False

    @field_validator("keywords")
    @classmethod
    def _kw(cls, v: List[str]) -> List[str]:
        if not v:
            raise ValueError("at least one keyword is needed")
        return _lower_unique(v, "keyword")


class HighInteractionRuleConfig(_Section):
    """Seed threshold: total interactions in the lookback window above `threshold`."""

    enabled: bool = True
    threshold: int = Field(80, ge=1)


class NegativeSentimentRuleConfig(_Section):
    """Seed threshold: mean complaint-text polarity (TextBlob, -1..1) at or below `threshold`."""

    enabled: bool = True
    threshold: float = Field(-0.4, ge=-1, le=0)
    # Customers need at least this many complaints with text for the rule to apply.
    min_complaints: int = Field(1, ge=1)


class ComplianceRulesConfig(_Section):
    regf_call_frequency: RegFFrequencyRuleConfig = Field(default_factory=RegFFrequencyRuleConfig)
    regf_call_after_conversation: RegFAfterConversationRuleConfig = Field(
        default_factory=RegFAfterConversationRuleConfig
    )
    quiet_hours: QuietHoursRuleConfig = Field(default_factory=QuietHoursRuleConfig)
    revocation: RevocationRuleConfig = Field(default_factory=RevocationRuleConfig)
    open_complaint: OpenComplaintRuleConfig = Field(default_factory=OpenComplaintRuleConfig)
    high_interaction: HighInteractionRuleConfig = Field(default_factory=HighInteractionRuleConfig)
    negative_sentiment: NegativeSentimentRuleConfig = Field(default_factory=NegativeSentimentRuleConfig)


class ComplianceFeatureConfig(_Section):
    # "Active customer": any journey event in the last `active_days` up to the as-of date.
    active_days: int = Field(30, ge=1)
    # Width of the time-based window for the largest N-day interaction count.
    interaction_window_days: int = Field(7, ge=1)
    # A complaint within this many days of the customer's previous complaint is a repeat complaint.
    repeat_complaint_days: int = Field(30, ge=1)
    # A postal code is "high interaction" when its mean interactions per customer reach this quantile
    # of all postal codes (computed with approxQuantile).
    high_interaction_postal_quantile: float = Field(0.9, gt=0, lt=1)
    # Complaint text is cut to this many characters before sentiment scoring (bounds worker time).
    sentiment_max_chars: int = Field(5000, ge=100)


class ComplianceModelConfig(_Section):
    """Isolation Forest on standardised customer features; trained on a sample, applied to everyone."""

    enabled: bool = True
    # Customers sampled (uniformly, seeded) to the driver for training.
    sample_size: int = Field(100_000, ge=100)
    n_estimators: int = Field(200, ge=10)
    max_samples: int = Field(256, ge=16)
    max_features: float = Field(1.0, gt=0, le=1)
    random_state: int = 0
    # log1p of the non-negative count features before standardising (heavy tails).
    log_counts: bool = True
    # A customer is flagged by the model when its calibrated score reaches this tail probability.
    threshold: float = Field(0.99, gt=0, lt=1)
    # Fewer customers than this: the model is skipped (status "insufficient_customers"), rules still run.
    min_customers: int = Field(50, ge=10)


class ComplianceRiskConfig(_Section):
    """Risk tiers. Regulatory rules (Reg F, TCPA) make a customer high; threshold rules or the model medium."""

    # critical: at least this many different regulatory rules broken...
    critical_min_regulatory_rules: int = Field(2, ge=1)
    # ...or one regulatory rule broken at least this many times.
    critical_min_violations: int = Field(5, ge=1)
    # Ranking score: risk_score = 1 - (1 - rule_score) * (1 - model_weight * model_score), where
    # rule_score = 1 - prod(1 - weight) over the rules broken. With the defaults a regulatory violation
    # (>= 0.9) outranks a threshold rule (>= 0.6), which outranks the model alone (<= 0.5).
    regulatory_rule_weight: float = Field(0.9, gt=0, lt=1)
    threshold_rule_weight: float = Field(0.6, gt=0, lt=1)
    model_weight: float = Field(0.5, ge=0, le=1)


class ComplianceConfig(_Section):
    """Contact-compliance (TCPA / Regulation F) risk job; see docs/compliance.md."""

    enabled: bool = True
    # Journey events older than this many days before the as-of date are ignored (counted in the summary).
    lookback_days: int = Field(365, ge=7)
    # More than this share of a table's rows rejected (null key, unparseable date, ...) fails the run:
    # the input as a whole is unusable (wrong format, wrong column mapped).
    max_rejected_fraction: float = Field(0.5, gt=0, le=1)
    # Write gold_compliance_risk partitioned by as_of_date (reruns of a date replace that partition).
    partition_by_as_of: bool = True
    channels: ComplianceChannelsConfig = Field(default_factory=ComplianceChannelsConfig)
    features: ComplianceFeatureConfig = Field(default_factory=ComplianceFeatureConfig)
    rules: ComplianceRulesConfig = Field(default_factory=ComplianceRulesConfig)
    model: ComplianceModelConfig = Field(default_factory=ComplianceModelConfig)
    risk: ComplianceRiskConfig = Field(default_factory=ComplianceRiskConfig)


class Config(_Section):
    io: IOConfig = Field(default_factory=IOConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    volume: VolumeGateConfig = Field(default_factory=VolumeGateConfig)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        if not self.detectors.enabled():
            raise ValueError("detectors: at least one detector must be enabled")
        if self.run.min_history_days > self.run.lookback_days:
            raise ValueError(
                f"run.min_history_days ({self.run.min_history_days}) exceeds run.lookback_days "
                f"({self.run.lookback_days})"
            )
        return self

    def digest(self) -> str:
        """Stable short hash of the effective configuration (goes into model metadata)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"config key '{key}': {msg}")
    return f"invalid configuration ({source}):\n  " + "\n  ".join(lines)


def _deep_merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("weights", "conf"):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> Dict[str, Any]:
    """'ensemble.threshold=0.99' -> {'ensemble': {'threshold': 0.99}} (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc})") from None
    nested: Dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def add_config_args(parser) -> None:
    """The two configuration flags every command takes; read them back with
    ``load_config(args.config, args.set)``."""
    parser.add_argument("--config", help="override YAML file (layered over the built-in defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key")


def load_config(path: Optional[str | Path] = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults, then the YAML file at `path` (if any), then `key=value` overrides; validated."""
    data: Dict[str, Any] = {}
    source = "defaults"
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = _deep_merge(data, loaded)
        source = str(p)
    for item in overrides:
        data = _deep_merge(data, parse_override(item))
    if overrides:
        source += " + overrides"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def dump_defaults() -> str:
    header = "# Generated from advanced_anomaly_detection/config.py by `aad config --defaults`; do not edit.\n"
    return header + yaml.safe_dump(Config().model_dump(mode="json"), sort_keys=False)
