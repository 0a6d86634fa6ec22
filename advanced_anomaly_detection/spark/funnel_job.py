"""The funnel anomaly job on Spark: read -> validate -> hourly grid -> features -> per-brand scoring
(applyInPandas) -> write partitions -> run summary.

Everything per brand happens inside `scoring.score_series` on the executors; the driver only sees
aggregates (counts for the run summary), never rows.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from typing import Any, Dict, Optional

import pandas as pd
from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from advanced_anomaly_detection import __version__, saved_fits
from advanced_anomaly_detection.config import Config
from advanced_anomaly_detection.errors import InputValidationError, UserError
from advanced_anomaly_detection.schema import FEATURE_SIGNALS, GOLD_COLUMNS, RATE_SIGNALS, REQUIRED_GOLD_COLUMNS
from advanced_anomaly_detection.scoring import OUTPUT_SCHEMA, ScoringContext, score_series
from advanced_anomaly_detection.spark import fits_store
from advanced_anomaly_detection.spark.io import path_exists, write_partitioned, write_text
from advanced_anomaly_detection.spark.session import adaptive_cached_plans, groups_partitions, shuffle_partitions

log = logging.getLogger(__name__)

COUNT_COLUMNS = ("views", "carts", "purchases")
QUARANTINE_REASONS = ("null_brand", "null_window_start", "null_count", "negative_count", "duplicate_brand_hour")


def yesterday_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def parse_date(text: Optional[str], name: str) -> Optional[dt.date]:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--{name} must be a date YYYY-MM-DD, got {text!r}") from None


# ----------------------------------------------------------------------------------------------------
# read and validate
# ----------------------------------------------------------------------------------------------------
def read_gold(spark: SparkSession, path: str, first_date: dt.date, last_date: dt.date) -> DataFrame:
    if not path_exists(spark, path):
        raise InputValidationError(f"gold table not found: {path}")
    try:
        df = spark.read.parquet(path)
    except AnalysisException as exc:
        if "PARQUET_TYPE_ILLEGAL" in str(exc) and "NANOS" in str(exc):
            raise InputValidationError(
                f"gold table {path} stores timestamps in nanoseconds, which Spark cannot read; write it with "
                "microsecond timestamps (pandas: to_parquet(..., coerce_timestamps='us'))"
            ) from None
        raise InputValidationError(f"gold table {path} cannot be read as Parquet: {exc}") from None
    missing = [c for c in REQUIRED_GOLD_COLUMNS if c not in df.columns]
    if missing:
        raise InputValidationError(
            f"gold table {path} lacks required column(s) {missing}; has {sorted(df.columns)}"
        )
    if "window_date" not in df.columns:
        df = df.withColumn("window_date", F.to_date("window_start"))
    # Partition pruning: only the lookback and the scored dates are read.
    df = df.where(F.col("window_date").between(F.lit(first_date), F.lit(last_date)))
    cols = []
    for name, typ in GOLD_COLUMNS.items():
        if name in ("window_end",) + tuple(RATE_SIGNALS):
            continue  # derived again from window_start and the counts
        if name not in df.columns:
            continue
        if name in COUNT_COLUMNS + ("revenue",) and dict(df.dtypes)[name] == "string":
            raise InputValidationError(f"gold column '{name}' must be numeric, found string")
        cols.append(F.col(name).cast(typ).alias(name))
    rates = [F.col(r).cast("double").alias(f"_given_{r}") for r in RATE_SIGNALS if r in df.columns]
    return df.select(*cols, *rates)


def validate(df: DataFrame) -> DataFrame:
    """Adds `_reason` (null = valid) and `_rates_inconsistent`; duplicates keep the fullest row."""
    counts_null = F.lit(False)
    negative = F.col("revenue") < 0
    for c in COUNT_COLUMNS:
        counts_null = counts_null | F.col(c).isNull()
        negative = negative | (F.col(c) < 0)
    reason = (
        F.when(F.col("brand").isNull() | (F.trim("brand") == ""), "null_brand")
        .when(F.col("window_start").isNull(), "null_window_start")
        .when(counts_null, "null_count")
        .when(negative, "negative_count")
    )
    df = df.withColumn("window_start", F.date_trunc("hour", "window_start")).withColumn("_reason", reason)
    rank = Window.partitionBy("brand", "window_start").orderBy(
        F.col("_reason").asc_nulls_first(), F.desc("views"), F.desc("carts"), F.desc("purchases"), F.desc("revenue")
    )
    df = df.withColumn(
        "_reason",
        F.when(F.col("_reason").isNull() & (F.row_number().over(rank) > 1), "duplicate_brand_hour").otherwise(
            F.col("_reason")
        ),
    )
    inconsistent = F.lit(False)
    for rate, (num, den) in RATE_SIGNALS.items():
        given = f"_given_{rate}"
        if given not in df.columns:
            continue
        expected = F.when(F.col(den) > 0, F.col(num) / F.col(den)).otherwise(F.lit(0.0))
        inconsistent = inconsistent | (
            F.col(given).isNotNull() & (F.abs(F.col(given) - expected) > 1e-6 + 1e-3 * F.abs(expected))
        )
    return df.withColumn("_rates_inconsistent", inconsistent)


# ----------------------------------------------------------------------------------------------------
# grid and features
# ----------------------------------------------------------------------------------------------------
def complete_grid(valid: DataFrame, last_hour: dt.datetime) -> DataFrame:
    """One row per brand and hour from the brand's first observed hour to the last scored hour."""
    bounds = valid.groupBy("brand").agg(F.min("window_start").alias("_first"))
    grid = bounds.select(
        "brand",
        F.explode(F.sequence(F.col("_first"), F.lit(last_hour).cast("timestamp"), F.expr("INTERVAL 1 HOUR"))).alias(
            "window_start"
        ),
    )
    joined = grid.join(valid, ["brand", "window_start"], "left")
    filled = F.col("views").isNull()
    out = joined.select(
        "brand",
        "window_start",
        *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in COUNT_COLUMNS],
        F.coalesce(F.col("revenue"), F.lit(0.0)).alias("revenue"),
        filled.alias("is_filled_hour"),
    )
    for rate, (num, den) in RATE_SIGNALS.items():
        out = out.withColumn(rate, F.when(F.col(den) > 0, F.col(num) / F.col(den)).otherwise(F.lit(0.0)))
    return out


