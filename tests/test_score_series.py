"""`aad score-series`: generic series cleaning, walk-forward scoring, Spark fan-out and CLI messages."""
import json

import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection import generic_series as gs
from advanced_anomaly_detection.config import Config, load_config
from advanced_anomaly_detection.errors import UserError

FAST = load_config(overrides=["detectors.prophet.enabled=false"])  # Spark tests: Prophet is the slow part


def _series(freq: str, days: int, level=100.0, amp=0.4, noise=0.05, seed=0, start="2024-03-04"):
    """Positive series with a daily cycle (sub-daily) or a weekly cycle (daily) and relative noise."""
    ts = pd.date_range(start, periods=int(days * pd.Timedelta("1D") / pd.Timedelta(freq)), freq=freq)
    rng = np.random.default_rng(seed)
    if freq == "1D":
        season = 1 + amp * (ts.dayofweek.to_numpy() >= 5)
    else:
        frac = (ts.hour.to_numpy() * 60 + ts.minute.to_numpy()) / 1440.0
        season = 1 + amp * np.sin(2 * np.pi * frac)
    v = level * season * np.exp(rng.normal(0, noise, len(ts)))
    return ts, v


def _rows(ts, v) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.Series(ts).astype(str), "value": pd.Series(v).astype(str)})


def _flagged(points: pd.DataFrame) -> set:
    return set(np.flatnonzero(points["is_anomaly"].fillna(False).to_numpy(bool)))


def _check_found(points, planted, max_false, slack=0):
    flagged = _flagged(points)
    near = {i + d for i in planted for d in range(-slack, slack + 1)}
    assert set(planted) <= flagged, f"missed {sorted(set(planted) - flagged)}; flagged {sorted(flagged)}"
    # counted as alert events, as they reach people: neighbouring flagged points are one event, and an
    # event that touches a planted point (an alarm held a little past it) is not a false one
    runs, run = [], []
    for p in sorted(flagged):
        if run and p - run[-1] > 1:
            runs.append(run)
            run = []
        run.append(p)
    runs += [run] if run else []
    false = [r for r in runs if not near & set(r)]
    assert len(false) <= max_false, f"false alarms at {false}"
    # scores come from every detector that ran, calibrated to [0, 1]
    scored = points[points["scoring_status"] == gs.SCORED]
    for c in [c for c in points.columns if c.startswith("score_")]:
        s = scored[c].dropna()
        assert s.between(0, 1).all()
    return flagged


# --------------------------------------------------------------------------------------------------
# planted anomalies, pure pandas (all four detectors, Prophet included)
# --------------------------------------------------------------------------------------------------
def test_hourly_planted_spike_and_dip_found():
    ts, v = _series("1h", 16)
    v[300] *= 1.8  # spike
    v[380:384] *= 0.5  # 4-hour dip
    points, rep = gs.score_one(_rows(ts, v), "shop", Config(), gs.SeriesOptions())
    assert rep["frequency"] == "1h" and rep["status"] == "ok"
    _check_found(points, [300, 380, 381, 382, 383], max_false=3, slack=1)
    assert rep["detectors"]["lstm"] == {"not_applicable": 1}
    assert all(rep["detectors"][n].get("ok") for n in gs.DETECTORS)
    # warm-up is reported, never scored
    warm = points["scoring_status"] == gs.WARMUP
    assert warm.sum() == rep["scoring_status"][gs.WARMUP] > 0 and points.loc[warm, "ensemble_anomaly_score"].isna().all()
    assert np.isfinite(points.loc[300, "expected_value"]) and points.loc[300, "expected_value"] < v[300] / 1.4


def test_five_minute_cost_per_click_with_train_until():
    ts, v = _series("5min", 5, level=0.8, amp=0.3, noise=0.04, seed=1)
    v[1300] *= 2.0
    v[1350:1356] *= 0.6
    rows = _rows(ts, v).rename(columns={})
    opts = gs.SeriesOptions(train_until=ts[1151])  # 4 days of training
    points, rep = gs.score_one(rows, "cpc", Config(), opts)
    assert rep["frequency"] == "5min"
    assert (points["scoring_status"].iloc[:1152] == gs.TRAINING).all()
    assert (points["scoring_status"].iloc[1152:] == gs.SCORED).all()
    _check_found(points, [1300, 1350, 1351, 1352, 1353, 1354, 1355], max_false=3, slack=2)


