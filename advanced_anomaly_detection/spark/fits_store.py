"""The table of per-brand detector fits kept between nights (saved_fits.py says what and why).

Layout (local path or gs://): ``<fits_path>/as_of=YYYY-MM-DD/`` Parquet, one snapshot per night with
one row per brand and kept detector (brand, saved_fits.FIT_SCHEMA, run_id). A snapshot is complete:
reused fits are written again, so a night reads one snapshot only. A run scoring from `start` writes
as_of = start - 1 day (the last history day) and reads the latest snapshot before that, so a re-run
of a night never reads the snapshot it overwrites. Snapshots too old to be reused are deleted.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from advanced_anomaly_detection.config import Config
from advanced_anomaly_detection.saved_fits import FIT_SCHEMA, refit_days, reusable_detectors
from advanced_anomaly_detection.spark.io import delete_path, list_dir, write_partitioned

log = logging.getLogger(__name__)

FITS_DDL = "brand string, " + ", ".join(f"{c} {t}" for c, t in FIT_SCHEMA.items())
PARTITION = "as_of"


def fits_path(cfg: Config, model_dir: Optional[str]) -> Optional[str]:
    """Where fits are kept (io.fits_path, else <model_dir>/fits), or None when no fit is kept."""
    if not reusable_detectors(cfg):
        return None
    if cfg.io.fits_path:
        return cfg.io.fits_path
    return f"{model_dir.rstrip('/')}/fits" if model_dir else None


def _oldest_reusable(start: dt.date, cfg: Config) -> dt.date:
    """The oldest snapshot a run scoring from `start` could still reuse a fit from."""
    return start - dt.timedelta(days=max(refit_days(cfg, n) for n in cfg.detectors.enabled()) + 1)


def read_fits(spark: SparkSession, path: str, start: dt.date, cfg: Config) -> DataFrame:
    """Per brand and detector the latest saved fit that a run scoring from `start` may reuse (brand +
    FIT_SCHEMA columns; empty when there is none). Whether each may be reused is decided per brand."""
    newest, oldest = start - dt.timedelta(days=2), _oldest_reusable(start, cfg)
    if not any(name.startswith(f"{PARTITION}=") for name in list_dir(spark, path)):
        return spark.createDataFrame([], FITS_DDL)
    try:
        snapshots = spark.read.parquet(path).where(F.col(PARTITION).between(F.lit(oldest), F.lit(newest)))
    except Exception as exc:  # noqa: BLE001 - an unreadable table costs a refit of every brand, not the night
        log.warning("saved fits under %s unreadable, every fit is made afresh: %s", path, str(exc).split("\n")[0])
        return spark.createDataFrame([], FITS_DDL)
    latest = Window.partitionBy("brand", "fit_detector").orderBy(F.desc("fit_through"), F.desc(PARTITION))
    return (
        snapshots.withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select("brand", *FIT_SCHEMA)
    )


def write_fits(scored: DataFrame, path: str, start: dt.date, run_id: str) -> None:
    """The fits the scored rows carry (saved_fits.attach) as the snapshot as_of start - 1 day."""
    fits = scored.where(F.col("fit_blob").isNotNull()).select("brand", *FIT_SCHEMA).withColumn(
        "run_id", F.lit(run_id)
    ).withColumn(PARTITION, F.lit(start - dt.timedelta(days=1)))
    write_partitioned(fits, path, PARTITION)


def prune_fits(spark: SparkSession, path: str, start: dt.date, cfg: Config) -> int:
    """Delete snapshots older than any run from `start` on could reuse; returns how many."""
    oldest = _oldest_reusable(start, cfg)
    deleted = 0
    for name in list_dir(spark, path):
        if not name.startswith(f"{PARTITION}="):
            continue
        try:
            day = dt.date.fromisoformat(name.split("=", 1)[1])
        except ValueError:
            continue  # not ours: left alone
        if day < oldest:
            delete_path(spark, f"{path.rstrip('/')}/{name}")
            deleted += 1
    return deleted


def summarise_fits(spark: SparkSession, path: str, start: dt.date) -> dict:
    """Fits in the snapshot just written, reused and new, per detector."""
    rows = (
        spark.read.parquet(path).where(F.col(PARTITION) == F.lit(start - dt.timedelta(days=1)))
        .groupBy("fit_detector").agg(F.sum(F.col("fit_reused").cast("long")).alias("reused"),
                                     F.sum((~F.col("fit_reused")).cast("long")).alias("fitted"))
        .collect()
    )
    return {"fits_reused": {r["fit_detector"]: int(r["reused"]) for r in rows},
            "fits_new": {r["fit_detector"]: int(r["fitted"]) for r in rows}}
