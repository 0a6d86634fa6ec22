"""Nightly funnel anomaly detection: gold_funnel_hourly_brand -> gold_anomalies_advanced.

    spark-submit jobs/detect_funnel_anomalies.py --gold PATH --output PATH \
        [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--config FILE] [--model-dir PATH]

Scores the hours of [start, end] (default: yesterday, UTC) with history before start.
"""
import sys

import _bootstrap  # noqa: F401  (puts the repo root on sys.path for spark-submit from a checkout)

from advanced_anomaly_detection.cli import main

if __name__ == "__main__":
    sys.exit(main(["detect", *sys.argv[1:]]))
