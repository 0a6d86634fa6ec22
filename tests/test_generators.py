"""Synthetic gold and raw-event generators (pure pandas/NumPy, no Spark)."""
import re

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from advanced_anomaly_detection.data.events import EVENT_COLUMNS, EVENT_TYPES, generate_events, write_events_csv
from advanced_anomaly_detection.data.synthetic import (
    ANOMALY_KINDS,
    LABEL_COLUMNS,
    MIN_GAP_HOURS,
    generate_gold,
    make_brands,
    read_labels,
    simulate_hourly,
    write_gold_parquet,
    write_labels,
)
from advanced_anomaly_detection.schema import GOLD_COLUMNS

START = "2019-10-01"


@pytest.fixture(scope="module")
def brands():
    return make_brands(60, seed=0)


@pytest.fixture(scope="module")
def clean_gold(brands):
    gold, labels = generate_gold(60, START, 28, seed=0, anomalies=False, brands=brands)
    assert labels.empty
    return gold


# ------------------------------------------------------------------------------------------------ brands
def test_make_brands_deterministic_unique_lowercase():
    a, b = make_brands(300, seed=4), make_brands(300, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not make_brands(300, seed=5)["daily_views"].equals(a["daily_views"])
    assert a["brand"].is_unique
    assert all(re.fullmatch(r"[a-z]+", n) for n in a["brand"])
    assert a["p_view_cart"].between(0.02, 0.08).all()
    assert a["p_cart_purchase"].between(0.20, 0.45).all()
    assert a["median_price"].between(10, 600).all()
    dev = (a["weekend_factor"] - 1).abs()
    assert dev.between(0.10, 0.25).all()
    lv = np.log10(a["daily_views"])
    assert lv.min() >= 0.7 and lv.max() <= 5.3
    # Stratified: every tenth of the log range is populated.
    assert np.histogram(lv, bins=10, range=(0.7, 5.3))[0].min() >= 20
    narrow = make_brands(10, seed=4, log10_views_min=1.0, log10_views_max=2.0)
    assert np.log10(narrow["daily_views"]).between(1.0, 2.0).all()


# ------------------------------------------------------------------------------------------------ gold
def test_generate_gold_is_deterministic_by_seed():
    g1, l1 = generate_gold(25, START, 20, seed=3)
    g2, l2 = generate_gold(25, START, 20, seed=3)
    pd.testing.assert_frame_equal(g1, g2)
    pd.testing.assert_frame_equal(l1, l2)
    g3, _ = generate_gold(25, START, 20, seed=4)
    assert not g3["views"].equals(g1["views"]) or len(g3) != len(g1)


def test_history_anomalies_come_before_the_scored_window_and_leave_its_labels_alone():
    scored_from = pd.Timestamp(START) + pd.Timedelta(days=28)
    kwargs = dict(seed=5, anomaly_start=scored_from, anomaly_end=scored_from + pd.Timedelta(days=13, hours=23))
    g0, l0 = generate_gold(60, START, 42, **kwargs)
    g1, l1 = generate_gold(60, START, 42, history_anomaly_window=(pd.Timestamp(START) + pd.Timedelta(days=7), scored_from),
                           **kwargs)
    past = l1[l1["start"] < scored_from]
    assert len(past) >= 2 and (past["start"] >= pd.Timestamp(START) + pd.Timedelta(days=7)).all()
    # transient incidents only, ending at least two days before the scored window
    assert (past["end"] <= scored_from - pd.Timedelta(hours=49)).all() and "level_shift" not in set(past["type"])
    pd.testing.assert_frame_equal(l1[l1["start"] >= scored_from].reset_index(drop=True), l0)
    # history incidents alone (the main window empty) are listed once
    _, only_past = generate_gold(60, START, 42, seed=5, anomaly_start=scored_from, anomaly_end=scored_from - pd.Timedelta(hours=1),
                                 history_anomaly_window=(pd.Timestamp(START) + pd.Timedelta(days=7), scored_from))
    assert len(only_past) and not only_past.duplicated().any()
    # the history differs (incidents were planted there), the counts of the scored window do not
    hist0, hist1 = (g[g["window_start"] < scored_from] for g in (g0, g1))
    assert not hist0["views"].reset_index(drop=True).equals(hist1["views"].reset_index(drop=True))
    sc0, sc1 = (g[g["window_start"] >= scored_from].reset_index(drop=True) for g in (g0, g1))
    pd.testing.assert_frame_equal(sc0, sc1)


def test_gold_schema_rates_and_omitted_zero_rows(clean_gold):
    g = clean_gold
    assert list(g.columns) == list(GOLD_COLUMNS)
    for col in ("views", "carts", "purchases"):
        assert g[col].dtype == np.int64
    assert g["revenue"].dtype == float
    assert g["window_start"].dtype == "datetime64[ns]"
    assert (g["window_start"] == g["window_start"].dt.floor("h")).all()
    assert (g["window_end"] - g["window_start"] == pd.Timedelta(hours=1)).all()
    assert (g["window_date"] == g["window_start"].dt.date).all()
    # Hours without events have no row; funnel order holds.
    assert ((g["views"] + g["carts"] + g["purchases"]) > 0).all()
    assert (g["carts"] <= g["views"]).all() and (g["purchases"] <= g["carts"]).all()
    assert ((g["revenue"] == 0) == (g["purchases"] == 0)).all()
    v, c, p = g["views"], g["carts"], g["purchases"]
    np.testing.assert_allclose(g["view_to_cart_rate"], np.where(v > 0, c / v.clip(lower=1), 0.0))
    np.testing.assert_allclose(g["cart_to_purchase_rate"], np.where(c > 0, p / c.clip(lower=1), 0.0))
    np.testing.assert_allclose(g["conversion_rate"], np.where(v > 0, p / v.clip(lower=1), 0.0))
    assert not g.duplicated(["window_start", "brand"]).any()
    # Small brands really have empty hours: fewer rows than the full grid.
    assert len(g) < 60 * 28 * 24


def test_gold_statistics_look_like_a_shop(clean_gold, brands):
    g = clean_gold
    tot = g.groupby("brand")[["views", "carts", "purchases", "revenue"]].sum()
    # Brand sizes: a few views a day up to thousands an hour.
    assert tot["views"].min() / 28 < 10
    assert g["views"].max() > 1000
    big = tot[tot["views"] > 100_000]
    assert len(big) >= 10
    assert (big["carts"] / big["views"]).between(0.015, 0.09).all()
    assert (big["purchases"] / big["carts"]).between(0.15, 0.5).all()
    assert (big["revenue"] / big["purchases"]).between(5, 2000).all()

    gb = g[g["brand"].isin(big.index)].copy()
    # Hour-of-day: night trough 10-20% of the evening peak (shop in UTC+3: trough ~01 UTC, peak ~17 UTC).
    prof = gb.groupby(["brand", gb["window_start"].dt.hour])["views"].mean().unstack()
    ratio = prof.min(axis=1) / prof.max(axis=1)
    assert ratio.between(0.07, 0.25).all()
    assert prof.idxmin(axis=1).isin([0, 1, 2]).all()
    assert prof.idxmax(axis=1).isin([16, 17, 18, 19]).all()
    # Weekend factor (local days, complete days only) matches the brand's parameter.
    gb["local_day"] = (gb["window_start"] + pd.Timedelta(hours=3)).dt.normalize()
    daily = gb.groupby(["brand", "local_day"])["views"].sum().reset_index()
    daily = daily[(daily["local_day"] > daily["local_day"].min()) & (daily["local_day"] < daily["local_day"].max())]
    daily["weekend"] = daily["local_day"].dt.dayofweek >= 5
    by = daily.groupby(["brand", "weekend"])["views"].mean().unstack()
    observed = by[True] / by[False]
    expected = brands.set_index("brand")["weekend_factor"].reindex(observed.index)
    assert (observed - expected).abs().max() < 0.1
    assert ((observed - 1).abs() > 0.05).all()


def test_labels_inside_window_non_overlapping_and_material():
    b = make_brands(80, seed=1)
    sim = simulate_hourly(b, START, 35, seed=1, n_anomalies=60)
    labels = sim.labels
    assert list(labels.columns) == list(LABEL_COLUMNS)
    assert len(labels) >= 30
    last_hour = sim.hours[-1]
    window_start = last_hour.normalize() - pd.Timedelta(days=13)
    assert (labels["start"] >= window_start).all() and (labels["end"] <= last_hour).all()
    assert (labels["end"] >= labels["start"]).all()
    assert labels["type"].isin(list(ANOMALY_KINDS)).all()
    for _, row in labels.iterrows():
        spec = ANOMALY_KINDS[row["type"]]
        assert row["category"] == spec["category"] and row["signal"] == spec["signal"]
        hours = int((row["end"] - row["start"]) / pd.Timedelta(hours=1)) + 1
        if row["type"] == "level_shift":
            assert hours >= 24 and row["end"] == last_hour
            assert 0.4 <= row["magnitude"] <= 0.6 or 1.7 <= row["magnitude"] <= 2.5
        else:
            assert spec["hours"][0] <= hours <= spec["hours"][1]
            assert spec["magnitude"][0] <= row["magnitude"] <= spec["magnitude"][1]
        bi = int(np.flatnonzero(b["brand"].values == row["brand"])[0])
        i0 = sim.hours.get_loc(row["start"])
        expected = sim.expected[bi, i0 : i0 + hours]
        assert expected.mean() >= 20  # material
        assert expected[0] >= sim.expected[bi, sim.hours >= window_start].mean()  # starts in daytime volume
    for _, grp in labels.sort_values("start").groupby("brand"):
        starts, ends = grp["start"].tolist(), grp["end"].tolist()
        for prev_end, nxt_start in zip(ends, starts[1:]):
            assert nxt_start - prev_end > pd.Timedelta(hours=MIN_GAP_HOURS)


def test_default_anomaly_count_and_custom_window():
    b = make_brands(60, seed=2)
    sim = simulate_hourly(b, START, 28, seed=2)
    window = sim.expected[:, -14 * 24 :]
    eligible = int((window.mean(axis=1) >= 20).sum())
    assert len(sim.labels) == max(1, round(eligible / 3))
    _, labels = generate_gold(
        60, START, 28, seed=2, brands=b, anomaly_start="2019-10-05", anomaly_end="2019-10-12", n_anomalies=15
    )
    assert len(labels) >= 5
    assert (labels["start"] >= pd.Timestamp("2019-10-05")).all()
    assert (labels["end"] <= pd.Timestamp("2019-10-12 23:00")).all()
    _, none = generate_gold(60, START, 28, seed=2, brands=b, anomalies=False)
    assert none.empty and list(none.columns) == list(LABEL_COLUMNS)


def test_planted_anomalies_change_only_labelled_hours():
    b = make_brands(80, seed=1)
    a = simulate_hourly(b, START, 35, seed=1, n_anomalies=60)
    c = simulate_hourly(b, START, 35, seed=1, anomalies=False)
    mask = np.zeros(a.views.shape, dtype=bool)
    names = list(b["brand"])
    effects = {}
    for _, row in a.labels.iterrows():
        bi = names.index(row["brand"])
        i0, i1 = a.hours.get_loc(row["start"]), a.hours.get_loc(row["end"])
        mask[bi, i0 : i1 + 1] = True
        sl = (bi, slice(i0, i1 + 1))
        effects.setdefault(row["type"], []).append(
            {k: (getattr(a, k)[sl].sum(), getattr(c, k)[sl].sum()) for k in ("views", "carts", "purchases", "revenue")}
            | {"m": row["magnitude"]}
        )
    for arr in ("views", "carts", "purchases", "revenue"):
        np.testing.assert_array_equal(getattr(a, arr)[~mask], getattr(c, arr)[~mask])
    assert set(effects) == set(ANOMALY_KINDS)
    for e in effects["traffic_drop"]:
        assert e["views"][0] < 0.65 * e["views"][1]
    for e in effects["traffic_spike"]:
        assert e["views"][0] > 1.8 * e["views"][1] and e["carts"][0] == e["carts"][1]
    for e in effects["checkout_outage"]:
        assert e["purchases"][0] <= 0.35 * e["purchases"][1] + 2 and e["views"][0] == e["views"][1]
    for e in effects["cart_drop"]:
        assert e["carts"][0] < 0.6 * e["carts"][1] and e["views"][0] == e["views"][1]
    for e in effects["revenue_spike"]:
        assert e["purchases"][0] == e["purchases"][1]
        assert e["revenue"][0] == pytest.approx(e["m"] * e["revenue"][1], rel=1e-3, abs=0.05)
    for e in effects["level_shift"]:
        ratio = e["views"][0] / e["views"][1]
        assert ratio == pytest.approx(e["m"], rel=0.15)


def test_traffic_drop_lowers_gold_views_against_clean_run():
    gold_a, labels = generate_gold(80, START, 35, seed=1, n_anomalies=60, brands=make_brands(80, seed=1))
    gold_c, _ = generate_gold(80, START, 35, seed=1, anomalies=False, brands=make_brands(80, seed=1))
    drops = labels[labels["type"] == "traffic_drop"]
    assert len(drops) > 0
    for _, row in drops.iterrows():
        def views(g):
            sel = (g["brand"] == row["brand"]) & g["window_start"].between(row["start"], row["end"])
            return g.loc[sel, "views"].sum()

        assert views(gold_a) < 0.65 * views(gold_c)


def test_write_gold_parquet_and_labels(tmp_path):
    gold, labels = generate_gold(8, START, 3, seed=0, anomaly_start=START, n_anomalies=2)
    out = write_gold_parquet(gold, tmp_path / "gold")
    dirs = sorted(p.name for p in out.iterdir())
    assert dirs == ["window_date=2019-10-01", "window_date=2019-10-02", "window_date=2019-10-03"]
    write_gold_parquet(gold, out)  # overwrites, never appends
    table = pads.dataset(str(out), format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(gold)
    assert str(table.schema.field("window_start").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("views").type) == "int64"
    path = write_labels(labels, tmp_path / "labels.csv")
    back = read_labels(path)
    pd.testing.assert_frame_equal(back, labels.reset_index(drop=True), check_dtype=False)


# ------------------------------------------------------------------------------------------------ events
EV_BRANDS = dict(n_brands=6, seed=2, log10_views_min=0.7, log10_views_max=np.log10(3000))


@pytest.fixture(scope="module")
def event_setup():
    b = make_brands(**EV_BRANDS)
    gold, labels = generate_gold(6, START, 16, seed=2, brands=b, n_anomalies=3)
    clean, clean_labels = generate_events(6, START, 16, seed=2, brands=b, n_anomalies=3, dirty=False)
    dirty, _ = generate_events(6, START, 16, seed=2, brands=b, n_anomalies=3, dirty=True)
    return b, gold, labels, clean, clean_labels, dirty


def _hourly_from_events(events):
    ev = events.copy()
    ev["window_start"] = pd.to_datetime(ev["event_time"].str[:13] + ":00:00")
    counts = ev.pivot_table(index=["window_start", "brand"], columns="event_type", values="user_id", aggfunc="size", fill_value=0)
    return counts.rename(columns={"view": "views", "cart": "carts", "purchase": "purchases"})


def test_clean_events_aggregate_to_model_counts(event_setup):
    _, gold, labels, clean, clean_labels, _ = event_setup
    pd.testing.assert_frame_equal(labels, clean_labels)
    assert list(clean.columns) == list(EVENT_COLUMNS)
    assert clean["event_type"].isin(EVENT_TYPES).all()
    assert clean["event_time"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC").all()
    assert clean["user_session"].str.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}").all()
    assert (clean["price"] > 0).all() and clean["brand"].notna().all()
    assert not clean.duplicated(["event_time", "user_id", "user_session", "product_id", "event_type"]).any()
    got = _hourly_from_events(clean)
    want = gold.set_index(["window_start", "brand"])[["views", "carts", "purchases"]]
    got = got.reindex(want.index)[["views", "carts", "purchases"]]
    pd.testing.assert_frame_equal(got.astype("int64"), want, check_names=False)
    assert _hourly_from_events(clean)[["views", "carts", "purchases"]].sum().sum() == want.sum().sum()


def test_events_follow_sessions(event_setup):
    clean = event_setup[3]
    ev = clean.assign(t=pd.to_datetime(clean["event_time"].str[:19]))
    first = ev.groupby(["user_session", "product_id", "event_type"])["t"].min().unstack()
    carted = first[first["cart"].notna()]
    assert (carted["view"] <= carted["cart"]).all()
    bought = first[first["purchase"].notna()]
    assert (bought["cart"] <= bought["purchase"]).all()
    assert (ev["event_type"] == "remove_from_cart").sum() > 0
    # A session stays within one brand and one user.
    assert (ev.groupby("user_session")[["brand", "user_id"]].nunique() == 1).all().all()


def test_dirty_counts_as_reported(event_setup):
    _, _, _, clean, _, dirty = event_setup
    rep = dirty.attrs["dirty_report"]
    assert all(v >= 1 for v in rep.values())
    assert len(dirty) == len(clean) + rep["duplicates"] + rep["null_brand"] + rep["unparseable_time"]
    assert dirty.duplicated().sum() == rep["duplicates"]
    d = dirty.drop_duplicates()
    parsed = pd.to_datetime(d["event_time"].str.replace(" UTC", ""), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    assert parsed.isna().sum() == rep["unparseable_time"]
    ok = d[parsed.notna()]
    assert ok["brand"].isna().sum() == rep["null_brand"]
    branded = ok["brand"].dropna()
    assert (branded != branded.str.strip().str.lower()).sum() == rep["brand_case_whitespace"]
    assert (ok["price"] <= 0).sum() == rep["bad_price"]
    # Cleaning restores the model's counts.
    fixed = ok.dropna(subset=["brand"]).assign(brand=lambda x: x["brand"].str.strip().str.lower())
    pd.testing.assert_frame_equal(_hourly_from_events(fixed), _hourly_from_events(clean))


def test_events_deterministic_and_csv(tmp_path):
    a, _ = generate_events(3, START, 2, seed=9, max_daily_views=500)
    b, _ = generate_events(3, START, 2, seed=9, max_daily_views=500)
    pd.testing.assert_frame_equal(a, b)
    out = write_events_csv(a, tmp_path / "raw", rows_per_file=max(1, len(a) // 2))
    parts = sorted(out.glob("part-*.csv"))
    assert len(parts) >= 2
    back = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    assert len(back) == len(a) and list(back.columns) == list(EVENT_COLUMNS)
