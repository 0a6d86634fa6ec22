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

DETECTOR_NAMES = ("baseline", "prophet", "isolation_forest", "changepoint", "lstm")
SIGNALS = (
    "views",
    "carts",
    "purchases",
    "revenue",
    "view_to_cart_rate",
    "cart_to_purchase_rate",
    "conversion_rate",
)
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


class ProphetConfig(_Section):
    enabled: bool = False
    signals: List[Signal] = Field(default_factory=lambda: ["views", "purchases"])
    daily_seasonality: bool = True
    weekly_seasonality: bool = True
    changepoint_prior_scale: float = Field(0.05, gt=0)
    # Prophet's default is 1000 posterior samples per forecast; it dominates run time.
    uncertainty_samples: int = Field(0, ge=0)
    interval_width: float = Field(0.95, gt=0, lt=1)
    # Fit on at most this many days of history (Prophet cost grows with length).
    history_days: int = Field(42, ge=7)


class IsolationForestConfig(_Section):
    enabled: bool = False
    n_estimators: int = Field(100, ge=10)
    max_samples: int = Field(256, ge=16)
    contamination: Literal["auto"] = "auto"
    random_state: int = 0


class ChangepointConfig(_Section):
    enabled: bool = False
    signals: List[Signal] = Field(default_factory=lambda: ["views", "purchases", "conversion_rate"])
    model: Literal["l2", "l1", "normal", "rbf"] = "l2"
    min_size: int = Field(6, ge=2)
    jump: int = Field(1, ge=1)
    # Penalty = penalty_factor * log(n) * variance of the normalised signal (BIC-like).
    penalty_factor: float = Field(3.0, gt=0)
    # Only the last N days of history are segmented (PELT is O(n) to O(n^2)).
    history_days: int = Field(28, ge=2)


class LSTMConfig(_Section):
    enabled: bool = False
    signals: List[Signal] = Field(default_factory=lambda: ["views", "carts", "purchases", "conversion_rate"])
    window_hours: int = Field(168, ge=4)
    latent_dim: int = Field(16, ge=1)
    units: int = Field(32, ge=1)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(256, ge=1)
    # Training samples this many windows per brand rather than every overlapping window.
    windows_per_brand: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
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

    low: float = Field(0.999, ge=0, le=1)
    medium: float = Field(0.9999, ge=0, le=1)
    high: float = Field(0.99999, ge=0, le=1)
    critical: float = Field(0.999999, ge=0, le=1)

    @model_validator(mode="after")
    def _increasing(self) -> "SeverityConfig":
        values = [self.low, self.medium, self.high, self.critical]
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"thresholds must increase low < medium < high < critical, got {values}")
        return self


class EnsembleConfig(_Section):
    weights: Dict[str, float] = Field(
        default_factory=lambda: {
            "baseline": 0.30,
            "prophet": 0.20,
            "isolation_forest": 0.15,
            "changepoint": 0.15,
            "lstm": 0.20,
        }
    )
    # An hour is anomalous when the weighted mean of calibrated scores reaches this...
    threshold: float = Field(0.999, gt=0, lt=1)
    # ...and at least this many detectors (capped at the number that ran) individually reach
    # `detector_threshold`.
    min_agreement: int = Field(1, ge=1)
    detector_threshold: float = Field(0.99, gt=0, lt=1)
    severity: SeverityConfig = Field(default_factory=SeverityConfig)

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
    shuffle_partitions: int = Field(8, ge=1)
    # Arrow batch size for applyInPandas (rows per batch handed to Python).
    arrow_max_records_per_batch: int = Field(10000, ge=100)
    conf: Dict[str, str] = Field(default_factory=dict)


class ComplianceConfig(_Section):
    """Contact-compliance (TCPA / Regulation F) risk job; see docs/compliance.md."""

    enabled: bool = True


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
        msg = e["msg"]
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