def add_time_columns(df: DataFrame) -> DataFrame:
    """hour_of_day and day_of_week (0 = Monday) of window_start, in the session's UTC."""
    return df.withColumn("hour_of_day", F.hour("window_start")).withColumn(
        "day_of_week", (F.dayofweek("window_start") + 5) % 7
    )


def add_features(df: DataFrame, cfg: Config) -> DataFrame:
    """Time parts, lags and trailing rolling mean/std of the feature signals.

    Input must be a complete hourly grid per brand (complete_grid), so an offset of k rows is exactly
    k hours: lags and windows are by time. Rolling stats come from running sums (O(n) per brand;
    Spark's sliding range frames recompute every window, O(n x window)).
    """
    fc = cfg.features
    df = add_time_columns(df).withColumn("is_weekend", F.col("day_of_week") >= 5)
    if not fc.lags_hours and not fc.rolling_windows_hours:
        return df
    by_hour = Window.partitionBy("brand").orderBy("window_start")
    running = by_hour.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    sums = []
    for sig in FEATURE_SIGNALS:
        sums += [F.sum(sig).over(running).alias(f"_s1_{sig}"), F.sum(F.col(sig) * F.col(sig)).over(running).alias(f"_s2_{sig}")]
    df = df.select("*", F.row_number().over(by_hour).alias("_rn"), *sums)
    exprs = []
    for sig in FEATURE_SIGNALS:
        for h in fc.lags_hours:
            exprs.append(F.lag(sig, h).over(by_hour).alias(f"{sig}_lag_{h}h"))
        for h in fc.rolling_windows_hours:
            # hours strictly before this one, at most h of them
            n = F.least(F.lit(h), F.col("_rn") - 1).cast("double")
            s1 = F.lag(f"_s1_{sig}", 1).over(by_hour) - F.coalesce(F.lag(f"_s1_{sig}", h + 1).over(by_hour), F.lit(0))
            s2 = F.lag(f"_s2_{sig}", 1).over(by_hour) - F.coalesce(F.lag(f"_s2_{sig}", h + 1).over(by_hour), F.lit(0))
            var = F.greatest((s2 - s1 * s1 / n) / (n - 1), F.lit(0.0))
            exprs.append(F.when(n > 0, s1 / n).alias(f"{sig}_roll_mean_{h}h"))
            exprs.append(F.when(n > 1, F.sqrt(var)).alias(f"{sig}_roll_std_{h}h"))
    helper_cols = ["_rn"] + [f"_s{i}_{sig}" for sig in FEATURE_SIGNALS for i in (1, 2)]
    return df.select("*", *exprs).drop(*helper_cols)