def test_daily_revenue_walk_forward_weekly_blocks():
    ts, v = _series("1D", 126, level=5000, amp=0.5, noise=0.05, seed=2)
    v[100] *= 2.2
    v[118] *= 0.3
    points, rep = gs.score_one(_rows(ts, v), "revenue", Config(), gs.SeriesOptions())
    assert rep["frequency"] == "1D" and "per week" in rep["mode"]
    _check_found(points, [100, 118], max_false=2)
    # blocks are whole weeks: the first scored point is a Monday
    first = points.loc[points["scoring_status"] == gs.SCORED, "timestamp"].iloc[0]
    assert first.dayofweek == 0


# --------------------------------------------------------------------------------------------------
# cleaning: gaps, duplicates, bad rows, frequency
# --------------------------------------------------------------------------------------------------
def test_gaps_duplicates_and_bad_rows_reported_and_filled_points_not_scored():
    ts, v = _series("1h", 10, seed=3)
    rows = _rows(ts, v)
    rows = rows.drop(index=list(range(200, 205))).reset_index(drop=True)  # 5 missing hours
    dups = rows.iloc[[100, 101, 150]].copy()
    dups["value"] = (dups["value"].astype(float) + 2.0).astype(str)  # merged by the mean
    bad = pd.DataFrame({"ts": ["not a time", "", ts[210].isoformat()], "value": ["1.0", "2.0", "n/a"]})
    rows = pd.concat([rows, dups, bad], ignore_index=True).sample(frac=1.0, random_state=0)
    points, rep = gs.score_one(rows, "s", FAST, gs.SeriesOptions())
    assert rep["points"] == len(ts) and rep["frequency"] == "1h"
    assert rep["gaps_filled"] == 5 and rep["duplicates_merged"] == 3 and rep["duplicate_timestamps"] == 3
    assert rep["bad_rows"] == {"missing_timestamp": 1, "unparseable_timestamp": 1, "non_numeric_value": 1,
                               "missing_value": 0}
    assert rep["bad_examples"]["non_numeric_value"] == ["n/a"]
    assert points.loc[100, "value"] == pytest.approx((v[100] + v[100] + 2.0) / 2)
    filled = points["is_filled"].to_numpy()
    assert filled.sum() == 5  # the n/a row shares hour 210 with its good row: the mean of one value
    gap = points.loc[200:204]
    assert gap["is_filled"].all() and gap["value"].isna().all()
    assert set(gap["scoring_status"]) <= {gs.FILLED, gs.WARMUP}
    assert gap[[c for c in points if c.startswith("score_")] + ["ensemble_anomaly_score"]].isna().all().all()
    assert gs.describe(rep).startswith("series 's': 240 points at 1h")


def test_off_grid_timestamps_snapped_and_frequency_inferred():
    ts, v = _series("15min", 4, seed=4)
    jitter = pd.to_timedelta(np.random.default_rng(0).integers(0, 30, len(ts)), unit="s")
    grid, rep = gs.clean_series(_rows(ts + jitter, v), "j", gs.SeriesOptions())
    assert rep["frequency"] == "15min" and len(grid) == len(ts) and rep["gaps_filled"] == 0
    assert (grid["timestamp"].to_numpy() == ts.to_numpy()).all()


