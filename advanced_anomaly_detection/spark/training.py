"""Training of the global models on Spark data: the LSTM autoencoder, and "train on first use".

Model directory layout (local path or gs://):
    <model_dir>/lstm/<version>/weights.npz, metadata.json,    one directory per trained version
                               model.keras                 (scoring reads the first two)
    <model_dir>/lstm/LATEST                                   the version scoring uses
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import zlib
from typing import Any, Dict, Iterator, Optional

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from advanced_anomaly_detection.config import Config
from advanced_anomaly_detection.errors import UserError
from advanced_anomaly_detection.spark import funnel_job
from advanced_anomaly_detection.spark.io import path_exists, read_bytes, read_text, write_text

log = logging.getLogger(__name__)


def lstm_root(model_dir: str) -> str:
    return f"{model_dir.rstrip('/')}/lstm"


def latest_lstm(spark: SparkSession, model_dir: str) -> Optional[str]:
    """Directory of the version LATEST points to, or None when there is no trained model."""
    pointer = f"{lstm_root(model_dir)}/LATEST"
    if not path_exists(spark, pointer):
        return None
    version = read_text(spark, pointer).strip()
    path = f"{lstm_root(model_dir)}/{version}"
    return path if path_exists(spark, f"{path}/metadata.json") else None


def _in_sample(brand: str, n_sample: int, n_total: int) -> bool:
    return n_total <= n_sample or zlib.crc32(brand.encode()) % n_total < n_sample


# brands per collect of training data: the driver holds one chunk's rows at a time, never all of them
BRANDS_PER_COLLECT = 100


def training_histories(spark: SparkSession, cfg: Config, gold_path: str, end: dt.date) -> Iterator[pd.DataFrame]:
    """Per-brand complete hourly histories up to `end` for a deterministic sample of brands.

    Only the sample (lstm.max_training_brands brands x lookback hours, a few columns) is used, and it
    reaches the driver BRANDS_PER_COLLECT brands at a time (the sampled grid is cached on the
    executors' disks in between), so driver memory does not grow with the number of brands.
    """
    from pyspark import StorageLevel

    lc = cfg.detectors.lstm
    first = end - dt.timedelta(days=cfg.run.lookback_days)
    checked = funnel_job.validate(funnel_job.read_gold(spark, gold_path, first, end))
    valid = checked.where(F.col("_reason").isNull()).select(
        "brand", "window_start", *funnel_job.COUNT_COLUMNS, "revenue"
    )
    brands = [r[0] for r in valid.select("brand").distinct().collect()]  # names only: small
    sample = sorted(b for b in brands if _in_sample(b, lc.max_training_brands, len(brands)))
    if len(sample) > lc.max_training_brands:
        sample = sample[: lc.max_training_brands]
    grid = funnel_job.add_time_columns(
        funnel_job.complete_grid(valid.where(F.col("brand").isin(sample)), dt.datetime.combine(end, dt.time(23)))
    )
    chunks = [sample[i : i + BRANDS_PER_COLLECT] for i in range(0, len(sample), BRANDS_PER_COLLECT)]
    if len(chunks) > 1:
        grid = grid.persist(StorageLevel.DISK_ONLY)
    hours = 0
    try:
        for chunk in chunks:
            pdf = grid.where(F.col("brand").isin(chunk)).toPandas()
            hours += len(pdf)
            for _, frame in pdf.groupby("brand", sort=True):
                yield frame.sort_values("window_start").reset_index(drop=True)
            del pdf
    finally:
        if len(chunks) > 1:
            grid.unpersist()
    log.info("lstm training data: %d of %d brands, %d hours", len(sample), len(brands), hours)


def train_lstm_model(spark: SparkSession, cfg: Config, gold_path: str, model_dir: str, end: dt.date) -> Dict:
    """Train the global LSTM on history up to `end`, save it as a new version, point LATEST at it."""
    from advanced_anomaly_detection.detectors.lstm import train_lstm

    started = time.time()
    version = f"{end:%Y%m%d}-{dt.datetime.now(dt.timezone.utc):%H%M%S}-cfg.{cfg.digest()}"
    model = train_lstm(
        training_histories(spark, cfg, gold_path, end), cfg.detectors.lstm, config_digest=cfg.digest(), version=version
    )
    model.metadata.update(training_end_date=str(end), gold_path=gold_path)
    path = f"{lstm_root(model_dir)}/{version}"
    model.save(path)
    write_text(spark, f"{lstm_root(model_dir)}/LATEST", version)
    log.info("lstm %s saved to %s in %.0f s", version, path, time.time() - started)
    return {"model": "lstm", "version": version, "path": path, "seconds": round(time.time() - started, 1),
            "windows": model.metadata.get("windows"), "brands": model.metadata.get("brands"),
            "fit_seconds": model.metadata.get("fit_seconds")}


def ensure_models(spark: SparkSession, cfg: Config, gold_path: str, model_dir: Optional[str],
                  history_end: dt.date) -> Dict[str, str]:
    """What the scoring workers need: {'lstm': model path} when the LSTM is enabled.

    A missing or empty model directory (or lstm.force_retrain) trains first and says so, so a
    first run never fails for want of a model.
    """
    if not cfg.detectors.lstm.enabled:
        return {}
    if not model_dir:
        raise UserError("the LSTM detector is enabled: give --model-dir (or io.model_dir)")
    path = None if cfg.detectors.lstm.force_retrain else latest_lstm(spark, model_dir)
    if path is None:
        reason = "lstm.force_retrain is set" if cfg.detectors.lstm.force_retrain else f"no LSTM model under {model_dir}"
        log.warning("%s: training one on history up to %s first", reason, history_end)
        path = train_lstm_model(spark, cfg, gold_path, model_dir, history_end)["path"]
    return {"lstm": path}


def models_for_scoring(spark: SparkSession, models: Dict[str, Any]) -> Dict[str, Any]:
    """`models` with the LSTM's path replaced by the model, read once on the driver through Hadoop's
    FileSystem (local, gs://, ...). It travels to the workers inside the scoring function (~80 KB of
    NumPy arrays), so no worker reads the model or imports TensorFlow."""
    from advanced_anomaly_detection.detectors.lstm import LSTMModel

    path = models.get("lstm")
    if not isinstance(path, str):
        return dict(models)
    model = LSTMModel.load(path, read=lambda p: read_bytes(spark, p), exists=lambda p: path_exists(spark, p))
    return {**models, "lstm": model}