# ----------------------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------------------
def output_schema_ddl() -> str:
    return ", ".join(f"{name} {typ}" for name, typ in OUTPUT_SCHEMA.items())


def score_brands(features: DataFrame, ctx: ScoringContext, fits: Optional[DataFrame] = None) -> DataFrame:
    """Every brand scored by `score_series` in applyInPandas. With `fits` (fits_store.read_fits) the
    brand's saved fits are cogrouped in, and the rows come out with the fits in use (FIT_SCHEMA columns)."""
    ordered = ["window_start", "window_date"] + [c for c in OUTPUT_SCHEMA if c != "window_start"]
    if fits is None:
        def score_one_brand(pdf: pd.DataFrame) -> pd.DataFrame:
            return score_series(pdf, ctx)

        scored = features.groupBy("brand").applyInPandas(score_one_brand, schema=output_schema_ddl())
    else:
        def score_with_fits(pdf: pd.DataFrame, saved: pd.DataFrame) -> pd.DataFrame:
            if pdf.empty:  # a brand with saved fits but no rows in this run
                return pd.DataFrame(columns=list(OUTPUT_SCHEMA) + list(saved_fits.FIT_SCHEMA))
            kept: Dict[str, saved_fits.SavedFit] = {}
            out = score_series(pdf, ctx, saved_fits.from_frame(saved), kept)
            return saved_fits.attach(out, kept)

        ddl = output_schema_ddl() + ", " + ", ".join(f"{c} {t}" for c, t in saved_fits.FIT_SCHEMA.items())
        scored = features.groupBy("brand").cogroup(fits.groupBy("brand")).applyInPandas(score_with_fits, schema=ddl)
        ordered += list(saved_fits.FIT_SCHEMA)
    return scored.withColumn("window_date", F.to_date("window_start")).select(*ordered)


def score_and_write(spark: SparkSession, cfg: Config, features: DataFrame, ctx: ScoringContext, output_path: str,
                    start: dt.date, run_id: str, model_dir: Optional[str]) -> Dict[str, Any]:
    """Score every brand into the output partitions; with fits kept (fits_store.fits_path), also
    write the night's fits snapshot. Returns the run summary's `saved_fits` part."""
    kept_at = fits_store.fits_path(cfg, model_dir)
    fits_summary: Dict[str, Any] = {"fits_path": kept_at}
    if kept_at is None:
        write_partitioned(score_brands(features, ctx), output_path, "window_date")
        return fits_summary
    # Two writes from one scoring: the scored rows are kept (memory, else disk) between them.
    scored = score_brands(features, ctx, fits_store.read_fits(spark, kept_at, start, cfg)).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    write_partitioned(scored.drop(*saved_fits.FIT_SCHEMA), output_path, "window_date")
    fits_store.write_fits(scored, kept_at, start, run_id)
    fits_summary.update(fits_store.summarise_fits(spark, kept_at, start),
                        snapshots_deleted=fits_store.prune_fits(spark, kept_at, start, cfg))
    scored.unpersist()
    return fits_summary


