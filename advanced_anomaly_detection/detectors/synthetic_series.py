"""Synthetic hourly brand series for tests and timing: realistic enough to fool a weak detector.

`make_series` builds one brand's complete hourly frame (the schema.py per-brand series columns):
views from a negative-binomial around a daily x weekly profile with day-to-day level noise and a slow
trend; carts and purchases as binomial thinning (funnel rates that vary a little by hour); revenue as
a gamma-distributed sum of order values. `plant` puts a known anomaly at a known position, keeping
the funnel consistent (rates recomputed from counts), and `split` cuts history / scored hours.
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.schema import FEATURE_SIGNALS, RATE_SIGNALS

PLANT_KINDS = (
    "level_shift",  # every count x factor from `at` for `hours` (None: to the end)
    "spike",  # views (and carts/purchases, same rates) x factor
    "views_drop",  # all counts x factor (traffic outage)
    "purchases_zero",  # purchases and revenue 0, views and carts untouched (checkout outage)
    "cart_rate_drop",  # carts thinned by factor, purchases follow (add-to-cart broken)
    "revenue_drop",  # revenue x factor only (price / currency bug)
    "flat_day",  # daily pattern broken: each day's views spread flat over its 24 hours
)


def _daily_profile(hour: np.ndarray) -> np.ndarray:
    # trough ~4h, peak ~20h; mean 1 over a day
    raw = np.exp(0.9 * np.cos(2 * np.pi * (hour - 20) / 24.0))
    return raw / np.exp(0.9 * np.cos(2 * np.pi * (np.arange(24) - 20) / 24.0)).mean()


def make_series(
    days: int = 97,
    start: str = "2024-01-01",
    brand: str = "brand_a",
    base_views: float = 300.0,
    seed: int = 0,
    view_to_cart: float = 0.08,
    cart_to_purchase: float = 0.3,
    price: float = 40.0,
    day_noise: float = 0.06,
    dispersion: float = 0.01,
    weekly_trend: float = 0.005,
    with_features: bool = True,
) -> pd.DataFrame:
    """One brand's hourly series of `days` days, all columns of the per-brand series frame."""
    rng = np.random.default_rng(seed)
    n = days * 24
    ts = pd.date_range(start, periods=n, freq="h")
    hour = ts.hour.to_numpy()
    dow = ts.dayofweek.to_numpy()
    day_idx = np.arange(n) // 24
    level = np.exp(rng.normal(0.0, day_noise, size=days))[day_idx]  # day-to-day level noise
    weekly = np.where(dow >= 5, 1.15, 1.0) * (1.0 + 0.03 * np.cos(2 * np.pi * dow / 7))
    trend = (1.0 + weekly_trend) ** (np.arange(n) / 168.0)
    mu = base_views * _daily_profile(hour) * weekly * level * trend
    lam = rng.gamma(1.0 / dispersion, mu * dispersion) if dispersion > 0 else mu
    views = rng.poisson(lam)
    p_cart = np.clip(view_to_cart * (1.0 + 0.15 * np.cos(2 * np.pi * (hour - 21) / 24.0)), 1e-4, 0.9)
    carts = rng.binomial(views, p_cart)
    purchases = rng.binomial(carts, np.clip(cart_to_purchase * level**0.5, 1e-4, 0.95))
    revenue = _revenue(rng, purchases, price)
    frame = pd.DataFrame(
        {
            "window_start": ts,
            "brand": brand,
            "views": views.astype("int64"),
            "carts": carts.astype("int64"),
            "purchases": purchases.astype("int64"),
            "revenue": revenue,
        }
    )
    return finish(frame, with_features=with_features)


def _revenue(rng: np.random.Generator, purchases: np.ndarray, price: float, shape: float = 2.0) -> np.ndarray:
    p = np.asarray(purchases)
    out = np.zeros(p.shape, dtype=float)
    pos = p > 0
    out[pos] = rng.gamma(shape * p[pos], price / shape)
    return np.round(out, 2)


def finish(frame: pd.DataFrame, with_features: bool = True) -> pd.DataFrame:
    """(Re)compute rates, time parts and (optionally) lag / rolling features from the counts."""
    out = frame.copy()
    for rate, (num, den) in RATE_SIGNALS.items():
        n = out[den].astype(float)
        out[rate] = np.where(n > 0, out[num].astype(float) / n.where(n > 0), np.nan)
    ts = pd.to_datetime(out["window_start"])
    out["hour_of_day"] = ts.dt.hour.astype("int32")
    out["day_of_week"] = ts.dt.dayofweek.astype("int32")
    out["is_weekend"] = out["day_of_week"] >= 5
    if "is_filled_hour" not in out:
        out["is_filled_hour"] = False
    if with_features:
        out = add_features(out)
    return out


