"""Isolation Forest on standardised customer features, with scores calibrated to [0, 1].

Shape of a scikit-learn estimator: the constructor stores settings, `fit` learns state in attributes
ending in "_" and returns self; the object pickles (the Spark job broadcasts it to the workers).
scikit-learn's `score_samples` is "lower is more abnormal"; `raw_score` flips it so that, like every
detector of this package, higher is more anomalous. `score` is the calibrated tail probability of the
raw score against the training sample's raw scores (TailCalibrator): ~uniform on typical customers,
graded beyond the most extreme training customer instead of saturating.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd

from advanced_anomaly_detection.compliance.schema import COUNT_FEATURES, MODEL_FEATURES, NEUTRAL_FILL
from advanced_anomaly_detection.detectors.base import TailCalibrator

log = logging.getLogger(__name__)


class CustomerIsolationForest:
    def __init__(
        self,
        features: Sequence[str] = MODEL_FEATURES,
        n_estimators: int = 200,
        max_samples: int = 256,
        max_features: float = 1.0,
        log_counts: bool = True,
        random_state: int = 0,
    ):
        self.features = tuple(features)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.log_counts = log_counts
        self.random_state = random_state

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({settings})"

    @classmethod
    def from_config(cls, model_cfg, features: Sequence[str] = MODEL_FEATURES) -> "CustomerIsolationForest":
        return cls(
            features=features,
            n_estimators=model_cfg.n_estimators,
            max_samples=model_cfg.max_samples,
            max_features=model_cfg.max_features,
            log_counts=model_cfg.log_counts,
            random_state=model_cfg.random_state,
        )

    # --- preparation ------------------------------------------------------------------------
    def _matrix(self, frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature column(s) {missing}")
        X = np.column_stack([pd.to_numeric(frame[f], errors="coerce").to_numpy(dtype=float) for f in features])
        if self.log_counts:
            for j, f in enumerate(features):
                if f in COUNT_FEATURES:
                    X[:, j] = np.log1p(np.clip(X[:, j], 0, None))
        return X

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(X), self.fill_, X)
        return (X - self.mean_) / self.scale_

    # --- protocol -----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> "CustomerIsolationForest":
        from sklearn.ensemble import IsolationForest

        if len(frame) < 2:
            raise ValueError(f"need at least 2 customers to fit, got {len(frame)}")
        X = self._matrix(frame, self.features)
        # Features with no information in the sample (all missing, e.g. tenure without accounts,
        # or constant) are left out; the rest are imputed and standardised.
        keep, fill = [], []
        for j, f in enumerate(self.features):
            col = X[:, j]
            finite = col[np.isfinite(col)]
            if finite.size == 0 or np.nanstd(finite) == 0:
                continue
            keep.append(j)
            neutral = NEUTRAL_FILL.get(f)
            if neutral is not None:
                fill.append(np.log1p(neutral) if (self.log_counts and f in COUNT_FEATURES) else neutral)
            else:
                fill.append(float(np.median(finite)))
        if not keep:
            raise ValueError("every feature is missing or constant in the training sample")
        self.features_ = tuple(self.features[j] for j in keep)
        self.dropped_features_ = tuple(f for f in self.features if f not in self.features_)
        X = X[:, keep]
        self.fill_ = np.asarray(fill, dtype=float)
        X = np.where(np.isnan(X), self.fill_, X)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(Z)),
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=1,
        ).fit(Z)
        train_raw = -self.forest_.score_samples(Z)
        self.calibrator_ = TailCalibrator().fit(train_raw)
        self.n_train_ = int(len(Z))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "forest_"):
            raise RuntimeError("CustomerIsolationForest: fit() must be called before scoring")

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Higher = more anomalous (negated sklearn score_samples)."""
        self._check_fitted()
        if len(frame) == 0:
            return np.empty(0)
        return -self.forest_.score_samples(self._standardise(self._matrix(frame, self.features_)))

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated anomaly score in [0, 1]."""
        raw = self.raw_score(frame)
        return self.calibrator_.transform(raw) if raw.size else raw

    def describe(self) -> Dict[str, object]:
        self._check_fitted()
        return {
            "n_train": self.n_train_,
            "features": list(self.features_),
            "dropped_features": list(self.dropped_features_),
            "n_estimators": self.n_estimators,
            "max_samples": int(self.forest_.max_samples_),
        }


def fit_or_none(frame: pd.DataFrame, model_cfg, min_customers: Optional[int] = None):
    """(model, status): the fitted model and "ok", or None and why it was not fitted."""
    min_customers = model_cfg.min_customers if min_customers is None else min_customers
    if len(frame) < min_customers:
        return None, f"insufficient_customers ({len(frame)} < {min_customers})"
    try:
        return CustomerIsolationForest.from_config(model_cfg).fit(frame), "ok"
    except ValueError as exc:
        log.warning("compliance model not fitted: %s", exc)
        return None, f"failed ({exc})"
