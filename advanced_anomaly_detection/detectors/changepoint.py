"""PELT changepoint detector: sustained level shifts, reported on the hour they begin.

1. Deseasonalise: each watched signal gets a seasonal expectation from the last `history_days` of
   history (counts: hour-of-day median of log1p x day-of-week offset; rates: pooled rate per hour of
   day, shrunk to the brand's rate) and becomes a count-aware z-series around it (negative-binomial
   z for counts, beta-binomial z for rates; _funnel_signals.DeviationScale). Daily and weekly cycles
   are gone, so they cannot produce a changepoint every day.
2. Segment the multivariate z-series (history tail + scored hours) with ruptures: model "l2"/"rbf" use
   the compiled `KernelCPD` (linear kernel == l2 cost), "l1"/"normal" the pure-Python `Pelt` (slow).
   Penalty = penalty_factor * log(n) * sum of the signals' robust variances (BIC-like).
3. Score: each breakpoint's effect size is max over signals |mean after - mean before| / pooled
   robust sd of the two adjacent segments. An hour takes the effect of the latest breakpoint at or
   before it, decayed by exp(-hours since / decay_hours). So a shift inside the scored window scores
   on the hour it starts. Hours with no recent breakpoint take the local level instead (|mean z of
   the last min_size hours| / sd): continuous scores below any breakpoint, so calibration is not
   fooled by ties, and a fresh shift too short for a segment still moves the score.
Calibration reference: history segmented on its own and scored the same way, so the shifts history
had set the bar. `expected` is the pre-break level, re-seasonalised, for the signal that moved most.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.config import ChangepointConfig
from advanced_anomaly_detection.detectors import _funnel_signals as fs
from advanced_anomaly_detection.detectors.base import CONSTANT_SERIES, Detector


REFERENCE_SPAN = 3


class ChangepointDetector(Detector):
    name = "changepoint"
    min_history_hours = 24 * 7

    def __init__(self, cfg: ChangepointConfig | None = None, **settings):
        base = cfg.model_dump() if cfg is not None else {}
        self.cfg = ChangepointConfig(**{**base, **settings})

    # ---------------------------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        import ruptures  # noqa: F401  (fail early: ImportError -> library_missing)

        cfg = self.cfg
        ts = pd.to_datetime(history["window_start"])
        hist = history.loc[ts > ts.iloc[-1] - pd.Timedelta(days=cfg.history_days)].reset_index(drop=True)
        self.signals_ = [s for s in cfg.signals if not fs.is_constant(fs.transformed(hist, s))]
        if not self.signals_:
            self._fail(CONSTANT_SERIES, f"all of {list(cfg.signals)} constant on history")
            return
        self.profiles_: Dict[str, Dict[str, np.ndarray]] = {}
        self.scales_: Dict[str, fs.DeviationScale] = {}
        for s in self.signals_:
            self.profiles_[s] = _fit_profile(hist, s)
            self.scales_[s] = fs.DeviationScale.fit(s, hist, self._expected(hist, s))
        # Calibration reference: up to REFERENCE_SPAN x history_days of history, segmented on its own
        # and scored like the scored hours (more reference hours -> a 0.999 that means 1 in 1000).
        ref = history.loc[ts > ts.iloc[-1] - pd.Timedelta(days=REFERENCE_SPAN * cfg.history_days)]
        ref = ref.reset_index(drop=True)
        z_ref, s_ref = self._zmatrix(ref)
        self.sd_ = _robust_sd(z_ref[-len(hist):])
        self.context_z_ = z_ref[-len(hist):]
        self.context_s_ = s_ref[-len(hist):]
        self.context_ = hist
        raw, *_ = self._segment_scores(z_ref, s_ref, ref)
        self.history_raw_ = raw

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        fr = frame.reset_index(drop=True)
        z_new, s_new = self._zmatrix(fr)
        z = np.vstack([self.context_z_, z_new])
        sens = np.vstack([self.context_s_, s_new])
        both = pd.concat([self.context_, fr], ignore_index=True)
        raw, sig, direction, expected = self._segment_scores(z, sens, both)
        m = len(fr)
        return pd.DataFrame(
            {"raw_score": raw[-m:], "signal": sig[-m:], "direction": direction[-m:], "expected": expected[-m:]},
            index=frame.index,
        )

    # ---------------------------------------------------------------------------------------------
    def _expected(self, frame: pd.DataFrame, signal: str) -> np.ndarray:
        prof = self.profiles_[signal]
        t = fs.hour_features(frame)
        if fs.is_rate(signal):
            return prof["hod"][t["hour_of_day"]]
        return np.expm1(prof["hod"][t["hour_of_day"]] + prof["dow"][t["day_of_week"]])

    def _zmatrix(self, frame: pd.DataFrame) -> Tuple[np.ndarray, np.ndarray]:
        """(z, sensitivity) matrices, hours x signals: count-aware deviations from the seasonal
        expectation, and how far each hour's z moves per unit relative shift."""
        zs, ss = [], []
        for s in self.signals_:
            e = self._expected(frame, s)
            zs.append(self.scales_[s].z(frame, e))
            ss.append(self.scales_[s].sensitivity(frame, e))
        return np.column_stack(zs), np.column_stack(ss)

    def _breakpoints(self, signal: np.ndarray) -> List[int]:
        import ruptures as rpt

        cfg = self.cfg
        n, d = signal.shape
        if n < 2 * cfg.min_size:
            return [n]
        pen = cfg.penalty_factor * np.log(n) * d  # columns are already scaled to unit noise sd
        if cfg.model in ("l2", "rbf"):
            kernel = "linear" if cfg.model == "l2" else "rbf"
            algo = rpt.KernelCPD(kernel=kernel, min_size=cfg.min_size, jump=cfg.jump)
            if cfg.model == "rbf":
                pen = cfg.penalty_factor * np.log(n) / 10.0  # rbf cost per point is bounded by 1
        else:
            algo = rpt.Pelt(model=cfg.model, min_size=cfg.min_size, jump=cfg.jump)
        return [int(b) for b in algo.fit(signal).predict(pen=pen)]

    def _segment_scores(self, z: np.ndarray, sens: np.ndarray, frame: pd.DataFrame) -> Tuple[np.ndarray, ...]:
        """Per-hour raw score, signal, direction and expected for a z-matrix (rows = hours)."""
        cfg = self.cfg
        n, d = z.shape
        zf = np.where(np.isfinite(z), z, 0.0) / self.sd_
        sf = np.where(np.isfinite(z), sens, 0.0) / self.sd_
        bkps = _refine(zf, sf, self._breakpoints(zf), cfg.min_size)
        starts = [0] + bkps[:-1]
        raw = np.zeros(n)
        best = np.full(n, -1, dtype=int)
        direction = np.full(n, np.nan)
        pre_level = np.full(n, np.nan)  # pre-break mean z of the signal that moved (for expected)

        # hours without a recent breakpoint: the local level of the last min_size hours
        m = min(cfg.min_size, n)
        csum = np.vstack([np.zeros((1, d)), np.cumsum(zf, axis=0)])
        lo = np.maximum(np.arange(n) + 1 - m, 0)
        local = (csum[np.arange(n) + 1] - csum[lo]) / (np.arange(n) + 1 - lo)[:, None]
        raw = np.abs(local).max(axis=1)
        best = np.abs(local).argmax(axis=1)
        direction = np.sign(local[np.arange(n), best])
        pre_level[:] = 0.0

        hours = np.arange(n)
        for i in range(1, len(starts)):
            b, a0, e = starts[i], starts[i - 1], bkps[i]
            before, after = zf[a0:b], zf[b:e]
            delta = after.mean(axis=0) - before.mean(axis=0)
            resid = np.vstack([before - np.median(before, axis=0), after - np.median(after, axis=0)])
            sd = 1.4826 * np.median(np.abs(resid), axis=0)
            sd = np.maximum(sd, 1.0)  # a segment is never calmer than the count noise (sparse data: MAD ~ 0)
            effect = np.abs(delta) / sd
            j = int(np.argmax(effect))
            seg = hours[b:e]
            s_h = effect[j] * np.exp(-(seg - b) / cfg.decay_hours)
            take = s_h >= raw[seg]
            idx = seg[take]
            raw[idx] = s_h[take]
            best[idx] = j
            direction[idx] = np.sign(delta[j])
            pre_level[idx] = before[:, j].mean()

        signals = np.asarray(self.signals_, dtype=object)[best]
        expected = np.full(n, np.nan)
        for j, s in enumerate(self.signals_):
            rows = best == j
            if not rows.any():
                continue
            sub = frame.iloc[np.flatnonzero(rows)]
            e0 = self._expected(sub, s)
            trials = fs.rate_parts(sub, s)[1] if fs.is_rate(s) else None
            sd = self.scales_[s].sd(e0, trials)
            shifted = e0 + pre_level[rows] * self.sd_[j] * sd
            expected[rows] = np.clip(shifted, 0.0, 1.0) if fs.is_rate(s) else np.maximum(shifted, 0.0)
        return raw, signals, direction, expected