@pytest.mark.parametrize(
    "rows, message",
    [
        (pd.DataFrame({"ts": ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00"], "value": ["a", "b", "c"]}),
         "no numeric value in 3 rows (e.g. 'a')"),
        (pd.DataFrame({"ts": ["yesterday", "soon", "later"], "value": ["1", "2", "3"]}),
         "no parseable timestamp in 3 rows (e.g. 'yesterday')"),
        (pd.DataFrame({"ts": ["2024-01-01 00:00"], "value": ["1"]}), "a single point in time"),
        (pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=20, freq="100ms").astype(str), "value": ["1"] * 20}),
         "median step 0.1 seconds: steps under one second are not supported"),
        (pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=20, freq="7D").astype(str), "value": ["1"] * 20}),
         "20 points at 7D (2024-01-01 00:00:00 .. 2024-05-13 00:00:00) is too short for walk-forward scoring: "
         "needs about 48 points of warm-up"),
        (pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=30, freq="1h").astype(str),
                       "value": np.arange(30.0).astype(str)}), "too short for walk-forward scoring"),
    ],
)
def test_unusable_series_clear_message(rows, message):
    with pytest.raises(UserError, match="series 'x'") as exc:
        grid, rep = gs.clean_series(rows, "x", gs.SeriesOptions())
        gs.score_grid(grid, rep, FAST, gs.SeriesOptions())
    assert message in str(exc.value) and "\n" not in str(exc.value)
    points, rep = gs.score_one(rows, "x", FAST, gs.SeriesOptions())  # never raises: a status instead
    assert points.empty and rep["status"] == "unusable" and message in rep["message"]


def test_walk_forward_does_not_look_ahead():
    ts, v = _series("1h", 9, seed=5)
    base, _ = gs.score_one(_rows(ts, v), "s", Config(), gs.SeriesOptions(warmup_days=3))
    v2 = v.copy()
    v2[-24:] *= 3.0  # change only the last day
    changed, _ = gs.score_one(_rows(ts, v2), "s", Config(), gs.SeriesOptions(warmup_days=3))
    cols = [c for c in base.columns if c.startswith("score_")] + ["ensemble_anomaly_score", "expected_value"]
    before = slice(0, len(ts) - 24)
    pd.testing.assert_frame_equal(base.iloc[before][cols], changed.iloc[before][cols])
    assert (base["scoring_status"].iloc[72:] == gs.SCORED).all()
    assert not np.allclose(base[cols[0]].iloc[-24:], changed[cols[0]].iloc[-24:])


# --------------------------------------------------------------------------------------------------
# Spark fan-out and the command line
# --------------------------------------------------------------------------------------------------
def test_many_series_through_spark(spark, tmp_path):
    from advanced_anomaly_detection.spark import series_job

    frames, planted = [], {}
    for k in range(5):
        ts, v = _series("1h", 10, level=50 * (k + 1), seed=10 + k)
        v[200 + k] *= 2.5
        planted[f"s{k}"] = ts[200 + k]
        frames.append(pd.DataFrame({"id": f"s{k}", "ts": ts, "value": v}))
    frames.append(pd.DataFrame({"id": "broken", "ts": ts[:5], "value": np.nan}))
    pd.concat(frames).to_parquet(tmp_path / "in.parquet", index=False, coerce_timestamps="us")
    out = str(tmp_path / "out")
    summary = series_job.run(spark, FAST, str(tmp_path / "in.parquet"), out, "ts", "value", "id",
                             gs.SeriesOptions(warmup_days=4))
    assert summary["series"] == 6 and summary["series_unusable"] == 1
    assert summary["score_columns"] == ["score_baseline", "score_isolation_forest", "score_changepoint"]
    res = pd.read_parquet(out)
    assert set(res["series_id"]) == set(planted) and len(res) == 5 * 10 * 24
    for sid, t in planted.items():
        r = res[res["series_id"] == sid]
        assert r.loc[r["timestamp"] == t, "is_anomaly"].item(), sid
    # Spark changes nothing: each series scores exactly as the pandas path scores it alone
    for k, sid in enumerate(planted):
        alone, _ = gs.score_one(frames[k][["ts", "value"]], sid, FAST, gs.SeriesOptions(warmup_days=4))
        got = res[res["series_id"] == sid].sort_values("timestamp").reset_index(drop=True)
        np.testing.assert_allclose(got["ensemble_anomaly_score"].to_numpy(float),
                                   alone["ensemble_anomaly_score"].to_numpy(float), rtol=1e-9, equal_nan=True)
        assert got["is_anomaly"].fillna(False).tolist() == alone["is_anomaly"].fillna(False).tolist(), sid
    # few alarms on the clean parts: 5 series x 6 scored days after only 4 days of history, and without
    # Prophet (left out here for speed; with it the same series give 3 false alarms, without it 9)
    assert res["is_anomaly"].fillna(False).sum() - len(planted) <= 10
    on_disk = json.loads(open(out + "_summary.json").read())
    assert on_disk["anomalies"] == summary["anomalies"] >= 5
    assert [r["status"] for r in on_disk["per_series"] if r["series_id"] == "broken"] == ["unusable"]


