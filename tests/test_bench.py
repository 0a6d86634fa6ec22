"""A tiny `aad bench` through bench.run in the shared session: every figure lands in the JSON."""
import json

import pytest

from advanced_anomaly_detection import bench

SCENARIO_FIELDS = {
    "scenario", "kind", "brands", "history_days", "days_scored", "detectors", "session_warm", "wall_s",
    "job_elapsed_s", "s_per_brand", "s_per_brand_day", "rows_read", "rows_per_s", "output_rows", "brands_scored",
    "anomalies", "driver_start_rss_mb", "driver_peak_rss_mb", "jvm_peak_rss_mb", "workers_peak_rss_sum_mb",
    "workers_peak_rss_max_mb", "workers_peak_count", "python_workers_alive_at_start", "cpu_s", "cpu_utilisation",
    "loadavg_before", "loadavg_after", "scoring_tasks",
}
DETECTOR_FIELDS = {"detector", "brands", "fit_wall_s", "fit_cpu_s", "score_wall_s", "score_cpu_s", "total_wall_s",
                   "total_cpu_s", "max_total_wall_s", "statuses"}
SEED_FIELDS = {"detector", "seed_setting", "brands_timed", "ours_wall_s_per_brand", "ours_cpu_s_per_brand",
               "seed_wall_s_per_brand", "seed_cpu_s_per_brand", "ratio_ours_over_seed", "speedup", "ratio_with_training"}
TARGETS = ("nightly 1,000 brands", "time per brand flat", "driver memory flat", "LSTM training",
           "changepoint >= 10x faster", "prophet >= 10x faster")


@pytest.fixture(scope="module")
def result(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    options = bench.BenchOptions(brands=[3, 6], history_days=20, backfill_days=2, backfill_brands=3,
                                 reuse_night_brands=3, detector_sample=2, seed_sample=1,
                                 detectors=["baseline", "prophet", "changepoint"],
                                 out=str(out), seed_budget_s=30.0)
    res = bench.run(spark, options)
    path = bench.write_json(res, str(out))
    return res, json.loads(path.read_text()), out


def test_json_has_every_field(result):
    res, loaded, out = result
    assert loaded["date"] and loaded["total_seconds"] > 0
    m = loaded["machine"]
    assert m["cpu_count"] >= 1 and len(m["loadavg_start"]) == 3 and len(m["loadavg_end"]) == 3
    assert m["python"].count(".") == 2 and m["spark"]
    assert loaded["memory_method"] and loaded["options"]["brands"] == [3, 6]

    scenarios = loaded["scenarios"]
    assert [(s["kind"], s["brands"], s["days_scored"]) for s in scenarios] == [
        ("nightly", 3, 1), ("nightly_reuse", 3, 1), ("nightly", 6, 1), ("backfill", 3, 2)]
    # the second night scores with the Prophet fits the first night kept
    # (all but the brands whose refit night it is: saved_fits.is_refit_night)
    assert scenarios[0]["fits_new"] == {"prophet": 3}
    assert scenarios[1]["fits_reused"]["prophet"] + scenarios[1]["fits_new"]["prophet"] == 3
    assert scenarios[1]["fits_reused"]["prophet"] >= 1
    assert scenarios[0]["scoring_tasks"] == 2  # 3 brands: one task per core of local[2]
    for s in scenarios:
        assert SCENARIO_FIELDS <= set(s), SCENARIO_FIELDS - set(s)
        assert s["wall_s"] > 0 and s["rows_read"] > 0 and s["rows_per_s"] > 0
        assert s["brands_scored"] == s["brands"] and s["output_rows"] == 24 * s["brands"] * s["days_scored"]
        assert s["driver_peak_rss_mb"] > 0 and s["jvm_peak_rss_mb"] > 0  # the JVM is found among our children
        assert s["workers_peak_rss_sum_mb"] >= s["workers_peak_rss_max_mb"] > 0  # applyInPandas ran workers
        assert s["detectors"] == ["baseline", "prophet", "changepoint"]
        assert s["cpu_s"] > 0 and 0 < s["cpu_utilisation"] <= 1.5
    assert scenarios[1]["session_warm"] is True  # the first run warmed the session
    assert loaded["training"] == []  # no LSTM selected
    assert loaded["scaling"]["marginal_s_per_brand"] is not None

    assert [d["detector"] for d in loaded["detectors"]] == ["baseline", "prophet", "changepoint"]
    for d in loaded["detectors"]:
        assert DETECTOR_FIELDS <= set(d), DETECTOR_FIELDS - set(d)
        assert d["brands"] == 2 and d["fit_wall_s"] > 0 and d["score_wall_s"] > 0
        assert d["statuses"] == {"ok": 2}
    prophet = loaded["detectors"][1]
    assert prophet["refit_days"] == 7 and 0 < prophet["reuse_wall_s"] < prophet["total_wall_s"]
    # a refit night and six nights of reuse, averaged
    assert prophet["nightly_wall_s"] == pytest.approx((prophet["total_wall_s"] + 6 * prophet["reuse_wall_s"]) / 7)

    seeds = {s["detector"]: s for s in loaded["seed_comparison"]}  # baseline has no seed setting
    assert set(seeds) == {"prophet", "changepoint"}
    for seed in seeds.values():
        assert SEED_FIELDS <= set(seed) and seed["brands_timed"] == 1
        assert seed["seed_wall_s_per_brand"] > 0 and seed["ratio_ours_over_seed"] > 0
    assert seeds["prophet"]["ratio_refit_night"] > seeds["prophet"]["ratio_ours_over_seed"]
    assert seeds["changepoint"]["ratio_refit_night"] == seeds["changepoint"]["ratio_ours_over_seed"]
    assert "baseline" in loaded["seed_comparison_skipped"]

    names = [t["target"] for t in loaded["targets"]]
    for prefix in TARGETS:
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    for t in loaded["targets"]:
        assert {"target", "value", "limit", "unit", "status", "basis"} <= set(t)
        assert t["status"] in ("pass", "fail", "n/a")
    lstm = next(t for t in loaded["targets"] if t["target"].startswith("LSTM"))
    assert lstm["status"] == "n/a"
    # generated tables and job outputs are removed unless asked to keep them
    assert [p.name for p in out.iterdir() if p.name.startswith("work_")] == []


def test_report_has_a_line_per_scenario_and_detector(result):
    res, _, _ = result
    text = bench.format_report(res)
    for s in res["scenarios"]:
        assert s["scenario"] in text
    assert "changepoint" in text and "ours/seed" in text
    assert "PASS" in text or "FAIL" in text


def test_command_parses_and_rejects_unknown_detector(tmp_path):
    import argparse

    from advanced_anomaly_detection import bench_commands
    from advanced_anomaly_detection.errors import UserError

    parser = argparse.ArgumentParser()
    bench_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick", "--brands", "2,4", "--detectors", "baseline,nope",
                              "--out", str(tmp_path)])
    assert args.brands == [2, 4] and args.quick
    with pytest.raises(UserError, match="nope"):
        args.handler(args)
    opts = bench.quick_options(brands=[2, 4])
    assert opts.history_days == 30 and opts.brands == [2, 4] and opts.lstm_epochs == 1


