"""The generalisation harness of score-series: its generator plants what it says where it says, and
its event metrics count hits, misses and false events correctly."""
import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection import series_evaluation as se


@pytest.mark.parametrize("shape", se.SHAPES)
@pytest.mark.parametrize("freq", list(se.FREQUENCIES))
def test_generator_plants_one_of_each_kind_after_warmup(shape, freq):
    s = se.make_series(shape, freq, seed=3)
    days, warmup = se.FREQUENCIES[freq]
    assert len(s.frame) == int(pd.Timedelta(days=days) / pd.Timedelta(freq))
    assert sorted(s.labels["type"]) == sorted(se.ANOMALY_KINDS)
    assert (s.labels["start"] >= s.frame["ts"].iloc[0] + pd.Timedelta(days=warmup)).all()
    assert (s.labels["end"] >= s.labels["start"]).all() and (s.labels["end"] <= s.frame["ts"].iloc[-1]).all()
    assert np.isfinite(s.frame["value"]).all()
    if shape == "poisson_counts":
        assert (s.frame["value"] >= 0).all() and (s.frame["value"] == s.frame["value"].round()).all()


def test_spike_is_where_the_label_says():
    s = se.make_series("seasonal_gaussian", "1h", seed=5)
    spike = s.labels[s.labels["type"] == "spike"].iloc[0]
    v = s.frame.set_index("ts")["value"]
    around = v[spike["start"] - pd.Timedelta(hours=48): spike["start"] - pd.Timedelta(hours=1)]
    assert v[spike["start"]] > around.max()


def test_metrics_count_hits_misses_and_false_events():
    step = pd.Timedelta(hours=1)
    t0 = pd.Timestamp("2024-01-01")
    labels = pd.DataFrame({"brand": ["a", "a"], "start": [t0 + 10 * step, t0 + 50 * step],
                           "end": [t0 + 12 * step, t0 + 50 * step], "type": ["dip", "spike"]})
    ts = pd.Series(pd.date_range(t0, periods=100, freq="h"))
    flagged = np.zeros(100, bool)
    flagged[[13, 14, 80]] = True  # within 3 steps of the dip; a false event at 80; the spike missed
    events = se._events("a", ts, flagged, step)
    assert len(events) == 2
    m = se.metrics(events, labels, {"a": 100}, {"a": step})
    assert (m["precision"], m["recall"], m["false_events"]) == (0.5, 0.5, 1)
    assert m["recall_by_type"] == {"spike": 0.0, "dip": 1.0}
    assert m["false_per_1000_points"] == 10.0


def test_rolling_z_rule_flags_a_spike_and_uses_only_the_past():
    ts = pd.date_range("2024-01-01", periods=200, freq="h")
    v = 100 + np.random.default_rng(0).normal(0, 1, 200)
    v[150] = 130
    flags = se.rolling_z_flags(pd.DataFrame({"ts": ts, "value": v}), "1h")
    assert flags[150] and flags.sum() <= 3
    v2 = v.copy()
    v2[151:] = 1000  # the future cannot change a past flag
    assert (se.rolling_z_flags(pd.DataFrame({"ts": ts, "value": v2}), "1h")[:151] == flags[:151]).all()