def add_features(frame: pd.DataFrame, lags: Iterable[int] = (1, 24, 168), windows: Iterable[int] = (24, 168)) -> pd.DataFrame:
    """Lag and trailing rolling features (previous hours only; NaN until enough hours exist)."""
    out = frame.copy()
    for s in FEATURE_SIGNALS:
        x = out[s].astype(float)
        for h in lags:
            out[f"{s}_lag_{h}h"] = x.shift(h)
        prev = x.shift(1)
        for w in windows:
            out[f"{s}_roll_mean_{w}h"] = prev.rolling(w, min_periods=w).mean()
            out[f"{s}_roll_std_{w}h"] = prev.rolling(w, min_periods=w).std()
    return out


def plant(
    frame: pd.DataFrame,
    kind: str,
    at: int,
    hours: Optional[int] = 1,
    factor: float = 0.3,
    seed: int = 1,
) -> pd.DataFrame:
    """A copy of `frame` with anomaly `kind` on rows [at, at + hours) (positional; hours=None: to the end)."""
    if kind not in PLANT_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; known: {PLANT_KINDS}")
    rng = np.random.default_rng(seed)
    out = frame.copy()
    end = len(out) if hours is None else min(len(out), at + hours)
    rows = np.arange(at, end)
    c = {k: out[k].to_numpy(dtype=float).copy() for k in ("views", "carts", "purchases", "revenue")}

    def scale_all(f: float) -> None:
        for k in ("views", "carts", "purchases"):
            c[k][rows] = np.round(c[k][rows] * f)
        c["revenue"][rows] = c["revenue"][rows] * f

    if kind in ("level_shift", "spike", "views_drop"):
        scale_all(factor)
    elif kind == "purchases_zero":
        c["purchases"][rows] = 0
        c["revenue"][rows] = 0.0
    elif kind == "cart_rate_drop":
        new_carts = rng.binomial(c["carts"][rows].astype(int), factor)
        keep = np.where(c["carts"][rows] > 0, new_carts / np.maximum(c["carts"][rows], 1), 0)
        c["purchases"][rows] = rng.binomial(c["purchases"][rows].astype(int), keep)
        c["revenue"][rows] = c["revenue"][rows] * np.where(
            frame["purchases"].to_numpy()[rows] > 0, c["purchases"][rows] / np.maximum(frame["purchases"].to_numpy()[rows], 1), 0
        )
        c["carts"][rows] = new_carts
    elif kind == "revenue_drop":
        c["revenue"][rows] = c["revenue"][rows] * factor
    elif kind == "flat_day":
        day = (np.arange(len(out)) // 24)[rows]
        for d in np.unique(day):
            sel = rows[day == d]
            for k in ("views", "carts", "purchases"):
                c[k][sel] = np.round(c[k][sel].mean())
            c["revenue"][sel] = c["revenue"][sel].mean()
    for k in ("views", "carts", "purchases"):
        out[k] = np.maximum(c[k], 0).astype("int64")
    out["carts"] = np.minimum(out["carts"], out["views"])
    out["purchases"] = np.minimum(out["purchases"], out["carts"])
    out["revenue"] = np.round(np.maximum(c["revenue"], 0.0), 2)
    return finish(out, with_features=any(col.endswith("_lag_24h") for col in frame.columns))


def split(frame: pd.DataFrame, scored_hours: int = 24) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(history, scored): the last `scored_hours` rows are scored, everything before is history."""
    return frame.iloc[:-scored_hours], frame.iloc[-scored_hours:]


# Small LSTM settings for tests: short windows and few epochs so training takes seconds, not minutes.
SMALL_LSTM_SETTINGS = dict(
    window_hours=72, units=16, latent_dim=8, epochs=4, batch_size=32, windows_per_brand=100, learning_rate=0.01
)
_SMALL_LSTM = {}


def small_lstm_model(seed: int = 0):
    """(LSTMConfig, LSTMModel) trained on six clean synthetic brands of different volume; cached per
    process so several test modules share one training run."""
    if seed not in _SMALL_LSTM:
        from advanced_anomaly_detection.config import LSTMConfig
        from advanced_anomaly_detection.detectors.lstm import train_lstm

        cfg = LSTMConfig(**SMALL_LSTM_SETTINGS)
        volumes = (20, 50, 100, 300, 1000, 3000)
        histories = [make_series(days=40, seed=100 + i, base_views=v, brand=f"train_{i}") for i, v in enumerate(volumes)]
        _SMALL_LSTM[seed] = (cfg, train_lstm(histories, cfg, seed=seed))
    return _SMALL_LSTM[seed]
