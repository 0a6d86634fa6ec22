"""Raw events -> bronze_events -> silver_events -> gold_funnel_hourly_brand (Parquet, on Spark).

- bronze_events: every input row (in the date range, plus rows whose time cannot be parsed), typed
  with ``try_cast``; ``event_time`` parsed as a UTC timestamp (the raw text kept in
  ``event_time_raw``), ``dq_unparseable_time``, ingestion columns; partitioned by ``event_date``
  (unparseable rows land in the null partition).
- silver_events: rows with a parsed time in the range; brand trimmed + lowercased (empty -> null),
  event_type normalised, data-quality flags, deduplicated on DEDUP_KEY; partitioned by ``event_date``.
- gold_funnel_hourly_brand: per UTC hour and brand, views / carts / purchases, revenue (sum of valid
  purchase prices) and funnel rates (0 when the denominator is 0); partitioned by ``window_date``.
  Rows with a missing brand or an unknown event type are excluded (counted as quarantined).

Every write is a dynamic partition overwrite: a rerun replaces the partitions it touches and never
appends duplicates.
"""
from __future__ import annotations

import datetime as _dt
import logging
import time
import uuid
from pathlib import Path
from typing import Dict, Optional, Tuple, Union
from urllib.parse import urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from advanced_anomaly_detection.errors import InputValidationError, UserError
from advanced_anomaly_detection.schema import EVENT_COLUMNS, EVENT_TYPES, GOLD_COLUMNS, RAW_EVENT_COLUMNS
from advanced_anomaly_detection.spark.io import write_partitioned

log = logging.getLogger(__name__)

BRONZE_TABLE = "bronze_events"
SILVER_TABLE = "silver_events"
GOLD_TABLE = "gold_funnel_hourly_brand"