def _refine(z: np.ndarray, sens: np.ndarray, bkps: List[int], min_size: int) -> List[int]:
    """Move each breakpoint to where a multiplicative shift fits best (within 2 * min_size hours).

    In z-space a relative shift delta shows as z ~ delta * sens (sens grows with volume), a ramp rather
    than a step, so the l2 segmentation tends to place the break where volume picks up rather than
    where the shift began. Per candidate c between the neighbouring breakpoints, the gain of fitting
    z = delta * sens separately before and after c is sum over signals of
    (sum z*s)^2 / sum s^2 on each side; the best c wins.
    """
    if len(bkps) < 2:
        return bkps
    zs = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(z * sens, axis=0)])
    ss = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(sens * sens, axis=0)])
    out = list(bkps)
    reach = 2 * min_size
    for i in range(len(out) - 1):
        lo_seg = out[i - 1] if i > 0 else 0
        hi_seg = out[i + 1]
        b = out[i]
        cand = np.arange(max(lo_seg + min_size, b - reach), min(hi_seg - min_size, b + reach) + 1)
        if cand.size <= 1:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            pre = (zs[cand] - zs[lo_seg]) ** 2 / (ss[cand] - ss[lo_seg])
            post = (zs[hi_seg] - zs[cand]) ** 2 / (ss[hi_seg] - ss[cand])
        gain = np.where(np.isfinite(pre), pre, 0.0).sum(axis=1) + np.where(np.isfinite(post), post, 0.0).sum(axis=1)
        out[i] = int(cand[int(np.argmax(gain))])
    return out


