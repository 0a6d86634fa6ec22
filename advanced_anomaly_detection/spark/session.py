"""One way to get a SparkSession, locally or on a cluster."""
from __future__ import annotations

import logging
import math
import os
import sys
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from pyspark.sql import SparkSession

from advanced_anomaly_detection.config import SparkConfig

log = logging.getLogger(__name__)


def _on_cluster() -> bool:
    # spark-submit / Dataproc set these before our code runs; their settings must win.
    return "SPARK_SUBMIT_OPTS" in os.environ or os.environ.get("SPARK_ENV_LOADED") == "1" or (
        "PYSPARK_GATEWAY_PORT" in os.environ
    )


def get_spark(cfg: Optional[SparkConfig] = None) -> SparkSession:
    """Return the active session or build one.

    Local runs get local[*], UTC, Arrow and quiet logs, and workers run this interpreter (so a newcomer
    never meets "No module named pandas" from a worker). On a cluster only what is unset is filled in.
    """
    cfg = cfg or SparkConfig()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Workers must run the same Python as the driver for local runs; a cluster sets its own.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(cfg.app_name)
    if cfg.master:
        builder = builder.master(cfg.master)
    elif not _on_cluster():
        builder = builder.master("local[*]")
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.arrow_max_records_per_batch),
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=ERROR",
    }
    if not _on_cluster():
        # Local mode runs every task inside the driver JVM; Spark's 1g default is tight for a nightly
        # run of a thousand brands. Only a JVM started here takes it (spark-submit sets its own).
        conf["spark.driver.memory"] = cfg.local_driver_memory
    conf.update(cfg.conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    log.info("spark session %s (master=%s)", spark.version, spark.sparkContext.master)
    return spark


def groups_partitions(spark: SparkSession, groups: int, min_groups_per_task: int) -> int:
    """Shuffle partitions for a job that hands `groups` groups to Python: one task per core at least,
    `min_groups_per_task` groups per task where there are few, never more than the session's setting."""
    cap = int(spark.conf.get("spark.sql.shuffle.partitions"))
    cores = spark.sparkContext.defaultParallelism
    return max(1, min(cap, max(cores, math.ceil(groups / min_groups_per_task))))


@contextmanager
def session_conf(spark: SparkSession, settings: Dict[str, str]) -> Iterator[None]:
    """The session's SQL settings changed for the queries planned inside, restored after (also on failure)."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def shuffle_partitions(spark: SparkSession, n: int):
    """spark.sql.shuffle.partitions set to `n` for the queries planned inside, and AQE's coalescing
    off: the tasks are sized on purpose (a Python UDF's cost is not proportional to its input bytes)."""
    return session_conf(spark, {"spark.sql.shuffle.partitions": str(n),
                                "spark.sql.adaptive.coalescePartitions.enabled": "false"})


def adaptive_cached_plans(spark: SparkSession):
    """AQE allowed inside plans cached within (Spark's default keeps a cached plan's shuffles at
    spark.sql.shuffle.partitions): a small input's shuffles are then coalesced to a few tasks."""
    return session_conf(spark, {"spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true"})
