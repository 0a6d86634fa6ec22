"""Build bronze_events, silver_events and gold_funnel_hourly_brand from raw e-commerce events.

    python jobs/build_gold_funnel.py --raw data/raw_events --output-root data/lake [--start D --end D]
    spark-submit jobs/build_gold_funnel.py --raw gs://bucket/raw --output-root gs://bucket/lake

Prints the run summary as JSON (also to --summary-json FILE: spark-submit mixes driver logs into
stdout); exits 2 with a one-line message on a user error (bad arguments, missing input or columns).
"""
import sys

import _bootstrap  # noqa: F401  (puts the repo root on sys.path for spark-submit from a checkout)

from advanced_anomaly_detection.cli import main

if __name__ == "__main__":
    sys.exit(main(["build-gold", *sys.argv[1:]]))
