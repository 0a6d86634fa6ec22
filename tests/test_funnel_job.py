"""The detection job end to end on local Spark: schema, row accounting, reruns, quarantine, a planted
anomaly flagged at the right hour, features by time."""
import datetime as dt
import json

import pandas as pd
import pytest

from advanced_anomaly_detection.config import load_config as _load_config
from advanced_anomaly_detection.data import synthetic
from advanced_anomaly_detection.errors import InputValidationError
from advanced_anomaly_detection.scoring import OUTPUT_SCHEMA
from advanced_anomaly_detection.spark import funnel_job
from advanced_anomaly_detection.spark.session import adaptive_cached_plans, groups_partitions, shuffle_partitions

# The plumbing is tested with the cheap baseline alone; tests/test_all_detectors_spark.py runs all five.
BASELINE_ONLY = [f"detectors.{d}.enabled=false" for d in ("prophet", "isolation_forest", "changepoint", "lstm")]


def load_config(path=None, overrides=()):
    return _load_config(path, [*BASELINE_ONLY, *overrides])


FIRST = dt.date(2026, 2, 2)
HISTORY_DAYS = 28
SCORED = [FIRST + dt.timedelta(days=HISTORY_DAYS), FIRST + dt.timedelta(days=HISTORY_DAYS + 1)]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("funnel")
    gold, labels = synthetic.generate_gold(
        14, FIRST, HISTORY_DAYS + 2, seed=11, n_anomalies=4,
        anomaly_start=SCORED[0], anomaly_end=dt.datetime.combine(SCORED[1], dt.time(23)),
    )
    synthetic.write_gold_parquet(gold, root / "gold")
    return root, gold, labels


@pytest.fixture(scope="module")
def first_run(spark, bench):
    root, gold, labels = bench
    cfg = load_config()
    summary = funnel_job.run(spark, cfg, str(root / "gold"), str(root / "out"), SCORED[0], SCORED[1])
    return summary, pd.read_parquet(root / "out")


def test_output_schema_and_row_accounting(first_run, bench):
    summary, out = first_run
    _, gold, _ = bench
    expected_cols = ["window_start", "window_date", *[c for c in OUTPUT_SCHEMA if c != "window_start"]]
    assert list(out.columns[: len(expected_cols) - 1]) == [c for c in expected_cols if c != "window_date"] or \
        set(expected_cols) == set(out.columns)
    scored_gold = gold[pd.to_datetime(gold["window_date"]).dt.date.isin(SCORED)]
    observed = out[~out["is_filled_hour"]]
    assert len(observed) == len(scored_gold)  # every input brand-hour of the scored dates, once
    assert not out.duplicated(["brand", "window_start"]).any()
    brands = gold["brand"].nunique()
    assert len(out) == brands * 48  # complete grid: absent hours appear as zero-count rows
    assert (out.loc[out["is_filled_hour"], ["views", "carts", "purchases"]] == 0).all().all()
    assert summary["row_accounting_ok"] and summary["output_rows"] == len(out)
    assert out["ensemble_anomaly_score"].between(0, 1).all()
    assert set(out["anomaly_severity"]) <= {"none", "low", "medium", "high", "critical"}
    assert (out["anomaly_severity"] != "none").eq(out["is_anomaly"]).all()
    assert out.loc[out["is_anomaly"], "anomaly_type"].isin(["drop", "spike", "changepoint"]).all()
    assert out.loc[out["is_anomaly"], "anomaly_confidence"].gt(0).all()
    assert out["baseline_anomaly_score"].notna().all()
    saved = json.loads(open(summary["summary_path"]).read())
    assert saved["run_id"] == summary["run_id"] and saved["output_rows"] == len(out)


def test_few_brands_get_few_scoring_tasks(spark, first_run):
    summary, _ = first_run
    # 14 brands, 25 a task at least, but one task per core of local[2]; the session's 4 is the ceiling
    assert summary["scoring_tasks"] == 2
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"  # restored after the run
    assert [groups_partitions(spark, n, 25) for n in (0, 1, 75, 10_000)] == [2, 2, 3, 4]
    coalesce = "spark.sql.adaptive.coalescePartitions.enabled"
    cached = "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning"
    assert spark.conf.get(coalesce) == "true" and spark.conf.get(cached) == "false"  # both restored after the run
    with pytest.raises(RuntimeError):
        with shuffle_partitions(spark, 1):
            # sized on purpose: AQE must not merge the scoring tasks back into one
            assert spark.conf.get("spark.sql.shuffle.partitions") == "1" and spark.conf.get(coalesce) == "false"
            raise RuntimeError("a failed job")
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4" and spark.conf.get(coalesce) == "true"
    with adaptive_cached_plans(spark):
        assert spark.conf.get(cached) == "true"
    assert spark.conf.get(cached) == "false"


def test_planted_anomaly_flagged_at_the_right_hour(first_run, bench):
    _, out = first_run
    _, _, labels = bench
    assert len(labels) >= 2
    found = 0
    for lab in labels.itertuples():
        hours = out[(out["brand"] == lab.brand) & out["window_start"].between(lab.start, lab.end)]
        found += bool(hours["is_anomaly"].any())
    assert found >= len(labels) - 1, labels
    flagged = out[out["is_anomaly"]]
    inside = 0
    for row in flagged.itertuples():
        lab = labels[labels["brand"] == row.brand]
        inside += bool(((lab["start"] - pd.Timedelta(hours=2) <= row.window_start)
                        & (row.window_start <= lab["end"] + pd.Timedelta(hours=2))).any())
    assert inside / max(len(flagged), 1) >= 0.8, flagged[["brand", "window_start", "anomaly_metric"]]


