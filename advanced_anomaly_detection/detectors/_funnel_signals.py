"""Count-aware signal helpers shared by the Prophet, Isolation Forest, changepoint and LSTM detectors.

Signals are read from the counts, never trusted from precomputed rate columns: a rate is
(numerator, denominator) counts, so 0 purchases of 5 carts and 0 of 5,000 stay different things.

* counts (views, carts, purchases) and revenue are modelled on ``log1p``; deviations from an expected
  value ``mu`` are standardised with a negative-binomial-like variance ``unit*mu + phi*mu^2``
  (``unit`` = 1 for counts, ~2x the average order value for revenue, a compound-Poisson sum).
* rates are shrunk towards the brand's pooled rate with a pseudo-count prior before any transform
  (a rate on tiny volume is noise), and deviations are binomial z-scores with a beta-binomial
  over-dispersion ``n p (1-p) (1 + (n-1) rho)``.
* count misses get a continuity correction (the first half unit is no evidence), which keeps sparse
  series (0 or 1 purchase an hour) from producing 3-sigma "events" out of single purchases.

The dispersion parameters are fitted so that the median squared z on history equals the chi-square(1)
median: robust to the outliers we are looking for, and a misfitting expected value widens the noise
instead of flagging every hour.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.schema import RATE_SIGNALS

COUNTS = ("views", "carts", "purchases", "revenue")
CHI2_1_MEDIAN = 0.45493642311957283
# Pseudo-trials of the prior a rate is shrunk with: ~20 views/carts of evidence to move it halfway.
RATE_PRIOR_STRENGTH = 20.0
_EPS = 1e-9


def is_rate(signal: str) -> bool:
    return signal in RATE_SIGNALS


def counts_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A count column as float (NaN kept; negative values are data errors and become NaN)."""
    x = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return np.where(x < 0, np.nan, x)


def rate_parts(frame: pd.DataFrame, signal: str) -> Tuple[np.ndarray, np.ndarray]:
    num, den = RATE_SIGNALS[signal]
    k, n = counts_of(frame, num), counts_of(frame, den)
    # successes cannot exceed trials; clip rather than fail on an inconsistent row
    return np.minimum(k, n), n


def pooled_rate(frame: pd.DataFrame, signal: str) -> float:
    k, n = rate_parts(frame, signal)
    ok = np.isfinite(k) & np.isfinite(n)
    tk, tn = float(k[ok].sum()), float(n[ok].sum())
    return (tk + 0.5) / (tn + 1.0)


def smoothed_rate(k: np.ndarray, n: np.ndarray, prior: float, strength: float = RATE_PRIOR_STRENGTH) -> np.ndarray:
    """Empirical-Bayes shrunk rate: (k + s p0) / (n + s). NaN counts give the prior."""
    k = np.where(np.isfinite(k), k, 0.0)
    n = np.where(np.isfinite(n), n, 0.0)
    return (k + strength * prior) / (n + strength)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def transformed(frame: pd.DataFrame, signal: str, prior: Optional[float] = None) -> np.ndarray:
    """Variance-stabilised signal: log1p for counts/revenue, logit of the shrunk rate for rates."""
    if is_rate(signal):
        k, n = rate_parts(frame, signal)
        p0 = pooled_rate(frame, signal) if prior is None else prior
        out = logit(smoothed_rate(k, n, p0))
        # an hour with unknown counts stays unknown
        return np.where(np.isfinite(k) & np.isfinite(n), out, np.nan)
    return np.log1p(counts_of(frame, signal))


def observed(frame: pd.DataFrame, signal: str) -> np.ndarray:
    """The raw value of a signal (rates recomputed from counts; NaN where the denominator is 0)."""
    if is_rate(signal):
        k, n = rate_parts(frame, signal)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, k / n, np.nan)
    return counts_of(frame, signal)


def count_sd(mu: np.ndarray, unit: float, dispersion: float) -> np.ndarray:
    """Noise sd of a count around its expected value mu: variance unit*mu + dispersion*mu^2 (negative-
    binomial-like; mu floored at 0.5 so an hour expected to be empty still has Poisson-sized noise)."""
    mu = np.maximum(np.asarray(mu, dtype=float), 0.0)
    return np.sqrt(unit * np.maximum(mu, 0.5) + dispersion * mu**2)


def rate_z(k: np.ndarray, n: np.ndarray, p: np.ndarray, dispersion: float, continuity: bool = True) -> np.ndarray:
    """z of k successes in n trials against rate p with beta-binomial variance n p (1-p) (1 + (n-1) rho);
    0 where there were no trials."""
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    var = n * p * (1 - p) * (1.0 + np.maximum(n - 1.0, 0.0) * dispersion)
    miss = k - n * p
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (_continuity(miss) if continuity else miss) / np.sqrt(np.maximum(var, 1e-12))
    return np.where(np.isfinite(n) & (n == 0), 0.0, z)


def _solve_dispersion(z2_of, lo: float = 0.0, hi: float = 10.0) -> float:
    """Smallest dispersion d >= 0 with median(z2_of(d)) <= chi2(1) median (bisection, monotone)."""
    if not np.isfinite(np.nanmedian(z2_of(lo))) or np.nanmedian(z2_of(lo)) <= CHI2_1_MEDIAN:
        return lo
    if np.nanmedian(z2_of(hi)) > CHI2_1_MEDIAN:
        return hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if np.nanmedian(z2_of(mid)) > CHI2_1_MEDIAN:
            lo = mid
        else:
            hi = mid
    return hi


