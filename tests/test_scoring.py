"""score_series, the per-brand function that runs inside applyInPandas (no Spark here)."""
import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection.config import load_config
from advanced_anomaly_detection.data import synthetic
from advanced_anomaly_detection.scoring import OUTPUT_SCHEMA, ScoringContext, score_series
from advanced_anomaly_detection.series import complete_hourly_grid

ONLY_BASELINE_AND_IF = ["detectors.prophet.enabled=false", "detectors.changepoint.enabled=false",
                        "detectors.lstm.enabled=false"]


@pytest.fixture(scope="module")
def big_brand():
    brands = synthetic.make_brands(3, seed=2, log10_views_min=4.6, log10_views_max=5.0)
    gold, _ = synthetic.generate_gold(0, "2026-01-05", 36, seed=2, anomalies=False, brands=brands)
    one = gold[gold["brand"] == gold["brand"].iloc[0]]
    return complete_hourly_grid(one, end=pd.Timestamp("2026-02-09 23:00"))


def _ctx(cfg, start="2026-02-09"):
    return ScoringContext(cfg, pd.Timestamp(start), "run-1", "v-test")


def test_output_has_the_schema_and_one_row_per_target_hour(big_brand):
    out = score_series(big_brand, _ctx(load_config(None, ONLY_BASELINE_AND_IF)))
    assert list(out.columns) == list(OUTPUT_SCHEMA)
    assert len(out) == 24 and out["scoring_status"].eq("scored").all()
    assert out["isolation_forest_anomaly_score"].notna().all()
    assert out["lstm_anomaly_score"].isna().all()  # disabled: null, not zero
    assert out["run_id"].eq("run-1").all() and out["model_version"].eq("v-test").all()


def test_planted_outage_is_flagged_with_type_impact_and_factors(big_brand):
    series = big_brand.copy()
    hours = series.index[-10:-7]  # three afternoon hours of the scored day
    series.loc[hours, ["purchases", "revenue"]] = 0
    series.loc[hours, "conversion_rate"] = 0.0
    series.loc[hours, "cart_to_purchase_rate"] = 0.0
    out = score_series(series, _ctx(load_config(None, ONLY_BASELINE_AND_IF))).set_index("window_start")
    hit = out.loc[series.loc[hours, "window_start"]]
    assert hit["is_anomaly"].sum() >= 2, hit["ensemble_anomaly_score"]  # evidence builds within the outage
    hit = hit[hit["is_anomaly"]]
    assert set(hit["anomaly_type"]) == {"drop"}
    assert (hit["estimated_revenue_impact"] < 0).all() and (hit["conversion_loss"] > 0).all()
    assert all(any("purchases" in f or "cart_to_purchase" in f for f in fs) for fs in hit["contributing_factors"])
    assert (hit["anomaly_severity"] != "none").all()
    before = out.index < series.loc[hours[0], "window_start"]
    assert out.loc[before, "is_anomaly"].sum() == 0  # nothing before it starts


def test_short_history_is_reported_not_raised(big_brand):
    out = score_series(big_brand.iloc[-24 * 3:], _ctx(load_config(None, ONLY_BASELINE_AND_IF)))
    assert out["scoring_status"].eq("insufficient_history").all()
    assert not out["is_anomaly"].any() and out["ensemble_anomaly_score"].isna().all()


def test_a_failing_detector_is_recorded_and_the_others_still_score(big_brand, monkeypatch):
    from advanced_anomaly_detection.detectors import isolation_forest

    def boom(self, history):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(isolation_forest.IsolationForestDetector, "_fit", boom)
    out = score_series(big_brand, _ctx(load_config(None, ONLY_BASELINE_AND_IF)))
    assert out["isolation_forest_anomaly_score"].isna().all()
    assert out["baseline_anomaly_score"].notna().all()
    assert "isolation_forest=failed (RuntimeError: simulated bug)" in out["detector_status"].iloc[0]
    assert np.isfinite(out["ensemble_anomaly_score"]).all()
