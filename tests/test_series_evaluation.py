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
    m = se.metrics(events, labels, {"a": 100}, {"a": se.TOLERANCE_STEPS * step})
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


NEW_CADENCES = ["month", "7D", "10s", "positions"]


def test_the_first_three_cadences_keep_their_old_sizes():
    # (points, cycle, warm-up points, rolling z window) as they were in days before the cadence table
    assert {f: (c.points, c.period, c.warmup, c.z_window) for f, c in se.CADENCES.items() if f in se.FREQUENCIES} == {
        "5min": (5760, 288, 1152, 288), "1h": (1440, 24, 336, 24), "1D": (730, 7, 112, 28)}
    for f, (days, warmup_days) in se.FREQUENCIES.items():
        c = se.CADENCES[f]
        assert c.warmup_days == warmup_days and c.warmup == int(pd.Timedelta(days=warmup_days) / c.step)
    assert se.run.__defaults__[2] == ("5min", "1h", "1D")


@pytest.mark.parametrize("shape", se.SHAPES)
@pytest.mark.parametrize("freq", NEW_CADENCES)
def test_new_cadences_have_their_length_step_and_labels_after_warmup(shape, freq):
    c = se.CADENCES[freq]
    s = se.make_series(shape, freq, seed=4)
    ts = s.frame["ts"]
    assert len(s.frame) == c.points and c.warmup_days is None
    steps = ts.diff().dropna()
    if freq == "month":
        assert (ts.dt.day == 1).all() and ((ts.dt.year * 12 + ts.dt.month).diff().dropna() == 1).all()
        assert ts.iloc[-1] - ts.iloc[0] == pd.Timestamp("2024-12-01") - pd.Timestamp("2005-01-01")  # 20 years
    else:
        assert (steps == c.step).all()
    assert sorted(s.labels["type"]) == sorted(se.ANOMALY_KINDS)
    assert (s.labels["start"] >= ts.iloc[c.warmup]).all()  # nothing planted in the warm-up
    assert (s.labels["end"] >= s.labels["start"]).all() and (s.labels["end"] <= ts.iloc[-1]).all()
    assert np.isfinite(s.frame["value"]).all()
    if freq == "positions":
        assert se.POSITION_CYCLES[0] <= s.period <= se.POSITION_CYCLES[1]
        rows = s.rows()
        assert rows["ts"].tolist() == [str(k) for k in range(1, c.points + 1)]  # plain integers, no unit
        assert (ts == se.EPOCH + pd.to_timedelta(np.arange(1, c.points + 1), unit="s")).all()
    else:
        assert s.period == c.period


def test_new_cadence_sizes():
    assert se.CADENCES["month"].points == 240 and se.CADENCES["month"].period == 12
    assert se.CADENCES["7D"].points == int(6 * 365.25 / 7) and se.CADENCES["7D"].warmup == 104
    assert (se.CADENCES["10s"].points, se.CADENCES["10s"].period, se.CADENCES["10s"].warmup) == (12000, 360, 3000)
    assert (se.CADENCES["positions"].points, se.CADENCES["positions"].warmup) == (2000, 500)


def test_positions_draw_their_own_cycle_and_pattern_break_lasts_one_cycle():
    periods = {se.make_series("seasonal_gaussian", "positions", seed).period for seed in range(12)}
    assert len(periods) > 3
    s = se.make_series("seasonal_gaussian", "positions", seed=7)
    pb = s.labels[s.labels["type"] == "pattern_break"].iloc[0]
    assert (pb["end"] - pb["start"]) / pd.Timedelta(seconds=1) == s.period - 1
    v = s.frame.set_index("ts")["value"]
    flat, before = v[pb["start"]:pb["end"]], v[:pb["start"]].iloc[-3 * s.period:-s.period]
    assert flat.std() < 0.6 * before.std()  # the cycle is gone, the noise stays


def test_weekly_and_monthly_cycles_follow_the_year():
    for freq, lag in (("month", 12), ("7D", 52)):
        x = se.make_series("student_t", freq, seed=2).frame["value"].to_numpy()[:se.CADENCES[freq].warmup]
        assert np.corrcoef(x[:-lag], x[lag:])[0, 1] > 0.5  # a yearly cycle: points a year apart move together


def test_step_positions_count_calendar_months_as_one_step():
    origin = pd.Timestamp("2005-01-01")
    ts = pd.Series(pd.to_datetime(["2005-01-01", "2005-02-01", "2005-03-01", "2006-01-01"]))
    assert (se.step_positions(ts, "month", origin) - se.EPOCH).dt.total_seconds().tolist() == [0, 1, 2, 12]
    ts = pd.Series(pd.date_range("2024-01-01", periods=4, freq="10s"))
    assert (se.step_positions(ts, "10s", ts[0]) - se.EPOCH).dt.total_seconds().tolist() == [0, 1, 2, 3]
    # Jul-Oct is 92 days, more than 3 nominal months (91.3 days), yet 3 steps: a hit at tolerance 3
    labels = pd.DataFrame({"brand": ["a"], "start": [pd.Timestamp("2005-07-01")], "end": [pd.Timestamp("2005-07-01")],
                           "type": ["spike"]})
    flagged_at = pd.Series([pd.Timestamp("2005-10-01")])
    lab = labels.assign(start=se.step_positions(labels["start"], "month", origin),
                        end=se.step_positions(labels["end"], "month", origin))
    events = se._events("a", se.step_positions(flagged_at, "month", origin), np.array([True]), pd.Timedelta(seconds=1))
    assert se.metrics(events, lab, {"a": 10}, {"a": se.TOLERANCE_STEPS * pd.Timedelta(seconds=1)})["recall"] == 1.0


def test_evaluate_series_accepts_the_new_cadences_and_lists_all_on_error(capsys):
    from advanced_anomaly_detection.cli import main

    assert main(["evaluate-series", "--freqs", "month,7min"]) == 2
    err = capsys.readouterr().err
    assert "7min" in err and all(f in err for f in se.CADENCES)
