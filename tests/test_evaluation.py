"""Event-level metrics and the seed z-score rule (pure pandas)."""
import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection.evaluation import comparison_table, event_metrics, seed_zscore_flags

T0 = pd.Timestamp("2026-03-01")


def _h(n):
    return T0 + pd.Timedelta(hours=n)


def test_event_metrics_by_hand():
    labels = pd.DataFrame({"brand": ["a", "a", "b"], "start": [_h(10), _h(40), _h(5)], "end": [_h(12), _h(41), _h(6)],
                           "type": ["traffic_drop", "checkout_outage", "traffic_drop"]})
    flagged = [("a", 13), ("a", 14),   # one event, 1 h after the first window ends: within +-2 h -> true
               ("a", 30),              # false
               ("b", 20), ("b", 22)]   # one event (one hour apart), false
    flags = pd.DataFrame({"brand": [b for b, _ in flagged], "window_start": [_h(h) for _, h in flagged],
                          "is_anomaly": True})
    m = event_metrics(flags, labels, brand_days=10, tolerance_hours=2)
    assert (m["alert_events"], m["true_events"], m["false_events"]) == (3, 1, 2)
    assert m["precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["recall"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["false_alerts_per_1000_brand_days"] == 200.0
    assert m["recall_by_type"] == {"checkout_outage": 0.0, "traffic_drop": 0.5}
    assert event_metrics(flags, labels, 10, tolerance_hours=0)["true_events"] == 0
    assert "precision" in comparison_table([{"method": "x", **m}])


def test_seed_rule_uses_all_rows_and_the_volume_gate():
    hours = pd.date_range(T0, periods=24 * 20, freq="h")
    rng = np.random.default_rng(0)
    gold = pd.DataFrame({"brand": "a", "window_start": hours, "views": 100,
                         "conversion_rate": rng.normal(0.02, 0.002, len(hours))})
    gold.loc[100, "conversion_rate"] = 0.2
    gold.loc[200, ["conversion_rate", "views"]] = [0.2, 10]  # extreme but below views >= 50
    flags = seed_zscore_flags(gold, T0, T0 + pd.Timedelta(days=19))
    flagged = set(flags.loc[flags["is_anomaly"], "window_start"])
    assert hours[100] in flagged and hours[200] not in flagged


def test_nightly_evaluation_runs_one_job_per_day_and_scores_every_day(spark, tmp_path):
    """`aad evaluate --nightly`: each scored day is its own run (as the schedule runs it), all of them scored;
    --rescore then reads every night's rows back."""
    from advanced_anomaly_detection.commands import run_evaluation
    from advanced_anomaly_detection.config import load_config

    cfg = load_config(None, [f"detectors.{d}.enabled=false" for d in ("prophet", "isolation_forest", "lstm")])
    res = run_evaluation(spark, cfg, tmp_path, brands=4, history_days=20, scored_days=2, seed=3, nightly=True)
    out = pd.read_parquet(tmp_path / "gold_anomalies_advanced")
    assert out["run_id"].nunique() == 2 and len(out) == 4 * 24 * 2
    assert out.groupby("window_date")["run_id"].nunique().eq(1).all()
    assert res["benchmark"]["runs"].startswith("one per scored day") and res["benchmark"]["brand_days"] == 8
    again = run_evaluation(None, cfg, tmp_path, brands=4, history_days=20, scored_days=2, seed=3, rescore=True)
    assert again["methods"] == res["methods"]
