"""Build bronze_events, silver_events and gold_funnel_hourly_brand from raw e-commerce events.

    python jobs/build_gold_funnel.py --raw data/raw_events --output-root data/lake [--start D --end D]
    spark-submit jobs/build_gold_funnel.py --raw gs://bucket/raw --output-root gs://bucket/lake

Prints the run summary as JSON on stdout (and to --summary-json FILE: spark-submit merges the
driver's stderr logs into stdout); exits 2 with a one-line message on a user error (bad arguments,
missing input, missing columns, bad config).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

try:
    import advanced_anomaly_detection  # noqa: F401
except ImportError:  # run from a checkout (python jobs/... or spark-submit without the wheel)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from advanced_anomaly_detection.config import ConfigError, load_config  # noqa: E402
from advanced_anomaly_detection.errors import UserError  # noqa: E402

log = logging.getLogger("jobs.build_gold_funnel")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", required=True, help="raw events: a CSV file/directory (with header) or Parquet")
    p.add_argument("--output-root", required=True, help="lake root; tables are written under it")
    p.add_argument("--start", help="first event date to build (YYYY-MM-DD); default: all")
    p.add_argument("--end", help="last event date to build (YYYY-MM-DD, inclusive); default: all")
    p.add_argument("--config", help="override YAML config (Spark settings)")
    p.add_argument("--summary-json", help="also write the run summary to this local file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one config key")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        from advanced_anomaly_detection.spark import gold_build
        from advanced_anomaly_detection.spark.session import get_spark

        cfg = load_config(args.config, args.set or [])
        start = gold_build.parse_date(args.start, "--start")
        end = gold_build.parse_date(args.end, "--end")
        if start and end and start > end:
            raise UserError(f"--start {start} is after --end {end}")
        gold_build.validate_raw_path(args.raw)  # fail before Spark starts
        spark = get_spark(cfg.spark)
        summary = gold_build.run(spark, args.raw, args.output_root, start=start, end=end)
    except (UserError, ConfigError) as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"build_gold_funnel: error: {message}", file=sys.stderr)
        return 2
    text = json.dumps(summary, indent=2, default=str)
    if args.summary_json:
        with open(args.summary_json, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
