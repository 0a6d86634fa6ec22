"""Robust seasonal, count-aware baseline: the cheap detector every run has.

Expected values come from the brand's own past only:
  * counts (views, carts, purchases, revenue in "purchase units"): hour-of-day profile from the last
    `profile_days` times a day-of-week factor from the whole history (together an hour-of-week model with
    far fewer parameters than 168 free cells), re-levelled to the last `level_days`. Past outliers are
    clipped before averaging so last month's outage does not lower this month's expectation.
  * funnel rates: pooled successes / trials per hour of day, shrunk towards the brand's overall rate.

Deviations are standardised with the noise that volume implies: counts by a negative-binomial-like
variance `a*mu + phi*mu^2`, rates by a beta-binomial variance `n p (1-p) (1 + (n-1) rho)`; the
dispersion parameters are fitted on history. So 0 purchases out of 5 views scores ~0, 0 out of 5,000
scores enormous: counts carry the information that rates hide.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from advanced_anomaly_detection.config import BaselineConfig, VolumeGateConfig
from advanced_anomaly_detection.detectors import _funnel_signals as fs
from advanced_anomaly_detection.detectors.base import Detector, reference_calibrator
from advanced_anomaly_detection.schema import RATE_SIGNALS

COUNT_SIGNALS = ("views", "carts", "purchases", "revenue")


def _winsorised_mean(values: np.ndarray, k: float) -> float:
    """Mean after clipping points beyond k robust sigmas (on a sqrt scale, which suits counts)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0
    s = np.sqrt(np.maximum(v, 0.0))
    med = np.median(s)
    mad = 1.4826 * np.median(np.abs(s - med))
    if mad > 0:
        s = np.clip(s, med - k * mad, med + k * mad)
    # sqrt-scale clipping, back on the original scale; E[x] ~ mean(s)^2 + var(s)
    return float(np.mean(s**2))


