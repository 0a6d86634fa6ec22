"""Raw e-commerce events in the REES46 schema, expanded from the hourly model of ``synthetic.py``.

Every brand-hour's views, carts and purchases become that many events inside that hour, so a gold
table built from clean events (``dirty=False``) has exactly the model's counts and the labels hold.

Sessions: a user session browses products of one brand for a few minutes (views a few seconds to two
minutes apart); some viewed products are carted a little later, some carts are purchased or removed
later still, all within the same session and hour. Purchase prices carry the model's price glitches
(``revenue_spike``).

``dirty=True`` then adds a small, counted amount of mess (``events.attrs["dirty_report"]``):
exact duplicate events, brand names with odd case/whitespace, extra events with a null brand,
zero/negative prices, and unparseable event times. Extra rows get their own session id, so
deduplication on (event_time, user_id, user_session, product_id, event_type) removes exactly the
duplicates.
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import pandas as pd

from advanced_anomaly_detection.data.synthetic import DateLike, HourlySimulation, rng_for, simulate_for_generator
from advanced_anomaly_detection.schema import EVENT_COLUMNS, EVENT_TYPES  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

_CATEGORY_CODES = [
    "electronics.smartphone", "electronics.audio.headphone", "electronics.video.tv", "computers.notebook",
    "appliances.kitchen.refrigerators", "appliances.environment.vacuum", "apparel.shoes", "furniture.living_room.sofa",
    "kids.toys", "sport.bicycle", "auto.accessories.player", "construction.tools.drill", "accessories.bag",
    "electronics.clocks", "appliances.kitchen.washer", "computers.peripherals.printer",
]
# Session shape.
_MEAN_SESSION_VIEWS = 4.0
_REMOVE_PROB = 0.3
_SESSION_BUDGET_S = 3500  # a session fits inside its hour

# Default fractions of dirt (of the clean event count; at least one of each when dirty=True).
DEFAULT_DIRT = {
    "duplicates": 0.002,
    "brand_case_whitespace": 0.005,
    "null_brand": 0.001,
    "bad_price": 0.0005,
    "unparseable_time": 0.0002,
}


def generate_events(
    n_brands: int,
    start: DateLike,
    days: int,
    seed: int = 0,
    anomalies: bool = True,
    anomaly_start: Optional[DateLike] = None,
    anomaly_end: Optional[DateLike] = None,
    n_anomalies: Optional[int] = None,
    brands: Optional[pd.DataFrame] = None,
    max_daily_views: float = 10_000.0,
    min_daily_views: float = 5.0,
    dirty: bool = True,
    dirt: Optional[Dict[str, float]] = None,
    tz_offset_hours: int = 3,
    min_hourly_views: float = 20.0,
    history_anomaly_window: Optional[Tuple[DateLike, DateLike]] = None,
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """REES46-like raw events (columns EVENT_COLUMNS, event_time as 'YYYY-MM-DD HH:MM:SS UTC') and labels.

    Brand volume is log-uniform between ``min_daily_views`` and ``max_daily_views`` (weekday views a
    day) unless ``brands`` is given. With ``dirty=True`` the counts of planted mess are in
    ``events.attrs["dirty_report"]``.
    """
    sim = simulate_for_generator(locals(), (math.log10(min_daily_views), math.log10(max_daily_views)))
    events = expand_events(sim, seed)
    report = {k: 0 for k in DEFAULT_DIRT}
    if dirty:
        events, report = add_dirt(events, seed, dirt)
    events.attrs["dirty_report"] = report
    log.info("generated %d events for %d brands x %d days (dirt: %s)", len(events), len(sim.brands), days, report)
    return events, sim.labels


def _within_group_cumsum(values: np.ndarray, group_first: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    cs = np.cumsum(values)
    return cs - cs[group_first][group_of] + values[group_first][group_of]


def expand_events(sim: HourlySimulation, seed: int = 0) -> pd.DataFrame:
    """Clean events whose per brand-hour counts equal the simulation's views/carts/purchases."""
    rng = rng_for(seed, "events")
    brands = sim.brands
    n_b = len(brands)
    # Cells in time-major order so events come out roughly sorted.
    v_all, c_all, p_all = sim.views.T.ravel(), sim.carts.T.ravel(), sim.purchases.T.ravel()
    cells = np.flatnonzero(v_all > 0)
    cell_h, cell_b = cells // n_b, cells % n_b
    v, c, p = v_all[cells], c_all[cells], p_all[cells]
    if (c > v).any() or (p_all > c_all).any():
        raise ValueError("hourly counts must satisfy views >= carts >= purchases")
    price_factor = sim.price_factor.T.ravel()[cells]
    n_views = int(v.sum())

    # --- products per brand (catalogue size grows with volume), prices lognormal around the median.
    n_prod = np.clip(np.round(4 + brands["daily_views"].values ** 0.45), 4, 400).astype(np.int64)
    prod_offset = np.concatenate([[0], np.cumsum(n_prod)[:-1]])
    prod_brand = np.repeat(np.arange(n_b), n_prod)
    prod_price = np.round(
        np.maximum(
            0.5,
            brands["median_price"].values[prod_brand]
            * np.exp(brands["price_sigma"].values[prod_brand] * rng.standard_normal(len(prod_brand))),
        ),
        2,
    )
    prod_id = 1_000_000 + rng.choice(len(prod_brand) * 50, len(prod_brand), replace=False).astype(np.int64)
    brand_cats = rng.integers(0, len(_CATEGORY_CODES), size=(n_b, 2))
    prod_cat = brand_cats[prod_brand, rng.integers(0, 2, len(prod_brand))]
    cat_draw = rng.choice(10_000_000, len(_CATEGORY_CODES), replace=False).astype(np.int64)
    cat_ids = 2_053_013_552_000_000_000 + cat_draw * 97
    code_missing = rng.random(len(prod_brand)) < 0.15  # as in REES46, many products have no category code

    # --- one row per view
    view_cell = np.repeat(np.arange(len(cells)), v)
    cell_first = np.concatenate([[0], np.cumsum(v)[:-1]])
    pos = np.arange(n_views) - cell_first[view_cell]
    # Which views convert: a random subset of size carts, and of those, purchases.
    order = np.lexsort((rng.random(n_views), view_cell))
    rank = np.empty(n_views, dtype=np.int64)
    rank[order] = pos
    carted = rank < c[view_cell]
    purchased = rank < p[view_cell]
    u = rng.random(n_views)
    view_prod = prod_offset[cell_b[view_cell]] + np.floor(n_prod[cell_b[view_cell]] * u**2).astype(np.int64)

    # --- sessions: consecutive views of a cell, geometric lengths
    new_sess = (rng.random(n_views) < 1.0 / _MEAN_SESSION_VIEWS) | (pos == 0)
    sess_of = np.cumsum(new_sess) - 1
    sess_first = np.flatnonzero(new_sess)
    n_sess = len(sess_first)
    sess_last = np.concatenate([sess_first[1:], [n_views]]) - 1
    gaps = rng.integers(5, 121, n_views).astype(float)
    gaps[new_sess] = 0.0
    cart_delay = rng.integers(3, 91, n_sess).astype(float)
    buy_delay = rng.integers(20, 301, n_sess).astype(float)
    span = _within_group_cumsum(gaps, sess_first, sess_of)[sess_last] + cart_delay + buy_delay
    shrink = np.minimum(1.0, _SESSION_BUDGET_S / np.maximum(span, 1.0))
    gaps = np.where(new_sess, 0.0, np.maximum(1.0, np.floor(gaps * shrink[sess_of])))
    cart_delay = np.maximum(1.0, np.floor(cart_delay * shrink))
    buy_delay = np.maximum(1.0, np.floor(buy_delay * shrink))
    offset = _within_group_cumsum(gaps, sess_first, sess_of)
    span = offset[sess_last] + cart_delay + buy_delay
    t0 = np.floor(rng.random(n_sess) * np.maximum(0.0, 3600.0 - span))
    view_t = (t0[sess_of] + offset).astype(np.int64)
    cart_t = view_t + cart_delay[sess_of].astype(np.int64)
    after_t = cart_t + buy_delay[sess_of].astype(np.int64)
    removed = carted & ~purchased & (rng.random(n_views) < _REMOVE_PROB)
    if (after_t > 3599).any():  # pragma: no cover - guaranteed by the session budget
        raise AssertionError("session does not fit in its hour")

    # --- assemble: views, carts, removes, purchases (index into view rows)
    idx = np.concatenate(
        [np.arange(n_views), np.flatnonzero(carted), np.flatnonzero(removed), np.flatnonzero(purchased)]
    )
    etype = np.concatenate(
        [
            np.zeros(n_views, np.int8),
            np.full(int(carted.sum()), 1, np.int8),
            np.full(int(removed.sum()), 2, np.int8),
            np.full(int(purchased.sum()), 3, np.int8),
        ]
    )
    secs = np.concatenate([view_t, cart_t[carted], after_t[removed], after_t[purchased]])
    ev_cell = view_cell[idx]
    abs_s = cell_h[ev_cell] * 3600 + secs
    srt = np.lexsort((etype, abs_s))
    idx, etype, secs, ev_cell = idx[srt], etype[srt], secs[srt], ev_cell[srt]

    hour_str = np.array(sim.hours.strftime("%Y-%m-%d %H:").tolist(), dtype=object)
    mmss = np.array([f"{s // 60:02d}:{s % 60:02d} UTC" for s in range(3600)], dtype=object)
    event_time = hour_str[cell_h[ev_cell]] + mmss[secs]

    prod = view_prod[idx]
    price = prod_price[prod] * np.where(etype == 3, price_factor[ev_cell], 1.0)
    codes = np.array(_CATEGORY_CODES, dtype=object)[prod_cat[prod]]
    codes[code_missing[prod]] = None

    users = 512_000_000 + rng.integers(0, max(1000, n_sess // 3), n_sess)
    session_ids = _fresh_sessions(rng, n_sess)
    ev_sess = sess_of[idx]
    events = pd.DataFrame(
        {
            "event_time": event_time,
            "event_type": np.array(EVENT_TYPES, dtype=object)[etype],
            "product_id": prod_id[prod],
            "category_id": cat_ids[prod_cat[prod]],
            "category_code": codes,
            "brand": brands["brand"].values.astype(object)[cell_b[ev_cell]],
            "price": np.round(price, 2),
            "user_id": users[ev_sess].astype(np.int64),
            "user_session": session_ids[ev_sess],
        }
    )
    return events


def add_dirt(
    events: pd.DataFrame, seed: int = 0, dirt: Optional[Dict[str, float]] = None
) -> Tuple[pd.DataFrame, Dict[str, int]]:
    """Add counted mess to clean events; returns (dirty events, {kind: rows affected or added}).

    In-place edits (brand case/whitespace, bad price) keep the row's identity. Duplicates are exact
    copies of (possibly edited) rows. Added rows (null brand, unparseable time) are copies of input
    rows with that one defect and a fresh session id, so each kind is counted exactly once.
    """
    fractions = dict(DEFAULT_DIRT)
    fractions.update(dirt or {})
    unknown = sorted(set(fractions) - set(DEFAULT_DIRT))
    if unknown:
        raise ValueError(f"unknown dirt kind(s) {unknown}; known: {sorted(DEFAULT_DIRT)}")
    rng = rng_for(seed, "dirty")
    n = len(events)
    if n == 0:
        return events.copy(), {k: 0 for k in DEFAULT_DIRT}

    def count(kind: str) -> int:
        f = fractions[kind]
        return 0 if f <= 0 else min(n, max(1, int(round(f * n))))

    out = events.copy()
    report: Dict[str, int] = {}
    # Odd case / whitespace on brand names (normalises back to the same brand).
    k = count("brand_case_whitespace")
    rows = rng.choice(n, k, replace=False)
    styles = rng.integers(0, 4, k)
    b = out["brand"].values[rows].astype(str)
    variants = [
        [s.upper() for s in b],
        [s.capitalize() for s in b],
        [f" {s.capitalize()} " for s in b],
        [f"{s}  " for s in b],
    ]
    out.iloc[rows, out.columns.get_loc("brand")] = [variants[st][i] for i, st in enumerate(styles)]
    report["brand_case_whitespace"] = k
    # Zero or negative prices.
    k = count("bad_price")
    rows = rng.choice(n, k, replace=False)
    out.iloc[rows, out.columns.get_loc("price")] = np.where(rng.random(k) < 0.5, 0.0, -out["price"].values[rows])
    report["bad_price"] = k
    # Duplicates: exact copies of existing rows (chosen before the added rows below).
    k = count("duplicates")
    dups = out.iloc[rng.choice(n, k, replace=False)]
    report["duplicates"] = k
    # Extra events of unbranded products (null brand).
    k = count("null_brand")
    extra_null = events.iloc[rng.choice(n, k, replace=False)].copy()
    extra_null["brand"] = None
    extra_null["user_session"] = _fresh_sessions(rng, k)
    report["null_brand"] = k
    # Extra events whose time cannot be parsed.
    k = count("unparseable_time")
    extra_time = events.iloc[rng.choice(n, k, replace=False)].copy()
    bad_times = np.array(["", "not a date", "2019-13-45 25:61:00 UTC", "N/A"], dtype=object)
    extra_time["event_time"] = bad_times[rng.integers(0, len(bad_times), k)]
    extra_time["user_session"] = _fresh_sessions(rng, k)
    report["unparseable_time"] = k

    out = pd.concat([out, dups, extra_null, extra_time], ignore_index=True)
    return out, report


def _fresh_sessions(rng: np.random.Generator, k: int) -> np.ndarray:
    """k random uuid4-formatted session ids (deterministic by the generator's state)."""
    raw = rng.integers(0, 256, size=(k, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # uuid4 version/variant bits
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexes = raw.tobytes().hex()
    chunks = (hexes[i * 32 : (i + 1) * 32] for i in range(k))
    return np.array([f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}" for h in chunks], dtype=object)


def write_events_csv(events: pd.DataFrame, path: Union[str, Path], rows_per_file: int = 500_000) -> Path:
    """Write events as a directory of CSV part files with headers (replaces `path`)."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.mkdir(parents=True)
    n_parts = max(1, math.ceil(len(events) / rows_per_file))
    for i in range(n_parts):
        part = events.iloc[i * rows_per_file : (i + 1) * rows_per_file]
        part.to_csv(path / f"part-{i:05d}.csv", index=False, columns=list(EVENT_COLUMNS))
    return path
