"""Isolation Forest detector: multivariate oddities no single-signal model sees.

Features per hour, computed from the counts of the series itself (the feature columns of the frame are
not required; lags need the last week of history, which fit keeps as context):
  * per watched signal: its level (log1p count, or logit of the volume-shrunk rate — a rate on tiny
    volume is pulled to the brand's pooled rate), and its deviation from the same hour yesterday and
    the same hour last week (differences on that scale);
  * hour of day as sin/cos, day of week as sin/cos.
Features are standardised with the median / IQR of history; sklearn's IsolationForest is fitted on
history and raw_score = -score_samples (higher = more anomalous). The reference for calibration is
the in-sample scores on history. `signal`/`direction` name the watched signal whose deviation is the
most extreme in robust-z terms; `expected` is its seasonal-naive value (mean of lag 24 h and 168 h).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.config import IsolationForestConfig
from advanced_anomaly_detection.detectors import _funnel_signals as fs
from advanced_anomaly_detection.detectors.base import CONSTANT_SERIES, Detector

LAGS = (24, 168)
CONTEXT_HOURS = max(LAGS)


class IsolationForestDetector(Detector):
    name = "isolation_forest"
    min_history_hours = 24 * 7

    def __init__(self, cfg: IsolationForestConfig | None = None, **settings):
        base = cfg.model_dump() if cfg is not None else {}
        self.cfg = IsolationForestConfig(**{**base, **settings})

    # ---------------------------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        from sklearn.ensemble import IsolationForest

        cfg = self.cfg
        hist = history.reset_index(drop=True)
        self.signals_ = [s for s in cfg.signals if not fs.is_constant(fs.transformed(hist, s))]
        if not self.signals_:
            self._fail(CONSTANT_SERIES, f"all of {list(cfg.signals)} constant on history")
            return
        self.priors_ = {s: fs.pooled_rate(hist, s) for s in self.signals_ if fs.is_rate(s)}
        X, names = self._features(hist)
        # rows with a full week of lags when there are enough of them; otherwise all rows
        has_lags = np.arange(len(hist)) >= CONTEXT_HOURS
        rows = has_lags if has_lags.sum() >= 7 * 24 else np.ones(len(hist), bool)
        Xf = X[rows]
        self.feature_names_ = names
        self.center_ = np.nanmedian(Xf, axis=0)
        q75, q25 = np.nanpercentile(Xf, [75, 25], axis=0)
        spread = q75 - q25
        std = np.nanstd(Xf, axis=0)
        spread = np.where(spread > 1e-9, spread / 1.349, np.where(std > 1e-9, std, 1.0))
        self.spread_ = np.where(np.isfinite(spread), spread, 1.0)
        self.center_ = np.where(np.isfinite(self.center_), self.center_, 0.0)
        Z = self._standardise(Xf)
        self.forest_ = IsolationForest(
            n_estimators=cfg.n_estimators,
            max_samples=min(cfg.max_samples, len(Z)),
            contamination=cfg.contamination,
            random_state=cfg.random_state,
            n_jobs=1,
        ).fit(Z)
        self.history_raw_ = -self.forest_.score_samples(Z)
        self.context_ = hist.iloc[-CONTEXT_HOURS:].copy()

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        both = pd.concat([self.context_, frame], ignore_index=True)
        X, _ = self._features(both)
        X = X[len(self.context_):]
        Z = self._standardise(X)
        raw = -self.forest_.score_samples(Z)
        signal, direction, expected = self._attribution(both, Z, len(self.context_))
        return pd.DataFrame(
            {"raw_score": raw, "expected": expected, "signal": signal, "direction": direction}, index=frame.index
        )

    # ---------------------------------------------------------------------------------------------
    def _levels(self, frame: pd.DataFrame) -> Dict[str, np.ndarray]:
        return {s: fs.transformed(frame, s, self.priors_.get(s)) for s in self.signals_}

    def _features(self, frame: pd.DataFrame) -> Tuple[np.ndarray, List[str]]:
        cols, names = [], []
        for s, x in self._levels(frame).items():
            cols.append(x)
            names.append(f"{s}_level")
            for lag in LAGS:
                cols.append(x - _shift(x, lag))
                names.append(f"{s}_dev_{lag}h")
        t = fs.hour_features(frame)
        for key, period in (("hour_of_day", 24.0), ("day_of_week", 7.0)):
            ang = 2 * np.pi * t[key] / period
            cols += [np.sin(ang), np.cos(ang)]
            names += [f"{key}_sin", f"{key}_cos"]
        return np.column_stack(cols).astype(float), names

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.center_) / self.spread_
        # unknown (no lag yet, NaN input) -> the typical value; clip so one absurd value cannot
        # dominate the tree depth statistics of everything else
        return np.clip(np.where(np.isfinite(Z), Z, 0.0), -50.0, 50.0)

    def _attribution(self, both: pd.DataFrame, Z: np.ndarray, offset: int):
        n = Z.shape[0]
        best_abs = np.full(n, -1.0)
        best_sig = np.full(n, None, dtype=object)
        direction = np.full(n, np.nan)
        expected = np.full(n, np.nan)
        col = {name: i for i, name in enumerate(self.feature_names_)}
        for s in self.signals_:
            dev = np.column_stack([Z[:, col[f"{s}_dev_{lag}h"]] for lag in LAGS])
            mag = np.abs(dev).mean(axis=1)
            better = mag > best_abs
            best_abs = np.where(better, mag, best_abs)
            best_sig[better] = s
            direction[better] = np.sign(dev.mean(axis=1))[better]
            expected[better] = _seasonal_naive(both, s)[offset:][better]
        return best_sig, direction, expected


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if lag < len(x):
        out[lag:] = x[:-lag]
    return out


def _nanmean_rows(stacked: np.ndarray) -> np.ndarray:
    ok = np.isfinite(stacked)
    cnt = ok.sum(axis=0)
    total = np.where(ok, stacked, 0.0).sum(axis=0)
    return np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)


def _seasonal_naive(frame: pd.DataFrame, signal: str) -> np.ndarray:
    """Mean of the same hour yesterday and last week (pooled for rates), NaN if both unknown."""
    if fs.is_rate(signal):
        k, n = fs.rate_parts(frame, signal)
        kk = _nanmean_rows(np.vstack([_shift(k, lag) for lag in LAGS]))
        nn = _nanmean_rows(np.vstack([_shift(n, lag) for lag in LAGS]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(nn > 0, kk / nn, np.nan)
    x = fs.observed(frame, signal)
    return _nanmean_rows(np.vstack([_shift(x, lag) for lag in LAGS]))