class BaselineDetector(Detector):
    name = "baseline"

    def __init__(self, cfg: BaselineConfig | None = None, volume: VolumeGateConfig | None = None):
        self.cfg = cfg or BaselineConfig()
        self.volume = volume or VolumeGateConfig()

    # ---------------------------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        cfg = self.cfg
        hist = history.sort_values("window_start")
        ts = pd.to_datetime(hist["window_start"])
        recent_mask = ts >= ts.iloc[-1] - pd.Timedelta(days=cfg.profile_days)
        recent = hist.loc[recent_mask]
        # Revenue is modelled in units of the brand's average order value (count-like scale).
        purchases_sum = float(hist["purchases"].sum())
        self.unit_price_ = float(hist["revenue"].sum()) / purchases_sum if purchases_sum > 0 else 1.0
        if not np.isfinite(self.unit_price_) or self.unit_price_ <= 0:
            self.unit_price_ = 1.0

        counts = {s: self._count_values(hist, s) for s in COUNT_SIGNALS}
        self.hod_profile_: Dict[str, np.ndarray] = {}
        self.dow_factor_: Dict[str, np.ndarray] = {}
        self.level_: Dict[str, float] = {}
        for s in COUNT_SIGNALS:
            self.hod_profile_[s], self.dow_factor_[s] = self._seasonal_profile(hist, counts[s], recent_mask)
            self.level_[s] = 1.0
            expected_hist = self._expected_counts(hist, s)
            tail = ts >= ts.iloc[-1] - pd.Timedelta(days=cfg.level_days)
            exp_sum = float(expected_hist[tail.to_numpy()].sum())
            obs_sum = float(np.nansum(counts[s][tail.to_numpy()]))
            # Re-level to the recent trend, shrunk towards 1 when the recent volume is small.
            if exp_sum > 0:
                self.level_[s] = (obs_sum + 10.0) / (exp_sum + 10.0)

        self.rate_profile_: Dict[str, np.ndarray] = {}
        for rate, (num, den) in RATE_SIGNALS.items():
            k = recent[num].to_numpy(dtype=float)
            n = recent[den].to_numpy(dtype=float)
            hod = recent["hour_of_day"].to_numpy()
            p_all = (np.nansum(k) + 0.5) / (np.nansum(n) + 1.0)
            prior = 200.0  # pseudo-trials: hours with little data lean on the brand's overall rate
            profile = np.empty(24)
            for h in range(24):
                m = hod == h
                profile[h] = (np.nansum(k[m]) + prior * p_all) / (np.nansum(n[m]) + prior)
            self.rate_profile_[rate] = np.clip(profile, 1e-6, 1 - 1e-6)

        # Dispersion, fitted on the recent history with the model just built.
        self.count_dispersion_: Dict[str, Tuple[float, float]] = {}
        for s in COUNT_SIGNALS:
            mu = self._expected_counts(recent, s)
            self.count_dispersion_[s] = self._fit_count_dispersion(self._count_values(recent, s), mu)
        self.rate_dispersion_: Dict[str, float] = {}
        for rate, (num, den) in RATE_SIGNALS.items():
            p = self.rate_profile_[rate][recent["hour_of_day"].to_numpy()]
            self.rate_dispersion_[rate] = self._fit_rate_dispersion(
                recent[num].to_numpy(dtype=float), recent[den].to_numpy(dtype=float), p
            )

    def _count_values(self, frame: pd.DataFrame, signal: str) -> np.ndarray:
        values = frame[signal].to_numpy(dtype=float)
        return values / self.unit_price_ if signal == "revenue" else values

    def _seasonal_profile(self, hist: pd.DataFrame, values: np.ndarray, recent_mask) -> Tuple[np.ndarray, np.ndarray]:
        k = self.cfg.winsor_sigma
        hod = hist["hour_of_day"].to_numpy()
        dow = hist["day_of_week"].to_numpy()
        rmask = np.asarray(recent_mask)
        # Day-of-week factor: each day's total relative to its surrounding week, robustly averaged.
        days = hist["window_start"].to_numpy().astype("datetime64[D]")
        daily = pd.Series(values).groupby(days).sum()
        weekly_mean = daily.rolling(7, center=True, min_periods=4).mean()
        ratio = (daily / weekly_mean.replace(0, np.nan)).to_numpy()
        day_dow = pd.DatetimeIndex(daily.index).dayofweek.to_numpy()
        dow_factor = np.ones(7)
        for d in range(7):
            r = ratio[(day_dow == d) & np.isfinite(ratio)]
            if r.size >= 2:
                # shrink towards 1 with few weeks of evidence
                dow_factor[d] = (np.median(r) * r.size + 1.0 * 2) / (r.size + 2)
        dow_factor *= 7.0 / dow_factor.sum()
        # Hour-of-day profile on the recent window, de-weekdayed.
        adj = values / dow_factor[dow]
        profile = np.array([_winsorised_mean(adj[rmask & (hod == h)], k) for h in range(24)])
        return profile, dow_factor

    def _expected_counts(self, frame: pd.DataFrame, signal: str) -> np.ndarray:
        hod = frame["hour_of_day"].to_numpy()
        dow = frame["day_of_week"].to_numpy()
        return self.hod_profile_[signal][hod] * self.dow_factor_[signal][dow] * self.level_.get(signal, 1.0)

    def _fit_count_dispersion(self, x: np.ndarray, mu: np.ndarray) -> Tuple[float, float]:
        """Fit var = a*mu + phi*mu^2 (a >= 1: never below Poisson) on binned squared residuals."""
        ok = np.isfinite(x) & np.isfinite(mu)
        x, mu = x[ok], mu[ok]
        if x.size < 24 or mu.max(initial=0) <= 0:
            return 1.0, 0.0
        r2 = (x - mu) ** 2
        r2 = np.minimum(r2, np.quantile(r2, 0.98))  # past anomalies must not inflate the noise
        bins = np.unique(np.quantile(mu, np.linspace(0, 1, 11)))
        idx = np.clip(np.searchsorted(bins, mu, side="right") - 1, 0, max(len(bins) - 2, 0))
        mb = np.array([mu[idx == i].mean() for i in np.unique(idx)])
        vb = np.array([r2[idx == i].mean() for i in np.unique(idx)])
        coef, _ = nnls(np.column_stack([mb, mb**2]), vb)
        return max(float(coef[0]), 1.0), float(coef[1])

    @staticmethod
    def _fit_rate_dispersion(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> float:
        ok = np.isfinite(k) & np.isfinite(n) & (n > 1)
        if ok.sum() < 24:
            return 0.0
        k, n, p = k[ok], n[ok], p[ok]
        npq = n * p * (1 - p)
        r2 = (k - n * p) ** 2
        r2 = np.minimum(r2, np.quantile(r2, 0.98))
        rho = (r2.sum() - npq.sum()) / max((npq * (n - 1)).sum(), 1e-12)
        return float(np.clip(rho, 0.0, 0.5))

    # ---------------------------------------------------------------------------------------------
    def signal_z(self, frame: pd.DataFrame) -> Tuple[pd.DataFrame, pd.DataFrame]:
        """Per-signal standardised deviations and expected values (both frames indexed like `frame`)."""
        z: Dict[str, np.ndarray] = {}
        expected: Dict[str, np.ndarray] = {}
        hod = frame["hour_of_day"].to_numpy()
        dow = frame["day_of_week"].to_numpy()
        gate = self.volume
        for s in COUNT_SIGNALS:
            mu = self.hod_profile_[s][hod] * self.dow_factor_[s][dow] * self.level_.get(s, 1.0)
            x = self._count_values(frame, s)
            a, phi = self.count_dispersion_[s]
            zs = (x - mu) / fs.count_sd(mu, a, phi)
            # Below the volume gate a count signal cannot flag (its deviation is shrunk to |z| <= 1).
            zs = np.where(mu < gate.min_expected_count, np.clip(zs, -1.0, 1.0), zs)
            z[s] = np.nan_to_num(zs, nan=0.0)
            expected[s] = mu * self.unit_price_ if s == "revenue" else mu
        for rate, (num, den) in RATE_SIGNALS.items():
            p = self.rate_profile_[rate][hod]
            k = frame[num].to_numpy(dtype=float)
            n = frame[den].to_numpy(dtype=float)
            zs = fs.rate_z(k, n, p, self.rate_dispersion_[rate], continuity=False)
            # Rates on little traffic are noise, whatever the binomial says.
            zs = np.where(expected["views"] < gate.min_expected_views_for_rates, np.clip(zs, -1.0, 1.0), zs)
            z[rate] = np.nan_to_num(zs, nan=0.0)
            expected[rate] = p
        return pd.DataFrame(z, index=frame.index), pd.DataFrame(expected, index=frame.index)

    def _recent(self, history: pd.DataFrame) -> pd.DataFrame:
        ts = pd.to_datetime(history["window_start"])
        return history.loc[ts >= ts.iloc[-1] - pd.Timedelta(days=self.cfg.profile_days)]

    def _fit_calibration(self, history: pd.DataFrame) -> None:
        # Residuals of neighbouring hours are correlated (a slow day is slow all day), so a k-hour sum
        # of z is wider than sqrt(k): each window's sums are scaled by their own robust spread on
        # history. Then one calibrator per signal and window: revenue's heavy tail must not discount
        # a clean purchases signal.
        z = self.signal_z(self._recent(history))[0]
        self.window_scale_ = {}
        sums = self._window_sums(z)
        for key, col in sums.items():
            v = col.to_numpy()[key[1] - 1:]
            mad = 1.4826 * np.median(np.abs(v - np.median(v))) if v.size else 0.0
            self.window_scale_[key] = max(mad, 0.5 * np.sqrt(key[1]))
        self.signal_calibrators_ = {
            key: reference_calibrator((col.to_numpy() / self.window_scale_[key]) ** 2, self.untrusted_history, 2.0)
            for key, col in sums.items()
        }
        # The last hours of history give the trailing windows of the first scored hours their context.
        self.context_ = history.tail(max(self.cfg.windows_hours) - 1)

    def _watched(self, z: pd.DataFrame) -> List[str]:
        return [s for s in self.cfg.signals if s in z.columns]

    def _window_sums(self, z: pd.DataFrame) -> Dict[Tuple[str, int], pd.Series]:
        """Trailing sums of each watched signal's z over each configured window."""
        out = {}
        for s in self._watched(z):
            for k in self.cfg.windows_hours:
                out[(s, k)] = z[s] if k == 1 else z[s].rolling(k, min_periods=k).sum().fillna(0.0)
        return out

    def _windowed_z(self, z: pd.DataFrame) -> Dict[Tuple[str, int], pd.Series]:
        """Window sums standardised by their spread on history."""
        return {key: col / self.window_scale_[key] for key, col in self._window_sums(z).items()}

    def _with_context(self, frame: pd.DataFrame) -> pd.DataFrame:
        ctx = getattr(self, "context_", None)
        if ctx is None or ctx.empty or frame.empty:
            return frame
        follows = pd.Timestamp(ctx["window_start"].iloc[-1]) + pd.Timedelta(hours=1) == pd.Timestamp(
            frame["window_start"].iloc[0]
        )
        return pd.concat([ctx, frame]) if follows else frame

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        full = self._with_context(frame)
        n_ctx = len(full) - len(frame)
        z_full, expected_full = self.signal_z(full)
        zw = {key: col.to_numpy()[n_ctx:] for key, col in self._windowed_z(z_full).items()}
        expected = expected_full.iloc[n_ctx:]
        out = pd.DataFrame(index=frame.index)
        if not zw or not len(frame):
            for col, value in (("raw_score", np.nan), ("signal", None), ("direction", np.nan), ("expected", np.nan)):
                out[col] = value
            return out
        keys = list(zw)
        # Tail probability of each signal-window's squared z against its own history.
        tail_p = np.column_stack([1.0 - self.signal_calibrators_[key].transform(zw[key] ** 2) for key in keys])
        tail_p = np.maximum(tail_p, 1e-300)
        best = np.argmin(tail_p, axis=1)
        rows = np.arange(len(frame))
        # Bonferroni over every signal-window tested keeps multiple-testing false alarms in check.
        combined_p = np.minimum(1.0, tail_p[rows, best] * len(keys))
        out["raw_score"] = -np.log10(combined_p)
        best_signal = np.array([keys[i][0] for i in best], dtype=object)
        out["signal"] = best_signal
        out["direction"] = np.sign(np.column_stack([zw[key] for key in keys])[rows, best])
        col_idx = {c: i for i, c in enumerate(expected.columns)}
        out["expected"] = expected.to_numpy()[rows, [col_idx[s] for s in best_signal]]
        return out

    def _calibrate(self, raw: pd.DataFrame) -> np.ndarray:
        return 1.0 - 10.0 ** (-raw["raw_score"].to_numpy(dtype=float))

    def contributing_factors(self, frame: pd.DataFrame, rows: np.ndarray, min_abs_z: float = 3.0) -> List[List[str]]:
        """For each selected row: the signals that moved (|z| >= min_abs_z), strongest first."""
        z, expected = self.signal_z(frame)
        zv, ev = z.to_numpy(), expected.to_numpy()
        actual = frame[list(z.columns)].to_numpy(dtype=float)
        names = list(z.columns)
        out: List[List[str]] = [[] for _ in range(len(frame))]
        for i in np.flatnonzero(rows):
            order = np.argsort(-np.abs(zv[i]))
            items = []
            for j in order:
                if abs(zv[i, j]) < min_abs_z:
                    break
                pct = (actual[i, j] - ev[i, j]) / ev[i, j] * 100 if ev[i, j] else float("nan")
                items.append(f"{names[j]} {pct:+.0f}% vs expected (z={zv[i, j]:+.1f})")
            out[i] = items
        return out