# Raw column -> Spark SQL type it is cast to (try_cast: bad values become null and are flagged).
RAW_COLUMNS = RAW_EVENT_COLUMNS
REQUIRED_RAW_COLUMNS = ("event_time", "event_type", "product_id", "brand", "price", "user_id", "user_session")
FUNNEL_EVENT_TYPES = ("view", "cart", "purchase")
DEDUP_KEY = ("event_time", "user_id", "user_session", "product_id", "event_type")
# Accepted event_time layouts, tried in order (REES46 writes "2019-10-01 00:00:00 UTC").
TIME_FORMATS = ("yyyy-MM-dd HH:mm:ss z", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ssXXX", "yyyy-MM-dd'T'HH:mm:ss")
DQ_FLAGS = ("dq_missing_brand", "dq_bad_price", "dq_unknown_event_type", "dq_missing_id")

DateArg = Union[None, str, _dt.date]


# --------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------
def _is_local(path: str) -> bool:
    scheme = urlparse(str(path)).scheme
    return scheme in ("", "file") or (len(scheme) == 1)  # "C:" on Windows


def _local(path: str) -> Path:
    return Path(urlparse(str(path)).path if str(path).startswith("file:") else str(path))


def validate_raw_path(raw_path: str) -> None:
    """Fail fast (before Spark starts) on a local input path that does not exist."""
    if _is_local(raw_path) and not _local(raw_path).exists():
        raise InputValidationError(f"raw input path not found: {raw_path}")


def detect_format(raw_path: str) -> str:
    """'parquet' for a .parquet file or a directory holding .parquet files, else 'csv'."""
    text = str(raw_path).rstrip("/")
    if text.endswith(".parquet"):
        return "parquet"
    if text.endswith((".csv", ".csv.gz", ".csv.bz2")):
        return "csv"
    if _is_local(text):
        p = _local(text)
        if p.is_dir():
            for f in p.rglob("*"):
                if f.suffix == ".parquet" or (f.is_file() and f.name.startswith("part-") and ".parquet" in f.name):
                    return "parquet"
    return "csv"


def parse_date(value: DateArg, what: str) -> Optional[_dt.date]:
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from None


def read_raw(spark: SparkSession, raw_path: str, fmt: Optional[str] = None) -> DataFrame:
    """Read raw events (CSV with a header, or Parquet); checks the required columns."""
    validate_raw_path(raw_path)
    fmt = fmt or detect_format(raw_path)
    try:
        if fmt == "parquet":
            df = spark.read.parquet(raw_path)
        else:
            df = spark.read.option("header", "true").option("mode", "PERMISSIVE").csv(raw_path)
    except AnalysisException as exc:
        raise InputValidationError(f"cannot read raw input {raw_path} as {fmt}: {str(exc).splitlines()[0]}") from None
    # Be forgiving about header case/whitespace, strict about presence.
    renamed = {c: c.strip().lower() for c in df.columns if c != c.strip().lower()}
    for old, new in renamed.items():
        df = df.withColumnRenamed(old, new)
    missing = [c for c in REQUIRED_RAW_COLUMNS if c not in df.columns]
    if missing:
        raise InputValidationError(
            f"raw input {raw_path} lacks required column(s) {missing} (has {sorted(df.columns)})"
        )
    return df


# --------------------------------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------------------------------
def _parse_time(df: DataFrame) -> DataFrame:
    field = df.schema["event_time"].dataType
    if isinstance(field, (T.TimestampType, T.TimestampNTZType)):
        return df.withColumn("event_time_raw", F.col("event_time").cast("string")).withColumn(
            "event_time", F.col("event_time").cast("timestamp")
        )
    raw = F.trim(F.col("event_time").cast("string"))
    parsed = F.coalesce(*[F.try_to_timestamp(raw, F.lit(fmt)) for fmt in TIME_FORMATS])
    return df.withColumn("event_time_raw", F.col("event_time").cast("string")).withColumn("event_time", parsed)


def to_bronze(raw: DataFrame, run_id: str) -> DataFrame:
    """Typed raw rows + parsed time, event_date, dq_unparseable_time and ingestion columns."""
    try:  # file sources expose the input file; others (tests' in-memory frames) do not
        df = raw.withColumn("_source_file", F.col("_metadata.file_path"))
    except AnalysisException:
        df = raw.withColumn("_source_file", F.lit(None).cast("string"))
    for name, sql_type in RAW_COLUMNS.items():
        if name == "event_time":
            continue
        if name not in df.columns:
            df = df.withColumn(name, F.lit(None).cast(sql_type))
        else:
            df = df.withColumn(name, F.expr(f"try_cast(`{name}` AS {sql_type})"))
    df = _parse_time(df)
    return df.select(
        *RAW_COLUMNS.keys(),
        "event_time_raw",
        F.col("event_time").isNull().alias("dq_unparseable_time"),
        F.current_timestamp().alias("_ingested_at"),
        "_source_file",
        F.lit(run_id).alias("_run_id"),
        F.to_date("event_time").alias("event_date"),
    )


def _in_range(start: Optional[_dt.date], end: Optional[_dt.date]):
    cond = F.lit(True)
    if start is not None:
        cond = cond & (F.col("event_date") >= F.lit(start))
    if end is not None:
        cond = cond & (F.col("event_date") <= F.lit(end))
    return cond


def _silver_event_columns() -> Tuple[str, ...]:
    """The raw event columns, with the untouched brand (``brand_raw``) right after the cleaned one."""
    at = EVENT_COLUMNS.index("brand") + 1
    return EVENT_COLUMNS[:at] + ("brand_raw",) + EVENT_COLUMNS[at:]


def to_silver(bronze: DataFrame) -> DataFrame:
    """Cleaned, flagged, deduplicated events (rows with a parsed time only)."""
    brand = F.lower(F.trim(F.col("brand")))
    df = (
        bronze.filter(~F.col("dq_unparseable_time"))
        .withColumn("brand_raw", F.col("brand"))
        .withColumn("brand", F.when(brand == "", F.lit(None).cast("string")).otherwise(brand))
        .withColumn("event_type", F.lower(F.trim(F.col("event_type"))))
    )
    df = df.dropDuplicates(list(DEDUP_KEY))
    return df.select(
        *_silver_event_columns(),
        F.col("brand").isNull().alias("dq_missing_brand"),
        (F.col("price").isNull() | (F.col("price") <= 0)).alias("dq_bad_price"),
        (~F.coalesce(F.col("event_type").isin(*EVENT_TYPES), F.lit(False))).alias("dq_unknown_event_type"),
        (F.col("product_id").isNull() | F.col("user_id").isNull()).alias("dq_missing_id"),
        "_run_id",
        "event_date",
    )


def to_gold(silver: DataFrame) -> DataFrame:
    """Hourly funnel per brand (schema.GOLD_COLUMNS); hours without funnel events have no row."""
    ev = silver.filter(~F.col("dq_missing_brand") & F.col("event_type").isin(*FUNNEL_EVENT_TYPES)).withColumn(
        "window_start", F.date_trunc("hour", F.col("event_time"))
    )

    def n(kind: str):
        return F.sum(F.when(F.col("event_type") == kind, 1).otherwise(0)).cast("long")

    valid_purchase = (F.col("event_type") == "purchase") & ~F.col("dq_bad_price")
    agg = ev.groupBy("window_start", "brand").agg(
        n("view").alias("views"),
        n("cart").alias("carts"),
        n("purchase").alias("purchases"),
        F.coalesce(F.sum(F.when(valid_purchase, F.col("price"))), F.lit(0.0)).cast("double").alias("revenue"),
    )

    def rate(num: str, den: str):
        return F.when(F.col(den) > 0, F.col(num) / F.col(den)).otherwise(F.lit(0.0)).cast("double")

    out = (
        agg.withColumn("window_end", F.col("window_start") + F.expr("INTERVAL 1 HOUR"))
        .withColumn("revenue", F.round("revenue", 2))
        .withColumn("view_to_cart_rate", rate("carts", "views"))
        .withColumn("cart_to_purchase_rate", rate("purchases", "carts"))
        .withColumn("conversion_rate", rate("purchases", "views"))
        .withColumn("window_date", F.to_date("window_start"))
    )
    return out.select(*GOLD_COLUMNS.keys())


def _join(root: str, name: str) -> str:
    return str(root).rstrip("/") + "/" + name


# --------------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------------
def run(
    spark: SparkSession,
    raw_path: str,
    out_root: str,
    start: DateArg = None,
    end: DateArg = None,
    fmt: Optional[str] = None,
) -> Dict:
    """Build the three layers for event dates in [start, end] (all when None); returns a summary.

    Each layer is read back from the one below it (this run's partitions, by ``_run_id``), and the
    counts come from observed metrics of the writes themselves (no extra passes over the data).
    """
    t0 = time.time()
    start_d, end_d = parse_date(start, "start"), parse_date(end, "end")
    if start_d and end_d and start_d > end_d:
        raise UserError(f"start {start_d} is after end {end_d}")
    run_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    tables = (("bronze", BRONZE_TABLE), ("silver", SILVER_TABLE), ("gold", GOLD_TABLE))
    paths = {layer: _join(out_root, name) for layer, name in tables}

    # Bronze: every row in range, plus rows whose time cannot be parsed.
    typed = to_bronze(read_raw(spark, raw_path, fmt), run_id)
    in_range = _in_range(start_d, end_d)
    parsed_in_range = ~F.col("dq_unparseable_time") & in_range
    obs_bronze = Observation("bronze")
    observed = typed.observe(
        obs_bronze,
        F.count(F.lit(1)).alias("input"),
        F.sum(F.col("dq_unparseable_time").cast("long")).alias("unparseable_time"),
        F.sum((~F.col("dq_unparseable_time") & ~in_range).cast("long")).alias("out_of_range"),
        # Observed metrics come back as JVM objects: dates travel as ISO strings.
        F.min(F.when(parsed_in_range, F.col("event_date"))).cast("string").alias("first_date"),
        F.max(F.when(parsed_in_range, F.col("event_date"))).cast("string").alias("last_date"),
    )
    write_partitioned(observed.filter(F.col("dq_unparseable_time") | in_range), paths["bronze"], "event_date")
    b = obs_bronze.get
    n_input = int(b.get("input") or 0)
    unparseable, out_of_range = int(b.get("unparseable_time") or 0), int(b.get("out_of_range") or 0)
    first = _dt.date.fromisoformat(b["first_date"]) if b.get("first_date") else None
    last = _dt.date.fromisoformat(b["last_date"]) if b.get("last_date") else None
    log.info("bronze: %d raw rows (%d unparseable times, %d outside the date range)", n_input, unparseable, out_of_range)
    if n_input == 0:
        raise InputValidationError(f"raw input {raw_path} holds no rows")
    n_bronze = n_input - out_of_range
    n_parsed = n_bronze - unparseable

    s: Dict = {}
    g: Dict = {}
    if first is not None:
        this_run = F.col("event_date").between(F.lit(first), F.lit(last)) & (F.col("_run_id") == run_id)
        # Silver from this run's bronze partitions.
        silver = to_silver(spark.read.parquet(paths["bronze"]).filter(this_run))
        obs_silver = Observation("silver")
        silver = silver.observe(
            obs_silver,
            F.count(F.lit(1)).alias("rows"),
            *[F.sum(F.col(flag).cast("long")).alias(flag) for flag in DQ_FLAGS],
            F.sum(F.col("dq_unknown_event_type").cast("long")).alias("q_unknown_event_type"),
            F.sum((~F.col("dq_unknown_event_type") & F.col("dq_missing_brand")).cast("long")).alias("q_missing_brand"),
            F.sum((F.col("event_type") == "remove_from_cart").cast("long")).alias("remove_from_cart"),
        )
        write_partitioned(silver, paths["silver"], "event_date")
        s = obs_silver.get
        log.info("silver: %d rows (%d duplicates removed)", int(s["rows"] or 0), n_parsed - int(s["rows"] or 0))
        # Gold from this run's silver partitions.
        gold = to_gold(spark.read.parquet(paths["silver"]).filter(this_run))
        obs_gold = Observation("gold")
        gold = gold.observe(
            obs_gold,
            F.count(F.lit(1)).alias("rows"),
            F.approx_count_distinct("brand", 0.01).alias("brands"),
            F.sum("views").alias("views"),
            F.sum("carts").alias("carts"),
            F.sum("purchases").alias("purchases"),
        )
        write_partitioned(gold, paths["gold"], "window_date")
        g = obs_gold.get
    else:
        log.warning("no parseable rows in the date range: silver and gold left unchanged")

    def num(d: Dict, key: str) -> int:
        return int(d.get(key) or 0)

    n_silver = num(s, "rows")
    summary = {
        "run_id": run_id,
        "raw_path": str(raw_path),
        "output_root": str(out_root),
        "start": start_d.isoformat() if start_d else None,
        "end": end_d.isoformat() if end_d else None,
        "tables": paths,
        "rows": {"input": n_input, "bronze": n_bronze, "silver": n_silver, "gold": num(g, "rows")},
        "out_of_range": out_of_range,
        "duplicates_removed": n_parsed - n_silver,
        "dq": {"unparseable_time": unparseable, **{f[3:]: num(s, f) for f in DQ_FLAGS}},
        "quarantined": {
            "total": unparseable + num(s, "q_unknown_event_type") + num(s, "q_missing_brand"),
            "unparseable_time": unparseable,
            "unknown_event_type": num(s, "q_unknown_event_type"),
            "missing_brand": num(s, "q_missing_brand"),
        },
        "not_in_gold": {"remove_from_cart": num(s, "remove_from_cart")},
        "gold": {
            "brands_approx": num(g, "brands"),
            "first_date": first.isoformat() if first else None,
            "last_date": last.isoformat() if last else None,
            "views": num(g, "views"),
            "carts": num(g, "carts"),
            "purchases": num(g, "purchases"),
        },
        "elapsed_s": round(time.time() - t0, 2),
    }
    log.info(
        "gold: %d rows, ~%d brands, %s..%s in %.1fs",
        summary["rows"]["gold"], summary["gold"]["brands_approx"], first, last, summary["elapsed_s"],
    )
    return summary
