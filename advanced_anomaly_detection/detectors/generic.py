"""Detectors for a generic continuous metric series (not the funnel): same protocol, same calibration.

A generic frame has one row per step of a regular grid (see generic_series.py):
  ``timestamp`` (naive UTC), ``value`` (float, NaN where nothing was observed) and ``is_filled``
  (True where the grid point was missing or unusable in the input).
The funnel detectors read views/carts/... and an hourly grid; these read ``value`` at the series'
own cadence (cadence.py: a fixed step or a calendar period; the cycles it brings, or one detected
in the history by ``detect_cycle``) with the same methods:

* ``GenericBaselineDetector`` ("baseline"): robust seasonal profile (slot of the cycle x day of week,
  re-levelled to the recent median), robust residual scale, trailing-window evidence.
* ``GenericProphetDetector`` ("prophet"): Prophet on (ds, y); trend held at its last value.
* ``GenericIsolationForestDetector`` ("isolation_forest"): value, residual from the seasonal profile,
  step change, seasonal-naive deviation and seasonal position.
* ``GenericChangepointDetector`` ("changepoint"): KernelCPD (linear kernel = l2 cost, compiled PELT)
  on the deseasonalised z-series; breakpoint effect sizes decayed over the following points.

Non-negative values are modelled on log1p, a square root or as they are, as fast as their noise grows
with their level (ValueTransform); values that go negative as they are.
Filled (unobserved) points never get a score: raw_score is NaN there. Where a detector needs a
complete signal (lags, segmentation), unobserved points take the seasonal expectation (z = 0).
All scores go through the base class: TailCalibrator against the detector's own history scores.
"""
from __future__ import annotations

import logging
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.cadence import Cadence, step_name
from advanced_anomaly_detection.detectors.base import CONSTANT_SERIES, OK, Detector, reference_calibrator

log = logging.getLogger(__name__)

DAY = pd.Timedelta(days=1)
CHANGEPOINT_MAX_CONTEXT = 2000
# Share of a generic history's scores that may be past anomalies: more than a funnel's (a few days or
# weeks of history, and an incident there is a larger share of it).
UNTRUSTED_REFERENCE = 0.05
# Per-phase noise scales: prior weight (in points) of the overall scale, and their allowed range
# relative to it.
PHASE_PRIOR_POINTS = 20
PHASE_SCALE_MIN, PHASE_SCALE_MAX = 0.33, 3.0
# detect_cycle: a cycle's autocorrelation must reach this, and rise this much above its dip.
CYCLE_MIN_ACF, CYCLE_MIN_PROMINENCE = 0.3, 0.3
MAX_DETECTED_CYCLE = 2000


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------
def as_cadence(freq) -> Cadence:
    """A Cadence, or one made from a plain step (pd.Timedelta or its text)."""
    if isinstance(freq, Cadence):
        return freq
    step = pd.Timedelta(freq)
    return Cadence(step_name(step), step)


