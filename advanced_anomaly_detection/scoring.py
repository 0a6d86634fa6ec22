"""Score one brand's hourly series: fit every enabled detector on history, score the target hours,
combine into the ensemble and derive the columns people act on. Pure pandas: this is the function
that runs inside `applyInPandas`, and it is unit-tested without Spark.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from advanced_anomaly_detection import ensemble, saved_fits
from advanced_anomaly_detection.config import DETECTOR_NAMES, Config
from advanced_anomaly_detection.detectors import build_detector
from advanced_anomaly_detection.detectors.base import OK
from advanced_anomaly_detection.detectors.baseline import BaselineDetector

log = logging.getLogger(__name__)

SCORE_COLUMNS = [f"{name}_anomaly_score" for name in DETECTOR_NAMES]

# Output of one brand's scoring (and of the Spark job): name -> Spark SQL type.
OUTPUT_SCHEMA = {
    "window_start": "timestamp",
    "brand": "string",
    "views": "long",
    "carts": "long",
    "purchases": "long",
    "revenue": "double",
    "conversion_rate": "double",
    "is_filled_hour": "boolean",
    "anomaly_metric": "string",
    "expected_value": "double",
    "deviation_percentage": "double",
    "expected_views": "double",
    "expected_purchases": "double",
    "expected_revenue": "double",
    **{c: "double" for c in SCORE_COLUMNS},
    "ensemble_anomaly_score": "double",
    "detector_agreement": "int",
    "anomaly_confidence": "double",
    "anomaly_severity": "string",
    "is_anomaly": "boolean",
    "anomaly_type": "string",
    "contributing_factors": "array<string>",
    "estimated_revenue_impact": "double",
    "conversion_loss": "double",
    "detectors_used": "array<string>",
    "detector_status": "string",
    "scoring_status": "string",
    "model_version": "string",
    "run_id": "string",
}


@dataclass
class ScoringContext:
    """What every brand's scoring shares: config, the first scored hour, run identity, models."""

    config: Config
    target_start: pd.Timestamp
    run_id: str
    model_version: str
    models: Dict[str, Any] = field(default_factory=dict)


def _empty_scores(target: pd.DataFrame, ctx: ScoringContext, status: str, detector_status: str = "") -> pd.DataFrame:
    out = _base_columns(target, ctx)
    for col in SCORE_COLUMNS + ["expected_value", "deviation_percentage", "expected_views",
                                "expected_purchases", "expected_revenue", "ensemble_anomaly_score",
                                "anomaly_confidence", "estimated_revenue_impact", "conversion_loss"]:
        out[col] = np.nan
    out["anomaly_metric"] = None
    out["detector_agreement"] = 0
    out["anomaly_severity"] = "none"
    out["is_anomaly"] = False
    out["anomaly_type"] = None
    out["contributing_factors"] = [[] for _ in range(len(out))]
    out["detectors_used"] = [[] for _ in range(len(out))]
    out["detector_status"] = detector_status
    out["scoring_status"] = status
    return out[list(OUTPUT_SCHEMA)]


def _base_columns(target: pd.DataFrame, ctx: ScoringContext) -> pd.DataFrame:
    out = pd.DataFrame(index=target.index)
    for col in ("window_start", "brand", "views", "carts", "purchases", "revenue", "conversion_rate", "is_filled_hour"):
        out[col] = target[col].to_numpy()
    out["run_id"] = ctx.run_id
    out["model_version"] = ctx.model_version
    return out


def score_series(series: pd.DataFrame, ctx: ScoringContext,
                 saved: Optional[Dict[str, saved_fits.SavedFit]] = None,
                 fits_out: Optional[Dict[str, saved_fits.SavedFit]] = None) -> pd.DataFrame:
    """series: one brand, complete hourly grid, sorted, history followed by target hours.
    Returns one row per target hour with the OUTPUT_SCHEMA columns.

    saved: the brand's saved fits by detector (saved_fits.py), reused where still valid. fits_out: when
    given, receives the fit (reused or new) of every detector whose fits are kept between nights."""
    cfg = ctx.config
    series = series.sort_values("window_start").reset_index(drop=True)
    if len(series) > cfg.run.max_series_hours:  # bound worker memory by config, not by data
        series = series.iloc[-cfg.run.max_series_hours:].reset_index(drop=True)
    is_target = pd.to_datetime(series["window_start"]) >= ctx.target_start
    history, target = series.loc[~is_target], series.loc[is_target]
    if target.empty:
        return _empty_scores(target, ctx, "scored")
    min_hours = cfg.run.min_history_days * 24
    if len(history) < min_hours:
        return _empty_scores(target, ctx, "insufficient_history",
                             f"history {len(history)} h < run.min_history_days ({cfg.run.min_history_days} d)")

    # The baseline always runs: it provides expected values, impact and contributing factors even
    # when its score is not part of the ensemble.
    baseline = BaselineDetector(cfg.detectors.baseline, cfg.volume).fit(history)
    if baseline.status_ != OK:
        return _empty_scores(target, ctx, f"baseline_{baseline.status_}", baseline.reason_)

    scores = pd.DataFrame(index=target.index)
    outputs: Dict[str, pd.DataFrame] = {}
    statuses: List[str] = []
    keep = set(saved_fits.reusable_detectors(cfg)) if saved is not None or fits_out is not None else set()
    for name in cfg.detectors.enabled():
        try:
            det, note = (baseline, "") if name == "baseline" else _fitted(name, history, ctx, saved, fits_out, keep)
            if det.status_ == OK:
                outputs[name] = det.score(target)
                scores[name] = outputs[name]["score"].to_numpy(dtype=float)
            detail = "; ".join(x for x in (det.reason_, note) if x)
            statuses.append(f"{name}={det.status_}" + (f" ({detail})" if detail else ""))
        except Exception as exc:  # one detector's bug must not lose the brand's other scores
            log.warning("brand %s: detector %s failed: %s", target["brand"].iloc[0], name, exc)
            statuses.append(f"{name}=failed ({type(exc).__name__}: {exc})")
    return assemble(target, baseline, scores, outputs, statuses, ctx)


