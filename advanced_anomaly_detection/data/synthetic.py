"""Synthetic hourly funnel data per brand, with labelled anomalies planted where they are material.

One realism model serves both generators: this module's gold generator and the raw-event generator
in ``events.py`` (which expands the same hourly counts into REES46-like events).

The model, per brand ``b`` and UTC hour ``t``::

    expected[b, t] = daily_views[b] / 24 * hour_profile[b, local_hour(t)] * dow[b, local_weekday(t)]
                     * exp(trend[b] * day(t))
    views    ~ Poisson(expected * day_noise[b, day] * Gamma(k_b, 1/k_b))      (negative binomial)
    carts    ~ Binomial(views, p_view_cart[b] * hourly lognormal noise)
    purchases~ Binomial(carts, p_cart_purchase[b] * hourly lognormal noise)
    revenue  ~ Gamma(shape=purchases/cv^2, scale=mean_price*cv^2)  (sum of lognormal prices; 0 if 0)

Random streams are separate (brands / clean noise / anomalies / events / dirt), so generating with
``anomalies=False`` gives exactly the same counts outside the labelled hours as ``anomalies=True``:
anomalies are applied afterwards to the clean counts (thinning, additions, rescaling).
"""
from __future__ import annotations

import datetime as _dt
import inspect
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import pandas as pd

from advanced_anomaly_detection.schema import GOLD_COLUMNS

log = logging.getLogger(__name__)

DateLike = Union[str, _dt.date, _dt.datetime, pd.Timestamp, np.datetime64]

LABEL_COLUMNS = ("brand", "start", "end", "type", "category", "signal", "magnitude")

# kind -> category, primary signal, magnitude range, duration range in hours (None: to window end)
ANOMALY_KINDS: Dict[str, dict] = {
    "traffic_drop": dict(category="drop", signal="views", magnitude=(0.1, 0.5), hours=(2, 8)),
    "traffic_spike": dict(category="spike", signal="views", magnitude=(2.5, 6.0), hours=(1, 6)),
    "checkout_outage": dict(category="drop", signal="purchases", magnitude=(0.0, 0.2), hours=(2, 6)),
    "cart_drop": dict(category="drop", signal="view_to_cart_rate", magnitude=(0.2, 0.4), hours=(3, 8)),
    "revenue_spike": dict(category="spike", signal="revenue", magnitude=(3.0, 10.0), hours=(1, 4)),
    "level_shift": dict(category="changepoint", signal="views", magnitude=(0.4, 2.5), hours=(24, None)),
}
# Extra materiality for kinds whose primary signal is downstream of views: mean expected count per
# hour over the anomaly hours (a checkout outage at 0.3 expected purchases an hour is not an event).
# Material means "visible to anyone watching the shop": at 2 expected purchases an hour, two hours
# of zero purchases happen by chance about once a week (Poisson e^-4), so no detector could be asked
# to find them; at 5 an hour such a gap is a 1-in-20,000 event.
_KIND_MIN_EXPECTED = {
    "checkout_outage": ("purchases", 5.0),
    "revenue_spike": ("purchases", 2.0),
    "cart_drop": ("carts", 5.0),
}
# Anomalies of one brand start at least this many hours after the previous one ended (and never overlap).
MIN_GAP_HOURS = 48

# Typical e-commerce hour-of-day shape in shop-local time (trough ~04:00, peak ~20:00).
_HOUR_TEMPLATE = np.array(
    [0.45, 0.30, 0.20, 0.15, 0.13, 0.15, 0.22, 0.35, 0.50, 0.62, 0.70, 0.75,
     0.78, 0.78, 0.76, 0.75, 0.77, 0.80, 0.86, 0.93, 1.00, 0.98, 0.85, 0.65]
)

_STREAMS = {"brands": 0, "noise": 1, "anomalies": 2, "events": 3, "dirty": 4, "history_anomalies": 5}


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent, reproducible random stream per purpose (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_STREAMS[stream],)))