# ----------------------------------------------------------------------------------------------------
# the job
# ----------------------------------------------------------------------------------------------------
def run(
    spark: SparkSession,
    cfg: Config,
    gold_path: str,
    output_path: str,
    start: Optional[dt.date] = None,
    end: Optional[dt.date] = None,
    model_dir: Optional[str] = None,
    models: Optional[Dict[str, Any]] = None,
    model_version: Optional[str] = None,
) -> Dict[str, Any]:
    started = time.time()
    end = end or yesterday_utc()
    start = start or end
    if start > end:
        raise UserError(f"--start {start} is after --end {end}")
    first_read = start - dt.timedelta(days=cfg.run.lookback_days)
    run_id = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    quarantine_path = cfg.io.quarantine_path or f"{output_path.rstrip('/')}_quarantine"
    log.info("run %s: scoring %s..%s from %s (history from %s)", run_id, start, end, gold_path, first_read)

    raw = read_gold(spark, gold_path, first_read, end)
    in_scope = F.col("window_date") >= F.lit(start)
    with adaptive_cached_plans(spark):  # the duplicate check's shuffle sized to the input, not 32 tasks
        checked = validate(raw).cache()
        agg = checked.agg(
            F.count(F.lit(1)).alias("rows_read"),
            F.sum(in_scope.cast("long")).alias("rows_in_scored_dates"),
            F.sum((F.col("_rates_inconsistent") & F.col("_reason").isNull()).cast("long")).alias("rates_recomputed"),
            *[F.sum((F.col("_reason") == r).cast("long")).alias(r) for r in QUARANTINE_REASONS],
            *[F.sum(((F.col("_reason") == r) & in_scope).cast("long")).alias(f"{r}__scored")
              for r in QUARANTINE_REASONS],
            F.countDistinct(F.when(F.col("_reason").isNull(), F.col("brand"))).alias("brands"),
        ).first().asDict()
    if not agg["rows_read"]:
        raise InputValidationError(f"gold table {gold_path} has no rows between {first_read} and {end}")

    quarantined = checked.where(F.col("_reason").isNotNull() & in_scope)
    if sum(agg[f"{r}__scored"] or 0 for r in QUARANTINE_REASONS):
        write_partitioned(
            quarantined.withColumnRenamed("_reason", "quarantine_reason").withColumn("run_id", F.lit(run_id)).drop(
                "_rates_inconsistent", *[c for c in checked.columns if c.startswith("_given_")]
            ),
            quarantine_path, "window_date",
        )
    valid = checked.where(F.col("_reason").isNull()).select("brand", "window_start", *COUNT_COLUMNS, "revenue")
    last_hour = dt.datetime.combine(end, dt.time(23))
    features = add_features(complete_grid(valid, last_hour), cfg)

    from advanced_anomaly_detection.spark.training import ensure_models, models_for_scoring  # imports this module

    if models is None:
        models = ensure_models(spark, cfg, gold_path, model_dir, start - dt.timedelta(days=1))
    version = model_version or f"aad-{__version__}+cfg.{cfg.digest()}" + "".join(
        f"+{name}.{path.rstrip('/').rsplit('/', 1)[-1]}" for name, path in sorted(models.items())
    )
    ctx = ScoringContext(config=cfg, target_start=pd.Timestamp(start), run_id=run_id, model_version=version,
                         models=models_for_scoring(spark, models))
    # Few brands, few tasks: each scoring task has a fixed cost (session.groups_partitions).
    tasks = groups_partitions(spark, int(agg["brands"] or 0), cfg.spark.min_brands_per_task)
    with shuffle_partitions(spark, tasks):
        fits_summary = score_and_write(spark, cfg, features, ctx, output_path, start, run_id, model_dir)
        checked.unpersist()
        summary = summarise(spark, output_path, start, end, agg, run_id)
        summary["alert_events"] = (
            write_alert_events(spark, cfg, output_path, start, end, run_id) if summary["anomalies"] else 0
        )
    summary["alerts_path"] = f"{output_path.rstrip('/')}_alerts"
    summary.update(
        run_id=run_id,
        model_version=version,
        config_digest=cfg.digest(),
        gold_path=gold_path,
        output_path=output_path,
        quarantine_path=quarantine_path,
        start=str(start),
        end=str(end),
        history_from=str(first_read),
        detectors_enabled=cfg.detectors.enabled(),
        models=models,
        saved_fits=fits_summary,
        scoring_tasks=tasks,
        elapsed_seconds=round(time.time() - started, 1),
    )
    summary_path = f"{output_path.rstrip('/')}_runs/{run_id}.json"
    write_text(spark, summary_path, json.dumps(summary, indent=2, default=str))
    summary["summary_path"] = summary_path
    log.info("run %s done in %.1fs: %s rows, %s anomalies", run_id, summary["elapsed_seconds"],
             summary["output_rows"], summary["anomalies"])
    return summary