@dataclass
class DeviationScale:
    """Count-aware standardisation of one signal's deviations from an expected value.

    For counts/revenue `expected` is the expected value on the original scale (mu); for rates the
    expected rate p. `z(frame, expected)` returns (observed - expected) / noise sd, NaN where unknown
    and 0 for a rate with no trials.
    """

    signal: str
    unit: float = 1.0
    dispersion: float = 0.0

    @classmethod
    def fit(cls, signal: str, history: pd.DataFrame, expected: np.ndarray) -> "DeviationScale":
        unit = 1.0
        if signal == "revenue":
            p = counts_of(history, "purchases")
            r = counts_of(history, "revenue")
            ok = np.isfinite(p) & np.isfinite(r)
            aov = float(r[ok].sum()) / float(p[ok].sum()) if p[ok].sum() > 0 else 1.0
            unit = 2.0 * aov if np.isfinite(aov) and aov > 0 else 1.0
        scale = cls(signal=signal, unit=unit)
        # only hours with something going on tell us about the noise; all-zero hours are uninformative
        active = cls._active(signal, history, expected)
        if active.sum() < 10:
            return scale
        scale.dispersion = _solve_dispersion(lambda d: scale._z2(history, expected, d)[active])
        return scale

    @staticmethod
    def _active(signal: str, frame: pd.DataFrame, expected: np.ndarray) -> np.ndarray:
        if is_rate(signal):
            _, n = rate_parts(frame, signal)
            return np.isfinite(n) & (n > 0)
        y = counts_of(frame, signal)
        return np.isfinite(y) & ((y > 0) | (np.asarray(expected) > 0.5))

    def _z2(self, frame: pd.DataFrame, expected: np.ndarray, d: float) -> np.ndarray:
        return self.z(frame, expected, d) ** 2

    def sd(self, expected: np.ndarray, trials: Optional[np.ndarray] = None, d: Optional[float] = None) -> np.ndarray:
        """Noise sd of the signal around `expected` (for rates: of the rate, given `trials`)."""
        d = self.dispersion if d is None else d
        e = np.asarray(expected, dtype=float)
        if is_rate(self.signal):
            n = np.maximum(np.where(np.isfinite(trials), trials, 0.0), 1.0)
            p = np.clip(e, 1e-6, 1 - 1e-6)
            return np.sqrt(p * (1 - p) * (1.0 + (n - 1.0) * d) / n)
        return count_sd(e, self.unit, d)

    def sensitivity(self, frame: pd.DataFrame, expected: np.ndarray) -> np.ndarray:
        """d z / d delta for a relative change delta of the signal (z moves by about delta times this):
        how much evidence an hour carries about a multiplicative shift (0 where nothing happens)."""
        e = np.asarray(expected, dtype=float)
        if is_rate(self.signal):
            _, n = rate_parts(frame, self.signal)
            n = np.where(np.isfinite(n), n, 0.0)
            p = np.clip(e, 1e-6, 1 - 1e-6)
            var = n * p * (1 - p) * (1.0 + np.maximum(n - 1.0, 0.0) * self.dispersion)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.where(n > 0, n * p / np.sqrt(var), 0.0)
            return np.where(np.isfinite(out), out, 0.0)
        mu = np.maximum(np.where(np.isfinite(e), e, 0.0), 0.0)
        return mu / self.sd(mu)

    def z(self, frame: pd.DataFrame, expected: np.ndarray, d: Optional[float] = None) -> np.ndarray:
        d = self.dispersion if d is None else d
        e = np.asarray(expected, dtype=float)
        if is_rate(self.signal):
            k, n = rate_parts(frame, self.signal)
            return rate_z(k, n, e, d)
        y = counts_of(frame, self.signal)
        miss = y - np.maximum(e, 0.0)
        if self.signal != "revenue":  # revenue is not a count
            miss = _continuity(miss)
        return miss / self.sd(e, d=d)


def _continuity(miss: np.ndarray) -> np.ndarray:
    """Yates-style continuity correction: a count cannot miss by less than a whole unit, so the first
    half unit is no evidence (1 purchase where 0.1 were expected is not a 3-sigma event)."""
    return np.sign(miss) * np.maximum(np.abs(miss) - 0.5, 0.0)


def hour_features(frame: pd.DataFrame) -> Dict[str, np.ndarray]:
    """Hour of day and day of week (0 = Monday) in UTC: the series' own columns when it has them (the
    job adds them, computed the same way), else from window_start (a to_datetime per call adds up)."""
    if "hour_of_day" in frame and "day_of_week" in frame:
        hod = frame["hour_of_day"].to_numpy(dtype=np.int64)
        dow = frame["day_of_week"].to_numpy(dtype=np.int64)
    else:
        ts = pd.to_datetime(frame["window_start"])
        hod = ts.dt.hour.to_numpy()
        dow = ts.dt.dayofweek.to_numpy()
    return {"hour_of_day": hod, "day_of_week": dow, "hour_of_week": dow * 24 + hod}


def is_constant(values: np.ndarray) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return v.size == 0 or float(np.ptp(v)) < _EPS