# --------------------------------------------------------------------------------------------------
# Brand catalogue
# --------------------------------------------------------------------------------------------------
_ONSETS = ["b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "tr", "st", "pl", "kr", "gr", "fl", "sh", "ch"]
_VOWELS = ["a", "e", "i", "o", "u", "ia", "eo", "ai", "ou"]
_CODAS = ["", "", "", "", "n", "r", "x", "s", "l", "m", "k", "ta", "na", "ro"]


def _brand_names(n: int, rng: np.random.Generator) -> List[str]:
    names: List[str] = []
    seen = set()
    while len(names) < n:
        syllables = int(rng.integers(2, 4))
        word = "".join(
            _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(syllables)
        ) + _CODAS[rng.integers(len(_CODAS))]
        if word in seen or word == "unknown":
            continue
        seen.add(word)
        names.append(word)
    return names


def make_brands(
    n_brands: int,
    seed: int = 0,
    log10_views_min: float = 0.7,
    log10_views_max: float = 5.3,
) -> pd.DataFrame:
    """A deterministic brand catalogue: one row per brand with the parameters of the hourly model.

    ``daily_views`` (weekday level) is log-uniform between 10**log10_views_min and 10**log10_views_max,
    stratified so that even a few brands span the whole range (a few views a day to thousands an hour).
    """
    if n_brands < 1:
        raise ValueError(f"n_brands must be >= 1, got {n_brands}")
    if not log10_views_max > log10_views_min:
        raise ValueError(f"log10_views_max ({log10_views_max}) must exceed log10_views_min ({log10_views_min})")
    rng = rng_for(seed, "brands")
    names = _brand_names(n_brands, rng)
    strata = (rng.permutation(n_brands) + rng.random(n_brands)) / n_brands
    log_views = log10_views_min + (log10_views_max - log10_views_min) * strata
    weekend_sign = np.where(rng.random(n_brands) < 0.5, -1.0, 1.0)
    return pd.DataFrame(
        {
            "brand": names,
            "daily_views": 10.0**log_views,
            "p_view_cart": rng.uniform(0.02, 0.08, n_brands),
            "p_cart_purchase": rng.uniform(0.20, 0.45, n_brands),
            "median_price": np.clip(np.exp(rng.normal(np.log(80.0), 1.0, n_brands)), 10.0, 600.0),
            "price_sigma": rng.uniform(0.2, 0.8, n_brands),
            # Negative-binomial shape k: hourly CV of the intensity between 5% and 20%.
            "dispersion": 10.0 ** rng.uniform(np.log10(25.0), np.log10(400.0), n_brands),
            "night_ratio": rng.uniform(0.10, 0.20, n_brands),
            "weekend_factor": 1.0 + weekend_sign * rng.uniform(0.10, 0.25, n_brands),
            "trend_per_day": rng.uniform(-0.002, 0.002, n_brands),
            "rate_noise": rng.uniform(0.05, 0.15, n_brands),
            "day_noise": rng.uniform(0.03, 0.08, n_brands),
        }
    )


def hour_profile(night_ratio: np.ndarray, tz_offset_hours: int = 3) -> np.ndarray:
    """(n_brands, 24) multipliers indexed by UTC hour, mean 1 over the day, min/max = night_ratio."""
    t = _HOUR_TEMPLATE
    shape = (t - t.min()) / (t.max() - t.min())
    night = np.asarray(night_ratio, dtype=float)[:, None]
    local = night + (1.0 - night) * shape[None, :]
    local = local / local.mean(axis=1, keepdims=True)
    # UTC hour h is local hour (h + offset) % 24.
    return local[:, (np.arange(24) + tz_offset_hours) % 24]


# --------------------------------------------------------------------------------------------------
# Hourly simulation
# --------------------------------------------------------------------------------------------------
@dataclass
class HourlySimulation:
    """Hourly counts on the complete (brand x hour) grid; arrays are (n_brands, n_hours)."""

    brands: pd.DataFrame
    hours: pd.DatetimeIndex  # tz-naive UTC hour starts
    expected: np.ndarray  # expected views without noise or anomalies
    views: np.ndarray
    carts: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    # Multiplier on purchase prices (price glitches); 1 elsewhere. Used by the event generator.
    price_factor: np.ndarray
    labels: pd.DataFrame
    window: Tuple[pd.Timestamp, pd.Timestamp] = field(default=None)  # anomaly window (inclusive hours)


def _timestamp(value: DateLike, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: cannot parse {value!r} as a date/time ({exc})") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _anomaly_window(
    hours: pd.DatetimeIndex, anomaly_start: Optional[DateLike], anomaly_end: Optional[DateLike]
) -> Tuple[int, int]:
    """Inclusive hour indices [i0, i1] of the anomaly window (default: the last 14 days)."""
    last = len(hours) - 1
    if anomaly_end is None:
        i1 = last
    else:
        end = _timestamp(anomaly_end, "anomaly_end")
        is_date = (isinstance(anomaly_end, _dt.date) and not isinstance(anomaly_end, _dt.datetime)) or (
            isinstance(anomaly_end, str) and ":" not in anomaly_end
        )
        if is_date:
            end = end + pd.Timedelta(hours=23)  # a date (no time part) means the whole day
        i1 = int(np.searchsorted(hours.values, end.floor("h").to_datetime64(), side="right")) - 1
    if anomaly_start is None:
        i0 = max(0, i1 + 1 - 14 * 24)
    else:
        start = _timestamp(anomaly_start, "anomaly_start").floor("h")
        i0 = int(np.searchsorted(hours.values, start.to_datetime64(), side="left"))
    i0, i1 = max(0, i0), min(last, i1)
    return i0, i1


def _revenue(rng: np.random.Generator, purchases: np.ndarray, mean_price: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """Sum of `purchases` lognormal prices, as a Gamma with the same mean and variance (0 -> 0)."""
    n = np.asarray(purchases, dtype=float)
    cv2 = np.broadcast_to(cv**2, n.shape)
    shape = n / cv2
    scale = np.broadcast_to(mean_price, n.shape) * cv2
    out = rng.gamma(np.where(n > 0, shape, 1.0), scale)
    return np.where(n > 0, np.round(np.maximum(out, 0.01), 2), 0.0)


def _expected_views(brands: pd.DataFrame, hours: pd.DatetimeIndex, tz_offset_hours: int) -> np.ndarray:
    n_hours = len(hours)
    utc_hour = hours.hour.values
    local = hours + pd.Timedelta(hours=tz_offset_hours)
    weekend = local.dayofweek.values >= 5
    day = ((hours - hours[0].normalize()) // pd.Timedelta(days=1)).values.astype(float)
    prof = hour_profile(brands["night_ratio"].values, tz_offset_hours)  # (B, 24)
    base = brands["daily_views"].values[:, None] / 24.0
    dow = np.where(weekend[None, :], brands["weekend_factor"].values[:, None], 1.0)
    trend = np.exp(brands["trend_per_day"].values[:, None] * day[None, :])
    out = base * prof[:, utc_hour] * dow * trend
    assert out.shape == (len(brands), n_hours)
    return out


def _noisy_prob(rng: np.random.Generator, p: np.ndarray, sigma: np.ndarray, shape) -> np.ndarray:
    z = rng.standard_normal(shape)
    return np.clip(p[:, None] * np.exp(sigma[:, None] * z - 0.5 * sigma[:, None] ** 2), 0.0, 0.95)


def _price_moments(brands: pd.DataFrame) -> Tuple[np.ndarray, np.ndarray]:
    s = brands["price_sigma"].values
    mean = brands["median_price"].values * np.exp(0.5 * s**2)
    cv = np.sqrt(np.expm1(s**2))
    return mean, cv


def simulate_hourly(
    brands: pd.DataFrame,
    start: DateLike,
    days: int,
    seed: int = 0,
    anomalies: bool = True,
    anomaly_start: Optional[DateLike] = None,
    anomaly_end: Optional[DateLike] = None,
    n_anomalies: Optional[int] = None,
    tz_offset_hours: int = 3,
    min_hourly_views: float = 20.0,
    history_anomaly_window: Optional[Tuple[DateLike, DateLike]] = None,
) -> HourlySimulation:
    """Simulate the complete brand x hour grid of counts, then plant anomalies (see module docstring).

    ``history_anomaly_window`` (start, end): also plant anomalies there, at the same rate, before the
    main window (real histories hold past incidents; a detector must not learn them as normal). Their
    labels come first. Transient kinds only: a level shift there would either be the new normal by
    the main window or snap back unlabelled; the main window's data and labels stay exactly as
    without them."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    start_ts = _timestamp(start, "start").normalize()
    hours = pd.date_range(start_ts, periods=days * 24, freq="h")
    n_b, n_h = len(brands), len(hours)
    expected = _expected_views(brands, hours, tz_offset_hours)

    rng = rng_for(seed, "noise")
    k = brands["dispersion"].values[:, None]
    day_idx = np.arange(n_h) // 24
    day_noise = np.exp(
        brands["day_noise"].values[:, None] * rng.standard_normal((n_b, days))
        - 0.5 * brands["day_noise"].values[:, None] ** 2
    )
    lam = expected * day_noise[:, day_idx] * rng.gamma(np.broadcast_to(k, (n_b, n_h)), 1.0 / k)
    views = rng.poisson(lam).astype(np.int64)
    p_vc = _noisy_prob(rng, brands["p_view_cart"].values, brands["rate_noise"].values, (n_b, n_h))
    carts = rng.binomial(views, p_vc).astype(np.int64)
    p_cp = _noisy_prob(rng, brands["p_cart_purchase"].values, brands["rate_noise"].values, (n_b, n_h))
    purchases = rng.binomial(carts, p_cp).astype(np.int64)
    mean_price, cv = _price_moments(brands)
    revenue = _revenue(rng, purchases, mean_price[:, None], cv[:, None])

    sim = HourlySimulation(
        brands=brands.reset_index(drop=True),
        hours=hours,
        expected=expected,
        views=views,
        carts=carts,
        purchases=purchases,
        revenue=revenue,
        price_factor=np.ones((n_b, n_h)),
        labels=_empty_labels(),
    )
    i0, i1 = _anomaly_window(hours, anomaly_start, anomaly_end)
    sim.window = (hours[i0], hours[i1]) if i1 >= i0 else (None, None)
    past = _empty_labels()
    if anomalies and history_anomaly_window is not None:
        h0, h1 = _anomaly_window(hours, *history_anomaly_window)
        if i1 >= i0:
            h1 = min(h1, i0 - MIN_GAP_HOURS - 1)
        if h1 >= h0:
            transient = [k for k in ANOMALY_KINDS if k != "level_shift"]
            _plant_anomalies(sim, rng_for(seed, "history_anomalies"), h0, h1, None, min_hourly_views, transient)
            past, sim.labels = sim.labels, _empty_labels()
    if anomalies and i1 >= i0:
        _plant_anomalies(sim, rng_for(seed, "anomalies"), i0, i1, n_anomalies, min_hourly_views)
    if len(past):
        sim.labels = pd.concat([past, sim.labels], ignore_index=True)
    return sim


# simulate_hourly's parameters after ``brands``; the generators take all of them under the same names.
_SIMULATION_PARAMS = tuple(inspect.signature(simulate_hourly).parameters)[1:]


def simulate_for_generator(
    args: Mapping[str, Any], log10_views: Optional[Tuple[float, float]] = None
) -> HourlySimulation:
    """The simulation behind :func:`generate_gold` and ``events.generate_events``.

    ``args`` are the generator's own arguments (its ``locals()``), so the simulation arguments are
    forwarded in one place instead of being restated per generator. Brands default to
    ``make_brands(n_brands, seed, *log10_views)`` (make_brands' own range when ``log10_views`` is None).
    """
    brands = args["brands"]
    if brands is None:
        brands = make_brands(args["n_brands"], args["seed"], *(log10_views or ()))
    return simulate_hourly(brands, **{name: args[name] for name in _SIMULATION_PARAMS})


def _empty_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand": pd.Series([], dtype=object),
            "start": pd.Series([], dtype="datetime64[ns]"),
            "end": pd.Series([], dtype="datetime64[ns]"),
            "type": pd.Series([], dtype=object),
            "category": pd.Series([], dtype=object),
            "signal": pd.Series([], dtype=object),
            "magnitude": pd.Series([], dtype=float),
        }
    )


def _plant_anomalies(
    sim: HourlySimulation,
    rng: np.random.Generator,
    i0: int,
    i1: int,
    n_anomalies: Optional[int],
    min_hourly_views: float,
    kinds: Optional[List[str]] = None,
) -> None:
    brands = sim.brands
    p_vc = brands["p_view_cart"].values
    p_cp = brands["p_cart_purchase"].values
    exp_w = sim.expected[:, i0 : i1 + 1]
    n_w = exp_w.shape[1]
    eligible = np.flatnonzero(exp_w.mean(axis=1) >= min_hourly_views)
    if n_anomalies is None:
        n_anomalies = int(round(len(eligible) / 3.0 * n_w / (14 * 24))) if len(eligible) else 0
        if len(eligible):
            n_anomalies = max(1, n_anomalies)
    if n_anomalies <= 0 or len(eligible) == 0:
        return
    kinds = list(kinds or ANOMALY_KINDS)
    occupied: Dict[int, List[Tuple[int, int]]] = {}
    order = rng.permutation(eligible)
    rows = []
    attempts, cursor = 0, 0
    while len(rows) < n_anomalies and attempts < 20 * n_anomalies:
        attempts += 1
        b = int(order[cursor % len(order)])
        cursor += 1
        kind = kinds[int(rng.integers(len(kinds)))]
        spec = ANOMALY_KINDS[kind]
        e_b = exp_w[b]
        cs = np.concatenate([[0.0], np.cumsum(e_b)])
        if kind == "level_shift":
            starts = np.arange(0, n_w - spec["hours"][0] + 1)
            durs = n_w - starts
        else:
            dur = int(rng.integers(spec["hours"][0], spec["hours"][1] + 1))
            starts = np.arange(0, max(0, n_w - dur + 1))
            durs = np.full(len(starts), dur)
        if len(starts) == 0:
            continue
        mean_views = (cs[starts + durs] - cs[starts]) / durs
        ok = (e_b[starts] >= e_b.mean()) & (mean_views >= min_hourly_views)
        if kind in _KIND_MIN_EXPECTED:
            what, minimum = _KIND_MIN_EXPECTED[kind]
            factor = p_vc[b] * (p_cp[b] if what == "purchases" else 1.0)
            ok &= mean_views * factor >= minimum
        for s_old, e_old in occupied.get(b, []):
            ok &= (starts > e_old + MIN_GAP_HOURS) | (starts + durs - 1 + MIN_GAP_HOURS < s_old)
        candidates = np.flatnonzero(ok)
        if len(candidates) == 0:
            continue
        j = int(candidates[rng.integers(len(candidates))])
        s, d = int(starts[j]), int(durs[j])
        lo, hi = spec["magnitude"]
        if kind == "level_shift":
            mag = rng.uniform(0.4, 0.6) if rng.random() < 0.5 else rng.uniform(1.7, 2.5)
        else:
            mag = rng.uniform(lo, hi)
        a, e = i0 + s, i0 + s + d - 1
        _apply(sim, rng, kind, b, a, e, float(mag))
        occupied.setdefault(b, []).append((s, s + d - 1))
        rows.append(
            dict(
                brand=brands["brand"].iat[b],
                start=sim.hours[a],
                end=sim.hours[e],
                type=kind,
                category=spec["category"],
                signal=spec["signal"],
                magnitude=round(float(mag), 4),
            )
        )
    if len(rows) < n_anomalies:
        log.warning("planted %d of %d anomalies (no more room on material brands)", len(rows), n_anomalies)
    labels = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
    sim.labels = labels.sort_values(["start", "brand"]).reset_index(drop=True)


def _apply(sim: HourlySimulation, rng: np.random.Generator, kind: str, b: int, a: int, e: int, mag: float) -> None:
    sl = (b, slice(a, e + 1))
    v, c, p, rev = sim.views[sl], sim.carts[sl], sim.purchases[sl], sim.revenue[sl]
    mean_price, cv = _price_moments(sim.brands.iloc[[b]])

    def thin_purchases(c_new: np.ndarray) -> np.ndarray:
        # Keep a uniformly random subset of carts; purchases are a subset of carts.
        return rng.hypergeometric(p, c - p, c_new)

    def rescale_revenue(p_new: np.ndarray) -> np.ndarray:
        return np.where(p > 0, np.round(rev * p_new / np.maximum(p, 1), 2), 0.0)

    if kind == "traffic_drop" or (kind == "level_shift" and mag < 1.0):
        v_new = rng.binomial(v, mag)
        c_new = rng.hypergeometric(c, v - c, v_new)
        p_new = thin_purchases(c_new)
        sim.views[sl], sim.carts[sl], sim.purchases[sl], sim.revenue[sl] = v_new, c_new, p_new, rescale_revenue(p_new)
    elif kind == "level_shift":
        extra_v = rng.poisson(sim.expected[sl] * (mag - 1.0))
        extra_c = rng.binomial(extra_v, sim.brands["p_view_cart"].iat[b])
        extra_p = rng.binomial(extra_c, sim.brands["p_cart_purchase"].iat[b])
        sim.views[sl] = v + extra_v
        sim.carts[sl] = c + extra_c
        sim.purchases[sl] = p + extra_p
        sim.revenue[sl] = np.round(rev + _revenue(rng, extra_p, mean_price[0], cv[0]), 2)
    elif kind == "traffic_spike":
        # Bot traffic: views only; carts and purchases stay at their normal level.
        sim.views[sl] = v + rng.poisson(sim.expected[sl] * (mag - 1.0))
    elif kind == "checkout_outage":
        p_new = rng.binomial(p, mag)
        sim.purchases[sl], sim.revenue[sl] = p_new, rescale_revenue(p_new)
    elif kind == "cart_drop":
        c_new = rng.binomial(c, mag)
        p_new = thin_purchases(c_new)
        sim.carts[sl], sim.purchases[sl], sim.revenue[sl] = c_new, p_new, rescale_revenue(p_new)
    elif kind == "revenue_spike":
        sim.revenue[sl] = np.round(rev * mag, 2)
        sim.price_factor[sl] = mag
    else:  # pragma: no cover - guarded by ANOMALY_KINDS
        raise ValueError(f"unknown anomaly kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# Gold table
# --------------------------------------------------------------------------------------------------
def to_gold(sim: HourlySimulation) -> pd.DataFrame:
    """Long gold table (schema.GOLD_COLUMNS) from a simulation; hours with no events have no row."""
    views, carts, purchases = sim.views.T.ravel(), sim.carts.T.ravel(), sim.purchases.T.ravel()
    revenue = sim.revenue.T.ravel()
    keep = np.flatnonzero((views + carts + purchases) > 0)
    n_b = len(sim.brands)
    h_idx, b_idx = keep // n_b, keep % n_b
    v, c, p = views[keep], carts[keep], purchases[keep]
    ws = sim.hours.values[h_idx]
    days = sim.hours.values.astype("datetime64[D]")[::24]
    day_objects = np.array([pd.Timestamp(d).date() for d in days], dtype=object)
    with np.errstate(divide="ignore", invalid="ignore"):
        vc = np.where(v > 0, c / np.maximum(v, 1), 0.0)
        cp = np.where(c > 0, p / np.maximum(c, 1), 0.0)
        cr = np.where(v > 0, p / np.maximum(v, 1), 0.0)
    gold = pd.DataFrame(
        {
            "window_start": ws,
            "window_end": ws + np.timedelta64(1, "h"),
            "brand": sim.brands["brand"].values.astype(object)[b_idx],
            "views": v.astype(np.int64),
            "carts": c.astype(np.int64),
            "purchases": p.astype(np.int64),
            "revenue": revenue[keep].astype(float),
            "view_to_cart_rate": vc,
            "cart_to_purchase_rate": cp,
            "conversion_rate": cr,
            "window_date": day_objects[h_idx // 24],
        }
    )
    assert list(gold.columns) == list(GOLD_COLUMNS)
    return gold


def generate_gold(
    n_brands: int,
    start: DateLike,
    days: int,
    seed: int = 0,
    anomalies: bool = True,
    anomaly_start: Optional[DateLike] = None,
    anomaly_end: Optional[DateLike] = None,
    n_anomalies: Optional[int] = None,
    brands: Optional[pd.DataFrame] = None,
    tz_offset_hours: int = 3,
    min_hourly_views: float = 20.0,
    history_anomaly_window: Optional[Tuple[DateLike, DateLike]] = None,
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Gold table ``gold_funnel_hourly_brand`` (pandas) and its anomaly labels.

    ``brands`` (from :func:`make_brands`) overrides ``n_brands``. Labels: one row per planted anomaly
    with columns LABEL_COLUMNS; ``start``/``end`` are inclusive UTC hour starts.
    """
    sim = simulate_for_generator(locals())
    gold = to_gold(sim)
    log.info(
        "generated gold: %d brands, %d days, %d rows, %d anomalies", len(sim.brands), days, len(gold), len(sim.labels)
    )
    return gold, sim.labels


def write_gold_parquet(gold: pd.DataFrame, path: Union[str, Path]) -> Path:
    """Write a Parquet dataset partitioned by window_date (``window_date=YYYY-MM-DD``); replaces `path`.

    Timestamps are written as UTC-adjusted microseconds, so Spark reads them as TimestampType and
    ``window_date`` comes back as a date partition column.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = []
    for name, kind in GOLD_COLUMNS.items():
        fields.append(
            pa.field(
                name,
                {
                    "timestamp": pa.timestamp("us", tz="UTC"),
                    "string": pa.string(),
                    "long": pa.int64(),
                    "double": pa.float64(),
                    "date": pa.date32(),
                }[kind],
            )
        )
    schema = pa.schema(fields)
    frame = gold[list(GOLD_COLUMNS)].copy()
    for col in ("window_start", "window_end"):
        ts = pd.to_datetime(frame[col])
        frame[col] = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    wd = frame["window_date"]
    if not (wd.dtype == object):
        frame["window_date"] = pd.to_datetime(wd).dt.date
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    ds.write_dataset(
        table,
        str(path),
        format="parquet",
        partitioning=ds.partitioning(pa.schema([pa.field("window_date", pa.date32())]), flavor="hive"),
        existing_data_behavior="delete_matching",
        basename_template="part-{i}.parquet",
    )
    return path


def write_labels(labels: pd.DataFrame, path: Union[str, Path]) -> Path:
    """Labels as CSV (start/end as 'YYYY-MM-DD HH:MM:SS', UTC)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = labels[list(LABEL_COLUMNS)].copy()
    for col in ("start", "end"):
        out[col] = pd.to_datetime(out[col]).dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False)
    return path


def read_labels(path: Union[str, Path]) -> pd.DataFrame:
    """Inverse of :func:`write_labels`."""
    labels = pd.read_csv(path)
    for col in ("start", "end"):
        labels[col] = pd.to_datetime(labels[col])
    return labels
