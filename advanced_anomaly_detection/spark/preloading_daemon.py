"""Spark's Python daemon, with the scoring libraries imported once before it forks the workers.

Spark starts one daemon per executor and forks a Python worker from it for each concurrent task.
With the stock daemon every worker imports TensorFlow, Prophet, scikit-learn, ruptures and pandas
itself (~11 CPU-s each; on 2 cores a run's first scoring tasks wait for it). Here the daemon imports
them once and each forked worker starts with them in memory, sharing their pages with its siblings.

Only imports happen before the fork: TensorFlow is imported, never run, so its thread pools start in
each worker (lstm.limit_tf_threads still applies there). A library that fails to import is skipped;
the worker then imports it itself as it would have anyway. session.get_spark uses this module for
local runs (`spark.python.daemon.module`); a cluster keeps Spark's own daemon.
"""
import importlib
import os
import sys

PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy.stats",
    "sklearn.ensemble",
    "ruptures",
    "prophet",
    "tensorflow",
    "advanced_anomaly_detection.scoring",
    "advanced_anomaly_detection.saved_fits",
    "advanced_anomaly_detection.detectors.baseline",
    "advanced_anomaly_detection.detectors.prophet_detector",
    "advanced_anomaly_detection.detectors.isolation_forest",
    "advanced_anomaly_detection.detectors.changepoint",
    "advanced_anomaly_detection.detectors.lstm",
)


def preload(modules=PRELOAD) -> list:
    """Import `modules`; returns those that failed (the daemon must start whatever happens)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001  (a worker imports what is missing itself)
            failed.append(name)
            print(f"preloading_daemon: {name} not preloaded: {exc!r}", file=sys.stderr)
    return failed


if __name__ == "__main__":
    preload()
    from pyspark import daemon

    daemon.manager()
