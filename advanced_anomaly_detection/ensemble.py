"""Weighted ensemble of calibrated detector scores: score, agreement, confidence, severity.

Pure NumPy/pandas; the inputs are per-detector calibrated scores in [0, 1] (NaN where a detector did
not run). Weights are renormalised row by row over the detectors that produced a score. Two means:
`evidence_mean` (default) averages -log10(1 - score), `mean` averages the scores themselves; the
evaluation table reports both (README, "Detection quality").
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import pandas as pd

from advanced_anomaly_detection.config import EnsembleConfig, VolumeGateConfig


def combine(scores: pd.DataFrame, cfg: EnsembleConfig) -> pd.DataFrame:
    """scores: one column per detector name. Returns ensemble_anomaly_score, detector_agreement,
    detectors_ran, is_anomaly (before volume gating)."""
    names = list(scores.columns)
    s = scores.to_numpy(dtype=float) if names else np.empty((len(scores), 0))
    w = np.array([cfg.weights.get(n, 0.0) for n in names], dtype=float)
    ran = np.isfinite(s)
    wr = np.where(ran, w, 0.0)
    wsum = wr.sum(axis=1)
    if cfg.method == "evidence_mean":
        # Weighted mean of evidence, -log10(1 - score): a weighted geometric mean of the detectors'
        # tail probabilities. One detector at 1 - 1e-8 and four at 0.5 stays extreme (~1 - 1e-3),
        # where the arithmetic mean (0.6) would drown it.
        values = -np.log10(np.clip(1.0 - np.nan_to_num(s, nan=0.0), 1e-16, 1.0))
    else:
        values = np.nan_to_num(s, nan=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, (values * wr).sum(axis=1) / np.where(wsum > 0, wsum, 1.0), np.nan)
    ens = 1.0 - 10.0 ** (-mean) if cfg.method == "evidence_mean" else mean
    # Detectors with zero weight still vote in the agreement count, but not in the score.
    n_ran = ran.sum(axis=1)
    agreement = (np.nan_to_num(s, nan=0.0) >= cfg.detector_threshold).sum(axis=1)
    required = np.minimum(cfg.min_agreement, np.maximum(n_ran, 1))
    out = pd.DataFrame(index=scores.index)
    out["ensemble_anomaly_score"] = ens
    out["detector_agreement"] = agreement.astype("int32")
    out["detectors_ran"] = n_ran.astype("int32")
    extreme = np.nan_to_num(ens) >= cfg.threshold
    if cfg.single_detector_threshold is not None and names:
        extreme |= np.nan_to_num(s, nan=0.0).max(axis=1) >= cfg.single_detector_threshold
    out["is_anomaly"] = np.isfinite(ens) & extreme & (agreement >= required)
    return out


def confidence(agreement: np.ndarray, n_ran: np.ndarray, expected_views: np.ndarray, vol: VolumeGateConfig) -> np.ndarray:
    """Share of detectors that agree, discounted when the expected volume is small."""
    n = np.maximum(np.asarray(n_ran, dtype=float), 1.0)
    share = np.asarray(agreement, dtype=float) / n
    ev = np.maximum(np.nan_to_num(np.asarray(expected_views, dtype=float)), 0.0)
    volume_factor = np.clip(np.log1p(ev) / np.log1p(vol.full_confidence_views), 0.0, 1.0)
    return np.round(share * volume_factor, 4)


def severity(score: np.ndarray, is_anomaly: np.ndarray, cfg: EnsembleConfig) -> np.ndarray:
    sev = cfg.severity
    score = np.nan_to_num(np.asarray(score, dtype=float))
    levels = np.select(
        [score >= sev.critical, score >= sev.high, score >= sev.medium],
        ["critical", "high", "medium"],
        default="low",
    )
    return np.where(np.asarray(is_anomaly, dtype=bool), levels, "none").astype(object)


def renormalised_weights(cfg: EnsembleConfig, ran: list) -> Dict[str, float]:
    total = sum(cfg.weights.get(n, 0.0) for n in ran)
    return {n: (cfg.weights.get(n, 0.0) / total if total > 0 else 0.0) for n in ran}
