"""The local session's Python workers: forked from the preloading daemon, libraries already imported."""
from advanced_anomaly_detection.spark import preloading_daemon
from advanced_anomaly_detection.spark.session import PRELOADING_DAEMON


def _worker_facts(_):
    import os
    import sys

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
        parent = fh.read().replace(b"\0", b" ").decode()
    yield parent, all(m in sys.modules for m in ("tensorflow", "prophet", "sklearn.ensemble", "ruptures"))


def test_workers_start_with_the_scoring_libraries_imported(spark):
    assert spark.conf.get("spark.python.daemon.module") == PRELOADING_DAEMON
    facts = spark.sparkContext.parallelize(range(2), 2).mapPartitions(_worker_facts).collect()
    assert len(facts) == 2
    for parent, preloaded in facts:
        assert PRELOADING_DAEMON in parent  # forked by our daemon, not pyspark.daemon
        assert preloaded


def test_a_library_that_fails_to_import_is_skipped(capsys):
    assert preloading_daemon.preload(("json", "no_such_library_aad")) == ["no_such_library_aad"]
    assert "no_such_library_aad not preloaded" in capsys.readouterr().err