def test_alert_events_table(first_run, bench):
    summary, out = first_run
    root, _, labels = bench
    alerts = pd.read_parquet(summary["alerts_path"])
    assert len(alerts) == summary["alert_events"] >= 1
    assert alerts["hours"].sum() == out["is_anomaly"].sum()  # every flagged hour in exactly one event
    assert set(alerts["severity"]) <= {"low", "medium", "high", "critical"}
    assert (alerts["start"] <= alerts["end"]).all()
    assert set(alerts["brand"]) <= set(out.loc[out["is_anomaly"], "brand"])


def test_rerun_replaces_partitions(spark, first_run, bench):
    root, _, _ = bench
    before = first_run[1]
    summary = funnel_job.run(spark, load_config(), str(root / "gold"), str(root / "out"), SCORED[1], SCORED[1])
    after = pd.read_parquet(root / "out")
    assert len(after) == len(before)
    day2 = after[pd.to_datetime(after["window_start"]).dt.date == SCORED[1]]
    assert set(day2["run_id"]) == {summary["run_id"]}
    assert summary["rows_from_other_runs"] if "rows_from_other_runs" in summary else True


def test_bad_rows_are_quarantined_and_counted(spark, bench, tmp_path):
    root, gold, _ = bench
    day = gold[pd.to_datetime(gold["window_date"]).dt.date == SCORED[1]]
    big = day.sort_values("views").iloc[-1]
    bad = pd.concat([
        gold,
        pd.DataFrame([{**big.to_dict(), "views": big["views"] - 1}]),        # duplicate brand-hour
        pd.DataFrame([{**big.to_dict(), "brand": None}]),                     # null brand
        pd.DataFrame([{**big.to_dict(), "brand": "neg", "carts": -4}]),       # negative count
    ], ignore_index=True)
    bad.loc[bad.index[:5], "conversion_rate"] = 0.9                           # inconsistent rates
    synthetic.write_gold_parquet(bad, tmp_path / "gold")
    s = funnel_job.run(spark, load_config(), str(tmp_path / "gold"), str(tmp_path / "out"), SCORED[1], SCORED[1])
    q = s["quarantined_in_scored_dates"]
    assert (q["duplicate_brand_hour"], q["null_brand"], q["negative_count"]) == (1, 1, 1)
    assert s["rates_recomputed_from_counts"] == 5
    assert s["row_accounting_ok"]
    quarantine = pd.read_parquet(tmp_path / "out_quarantine")
    assert sorted(quarantine["quarantine_reason"]) == ["duplicate_brand_hour", "negative_count", "null_brand"]
    out = pd.read_parquet(tmp_path / "out")
    kept = out[(out["brand"] == big["brand"]) & (out["window_start"] == big["window_start"])]
    assert kept["views"].tolist() == [big["views"]]  # the fuller duplicate is the one kept


def test_missing_column_and_missing_table_are_clear(spark, bench, tmp_path):
    root, gold, _ = bench
    pd.DataFrame({"window_start": gold["window_start"].head(3), "brand": "x"}).assign(
        window_start=lambda d: d["window_start"].astype("datetime64[us]")
    ).to_parquet(tmp_path / "thin.parquet")
    with pytest.raises(InputValidationError, match=r"lacks required column\(s\) \['views', 'carts', 'purchases', 'revenue'\]"):
        funnel_job.run(spark, load_config(), str(tmp_path / "thin.parquet"), str(tmp_path / "o"), SCORED[0], SCORED[0])
    gold.head(50).to_parquet(tmp_path / "nanos.parquet")  # pandas' default: nanosecond timestamps
    with pytest.raises(InputValidationError, match="timestamps in nanoseconds"):
        funnel_job.run(spark, load_config(), str(tmp_path / "nanos.parquet"), str(tmp_path / "o"), SCORED[0], SCORED[0])
    with pytest.raises(InputValidationError, match="not found"):
        funnel_job.run(spark, load_config(), str(tmp_path / "nope"), str(tmp_path / "o"), SCORED[0], SCORED[0])


def test_lags_and_windows_are_by_time_across_gaps(spark):
    cfg = load_config(None, ["features.lags_hours=[1, 24]", "features.rolling_windows_hours=[3]"])
    hours = [0, 1, 2, 5, 24, 25]  # hours 3-4 and 6-23 absent
    rows = [("b", dt.datetime(2026, 3, 1) + dt.timedelta(hours=h), 10 + h, 1, 0, 0.0) for h in hours]
    df = spark.createDataFrame(rows, "brand string, window_start timestamp, views long, carts long, purchases long, revenue double")
    grid = funnel_job.complete_grid(df, dt.datetime(2026, 3, 2, 1))
    feats = funnel_job.add_features(grid, cfg).toPandas().set_index("window_start").sort_index()
    assert len(feats) == 26 and feats["is_filled_hour"].sum() == 20
    t = lambda h: dt.datetime(2026, 3, 1) + dt.timedelta(hours=h)  # noqa: E731
    assert feats.loc[t(24), "views_lag_24h"] == 10   # same hour yesterday, not 24 rows back
    assert feats.loc[t(25), "views_lag_24h"] == 11
    assert feats.loc[t(5), "views_lag_1h"] == 0      # the filled zero hour before it
    assert feats.loc[t(5), "views_roll_mean_3h"] == pytest.approx((12 + 0 + 0) / 3)
    assert pd.isna(feats.loc[t(0), "views_lag_1h"])
