"""Nightly funnel anomaly detection: gold_funnel_hourly_brand -> gold_anomalies_advanced.

    spark-submit jobs/detect_funnel_anomalies.py --gold PATH --output PATH \
        [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--config FILE] [--model-dir PATH]

Scores the hours of [start, end] (default: yesterday, UTC) with history before start.
"""
import os
import sys

try:
    import advanced_anomaly_detection  # noqa: F401
except ImportError:  # run from a checkout (python jobs/... or spark-submit) without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from advanced_anomaly_detection.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["detect", *sys.argv[1:]]))