def _fit_profile(hist: pd.DataFrame, signal: str) -> Dict[str, np.ndarray]:
    t = fs.hour_features(hist)
    hod, dow = t["hour_of_day"], t["day_of_week"]
    if fs.is_rate(signal):
        k, n = fs.rate_parts(hist, signal)
        ok = np.isfinite(k) & np.isfinite(n)
        p0 = fs.pooled_rate(hist, signal)
        ks = np.bincount(hod[ok], weights=k[ok], minlength=24)
        ns = np.bincount(hod[ok], weights=n[ok], minlength=24)
        return {"hod": fs.smoothed_rate(ks, ns, p0, strength=4 * fs.RATE_PRIOR_STRENGTH)}
    y = np.log1p(fs.counts_of(hist, signal))
    prof = np.zeros(24)
    for h in range(24):
        v = y[(hod == h) & np.isfinite(y)]
        prof[h] = np.median(v) if v.size else np.nan
    prof = np.where(np.isfinite(prof), prof, np.nanmedian(prof) if np.isfinite(prof).any() else 0.0)
    resid = y - prof[hod]
    off = np.zeros(7)
    for w in range(7):
        v = resid[(dow == w) & np.isfinite(resid)]
        off[w] = np.median(v) if v.size >= 12 else 0.0
    return {"hod": prof, "dow": off}


def _robust_sd(z: np.ndarray) -> np.ndarray:
    """Per-column noise sd from first differences (insensitive to level shifts), at least 1: the
    z-series are already scaled by their count noise, and on sparse counts (mostly 0 purchases) a
    MAD collapses and would turn every single purchase into a huge deviation."""
    zf = np.where(np.isfinite(z), z, 0.0)
    diff = np.diff(zf, axis=0)
    if diff.shape[0] == 0:
        return np.ones(z.shape[1])
    sd = 1.4826 * np.median(np.abs(diff - np.median(diff, axis=0)), axis=0) / np.sqrt(2.0)
    fallback = np.std(zf, axis=0)
    sd = np.where(sd > 1e-6, sd, np.where(fallback > 1e-6, fallback, 1.0))
    return np.maximum(sd, 1.0)