def _fitted(name: str, history: pd.DataFrame, ctx: ScoringContext, saved, fits_out, keep):
    """(fitted detector, note): the saved fit when it may be reused, else a fit on `history`."""
    fit = (saved or {}).get(name) if name in keep else None
    det, note = saved_fits.reuse(fit, name, ctx.config, ctx.target_start, str(history["brand"].iloc[-1]))
    reused = det is not None
    if not reused:
        det = build_detector(name, ctx.config, ctx.models).fit(history)
    if fits_out is not None and name in keep and det.status_ == OK:
        fits_out[name] = (dataclasses.replace(fit, reused=True) if reused
                          else saved_fits.saved(det, name, ctx.config, history["window_start"].iloc[-1]))
    return det, note


def assemble(target, baseline: BaselineDetector, scores: pd.DataFrame, outputs: Dict[str, pd.DataFrame],
             statuses: List[str], ctx: ScoringContext) -> pd.DataFrame:
    cfg = ctx.config
    out = _base_columns(target, ctx)
    for name in DETECTOR_NAMES:
        out[f"{name}_anomaly_score"] = scores[name].to_numpy() if name in scores else np.nan
    ens = ensemble.combine(scores, cfg.ensemble)
    out["ensemble_anomaly_score"] = ens["ensemble_anomaly_score"].to_numpy()
    out["detector_agreement"] = ens["detector_agreement"].to_numpy()
    is_anomaly = ens["is_anomaly"].to_numpy()

    z, expected = baseline.signal_z(target)
    # The signal that moved: the one named by the most confident detector that names one.
    metric = _anomaly_metric(outputs, z)
    rows = np.arange(len(target))
    cols = {c: i for i, c in enumerate(expected.columns)}
    idx = np.array([cols.get(m, 0) for m in metric])
    exp_value = expected.to_numpy()[rows, idx]
    actual = target[list(expected.columns)].to_numpy(dtype=float)[rows, idx]
    out["anomaly_metric"] = metric
    out["expected_value"] = exp_value
    with np.errstate(invalid="ignore", divide="ignore"):
        out["deviation_percentage"] = np.where(exp_value > 0, (actual - exp_value) / exp_value * 100.0, np.nan)
    out["expected_views"] = expected["views"].to_numpy()
    out["expected_purchases"] = expected["purchases"].to_numpy()
    out["expected_revenue"] = expected["revenue"].to_numpy()

    out["anomaly_confidence"] = ensemble.confidence(
        ens["detector_agreement"].to_numpy(), ens["detectors_ran"].to_numpy(), out["expected_views"].to_numpy(), cfg.volume
    )
    out["is_anomaly"] = is_anomaly
    out["anomaly_severity"] = ensemble.severity(out["ensemble_anomaly_score"].to_numpy(), is_anomaly, cfg.ensemble)
    direction = np.sign(actual - exp_value)
    kind = np.where(direction < 0, "drop", "spike").astype(object)
    if "changepoint" in scores:
        cp = scores["changepoint"].to_numpy()
        top = np.nan_to_num(cp) >= np.nanmax(scores.to_numpy(), axis=1)
        kind = np.where(top & (np.nan_to_num(cp) >= cfg.ensemble.detector_threshold), "changepoint", kind)
    out["anomaly_type"] = np.where(is_anomaly, kind, None)
    out["contributing_factors"] = baseline.contributing_factors(target, is_anomaly)
    revenue_delta = target["revenue"].to_numpy(dtype=float) - out["expected_revenue"].to_numpy()
    lost_purchases = np.maximum(out["expected_purchases"].to_numpy() - target["purchases"].to_numpy(dtype=float), 0.0)
    out["estimated_revenue_impact"] = np.where(is_anomaly, np.round(revenue_delta, 2), np.nan)
    out["conversion_loss"] = np.where(is_anomaly, np.round(lost_purchases, 2), np.nan)
    used = [n for n in DETECTOR_NAMES if n in scores]
    out["detectors_used"] = [used for _ in rows]
    out["detector_status"] = "; ".join(statuses)
    out["scoring_status"] = "scored"
    return out[list(OUTPUT_SCHEMA)]


def _anomaly_metric(outputs: Dict[str, pd.DataFrame], z: pd.DataFrame) -> np.ndarray:
    """Per row: the signal named by the highest-scoring detector; else the baseline's largest |z|."""
    fallback = z.abs().idxmax(axis=1).to_numpy(dtype=object) if len(z) else np.array([], dtype=object)
    best_score = np.full(len(z), -np.inf)
    metric = fallback.copy()
    for out in outputs.values():
        if "signal" not in out:
            continue
        sig = out["signal"].to_numpy(dtype=object)
        sc = np.nan_to_num(out["score"].to_numpy(dtype=float), nan=-np.inf)
        better = (sc > best_score) & np.array([s in z.columns for s in sig])
        metric = np.where(better, sig, metric)
        best_score = np.where(better, sc, best_score)
    return metric