def _cli(monkeypatch, argv):
    from advanced_anomaly_detection import cli

    if "advanced_anomaly_detection.series_commands" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("advanced_anomaly_detection.series_commands",))
    return cli.main(argv)


def test_cli_plain_two_column_csv(spark, tmp_path, monkeypatch, capsys):
    ts, v = _series("1h", 6, seed=7)
    v[120] *= 3.0
    path = tmp_path / "cpc.csv"
    pd.DataFrame({"timestamp": ts, "value": v}).to_csv(path, index=False)
    out = str(tmp_path / "scored")
    rc = _cli(monkeypatch, ["score-series", "--input", str(path), "--output", out,
                            "--set", "detectors.prophet.enabled=false", "--set", "ensemble.threshold=0.999"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "score-series: 1 series (0 unusable), 144 points" in text and "at 1h" in text
    res = pd.read_parquet(out)
    assert list(res.columns)[:5] == ["timestamp", "series_id", "value", "is_filled", "expected_value"]
    assert {"ensemble_anomaly_score", "is_anomaly", "scoring_status"} <= set(res.columns)
    assert res.loc[res["timestamp"] == ts[120], "is_anomaly"].item()


@pytest.mark.parametrize(
    "content, extra, message",
    [
        ("timestamp,value\n2024-01-01 00:00,abc\n2024-01-01 01:00,def\n", [], "no numeric value in 2 rows"),
        ("timestamp,value\n2024-01-01 00:00,1.5\n", [], "a single point in time"),
        ("time,value\n2024-01-01 00:00,1.5\n", [], "input has no column(s) ['timestamp']"),
        ("timestamp,value\nnope,1\nnever,2\n", [], "no parseable timestamp"),
    ],
)
def test_cli_bad_input_one_line_error(spark, tmp_path, monkeypatch, capsys, content, extra, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    rc = _cli(monkeypatch, ["score-series", "--input", str(path), "--output", str(tmp_path / "o")] + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and "\n" not in err and err.startswith("aad score-series: error:")


def test_spike_after_a_level_shift_in_history_is_found():
    """A level shift in the fitted history must not widen the noise for everything after it."""
    from advanced_anomaly_detection.detectors import generic

    ts, v = _series("1h", 30, level=100.0, noise=0.03, seed=4)
    v[14 * 24:] *= 0.6  # traffic drops by 40% two weeks in and stays there
    spike_at = 27 * 24 + 14
    v[spike_at] *= 1.35  # ~ +10 noise sds on the new level
    frame = pd.DataFrame({"timestamp": ts, "value": v, "is_filled": False})
    history, scored = frame.iloc[: 27 * 24], frame.iloc[27 * 24 : 28 * 24]
    out = generic.GenericBaselineDetector(pd.Timedelta(hours=1), 48, 27 * 24).fit(history).score(scored)
    assert out["score"].idxmax() == spike_at
    assert out.loc[spike_at, "score"] > 0.999, out["score"].max()


def test_noise_scale_follows_the_daily_cycle():
    """Additive noise on a strong daily cycle is, on the log scale, four times wider in the trough than
    at the peak: a spike at the peak must not be judged against the trough's noise (nor the trough's
    noise raise alarms)."""
    from advanced_anomaly_detection.detectors import generic

    ts = pd.date_range("2024-03-04", periods=30 * 24, freq="1h")
    rng = np.random.default_rng(7)
    v = 200.0 + 120.0 * np.sin(2 * np.pi * (ts.hour.to_numpy() - 12) / 24.0) + rng.normal(0, 8.0, len(ts))
    peak = 27 * 24 + 18  # 18:00, where the cycle is at its highest (~320)
    v[peak] += 40.0  # 5 noise sds, +12%: in the trough the same +12% is barely one sd
    frame = pd.DataFrame({"timestamp": ts, "value": v, "is_filled": False})
    history = frame.iloc[: 27 * 24]
    det = generic.GenericBaselineDetector(pd.Timedelta(hours=1), 48, 27 * 24).fit(history)
    out = det.score(frame.iloc[27 * 24 :])
    assert out["score"].idxmax() == peak
    assert out.loc[peak, "score"] > 0.99, out.loc[peak, "score"]
    away = out["score"].drop(index=range(peak - 2, peak + 3))  # the 3- and 6-hour windows carry it on
    assert (away >= 0.99).sum() <= 1, away[away >= 0.99]


# --------------------------------------------------------------------------------------------------
# any cadence: other steps, calendar periods, numeric time columns (cadence.py)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, how, first",
    [
        (["1", "2", "3"], "positions", pd.Timestamp("1970-01-01 00:00:01")),
        (["1416726000", "1416729600", ""], "unix_seconds", pd.Timestamp("2014-11-23 07:00")),
        (["1.416726E9", "1.4167296E9"], "unix_seconds", pd.Timestamp("2014-11-23 07:00")),  # Spark's cast of a double
        (["1416726000000", "1416729600000"], "unix_milliseconds", pd.Timestamp("2014-11-23 07:00")),
        (["20240131", "20240229"], "yyyymmdd", pd.Timestamp("2024-01-31")),
        (["2024-01-31 10:00+01:00", "nope"], "datetime", pd.Timestamp("2024-01-31 09:00")),
    ],
)
def test_time_column_of_numbers_read_by_magnitude(raw, how, first):
    from advanced_anomaly_detection.cadence import read_times

    ts, read_as = read_times(pd.Series(raw))
    assert read_as == how and ts.iloc[0] == first


@pytest.mark.parametrize(
    "freq, periods, name, kind",
    [
        ("10s", 50, "10s", "points"), ("2min", 50, "2min", "intraday"), ("7min", 50, "7min", "points"),
        ("3h", 50, "3h", "intraday"), ("7D", 50, "7D", "points"), ("ME", 30, "month", "calendar"),
        ("QS", 30, "quarter", "calendar"), ("YE", 20, "year", "calendar"),
    ],
)
def test_cadence_inferred_for_any_regular_step(freq, periods, name, kind):
    ts = pd.date_range("2021-01-01", periods=periods, freq=freq)
    grid, rep = gs.clean_series(_rows(ts, np.arange(periods, dtype=float)), "c", gs.SeriesOptions())
    assert (rep["frequency"], rep["cadence"]) == (name, kind)
    assert len(grid) == periods and rep["gaps_filled"] == 0 and rep["duplicates_merged"] == 0
    if kind == "calendar":  # month-end dates snap to the start of their period
        assert (grid["timestamp"] == ts.to_period(name[0].upper()).start_time).all()


def test_detect_cycle_finds_cycles_and_not_trends():
    from advanced_anomaly_detection.detectors.generic import detect_cycle

    rng = np.random.default_rng(1)
    t = np.arange(1400)
    assert detect_cycle(10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 3, t.size), 2000) == 24
    assert detect_cycle(0.05 * t + 5 * np.sin(2 * np.pi * t / 50) + rng.normal(0, 1, t.size), 2000) == 50
    assert detect_cycle(3.0 * (t % 7 >= 5) + rng.normal(0, 1, t.size), 2000) == 7
    assert detect_cycle(np.cumsum(rng.normal(0, 1, t.size)), 2000) == 1  # a random walk
    assert detect_cycle(np.r_[np.zeros(700), np.full(700, 5.0)] + rng.normal(0, 1, t.size), 2000) == 1
    assert detect_cycle(rng.normal(0, 1, t.size), 2000) == 1
    # refined on the multiples: low Poisson counts on a 90-point cycle, 500 points
    pos = np.arange(500)
    counts = rng.poisson(10 * (1 + 0.6 * np.sin(2 * np.pi * pos / 90)))
    assert abs(detect_cycle(np.log1p(counts), 2000) - 90) <= 2


def test_positions_with_a_cycle_of_their_own():
    """A time column of plain positions (as in Yahoo's S5 A1 files): the cycle (30 points here: no
    calendar knows it) is found in the history, planted anomalies at known positions are found, and
    the output carries the input's positions."""
    rng = np.random.default_rng(3)
    pos = np.arange(1, 1601)
    v = 100 + 20 * np.sin(2 * np.pi * pos / 30) + rng.normal(0, 2, pos.size)
    v[1100] += 25  # a spike of 12 noise sds, a quarter of the cycle's swing
    v[1300:1303] -= 30  # a 3-point dip
    rows = pd.DataFrame({"ts": pos.astype(str), "value": v.astype(str)})
    points, rep = gs.score_one(rows, "a1", Config(), gs.SeriesOptions())
    assert rep["time_read_as"] == "positions" and rep["frequency"] == "positions" and rep["cadence"] == "points"
    assert rep["detectors"]["prophet"] == {"ok": sum(rep["detectors"]["baseline"].values())}
    assert (points[gs.TIME_NUMBER].to_numpy() == pos).all()
    _check_found(points, [1100, 1300], max_false=2, slack=2)
    assert "(positions 1 .. 1600)" in gs.describe(rep)
    # --train-until in the same numbers
    points, rep = gs.score_one(rows, "a1", FAST, gs.SeriesOptions(train_until=1000.0))
    assert rep["mode"] == "train_until 1000" and (points["scoring_status"].iloc[:1000] == gs.TRAINING).all()
    with pytest.raises(UserError, match="is a number, but series 'd' has date-times"):
        ts, v = _series("1h", 10)
        grid, rep = gs.clean_series(_rows(ts, v), "d", gs.SeriesOptions())
        gs.score_grid(grid, rep, FAST, gs.SeriesOptions(train_until=5.0))


def test_monthly_series_with_a_yearly_cycle():
    """20 years of month-end values with a yearly cycle and a trend: a dip at a known month is found,
    the yearly cycle raises no alarm, and every fit (Prophet on fewer than 100 points included) runs."""
    ts = pd.date_range("2000-01-31", periods=240, freq="ME")
    rng = np.random.default_rng(5)
    month = ts.month.to_numpy()
    v = (1000 + 3 * np.arange(240)) * (1 + 0.25 * np.sin(2 * np.pi * month / 12)) * np.exp(rng.normal(0, 0.02, 240))
    v[200] *= 0.75  # a month 25% down: ~12 noise sds
    points, rep = gs.score_one(_rows(ts, v), "m", Config(), gs.SeriesOptions())
    assert rep["frequency"] == "month" and rep["mode"].startswith("walk_forward per year")
    assert all(list(c) == ["ok"] for n, c in rep["detectors"].items() if n != "lstm"), rep["detectors"]
    _check_found(points, [200], max_false=2, slack=1)


@pytest.mark.parametrize("freq, n, at", [("10s", 12000, 9000), ("7D", 320, 250)])
def test_steps_without_a_calendar_cycle(freq, n, at):
    """Ten-second machine data and weekly data: no daily cycle is assumed; a spike is found."""
    ts = pd.date_range("2015-01-04", periods=n, freq=freq)
    rng = np.random.default_rng(9)
    v = 50 + rng.normal(0, 1, n)
    v[at] += 12
    points, rep = gs.score_one(_rows(ts, v), "x", FAST, gs.SeriesOptions())
    assert rep["frequency"] == freq and rep["cadence"] == "points"
    _check_found(points, [at], max_false=2, slack=1)


def test_cli_integer_time_column_and_bad_freq(spark, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(2)
    v = 10 + np.sin(np.arange(600) * 2 * np.pi / 24) + rng.normal(0, 0.1, 600)
    v[500] += 3
    path = tmp_path / "a1.csv"
    pd.DataFrame({"timestamp": np.arange(1, 601), "value": v, "is_anomaly": 0}).to_csv(path, index=False)
    rc = _cli(monkeypatch, ["score-series", "--input", str(path), "--output", str(tmp_path / "o"),
                            "--set", "detectors.prophet.enabled=false"])
    assert rc == 0 and "600 points at positions (positions 1 .. 600)" in capsys.readouterr().out
    res = pd.read_parquet(tmp_path / "o")
    flagged = res.loc[res["is_anomaly"].fillna(False).astype(bool), gs.TIME_NUMBER].tolist()
    assert 501.0 in flagged and all(501 <= f <= 507 for f in flagged), flagged  # a 30-sd spike may echo a little
    rc = _cli(monkeypatch, ["score-series", "--input", str(path), "--output", str(tmp_path / "o"), "--freq", "fortnight"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--freq 'fortnight': not a step" in err and "\n" not in err


def test_alarm_bar_follows_the_history_length_where_no_day_or_week_blocks():
    """A history of n points cannot vouch for a tail rarer than ~1 in n: 1 - 1/n within
    [series_threshold_floor, series_threshold]; intraday and daily series keep series_threshold."""
    cfg = Config()
    assert [gs._short_history_bar(n, cfg) for n in (60, 100, 500, 5000)] == pytest.approx([0.99, 0.99, 0.998, 0.999])
    ts = pd.date_range("2000-01-01", periods=120, freq="MS")
    v = 100 + np.random.default_rng(0).normal(0, 1, 120)
    grid, rep = gs.clean_series(_rows(ts, v), "m", gs.SeriesOptions())
    points, rep = gs.score_grid(grid, rep, FAST, gs.SeriesOptions())
    scored = points[points["scoring_status"] == gs.SCORED]
    # flagged exactly where the ensemble passes the bar of its block's history (48 .. 108 points here)
    hist = scored.index.to_numpy()  # walk-forward: a point's history is everything before its year
    years = pd.to_datetime(scored["timestamp"]).dt.year.to_numpy()
    first_of_year = {y: int(np.min(hist[years == y])) for y in set(years)}
    bars = np.array([gs._short_history_bar(first_of_year[y], FAST) for y in years])
    np.testing.assert_array_equal(scored["is_anomaly"].to_numpy(bool),
                                  scored["ensemble_anomaly_score"].to_numpy() >= bars)


def test_quarterly_series_short_history_no_alarm_from_an_overfitted_year():
    """15 years of quarters: the first scored year is fitted on 20 points, where Prophet's own yearly
    seasonality (20 parameters) would fit the noise and flag everything; its yearly terms are capped
    by what a year of quarters can carry."""
    rng = np.random.default_rng(0)
    ts = pd.date_range("1980-01-01", periods=60, freq="QS")
    v = 50 + 5 * np.tile([1, -1, 0.5, -0.5], 15) + rng.normal(0, 0.5, 60)
    v[50] -= 8
    points, rep = gs.score_one(_rows(ts, v), "q", Config(), gs.SeriesOptions())
    assert rep["frequency"] == "quarter" and rep["mode"] == "walk_forward per year, warm-up 20 points"
    _check_found(points, [50], max_false=1, slack=1)


def test_bridge_alarms():
    """Raised alarms are joined while the score stays above the lower bar between them; nothing is
    added before the first or after the last raised point; a missing score or a dip breaks a run."""
    raised = np.array([0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1], bool)
    score = np.array([.99, .9995, .99, .98, .9995, .99, .5, .9995, np.nan, .9995, .99, .9995])
    joined = gs._bridge_alarms(raised, score, np.full(12, 0.968))
    assert joined.astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1]


def test_level_shift_is_one_alert_event():
    """A lasting +30% shift at 5-minute steps: one unbroken run of flags from the shift, not a scatter of
    separate alerts while the evidence wavers about the bar until the next day's refit."""
    ts = pd.date_range("2024-03-04", periods=8 * 288, freq="5min")
    rng = np.random.default_rng(0)
    day = (ts.hour.to_numpy() * 60 + ts.minute.to_numpy()) / 1440.0
    v = 100 * (1 + 0.3 * np.sin(2 * np.pi * day)) * np.exp(rng.normal(0, 0.05, len(ts)))
    at = 6 * 288 + 144
    v[at:] *= 1.3
    points, _ = gs.score_one(_rows(ts, v), "s", load_config(), gs.SeriesOptions())
    flagged = np.flatnonzero(points["is_anomaly"].fillna(False).to_numpy(bool))
    assert flagged.size and flagged[0] == at, flagged[:10]
    assert (np.diff(flagged) == 1).all(), f"alerts broken up: {flagged}"


def test_history_ending_in_a_long_gap():
    """Real sensors go quiet: a history that ends in a three-day gap must not set the level to zero
    (every point after the gap looked extreme)."""
    ts, v = _series("5min", 12, seed=4)
    day = (pd.DatetimeIndex(ts) - pd.Timestamp(ts[0])).days
    keep = ~((day >= 6) & (day < 9))
    points, rep = gs.score_one(_rows(ts, v)[keep].reset_index(drop=True), "sensor", Config(), gs.SeriesOptions())
    assert rep["gaps_filled"] == 3 * 288
    after = points[(points["scoring_status"] == gs.SCORED) & (pd.to_datetime(points["timestamp"]) >= ts[9 * 288])]
    assert len(after) == 3 * 288
    assert not after["is_anomaly"].fillna(False).any(), after.loc[after["is_anomaly"].fillna(False), "timestamp"].tolist()
    ratio = after["expected_value"] / after["value"]
    assert ratio.between(0.8, 1.25).all(), ratio.describe()


def test_an_isolated_burst_of_readings_does_not_blank_a_slot():
    """Hourly readings with three silent days broken by four lone readings (10:00-13:00): those have too
    few neighbours for the cycle's centred median, and once made the slot-of-day profile NaN at those
    hours, so the baseline never scored 10:00-13:00 again."""
    ts, v = _series("1h", 20, seed=5)
    hour = pd.DatetimeIndex(ts).hour
    day = (pd.DatetimeIndex(ts) - pd.Timestamp(ts[0])).days
    keep = ~((day >= 5) & (day < 8) & ~((day == 6) & (hour >= 10) & (hour <= 13)))
    points, _ = gs.score_one(_rows(ts, v)[keep].reset_index(drop=True), "sensor", Config(), gs.SeriesOptions())
    scored = points[points["scoring_status"] == gs.SCORED]
    assert len(scored) >= 10 * 24
    assert scored["score_baseline"].notna().all() and scored["expected_value"].notna().all()


def test_a_constant_metric_is_scored_and_its_first_move_flagged():
    """A stuck or steady metric (a heartbeat, a count of servers): no detector can fit a history with no
    spread, but the baseline scores against the constant: equal values are normal, any other is flagged."""
    ts = pd.date_range("2014-04-01", periods=14 * 288, freq="5min")
    v = np.full(len(ts), 10.0)
    clean, rep = gs.score_one(_rows(ts, v), "flat", Config(), gs.SeriesOptions())
    assert rep["scoring_status"] == {gs.WARMUP: 4 * 288, gs.SCORED: 10 * 288} and rep["anomalies"] == 0
    assert rep["detectors"]["baseline"] == {"ok": 10}
    assert np.allclose(clean.loc[clean["scoring_status"] == gs.SCORED, "expected_value"], 10.0)
    v[3000] = 12.0
    v[3500:3510] = 0.0
    points, _ = gs.score_one(_rows(ts, v), "flat", Config(), gs.SeriesOptions())
    flagged = _flagged(points)
    assert {3000, 3500} <= flagged and min(flagged) == 3000, sorted(flagged)


@pytest.mark.parametrize("noise, kind", [("poisson", "sqrt"), ("additive", "identity"), ("proportional", "log"),
                                         ("level_flat", "log"), ("negative", "identity")])
def test_value_scale_follows_how_the_noise_grows_with_the_level(noise, kind):
    """Counts on a square root, proportional noise on log1p, additive noise as it is; where the level
    barely moves the slope cannot be told and log1p stays; negative values are never transformed."""
    from advanced_anomaly_detection.detectors.generic import ValueTransform

    rng = np.random.default_rng(0)
    t = np.arange(4000)
    level = 50 * (1.5 + np.sin(2 * np.pi * t / 288))  # 25 .. 125 over a day of 5-minute points
    v = {"poisson": lambda: rng.poisson(level).astype(float),
         "additive": lambda: level + rng.normal(0, 5, t.size),
         "proportional": lambda: level * np.exp(rng.normal(0, 0.1, t.size)),
         "level_flat": lambda: 50 + rng.normal(0, 5, t.size),
         "negative": lambda: level - 60 + rng.normal(0, 5, t.size)}[noise]()
    tr = ValueTransform(v)
    assert tr.kind_ == kind
    np.testing.assert_allclose(tr.inv(tr.fwd(np.abs(v))), np.abs(v), rtol=1e-9)  # round trip
