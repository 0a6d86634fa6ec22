"""The one detector interface, and the calibration that makes detector scores comparable.

Every detector works on one series' pandas frame (sorted, complete hourly grid; see schema.py):

    det = SomeDetector(**settings)        # stores settings only
    det.fit(history)                      # learns state in attributes ending in "_"; returns self
    out = det.score(frame)                # same index as frame

``score`` returns columns ``raw_score`` (higher = more anomalous, any scale), ``score`` (calibrated to
[0, 1]: the probability mass of this detector's own history scores below it, with an exponential tail
beyond the 90th percentile so that 0.9999 is reachable from a few thousand history hours), and, where
meaningful, ``expected`` (expected value of ``signal``), ``signal`` (the signal that moved most) and
``direction`` (+1 above expected, -1 below). A detector that cannot run sets ``status_`` and returns
NaN scores instead of raising.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Optional

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

OK = "ok"
INSUFFICIENT_HISTORY = "insufficient_history"
CONSTANT_SERIES = "constant_series"
LIBRARY_MISSING = "library_missing"
FAILED = "failed"

OUTPUT_COLUMNS = ("raw_score", "score", "expected", "signal", "direction")
# Share of a funnel history's scores that may be past incidents and must not set the calibration bar
# (measured: with transient incidents planted in the history, recall fell from 0.89 to 0.71 when
# every history score was trusted; README, "Detection quality").
UNTRUSTED_HISTORY = 0.02
# Fewer reference scores than this are all trusted: too few to set a part of them aside.
MIN_SCORES_TO_DISTRUST = 200


class TailCalibrator:
    """Maps raw scores to [0, 1] against a reference sample (a detector's scores on history).

    Below the `tail_quantile` of the reference: the empirical CDF. Above it: a generalised Pareto
    tail fitted to the exceedances (peaks over threshold; shape by the method of moments, kept in
    [0, max_shape]: never lighter than exponential), so scores more extreme than anything in history
    still get graded tail probabilities instead of all saturating at 1 - 1/n, and heavy-tailed
    histories are not mistaken for light-tailed ones.
    """

    def __init__(self, tail_quantile: float = 0.9, max_points: int = 4000, min_tail_scale: float = 1e-9,
                 max_shape: float = 0.5, untrusted_top: float = 0.0):
        self.tail_quantile = tail_quantile
        self.max_points = max_points
        # With untrusted_top = u > 0 the top u of the reference is taken for possibly anomalous (a
        # history that holds last week's incidents): the tail is fitted to two quantiles below it
        # and above its start only the fitted tail speaks, so past incidents cannot set the bar.
        self.untrusted_top = untrusted_top
        # A floor on the tail's scale: where theory says how heavy the tail is at least (e.g. 2 for
        # squared Gaussian z), a short or degenerate history cannot make it lighter.
        self.min_tail_scale = min_tail_scale
        self.max_shape = max_shape

    def fit(self, reference: np.ndarray) -> "TailCalibrator":
        ref = np.asarray(reference, dtype=float)
        ref = np.sort(ref[np.isfinite(ref)])
        if ref.size == 0:
            raise ValueError("no finite reference scores to calibrate against")
        if ref.size > self.max_points:  # keep the model small: quantiles carry the same information
            ref = np.quantile(ref, np.linspace(0, 1, self.max_points))
        self.reference_ = ref
        self.threshold_ = float(np.quantile(ref, self.tail_quantile))
        excess = ref[ref > self.threshold_] - self.threshold_
        self.tail_mass_ = max(excess.size / ref.size, 1.0 / (ref.size + 1))
        spread = float(np.subtract(*np.quantile(ref, [0.75, 0.25]))) or float(np.std(ref)) or 1.0
        mean = float(excess.mean()) if excess.size else 0.0
        var = float(excess.var()) if excess.size > 1 else 0.0
        self.tail_shape_ = float(np.clip(0.5 * (1.0 - mean**2 / var), 0.0, self.max_shape)) if var > 0 else 0.0
        # A flat tail (e.g. many tied scores) would make any larger score "infinitely" extreme.
        self.tail_scale_ = max(mean * (1.0 - self.tail_shape_), 0.05 * spread, self.min_tail_scale)
        self.trusted_max_ = np.inf
        if self.untrusted_top > 0:
            self._fit_tail_by_quantiles(ref, spread)
        return self

    def _fit_tail_by_quantiles(self, ref: np.ndarray, spread: float) -> None:
        """GPD over the threshold through two quantiles below the untrusted top: the middle of the
        tail band and its trusted end (exceedance probabilities 1/2 and r of the tail mass)."""
        top = min(self.untrusted_top, 0.2)
        mass = max(1.0 - self.tail_quantile, 4.0 * top)  # the tail band: four times the untrusted top
        threshold, q_mid, q_end = np.quantile(ref, [1.0 - mass, 1.0 - mass / 2.0, 1.0 - top])
        a, b, r = q_mid - threshold, q_end - threshold, top / mass
        if not (a > 0 and b > a):
            return  # ties or a flat tail: the moment fit (with its scale floor) stays
        # S(y) = (1 + xi y / sigma)^(-1/xi): S(a) = 1/2 and S(b) = r give b/a = (r^-xi - 1) / (2^xi - 1)
        def ratio(xi: float) -> float:
            return np.log(1 / r) / np.log(2) if xi < 1e-9 else (r**-xi - 1) / (2**xi - 1)

        lo, hi = 0.0, self.max_shape
        if ref.size < 1000:
            # two quantiles of a short history cannot tell a heavy tail from sampling noise: an
            # exponential tail, as wide as the wider of the two quantiles asks
            xi, sigma = 0.0, max(a / np.log(2), b / np.log(1 / r))
        else:
            if b / a <= ratio(lo):
                xi = 0.0
            elif b / a >= ratio(hi):
                xi = hi
            else:
                for _ in range(50):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (mid, hi) if ratio(mid) < b / a else (lo, mid)
                xi = 0.5 * (lo + hi)
            sigma = a / np.log(2) if xi < 1e-9 else xi * a / (2**xi - 1)
        self.tail_shape_ = float(xi)
        self.threshold_ = float(threshold)
        self.tail_mass_ = mass
        self.tail_scale_ = max(float(sigma), 0.05 * spread, self.min_tail_scale)
        self.trusted_max_ = float(q_end)

    def _tail_probability(self, excess: np.ndarray) -> np.ndarray:
        y = np.maximum(excess, 0.0) / self.tail_scale_
        if self.tail_shape_ > 1e-6:
            return self.tail_mass_ * np.power(1.0 + self.tail_shape_ * y, -1.0 / self.tail_shape_)
        return self.tail_mass_ * np.exp(-y)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        out = np.full(raw.shape, np.nan)
        finite = np.isfinite(raw)
        ref = self.reference_
        x = raw[finite]
        # Mid-rank for ties: a score equal to many history scores (e.g. all zeros) is not extreme.
        below = np.searchsorted(ref, x, side="left")
        equal = np.searchsorted(ref, x, side="right") - below
        body = (below + 0.5 * equal + 0.5) / (ref.size + 1.0)
        tail = 1.0 - self._tail_probability(x - self.threshold_)
        blended = np.where(x > self.threshold_, np.maximum(body, tail), body)
        out[finite] = np.where(x > self.trusted_max_, tail, blended)
        return np.clip(out, 0.0, 1.0)


def reference_calibrator(history_scores: np.ndarray, untrusted_top: float = UNTRUSTED_HISTORY,
                         min_tail_scale: float = 1e-9) -> TailCalibrator:
    """Calibrator against a history's own scores whose top `untrusted_top` is not trusted (a history
    holds past incidents): the tail there is extrapolated from the scores below it."""
    ref = np.asarray(history_scores, dtype=float)
    ref = ref[np.isfinite(ref)]
    top = untrusted_top if ref.size >= MIN_SCORES_TO_DISTRUST else 0.0
    return TailCalibrator(untrusted_top=top, min_tail_scale=min_tail_scale).fit(ref)


class Detector(ABC):
    """Base class: subclasses implement `_fit(history)` and `_raw(frame) -> DataFrame`.

    `_raw` returns at least `raw_score` on frame's index and may add `expected`, `signal`,
    `direction`. `_history_raw(history)` gives the reference scores for calibration; by default
    the in-sample scores of `_raw(history)`. A detector with its own calibration overrides
    `_fit_calibration` and `_calibrate`.
    """

    name = "detector"
    min_history_hours = 24 * 7
    # share of the history's scores the calibration does not trust (they may be past incidents)
    untrusted_history = UNTRUSTED_HISTORY

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in sorted(vars(self).items()) if not k.endswith("_"))
        return f"{type(self).__name__}({settings})"

    # --- to implement -------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, history: pd.DataFrame) -> None:
        """Learn state from history (attributes ending in "_"); may call self._fail(...)."""

    @abstractmethod
    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw scores (and optionally expected/signal/direction) for every row of frame."""

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self._raw(history)["raw_score"].to_numpy(dtype=float)

    def _fit_calibration(self, history: pd.DataFrame) -> None:
        self.calibrator_ = reference_calibrator(self._history_raw(history), self.untrusted_history)

    def _calibrate(self, raw: pd.DataFrame) -> np.ndarray:
        return self.calibrator_.transform(raw["raw_score"].to_numpy(dtype=float))

    # --- the protocol -------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame) -> "Detector":
        self.status_ = OK
        self.reason_ = ""
        if len(history) < self.min_history_hours:
            return self._fail(INSUFFICIENT_HISTORY, f"{len(history)} history hours < {self.min_history_hours}")
        try:
            self._fit(history)
            if self.status_ != OK:
                return self
            self._fit_calibration(history)
        except ImportError as exc:
            return self._fail(LIBRARY_MISSING, str(exc))
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            return self._fail(FAILED, f"{type(exc).__name__}: {exc}")
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        if getattr(self, "status_", None) is None:
            raise RuntimeError(f"{self.name}: fit() must be called before score()")
        out = pd.DataFrame(index=frame.index)
        if self.status_ != OK:
            return _empty_output(out)
        raw = self._raw(frame)
        out["raw_score"] = raw["raw_score"].to_numpy(dtype=float)
        out["score"] = self._calibrate(raw)
        for col in ("expected", "signal", "direction"):
            out[col] = raw[col].to_numpy() if col in raw else (None if col == "signal" else np.nan)
        return out

    def _fail(self, status: str, reason: str) -> "Detector":
        self.status_ = status
        self.reason_ = reason
        log.debug("%s not fitted: %s (%s)", self.name, status, reason)
        return self


def _empty_output(out: pd.DataFrame) -> pd.DataFrame:
    for col in OUTPUT_COLUMNS:
        out[col] = None if col == "signal" else np.nan
    return out


def require_columns(frame: pd.DataFrame, columns, who: str) -> Optional[str]:
    missing = [c for c in columns if c not in frame.columns]
    return f"{who}: missing columns {missing}" if missing else None
