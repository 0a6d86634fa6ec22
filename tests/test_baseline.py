"""The count-aware seasonal baseline on realistic synthetic brands (no Spark)."""
import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection.config import BaselineConfig
from advanced_anomaly_detection.data import synthetic
from advanced_anomaly_detection.detectors.baseline import BaselineDetector
from advanced_anomaly_detection.series import add_time_and_rate_columns, complete_hourly_grid

DAYS = 63


@pytest.fixture(scope="module")
def clean_gold():
    brands = synthetic.make_brands(40, seed=3)
    gold, labels = synthetic.generate_gold(0, "2026-01-05", DAYS, seed=3, anomalies=False, brands=brands)
    assert labels.empty
    return gold


def _series(gold, brand):
    return complete_hourly_grid(gold[gold["brand"] == brand], end=gold["window_start"].max())


def _brand_by_volume(gold, lo, hi):
    daily = gold.groupby("brand")["views"].sum() / DAYS
    pick = daily[(daily >= lo) & (daily <= hi)]
    assert len(pick), f"no brand with {lo}..{hi} daily views"
    return pick.index[0]


def _split(series, days=1):
    cut = len(series) - 24 * days
    return series.iloc[:cut], series.iloc[cut:].copy()


def _plant(target, hours, factor, columns=("views", "carts", "purchases", "revenue")):
    idx = target.index[hours]
    for col in columns:
        target.loc[idx, col] = np.floor(target.loc[idx, col] * factor)
    return add_time_and_rate_columns(target)


def test_planted_drop_on_large_brand_is_found(clean_gold):
    brand = _brand_by_volume(clean_gold, 20_000, 1e9)
    history, target = _split(_series(clean_gold, brand))
    det = BaselineDetector().fit(history)
    planted = _plant(target, slice(12, 16), 0.4)  # -60% traffic for 4 hours
    out = det.score(planted)
    assert (out["score"].iloc[12:16] >= 0.9999).all(), out["score"].iloc[10:18]
    assert (out["direction"].iloc[12:16] < 0).all()
    assert out["expected"].iloc[12:16].gt(0).all()


def test_same_relative_drop_on_tiny_brand_is_not_an_anomaly(clean_gold):
    brand = _brand_by_volume(clean_gold, 5, 60)
    history, target = _split(_series(clean_gold, brand))
    det = BaselineDetector().fit(history)
    out = det.score(_plant(target, slice(12, 16), 0.4))
    assert (out["score"] < 0.999).all(), out["score"].max()


def test_checkout_outage_found_through_counts_not_rates(clean_gold):
    brand = _brand_by_volume(clean_gold, 20_000, 1e9)
    history, target = _split(_series(clean_gold, brand))
    det = BaselineDetector().fit(history)
    out = det.score(_plant(target, slice(14, 17), 0.0, columns=("purchases", "revenue")))
    assert (out["score"].iloc[14:17] >= 0.9999).all()
    assert set(out["signal"].iloc[14:17]) <= {"purchases", "revenue", "cart_to_purchase_rate", "conversion_rate"}


def test_clean_series_raise_few_alarms(clean_gold):
    hours = alarms = 0
    for brand in clean_gold["brand"].unique():
        history, target = _split(_series(clean_gold, brand), days=7)
        det = BaselineDetector().fit(history)
        if det.status_ != "ok":
            continue
        out = det.score(target)
        hours += len(out)
        alarms += int((out["score"] >= 0.9999).sum())
    assert hours > 5000
    assert alarms / hours < 0.002, f"{alarms} alarms in {hours} clean brand-hours"


def test_insufficient_history_is_a_status_not_an_error(clean_gold):
    brand = _brand_by_volume(clean_gold, 1000, 1e9)
    series = _series(clean_gold, brand)
    det = BaselineDetector().fit(series.iloc[:48])
    assert det.status_ == "insufficient_history"
    assert det.score(series.iloc[48:72])["score"].isna().all()


def test_expected_values_follow_the_daily_cycle(clean_gold):
    brand = _brand_by_volume(clean_gold, 20_000, 1e9)
    history, target = _split(_series(clean_gold, brand))
    det = BaselineDetector(BaselineConfig(signals=["views"])).fit(history)
    out = det.score(target)
    corr = np.corrcoef(out["expected"], target["views"])[0, 1]
    assert corr > 0.9
    ratio = target["views"].sum() / out["expected"].sum()
    assert 0.85 < ratio < 1.15