def detect_cycle(y: np.ndarray, max_period: int) -> int:
    """Length in points of the dominant cycle of `y` (1: none), for cadences whose calendar gives none.

    The autocorrelation of the series (gaps interpolated, extremes clipped, linear trend removed) is
    searched for peaks between 2 and `max_period` lags that rise well above the lowest value before
    them (a cycle dips and comes back; a trend or a wandering level only decays) and reach 0.3; the
    shortest peak within 85% of the best is taken (a cycle's multiples are peaks too), moved to the
    top of its hump (within 10%), then refined on the peaks near its multiples up to half the series
    (one noisy peak can sit a few lags off, and a cycle a few points wrong drifts out of phase within a
    few cycles)."""
    x = pd.Series(np.asarray(y, dtype=float)).interpolate(limit_direction="both").to_numpy()
    n = len(x)
    max_period = min(int(max_period), n // 3)
    if max_period < 2 or not np.isfinite(x).all():
        return 1
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    if mad > 0:
        x = np.clip(x, med - 5 * mad, med + 5 * mad)
    t = np.arange(n)
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    if np.ptp(x) <= 1e-12:
        return 1
    f = np.fft.rfft(x - x.mean(), 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[: n // 2 + 2]
    acf = acf / acf[0] * n / (n - np.arange(len(acf)))  # unbiased: each lag over its own overlap
    lags = np.arange(2, max_period + 1)
    peak = (acf[lags] >= acf[lags - 1]) & (acf[lags] >= acf[lags + 1])
    dip = np.minimum.accumulate(acf[1:max_period + 1])[lags - 2]  # lowest value at lags 1 .. k-1
    good = lags[peak & (acf[lags] >= CYCLE_MIN_ACF) & (acf[lags] - dip >= CYCLE_MIN_PROMINENCE)]
    if good.size == 0:
        return 1
    best = acf[good].max()
    p0 = int(good[acf[good] >= 0.85 * best][0])
    near = np.arange(max(2, int(p0 * 0.9)), min(int(np.ceil(p0 * 1.1)), max_period) + 1)
    p0 = int(near[np.argmax(acf[near])])  # the top of its hump, not a noise wiggle on the way up
    peaks, multiples = [p0], [1]
    for k in range(2, (n // 2) // p0 + 1):
        lo, hi = max(k * p0 - k - 1, 2), min(k * p0 + k + 1, n // 2)  # +- about a lag per cycle
        if hi > lo:
            peaks.append(lo + int(np.argmax(acf[lo:hi + 1])))
            multiples.append(k)
    return max(int(round(sum(peaks) / sum(multiples))), 2)


# A history whose observed values all lie within this fraction of their size is constant. Against a
# constant history the baseline gives a value that differs this evidence (-log10 of its tail
# probability): with no spread at all, any move is as unlikely as the scores can say.
CONSTANT_TOLERANCE = 1e-12
CONSTANT_BREAK_EVIDENCE = 12.0


class ValueTransform:
    """The scale values are modelled on, decided on history: where the noise grows with the level (how
    fast, measured by mean_variance_slope) log1p for noise proportional to the level (prices, sales),
    a square root for noise growing as its square root (counts: requests, orders), the values as they
    are for noise that does not grow (temperatures, utilisation, anything with negative values).
    Where the level barely moves the slope cannot be told and log1p, the common case of business
    metrics, is kept."""

    def __init__(self, values: np.ndarray):
        values = np.asarray(values, dtype=float)
        v = values[np.isfinite(values)]
        self.kind_ = "identity"
        if v.size and v.min() >= 0:
            slope = mean_variance_slope(values)
            self.kind_ = "log" if slope is None or slope >= 0.75 else "sqrt" if slope >= 0.25 else "identity"

    def fwd(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self.kind_ == "log":
            return np.log1p(np.maximum(x, 0.0))
        return np.sqrt(np.maximum(x, 0.0)) if self.kind_ == "sqrt" else x

    def inv(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.kind_ == "log":
            return np.maximum(np.expm1(y), 0.0)
        return np.maximum(y, 0.0) ** 2 if self.kind_ == "sqrt" else y


def mean_variance_slope(values: np.ndarray, window: int = 16, bins: int = 10) -> Optional[float]:
    """How the noise grows with the level: the slope of log(noise sd) on log(level) over runs of
    `window` consecutive points (0: additive noise, 0.5: Poisson-like, 1: proportional; the exponent
    of a variance-stabilising power transform is one minus it). Noise is measured on first
    differences (MAD / sqrt 2), so a run's seasonal or trend movement does not count as noise; runs are
    binned by level and the slope fitted to the bins' medians, so a few incidents do not tilt it.
    None where it cannot be told: fewer than 8 usable runs, or levels spanning less than x1.5."""
    v = np.asarray(values, dtype=float)
    runs = v[: len(v) // window * window].reshape(-1, window)
    finite = np.isfinite(runs)
    level, sd = np.full(len(runs), np.nan), np.full(len(runs), np.nan)

    def noise_sd(d: np.ndarray, axis=None):
        return 1.4826 * np.median(np.abs(d - np.median(d, axis=axis, keepdims=True)), axis=axis) / np.sqrt(2.0)

    whole = finite.all(axis=1)  # most runs: all at once (this runs once per detector fit)
    level[whole] = np.median(runs[whole], axis=1)
    sd[whole] = noise_sd(np.diff(runs[whole], axis=1), axis=1)
    for i in np.flatnonzero(~whole & (finite.sum(axis=1) >= 0.75 * window)):  # with gaps: over what is there
        x = runs[i][finite[i]]
        level[i], sd[i] = np.median(x), noise_sd(np.diff(x))
    use = (level > 0) & (sd > 0)  # NaN (runs mostly missing) compares False
    if use.sum() < 8:
        return None
    lm, ls = np.log(level[use]), np.log(sd[use])
    groups = np.array_split(np.argsort(lm), min(bins, len(lm) // 4))
    bm = np.array([np.median(lm[g]) for g in groups])
    bs = np.array([np.median(ls[g]) for g in groups])
    if bm[-1] - bm[0] < np.log(1.5):
        return None
    return float(np.polyfit(bm, bs, 1)[0])


def _mad_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


class SeasonalProfile:
    """Robust seasonal expectation on the transformed scale: median per slot of the cycle (the day for
    intraday data, the year for monthly/quarterly data, a detected cycle otherwise; circularly
    smoothed) + day-of-week offset (when the week is a cycle and >= 2 weeks of history) + recent level;
    residual scale = MAD."""

    def __init__(self, cadence: Cadence):
        self.cadence = cadence

    def fit(self, ts: pd.Series, y: np.ndarray) -> "SeasonalProfile":
        cycle = self.cadence.calendar_cycle
        self.cycle_ = cycle if cycle is not None else detect_cycle(y, MAX_DETECTED_CYCLE)
        pos = self.cadence.phases(ts, self.cycle_)
        p, slot, dow = pos["p"], pos["slot"], pos["dow"]
        # a cycle of points (two weeks for daily data, 14 points without a cycle): long enough to be a
        # stable level, short enough that a lasting shift becomes the new normal within a cycle
        self.level_points = p if p > 1 else 14
        ok = np.isfinite(y)
        center = float(np.median(y[ok]))
        # Shapes are estimated around a centred rolling median of one cycle (a day for the slot-of-day
        # profile, a week for the day-of-week offsets), so a level that moved during the history
        # does not bend them; the level itself is the local level below.
        prof = np.zeros(p)
        if p > 1:
            shape = y - _centred_median(y, p)  # NaN where a long gap leaves too few points around
            has = np.isfinite(shape)
            for s in range(p):
                v = shape[has & (slot == s)]
                prof[s] = np.median(v) if v.size else np.nan
        if p >= 48:  # circular smoothing over about an hour of slots (5-minute data: 12 slots)
            k = max(int(round(p / 24)), 1) | 1
            padded = np.concatenate([prof[-k:], prof, prof[:k]])
            prof = pd.Series(padded).rolling(k, center=True, min_periods=1).median().to_numpy()[k:-k]
        prof = _fill_circular(prof)  # slots never seen (gappy sensors): from their neighbours
        self.slot_ = prof
        resid = y - prof[slot]
        span_days = (pd.to_datetime(ts).iloc[-1] - pd.to_datetime(ts).iloc[0]) / DAY
        dow_off = np.zeros(7)
        if pos["q"] == 7 and span_days >= 14:
            weekly = resid - _centred_median(resid, 7 * p)
            for w in range(7):
                v = weekly[np.isfinite(weekly) & (dow == w)]
                dow_off[w] = np.median(v) if v.size >= 2 else 0.0
        self.dow_ = dow_off
        resid = resid - dow_off[dow]
        # the last observed points, not the last grid points: a history may end in a long gap
        recent = resid[np.isfinite(resid)][-self.level_points:]
        self.level_ = float(np.median(recent)) if recent.size else 0.0
        # The noise scale is measured around the local level, not one level for the whole history:
        # after a level shift (or on a wandering series) the spread around a single level is the
        # shift's size, and every later spike would look small against it. How local: the window
        # (an hour of points .. a day; 3 .. 14 days for daily data) whose one-step-ahead misses are
        # smallest on this history: long for a steady series, short for one that wanders.
        candidates = sorted({max(3, p // 24), max(3, p // 8), max(3, p // 2), p} if p > 1 else {3, 7, 14})
        misses = {n: _mad_sd(resid - _trailing_median(resid, n)) for n in candidates}
        self.local_points_ = min(misses, key=lambda n: (misses[n], -n))
        resid = resid - self.local_level(resid, fallback=False)
        sd = _mad_sd(resid)
        finite = resid[np.isfinite(resid)]  # the local level leaves the first points of a run without one
        fallback = float(np.std(finite)) if finite.size > 1 else 0.0
        floor = 1e-6 * max(abs(center), 1.0)
        self.scale_ = max(sd if sd > 0 else fallback, floor)
        self.phase_scale_ = self._phase_scales(resid, *self._phase(pos))
        return self

    @staticmethod
    def _phase(pos: Dict[str, np.ndarray]) -> Tuple[np.ndarray, int]:
        """Phase of the cycle each point's noise scale belongs to: its slot; its weekday for daily data."""
        if pos["p"] > 1:
            return pos["slot"], pos["p"]
        return pos["dow"], pos["q"]

    def _phase_scales(self, resid: np.ndarray, phase: np.ndarray, n_phases: int) -> np.ndarray:
        """Noise scale per phase of the cycle (slot of day; weekday for daily data), on the transformed
        scale. Noise is rarely the same at every hour (additive noise on a log scale is widest in the
        trough; a business's busy hours are noisier in absolute terms), and one scale for all hours
        makes a spike at one phase look small and noise at another look large. Each phase's MAD pools
        its neighbours (about an hour of slots) and is shrunk towards the overall scale (weight of
        PHASE_PRIOR_POINTS points), within [PHASE_SCALE_MIN, PHASE_SCALE_MAX] times it."""
        ok = np.isfinite(resid)
        half = max(int(round(n_phases / 48)), 1) if n_phases > 7 else 0
        out = np.full(n_phases, self.scale_)
        for q in range(n_phases):
            near = (phase - q + half) % n_phases <= 2 * half
            v = resid[ok & near]
            if v.size:
                w = v.size / (v.size + PHASE_PRIOR_POINTS)
                mad = _mad_sd(v)
                out[q] = np.sqrt(w * mad**2 + (1 - w) * self.scale_**2)
        return np.clip(out, PHASE_SCALE_MIN * self.scale_, PHASE_SCALE_MAX * self.scale_)

    def local_level(self, resid: np.ndarray, fallback: bool = True) -> np.ndarray:
        """Median of the previous `local_points_` seasonal residuals (past points only). Where there
        are too few of them: the fitted level, or NaN without `fallback` (the first points of a
        history, whose level the fitted one, the most recent, does not describe)."""
        level = _trailing_median(resid, self.local_points_)
        return np.where(np.isfinite(level), level, self.level_ if fallback else np.nan)

    def at(self, ts: pd.Series, pos: Optional[Dict[str, np.ndarray]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Seasonal offset (slot of the cycle + day of week) and noise scale of each timestamp's phase of
        the cycle; `pos`: its phases (self.positions) when the caller has them already."""
        pos = self.positions(ts) if pos is None else pos
        seasonal = self.slot_[pos["slot"]] + self.dow_[pos["dow"]]
        return seasonal, self.phase_scale_[self._phase(pos)[0]]

    def positions(self, ts: pd.Series) -> Dict[str, np.ndarray]:
        return self.cadence.phases(ts, self.cycle_)

    def expected(self, ts: pd.Series) -> np.ndarray:
        return self.at(ts)[0] + self.level_

    def z(self, ts: pd.Series, y: np.ndarray) -> np.ndarray:
        seasonal, scale = self.at(ts)
        return (y - (seasonal + self.level_)) / scale


def _fill_circular(prof: np.ndarray) -> np.ndarray:
    """NaN slots of a cyclic profile interpolated linearly from the nearest known slots on either side
    (around the cycle); all NaN: zeros."""
    known = np.flatnonzero(np.isfinite(prof))
    if known.size == prof.size:
        return prof
    if known.size == 0:
        return np.zeros_like(prof)
    p = prof.size
    xs = np.concatenate([known - p, known, known + p])
    return np.interp(np.arange(p), xs, np.tile(prof[known], 3))


def _trailing_median(x: np.ndarray, n: int) -> np.ndarray:
    """Median of the previous n values (past only; NaN with fewer than n/3 of them)."""
    return pd.Series(x).shift(1).rolling(n, min_periods=max(n // 3, 1)).median().to_numpy()


def _centred_median(y: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median (NaN-aware, shorter at the ends)."""
    return pd.Series(y).rolling(window, center=True, min_periods=max(window // 2, 1)).median().to_numpy()


def _window_evidence(z: np.ndarray, windows: Sequence[int]) -> Dict[int, np.ndarray]:
    """Per window w: |median of the last w observed z| * sqrt(w) (w = 1: |z|); NaN where z is NaN.

    The median (not the mean) so that one extreme point does not make the next w-1 points look
    anomalous too, while a moderate shift lasting most of a window adds up."""
    ok = np.isfinite(z)
    out = {}
    for w in windows:
        if w <= 1:
            out[w] = np.abs(z)
        else:
            med = pd.Series(z).rolling(w, min_periods=max(w // 2 + 1, 1)).median().to_numpy()
            out[w] = np.where(ok, np.abs(med) * np.sqrt(w), np.nan)
    return out


class _GenericDetector(Detector):
    """Common settings: the series' step, the history a fit uses, and the rows a fit needs."""

    untrusted_history = UNTRUSTED_REFERENCE

    def __init__(self, freq, min_points: int = 48, history_points: int = 24 * 28):
        self.cadence = as_cadence(freq)  # a Cadence, or a plain step
        self.min_points = int(min_points)
        self.history_points = int(history_points)

    @property
    def min_history_hours(self) -> int:  # the base class's length check, in rows of this grid
        return self.min_points

    def _recent(self, history: pd.DataFrame) -> pd.DataFrame:
        return history.iloc[-self.history_points:].reset_index(drop=True)

    def _prepare(self, history: pd.DataFrame) -> Optional[pd.DataFrame]:
        hist = self._recent(history)
        self.transform_ = ValueTransform(hist["value"].to_numpy(dtype=float))
        y = self.transform_.fwd(hist["value"].to_numpy(dtype=float))
        obs = y[np.isfinite(y)]
        self.constant_ = None
        if obs.size < self.min_points // 2:
            self._fail(CONSTANT_SERIES, f"{obs.size} observed points, fewer than {self.min_points // 2}")
            return None
        if np.ptp(obs) <= CONSTANT_TOLERANCE * max(abs(obs).max(), 1.0):
            self.constant_ = float(np.median(obs))  # GenericBaselineDetector scores against it
            self._fail(CONSTANT_SERIES, "every observed value the same")
            return None
        self.profile_ = SeasonalProfile(self.cadence).fit(hist["timestamp"], y)
        return hist


# --------------------------------------------------------------------------------------------------
class GenericBaselineDetector(_GenericDetector):
    name = "baseline"

    def __init__(self, freq, min_points: int = 48, history_points: int = 24 * 28,
                 windows: Sequence[int] = (1, 3, 6)):
        super().__init__(freq, min_points, history_points)
        self.windows = tuple(windows)

    def _fit(self, history: pd.DataFrame) -> None:
        hist = self._prepare(history)
        if hist is None:
            if self.constant_ is not None:  # a stuck or steady metric: any other value is news
                self.status_, self.reason_ = OK, "constant history"
            return
        self.context_ = hist.iloc[-(max(self.windows) + self.profile_.level_points):].copy()
        # one calibrator per window, each against its own history (a wandering series makes long
        # windows heavy-tailed, a steady one does not), Bonferroni over the windows
        evidence = _window_evidence(self._local_z(hist, fallback=False)[0], self.windows)
        self.window_calibrators_ = {}
        for w, e in evidence.items():
            if np.isfinite(e).any():
                self.window_calibrators_[w] = reference_calibrator(e, self.untrusted_history)
        if not self.window_calibrators_:
            self._fail(CONSTANT_SERIES, "no observed points after the local level")

    def _fit_calibration(self, history: pd.DataFrame) -> None:
        pass  # the per-window calibrators are fitted in _fit

    def _calibrate(self, raw: pd.DataFrame) -> np.ndarray:
        return 1.0 - 10.0 ** (-raw["raw_score"].to_numpy(dtype=float))

    def _combined_evidence(self, z: np.ndarray) -> np.ndarray:
        """-log10 of the Bonferroni-combined tail probability over the windows (NaN where z is NaN)."""
        tails = [1.0 - self.window_calibrators_[w].transform(e) for w, e in _window_evidence(z, self.windows).items()
                 if w in self.window_calibrators_]
        p = np.fmin.reduce(tails) * len(tails)
        return np.where(np.isfinite(z), -np.log10(np.clip(p, 1e-300, 1.0)), np.nan)

    def _local_z(self, frame: pd.DataFrame, fallback: bool = True):
        """z against seasonal profile + local level (the median of the points just before), and the
        expectation on the transformed scale."""
        y = self.transform_.fwd(frame["value"].to_numpy(dtype=float))
        seasonal, scale = self.profile_.at(frame["timestamp"])
        expected = seasonal + self.profile_.local_level(y - seasonal, fallback)
        return (y - expected) / scale, expected

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.constant_ is not None:
            y = self.transform_.fwd(frame["value"].to_numpy(dtype=float))
            off = y - self.constant_
            moved = np.abs(off) > CONSTANT_TOLERANCE * max(abs(self.constant_), 1.0)
            raw = np.where(np.isfinite(y), np.where(moved, CONSTANT_BREAK_EVIDENCE, 0.0), np.nan)
            return pd.DataFrame({"raw_score": raw, "expected": self.transform_.inv(np.full(len(y), self.constant_)),
                                 "direction": np.sign(off)}, index=frame.index)
        both = pd.concat([self.context_, frame], ignore_index=True)
        z, expected = self._local_z(both)
        n = len(self.context_)
        raw = self._combined_evidence(z)[n:]
        return pd.DataFrame({"raw_score": raw, "expected": self.transform_.inv(expected[n:]), "direction": np.sign(z[n:])},
                            index=frame.index)


# --------------------------------------------------------------------------------------------------
class GenericProphetDetector(_GenericDetector):
    name = "prophet"

    def __init__(self, freq, min_points: int = 48, history_points: int = 24 * 28,
                 changepoint_prior_scale: float = 0.05, tol_rel_grad: Optional[float] = None):
        super().__init__(freq, min_points, history_points)
        self.changepoint_prior_scale = changepoint_prior_scale
        self.tol_rel_grad = tol_rel_grad

    def _fit(self, history: pd.DataFrame) -> None:
        from advanced_anomaly_detection.detectors.prophet_detector import _quiet_prophet_logs, fit_map

        _quiet_prophet_logs()
        from prophet import Prophet  # heavy; ImportError -> library_missing

        _quiet_prophet_logs()
        hist = self._prepare(history)
        if hist is None:
            return
        y = self.transform_.fwd(hist["value"].to_numpy(dtype=float))
        ds = pd.to_datetime(hist["timestamp"])
        span_days = (ds.iloc[-1] - ds.iloc[0]) / DAY
        c = self.cadence
        per_year = pd.Timedelta(days=365.25) / c.step
        yearly = span_days >= 730 and c.kind in ("calendar", "points") and 4 <= per_year <= 60
        model = Prophet(
            growth="linear",
            daily_seasonality=c.kind == "intraday",
            weekly_seasonality=c.weekly and span_days >= 14,
            yearly_seasonality=False,
            changepoint_prior_scale=self.changepoint_prior_scale,
            uncertainty_samples=0,
            mcmc_samples=0,
        )
        if yearly:  # Prophet's own has 10 Fourier terms: more than a year of months (12 points) can carry
            model.add_seasonality(name="yearly", period=365.25, fourier_order=_fourier_order(per_year))
        cycle = self.profile_.cycle_ if c.calendar_cycle is None else 1
        period_days = cycle * c.step / DAY
        if cycle > 1 and not (yearly and abs(period_days / 365.25 - 1) < 0.1):  # a cycle the data showed
            model.add_seasonality(name="cycle", period=period_days, fourier_order=_fourier_order(cycle))
        # Prophet skips NaN y (gaps)
        self.model_ = fit_map(model, pd.DataFrame({"ds": ds.to_numpy(), "y": y}), self.tol_rel_grad)
        yhat = self._yhat(hist)
        resid = y - yhat
        sd = _mad_sd(resid)
        self.scale_ = max(sd if sd > 0 else float(np.nanstd(resid)), 1e-9)
        self.history_raw_ = np.abs(resid) / self.scale_

    def _yhat(self, frame: pd.DataFrame) -> np.ndarray:
        ds = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"]).to_numpy())
        return self.model_.forecast(ds)["yhat"]

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        yhat = self._yhat(frame)
        z = (self.transform_.fwd(frame["value"].to_numpy(dtype=float)) - yhat) / self.scale_
        return pd.DataFrame(
            {"raw_score": np.abs(z), "expected": self.transform_.inv(yhat), "direction": np.sign(z)},
            index=frame.index,
        )


# --------------------------------------------------------------------------------------------------
class GenericIsolationForestDetector(_GenericDetector):
    name = "isolation_forest"

    def __init__(self, freq, min_points: int = 48, history_points: int = 24 * 28,
                 n_estimators: int = 100, max_samples: int = 256, random_state: int = 0):
        super().__init__(freq, min_points, history_points)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def _lags(self):
        """Seasonal lags in points: a cycle (and a week of them for intraday data); a week for daily data."""
        p, weekly = self.profile_.cycle_, self.cadence.weekly
        if p > 1:
            return (p, 7 * p) if weekly else (p,)
        return (7,) if weekly else ()

    def _fit(self, history: pd.DataFrame) -> None:
        from sklearn.ensemble import IsolationForest

        hist = self._prepare(history)
        if hist is None:
            return
        ctx = max(self._lags(), default=1)
        X = self._features(hist)
        obs = np.isfinite(hist["value"].to_numpy(dtype=float))
        rows = obs & (np.arange(len(hist)) >= ctx) if (obs[ctx:].sum() >= self.min_points) else obs
        Xf = X[rows]
        with warnings.catch_warnings():  # a lag longer than the history is an all-NaN column
            warnings.simplefilter("ignore", RuntimeWarning)
            center = np.nanmedian(Xf, axis=0)
            q75, q25 = np.nanpercentile(Xf, [75, 25], axis=0)
            std = np.nanstd(Xf, axis=0)
        spread = (q75 - q25) / 1.349
        spread = np.where(spread > 1e-9, spread, np.where(std > 1e-9, std, 1.0))
        self.center_ = np.where(np.isfinite(center), center, 0.0)
        self.spread_ = np.where(np.isfinite(spread), spread, 1.0)
        Z = self._standardise(Xf)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(Z)),
            random_state=self.random_state, n_jobs=1,
        ).fit(Z)
        self.history_raw_ = -self.forest_.score_samples(Z)
        self.context_ = hist.iloc[-ctx:].copy()

    def _features(self, frame: pd.DataFrame) -> np.ndarray:
        y = self.transform_.fwd(frame["value"].to_numpy(dtype=float))
        pos = self.profile_.positions(frame["timestamp"])
        seasonal, scale = self.profile_.at(frame["timestamp"], pos)
        e = seasonal + self.profile_.level_
        resid = (y - e) / scale
        yc = np.where(np.isfinite(y), y, e)  # unobserved points take the seasonal expectation
        cols = [y, resid, np.diff(yc, prepend=np.nan) / self.profile_.scale_]
        for lag in self._lags():
            prev = np.full(len(yc), np.nan)
            if lag < len(yc):
                prev[lag:] = yc[:-lag]
            cols.append((y - prev) / self.profile_.scale_)
        for key, period in (("slot", pos["p"]), ("dow", pos["q"])):
            if period > 1:
                ang = 2 * np.pi * pos[key] / period
                cols += [np.sin(ang), np.cos(ang)]
        return np.column_stack(cols).astype(float)

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.center_) / self.spread_
        return np.clip(np.where(np.isfinite(Z), Z, 0.0), -50.0, 50.0)

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        both = pd.concat([self.context_, frame], ignore_index=True)
        X = self._features(both)[len(self.context_):]
        raw = -self.forest_.score_samples(self._standardise(X))
        obs = np.isfinite(frame["value"].to_numpy(dtype=float))
        y = self.transform_.fwd(frame["value"].to_numpy(dtype=float))
        e = self.profile_.expected(frame["timestamp"])
        return pd.DataFrame(
            {"raw_score": np.where(obs, raw, np.nan), "expected": self.transform_.inv(e), "direction": np.sign(y - e)},
            index=frame.index,
        )


# --------------------------------------------------------------------------------------------------
class GenericChangepointDetector(_GenericDetector):
    name = "changepoint"

    def __init__(self, freq, min_points: int = 48, history_points: int = 24 * 28,
                 min_size: int = 6, penalty_factor: float = 3.0, decay_points: float = 6.0, jump: int = 1):
        super().__init__(freq, min_points, history_points)
        self.min_size = min_size
        self.penalty_factor = penalty_factor
        self.decay_points = decay_points
        self.jump = jump

    def _fit(self, history: pd.DataFrame) -> None:
        import ruptures  # noqa: F401  (ImportError -> library_missing)

        hist = self._prepare(history)
        if hist is None:
            return
        z = self._z(hist)[-CHANGEPOINT_MAX_CONTEXT:]  # PELT cost grows faster than linearly
        self.sd_ = _diff_sd(z)
        self.context_z_ = z
        self.history_raw_ = self._scores(z)[0]

    def _z(self, frame: pd.DataFrame) -> np.ndarray:
        y = self.transform_.fwd(frame["value"].to_numpy(dtype=float))
        z = self.profile_.z(frame["timestamp"], y)
        return np.where(np.isfinite(z), z, 0.0)  # gaps take the seasonal expectation

    def _scores(self, z: np.ndarray):
        import ruptures as rpt

        zf = z / getattr(self, "sd_", 1.0)
        n = len(zf)
        # points without a recent breakpoint: |mean of the last min_size points|, scaled to unit noise
        m = min(self.min_size, n)
        c = np.concatenate([[0.0], np.cumsum(zf)])
        idx = np.arange(n)
        lo = np.maximum(idx + 1 - m, 0)
        local = (c[idx + 1] - c[lo]) / (idx + 1 - lo)
        raw = np.abs(local)
        direction = np.sign(local)
        if n >= 2 * self.min_size:
            algo = rpt.KernelCPD(kernel="linear", min_size=self.min_size, jump=self.jump)
            bkps = algo.fit(zf.reshape(-1, 1)).predict(pen=self.penalty_factor * np.log(n))
            bkps = _refine(zf, bkps, self.min_size)
            starts = [0] + bkps[:-1]
            for i in range(1, len(starts)):
                a0, b, e = starts[i - 1], starts[i], bkps[i]
                before, after = zf[a0:b], zf[b:e]
                delta = after.mean() - before.mean()
                resid = np.concatenate([before - np.median(before), after - np.median(after)])
                sd = max(1.4826 * np.median(np.abs(resid)), 1.0)
                seg = idx[b:e]
                s_h = abs(delta) / sd * np.exp(-(seg - b) / self.decay_points)
                take = s_h >= raw[seg]
                raw[seg[take]] = s_h[take]
                direction[seg[take]] = np.sign(delta)
        return raw, direction

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        z = np.concatenate([self.context_z_, self._z(frame)])
        raw, direction = self._scores(z)
        m = len(frame)
        obs = np.isfinite(frame["value"].to_numpy(dtype=float))
        return pd.DataFrame(
            {"raw_score": np.where(obs, raw[-m:], np.nan), "direction": direction[-m:]}, index=frame.index
        )


def _fourier_order(points_per_cycle: float) -> int:
    """Fourier terms a cycle of this many points can carry (fewer than half its points), at most 10."""
    return max(1, min(10, int(points_per_cycle - 1) // 2))


def _refine(z: np.ndarray, bkps: List[int], min_size: int) -> List[int]:
    """Move each breakpoint (within min_size points) to the best mean-shift split of its two segments.
    The last segment may end up shorter than min_size: a shift in the last few points is placed where
    it begins, not min_size points before the end of the data."""
    c = np.concatenate([[0.0], np.cumsum(z)])
    n = len(z)
    out = list(bkps)
    for i in range(len(out) - 1):
        lo = out[i - 1] if i > 0 else 0
        hi = out[i + 1]
        last_side = 1 if hi == n else min_size
        cand = np.arange(max(lo + min_size, out[i] - min_size), min(hi - last_side, out[i] + min_size) + 1)
        if cand.size <= 1:
            continue
        gain = (c[cand] - c[lo]) ** 2 / (cand - lo) + (c[hi] - c[cand]) ** 2 / (hi - cand)
        out[i] = int(cand[int(np.argmax(gain))])
    return out


def _diff_sd(z: np.ndarray) -> float:
    """Noise sd from first differences (insensitive to level shifts), at least 1 (z is unit-scaled)."""
    d = np.diff(z)
    if d.size == 0:
        return 1.0
    sd = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    return max(sd, 1.0) if np.isfinite(sd) else 1.0


GENERIC_DETECTORS = {
    "baseline": GenericBaselineDetector,
    "prophet": GenericProphetDetector,
    "isolation_forest": GenericIsolationForestDetector,
    "changepoint": GenericChangepointDetector,
}