ALERT_SCHEMA = (
    "brand string, start timestamp, end timestamp, hours long, max_score double, severity string, "
    "anomaly_type string, metrics array<string>, revenue_impact double, conversion_loss double"
)


def write_alert_events(spark: SparkSession, cfg: Config, output_path: str, start: dt.date, end: dt.date,
                       run_id: str) -> int:
    """Alarm post-processing: the scored dates' flagged hours -> alert events (alerts.py), one table
    `<output>_alerts` partitioned by the event's start date (dynamic overwrite, like the output)."""
    from advanced_anomaly_detection.alerts import alert_events

    alert_cfg = cfg.alerts
    flagged = spark.read.parquet(output_path).where(
        F.col("window_date").between(F.lit(start), F.lit(end)) & F.col("is_anomaly")
    ).select("brand", "window_start", "is_anomaly", "ensemble_anomaly_score", "anomaly_severity", "anomaly_type",
             "anomaly_metric", "estimated_revenue_impact", "conversion_loss")

    def events_of_brand(pdf: pd.DataFrame) -> pd.DataFrame:
        return alert_events(pdf, alert_cfg, score_col="ensemble_anomaly_score")

    events = flagged.groupBy("brand").applyInPandas(events_of_brand, schema=ALERT_SCHEMA)
    events = events.withColumn("window_date", F.to_date("start")).withColumn("run_id", F.lit(run_id))
    path = f"{output_path.rstrip('/')}_alerts"
    write_partitioned(events, path, "window_date")
    return spark.read.parquet(path).where(F.col("run_id") == run_id).count()


def summarise(spark: SparkSession, output_path: str, start: dt.date, end: dt.date, agg: Dict[str, Any],
              run_id: str) -> Dict[str, Any]:
    """Aggregates of the partitions just written (read back: cheap, and proves what landed)."""
    out = spark.read.parquet(output_path).where(F.col("window_date").between(F.lit(start), F.lit(end)))
    totals = out.agg(
        F.count(F.lit(1)).alias("output_rows"),
        F.sum(F.col("is_filled_hour").cast("long")).alias("filled_hours"),
        F.countDistinct("brand").alias("brands_scored"),
        F.sum(F.col("is_anomaly").cast("long")).alias("anomalies"),
        F.sum((F.col("run_id") != run_id).cast("long")).alias("rows_from_other_runs"),
    ).first().asDict()
    by = lambda col: {r[0]: r[1] for r in out.groupBy(col).count().collect()}  # noqa: E731  (few keys)
    anomalies = out.where("is_anomaly")
    top = (
        anomalies.groupBy("brand")
        .agg(F.count(F.lit(1)).alias("anomalous_hours"), F.round(F.sum("estimated_revenue_impact"), 2).alias("revenue_impact"))
        .orderBy(F.desc("anomalous_hours"), "revenue_impact")
        .limit(10)
        .collect()
    )
    quarantined = {r: int(agg[f"{r}__scored"] or 0) for r in QUARANTINE_REASONS}
    valid_scored = int(agg["rows_in_scored_dates"] or 0) - sum(quarantined.values())
    return {
        "rows_read": int(agg["rows_read"]),
        "input_rows_in_scored_dates": int(agg["rows_in_scored_dates"] or 0),
        "quarantined_in_scored_dates": quarantined,
        "quarantined_in_history": {r: int(agg[r] or 0) - quarantined[r] for r in QUARANTINE_REASONS},
        "rates_recomputed_from_counts": int(agg["rates_recomputed"] or 0),
        "output_rows": int(totals["output_rows"]),
        "filled_hours": int(totals["filled_hours"] or 0),
        # every valid input brand-hour of the scored dates, plus the zero hours the grid added
        "row_accounting_ok": int(totals["output_rows"]) == valid_scored + int(totals["filled_hours"] or 0),
        "brands_scored": int(totals["brands_scored"]),
        "anomalies": int(totals["anomalies"] or 0),
        "anomalies_by_severity": by("anomaly_severity") if totals["anomalies"] else {},
        "anomalies_by_type": {k: v for k, v in by("anomaly_type").items() if k is not None},
        "scoring_status": by("scoring_status"),
        "top_brands": [r.asDict() for r in top],
    }
