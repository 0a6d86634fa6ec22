"""Raw events -> bronze/silver/gold on local Spark (integration; uses the session `spark` fixture)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from advanced_anomaly_detection.data.events import generate_events, write_events_csv
from advanced_anomaly_detection.data.synthetic import generate_gold, make_brands
from advanced_anomaly_detection.errors import InputValidationError
from advanced_anomaly_detection.schema import GOLD_COLUMNS
from advanced_anomaly_detection.spark import gold_build

START, DAYS, SEED = "2019-10-01", 3, 7
REPO = Path(__file__).resolve().parents[1]


def _job_main(argv):
    """What `python jobs/build_gold_funnel.py ARGS` runs (the job is a thin wrapper over the CLI)."""
    from advanced_anomaly_detection.cli import main

    return main(["build-gold", *argv])


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("gold_build")
    brands = make_brands(5, SEED, log10_views_min=0.7, log10_views_max=np.log10(3000))
    events, _ = generate_events(5, START, DAYS, seed=SEED, brands=brands, anomaly_start=START, n_anomalies=2)
    model, _ = generate_gold(5, START, DAYS, seed=SEED, brands=brands, anomaly_start=START, n_anomalies=2)
    raw = write_events_csv(events, root / "raw")
    out = root / "lake"
    summary = gold_build.run(spark, str(raw), str(out))
    return dict(root=root, raw=raw, out=out, events=events, model=model, brands=brands, summary=summary)


def _gold(spark, out):
    return spark.read.parquet(str(out / gold_build.GOLD_TABLE))


def _expected_gold(events: pd.DataFrame) -> pd.DataFrame:
    """The gold table computed independently in pandas from the raw events."""
    ev = events.drop_duplicates(["event_time", "user_id", "user_session", "product_id", "event_type"]).copy()
    parsed = pd.to_datetime(ev["event_time"], format="%Y-%m-%d %H:%M:%S UTC", errors="coerce")
    ev = ev[parsed.notna()]
    ev["brand"] = ev["brand"].str.strip().str.lower().replace("", np.nan)
    ev = ev[ev["brand"].notna() & ev["event_type"].isin(["view", "cart", "purchase"])]
    ev["hour"] = ev["event_time"].str[:13] + ":00:00"
    ev["valid_revenue"] = np.where((ev["event_type"] == "purchase") & (ev["price"] > 0), ev["price"], 0.0)
    g = ev.groupby(["hour", "brand"]).agg(
        views=("event_type", lambda s: int((s == "view").sum())),
        carts=("event_type", lambda s: int((s == "cart").sum())),
        purchases=("event_type", lambda s: int((s == "purchase").sum())),
        revenue=("valid_revenue", "sum"),
    )
    return g.reset_index()


def test_gold_schema_and_types(spark, built):
    gold = _gold(spark, built["out"])
    assert [f.name for f in gold.schema.fields] == list(GOLD_COLUMNS)
    assert {f.name: f.dataType.typeName() for f in gold.schema.fields} == GOLD_COLUMNS
    assert sorted(p.name for p in (built["out"] / gold_build.GOLD_TABLE).iterdir() if p.is_dir()) == [
        "window_date=2019-10-01",
        "window_date=2019-10-02",
        "window_date=2019-10-03",
    ]


def test_gold_counts_match_pandas_and_model_in_utc(spark, built):
    gold = _gold(spark, built["out"])
    got = gold.select(
        F.date_format("window_start", "yyyy-MM-dd HH:mm:ss").alias("hour"),
        F.date_format("window_end", "yyyy-MM-dd HH:mm:ss").alias("end"),
        F.date_format("window_date", "yyyy-MM-dd").alias("date"),
        "brand", "views", "carts", "purchases", "revenue",
        "view_to_cart_rate", "cart_to_purchase_rate", "conversion_rate",
    ).toPandas().sort_values(["hour", "brand"]).reset_index(drop=True)
    want = _expected_gold(built["events"]).sort_values(["hour", "brand"]).reset_index(drop=True)
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(
        got[["hour", "brand", "views", "carts", "purchases"]], want[["hour", "brand", "views", "carts", "purchases"]],
        check_dtype=False,
    )
    np.testing.assert_allclose(got["revenue"], want["revenue"], atol=0.011)
    # Hours are UTC: window_end one hour later, window_date the UTC date of the hour.
    assert (pd.to_datetime(got["end"]) - pd.to_datetime(got["hour"]) == pd.Timedelta(hours=1)).all()
    assert (got["date"] == got["hour"].str[:10]).all()
    np.testing.assert_allclose(got["conversion_rate"], np.where(got["views"] > 0, got["purchases"] / got["views"].clip(lower=1), 0))
    np.testing.assert_allclose(got["cart_to_purchase_rate"], np.where(got["carts"] > 0, got["purchases"] / got["carts"].clip(lower=1), 0))
    # Dirt removed, the model's hourly counts come back exactly (so labels still hold).
    model = built["model"].assign(hour=lambda m: m["window_start"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    model = model.sort_values(["hour", "brand"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[["hour", "brand", "views", "carts", "purchases"]], model[["hour", "brand", "views", "carts", "purchases"]],
        check_dtype=False,
    )


def test_summary_counts_dirt_and_brands_are_normalised(spark, built):
    s, rep, events = built["summary"], built["events"].attrs["dirty_report"], built["events"]
    assert s["rows"]["input"] == len(events) == s["rows"]["bronze"]
    assert s["duplicates_removed"] == rep["duplicates"]
    assert s["dq"]["unparseable_time"] == rep["unparseable_time"] == s["quarantined"]["unparseable_time"]
    assert s["dq"]["missing_brand"] == rep["null_brand"] == s["quarantined"]["missing_brand"]
    assert s["dq"]["bad_price"] == rep["bad_price"]
    assert s["rows"]["silver"] == len(events) - rep["duplicates"] - rep["unparseable_time"]
    assert s["gold"]["first_date"] == "2019-10-01" and s["gold"]["last_date"] == "2019-10-03"
    json.dumps(s)  # the job prints it
    silver = spark.read.parquet(str(built["out"] / gold_build.SILVER_TABLE))
    raw_brands = {r[0] for r in silver.select("brand_raw").distinct().collect() if r[0]}
    assert any(b != b.strip().lower() for b in raw_brands)  # the dirt was there...
    # (gold brands equal the model's lowercase names: see test_gold_counts_match_pandas_and_model_in_utc)
    bronze = spark.read.parquet(str(built["out"] / gold_build.BRONZE_TABLE))
    row = bronze.agg(
        F.sum(F.col("dq_unparseable_time").cast("int")).alias("flagged"),
        F.sum(F.col("event_date").isNull().cast("int")).alias("null_date"),
    ).first()
    assert row["flagged"] == row["null_date"] == rep["unparseable_time"]


def test_rerun_replaces_partitions_never_duplicates(spark, built, capsys):
    out = built["out"]
    tables = (gold_build.BRONZE_TABLE, gold_build.SILVER_TABLE, gold_build.GOLD_TABLE)
    before = {t: spark.read.parquet(str(out / t)).count() for t in tables}
    gold_before = _gold(spark, out).toPandas()
    # Rerun days 2-3 through the job entry point (reuses the active session): those partitions are
    # replaced, day 1 is untouched, nothing is appended.
    summary_file = built["root"] / "summary.json"
    argv = ["--raw", str(built["raw"]), "--output-root", str(out), "--start", "2019-10-02", "--end", "2019-10-03"]
    assert _job_main(argv + ["--summary-json", str(summary_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(summary_file.read_text()) == printed
    assert printed["out_of_range"] > 0
    assert 0 < printed["rows"]["gold"] < before[gold_build.GOLD_TABLE]
    assert printed["gold"]["first_date"] == "2019-10-02"
    after = {t: spark.read.parquet(str(out / t)).count() for t in tables}
    assert after == before
    gold_after = _gold(spark, out).toPandas()
    key = ["window_start", "brand"]
    pd.testing.assert_frame_equal(
        gold_after.sort_values(key).reset_index(drop=True), gold_before.sort_values(key).reset_index(drop=True)
    )


def test_user_errors(spark, built, tmp_path, capsys):
    with pytest.raises(InputValidationError, match="not found"):
        gold_build.run(spark, str(tmp_path / "nope"), str(tmp_path / "lake"))
    bad = built["events"].drop(columns=["brand", "user_session"]).head(50)
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    with pytest.raises(InputValidationError, match=r"\['brand', 'user_session'\]"):
        gold_build.run(spark, str(bad_path), str(tmp_path / "lake"))
    assert _job_main(["--raw", str(tmp_path / "nope"), "--output-root", str(tmp_path / "lake")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("aad build-gold: error: raw input path not found")
    assert _job_main(["--raw", str(bad_path), "--output-root", str(tmp_path / "lake"), "--start", "2019-99-01"]) == 2


def test_detect_format(tmp_path):
    (tmp_path / "pq").mkdir()
    (tmp_path / "pq" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "part-00000.csv").write_text("a\n")
    assert gold_build.detect_format(str(tmp_path / "pq")) == "parquet"
    assert gold_build.detect_format(str(tmp_path / "csv")) == "csv"
    assert gold_build.detect_format("gs://bucket/events.parquet") == "parquet"
    assert gold_build.detect_format("gs://bucket/2019-Oct.csv") == "csv"


def test_generated_gold_parquet_reads_in_spark_with_gold_types(spark, tmp_path):
    from advanced_anomaly_detection.data.synthetic import write_gold_parquet

    gold, _ = generate_gold(4, START, 2, seed=1, anomalies=False)
    path = write_gold_parquet(gold, tmp_path / "gold")
    df = spark.read.parquet(str(path))
    assert {f.name: f.dataType.typeName() for f in df.schema.fields} == GOLD_COLUMNS
    got = (
        df.select(F.date_format("window_start", "yyyy-MM-dd HH:mm:ss").alias("ws"), "brand", "views", "window_date")
        .toPandas()
        .sort_values(["ws", "brand"])
        .reset_index(drop=True)
    )
    want = gold.assign(ws=gold["window_start"].dt.strftime("%Y-%m-%d %H:%M:%S")).sort_values(["ws", "brand"])
    assert got["ws"].tolist() == want["ws"].tolist()  # UTC wall-clock hours survive the round trip
    assert got["views"].tolist() == want["views"].tolist()
    assert got["window_date"].tolist() == want["window_date"].tolist()
