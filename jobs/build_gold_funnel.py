"""Build bronze_events, silver_events and gold_funnel_hourly_brand from raw e-commerce events.

    python jobs/build_gold_funnel.py --raw data/raw_events --output-root data/lake [--start D --end D]
    spark-submit jobs/build_gold_funnel.py --raw gs://bucket/raw --output-root gs://bucket/lake

Prints the run summary as JSON (also to --summary-json FILE: spark-submit mixes driver logs into
stdout); exits 2 with a one-line message on a user error (bad arguments, missing input or columns).
"""
import os
import sys

try:
    import advanced_anomaly_detection  # noqa: F401
except ImportError:  # run from a checkout (python jobs/... or spark-submit) without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from advanced_anomaly_detection.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["build-gold", *sys.argv[1:]]))
