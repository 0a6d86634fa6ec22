"""Shared fixtures: one local SparkSession for every integration test (local[2], UTC)."""
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def spark():
    from advanced_anomaly_detection.config import SparkConfig
    from advanced_anomaly_detection.spark.session import get_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = get_spark(SparkConfig(master="local[2]", shuffle_partitions=4, app_name="aad-tests"))
    yield session
    session.stop()
