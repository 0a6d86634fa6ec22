"""`aad score-series`: score any metric series with the generic detectors, one series per group.

read CSV/Parquet (file or directory)                                       [Spark]
  -> (series_id, ts, value) as strings
  -> groupBy(series_id).applyInPandas(generic_series.score_one)            [pure pandas per series]
  -> points Parquet at <output>, the per-series reports as JSON at <output>_summary.json
Each series' report travels in a `_report` column on one row of its output (an unusable series
emits only that row, with a null timestamp), so reports and points come from one pass.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from advanced_anomaly_detection import generic_series as gs
from advanced_anomaly_detection.config import Config
from advanced_anomaly_detection.errors import InputValidationError, UserError
from advanced_anomaly_detection.spark.io import path_exists, write_text

log = logging.getLogger(__name__)


def _schema_ddl() -> str:
    scores = ", ".join(f"score_{n} double" for n in gs.DETECTORS)
    return (
        "timestamp timestamp, series_id string, value double, is_filled boolean, expected_value double, "
        f"{scores}, ensemble_anomaly_score double, is_anomaly boolean, scoring_status string, {gs.TIME_NUMBER} double, "
        "_report string"
    )


def detect_format(path: str) -> str:
    p = path.rstrip("/").lower()
    if p.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return "csv"
    if p.endswith((".parquet", ".pq")):
        return "parquet"
    if os.path.isdir(path):  # a local directory: look at its data files
        names = [n.lower() for _, _, files in os.walk(path) for n in files if not n.startswith((".", "_"))]
        if any(n.endswith((".parquet", ".pq")) for n in names):
            return "parquet"
        if any(n.endswith((".csv", ".csv.gz", ".txt")) for n in names):
            return "csv"
    raise UserError(f"--input {path}: cannot tell CSV from Parquet by its name; pass --format csv|parquet")


def read_input(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    if not path_exists(spark, path):
        raise UserError(f"--input {path}: not found")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "csv":
        return spark.read.option("header", True).option("inferSchema", False).csv(path)
    return spark.read.parquet(path)


def select_columns(df: DataFrame, time_col: str, value_col: str, series_col: Optional[str]) -> DataFrame:
    wanted = [c for c in (time_col, value_col, series_col) if c]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise InputValidationError(
            f"input has no column(s) {missing}; columns are {df.columns} (use --time-col/--value-col/--series-col)"
        )
    sid = F.col(series_col).cast("string") if series_col else F.lit(value_col)
    return df.select(
        F.coalesce(sid, F.lit("<null>")).alias("series_id"),
        F.col(time_col).cast("string").alias("ts"),
        F.col(value_col).cast("string").alias("value"),
    )


def score(rows: DataFrame, cfg: Config, options: gs.SeriesOptions) -> DataFrame:
    def score_group(pdf: pd.DataFrame) -> pd.DataFrame:
        sid = str(pdf["series_id"].iloc[0])
        points, report = gs.score_one(pdf[["ts", "value"]].reset_index(drop=True), sid, cfg, options)
        if points.empty:  # unusable series: one carrier row for its report, all nulls
            points = pd.DataFrame({c: [None] for c in gs.empty_points().columns})
            points["series_id"] = sid
        points = points.reset_index(drop=True)
        points["_report"] = None
        points.loc[0, "_report"] = json.dumps(report, default=str)
        return points

    return rows.groupBy("series_id").applyInPandas(score_group, schema=_schema_ddl())


def run(spark: SparkSession, cfg: Config, input_path: str, output_path: str, time_col: str, value_col: str,
        series_col: Optional[str] = None, options: Optional[gs.SeriesOptions] = None,
        fmt: str = "auto") -> Dict[str, Any]:
    options = options or gs.SeriesOptions()
    rows = select_columns(read_input(spark, input_path, fmt), time_col, value_col, series_col)
    scored = score(rows, cfg, options).persist()
    try:
        reports: List[Dict[str, Any]] = [
            json.loads(r["_report"]) for r in scored.where(F.col("_report").isNotNull()).select("_report").collect()
        ]
        if not reports:
            raise InputValidationError(f"--input {input_path}: no rows")
        reports.sort(key=lambda r: str(r.get("series_id")))
        usable = [r for r in reports if r.get("status") != "unusable"]
        if not usable:
            if len(reports) == 1:
                raise UserError(reports[0]["message"])
            raise UserError(f"none of the {len(reports)} series is usable; first: {reports[0]['message']}")
        ran = [n for n in gs.DETECTORS if any(r["detectors"].get(n, {}).get("ok", 0) for r in usable)]
        cols = gs.POINT_COLUMNS + [f"score_{n}" for n in ran] + ["ensemble_anomaly_score", "is_anomaly", "scoring_status"]
        if any(r.get("time_read_as") in gs.NUMERIC_TIMES for r in usable):  # the input's own time numbers too
            cols.append(gs.TIME_NUMBER)
        out = scored.where(F.col("timestamp").isNotNull()).select(*cols)
        out.repartition("series_id").sortWithinPartitions("series_id", "timestamp").write.mode("overwrite").parquet(
            output_path
        )
    finally:
        scored.unpersist()
    summary = summarise(reports, ran, input_path, output_path)
    write_text(spark, summary["summary_path"], json.dumps(summary, indent=2, default=str))
    return summary


def summarise(reports: List[Dict[str, Any]], ran: List[str], input_path: str, output_path: str) -> Dict[str, Any]:
    usable = [r for r in reports if r.get("status") != "unusable"]

    def total(key: str) -> int:
        return int(sum(r.get(key, 0) for r in usable))

    bad: Dict[str, int] = {}
    for r in reports:
        for k, v in (r.get("bad_rows") or {}).items():
            bad[k] = bad.get(k, 0) + int(v)
    return {
        "input": input_path,
        "output": output_path,
        "summary_path": output_path.rstrip("/") + "_summary.json",
        "series": len(reports),
        "series_unusable": len(reports) - len(usable),
        "points": total("points"),
        "scored_points": total("scored_points"),
        "duplicates_merged": total("duplicates_merged"),
        "gaps_filled": total("gaps_filled"),
        "missing_points": total("missing_points"),
        "bad_rows": bad,
        "anomalies": total("anomalies"),
        "score_columns": [f"score_{n}" for n in ran],
        "per_series": reports,
    }