def test_a_failing_scenario_is_recorded_not_raised(spark, tmp_path):
    import datetime as dt

    from advanced_anomaly_detection.config import load_config

    row = bench._run_job(spark, load_config(), str(tmp_path / "no_such_gold"), str(tmp_path / "out"),
                         dt.date(2026, 2, 1), dt.date(2026, 2, 1), {}, "nightly 5 brands x 1 day", 5, True, 20)
    assert "gold table not found" in row["error"] and row["s_per_brand"] is None and row["wall_s"] >= 0
    result = {"scenarios": [row], "training": [], "scaling": bench._linear_fit([]), "seed_comparison": [],
              "config": {"lstm_configured_epochs": 3}}
    targets = bench.evaluate_targets(result, bench.BenchOptions(brands=[5], detectors=["baseline"]))
    assert targets[-1]["target"] == "every scenario ran" and targets[-1]["status"] == "fail"


def test_lstm_training_extrapolation_scales_only_the_epochs_by_the_epoch_count():
    """A one-epoch bench training: reading and windowing the data happen once, the epochs three times."""
    from advanced_anomaly_detection import bench

    result = {
        "scenarios": [], "seed_comparison": [],
        "scaling": {"marginal_s_per_brand": None, "fixed_overhead_s": None, "sizes": []},
        "training": [{"scenario": "LSTM training on 500 brands x 90 days", "brands": 500, "history_days": 90,
                      "windows": 16000, "fit_s": 50.0, "epochs": 1, "wall_s": 100.0, "error": None}],
        "config": {"lstm": {"max_training_brands": 1000, "windows_per_brand": 32}, "lstm_configured_epochs": 3},
    }
    targets = {t["target"]: t for t in bench.evaluate_targets(result, bench.BenchOptions())}
    lstm = targets["LSTM training 1,000 brands x 90 days: wall"]
    assert lstm["value"] == pytest.approx(2 * (50.0 + 3 * 50.0))  # twice the windows; data once, 3 epochs
