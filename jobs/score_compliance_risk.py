"""Nightly contact-compliance (TCPA / Regulation F) risk job -> gold_compliance_risk.

    spark-submit jobs/score_compliance_risk.py --journey PATH --complaints PATH [--accounts PATH] \
        --output PATH [--as-of YYYY-MM-DD] [--config FILE] [--set KEY=VALUE ...]

Exit codes: 0 ok, 2 bad configuration or input (one line on stderr), 1 unexpected failure.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

try:
    import advanced_anomaly_detection  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advanced_anomaly_detection.compliance.commands import add_score_arguments, format_summary  # noqa: E402
from advanced_anomaly_detection.config import ConfigError, load_config  # noqa: E402
from advanced_anomaly_detection.errors import UserError  # noqa: E402

log = logging.getLogger("score_compliance_risk")


def main(argv=None) -> int:
    parser = add_score_arguments(argparse.ArgumentParser(prog="score_compliance_risk", description=__doc__.splitlines()[0]))
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        cfg = load_config(args.config, args.set or [])
        from advanced_anomaly_detection.spark.compliance_job import run
        from advanced_anomaly_detection.spark.session import get_spark

        spark = get_spark(cfg.spark)
        summary = run(spark, cfg, args.journey, args.complaints, args.accounts, args.output, args.as_of)
    except (ConfigError, UserError) as exc:
        message = " ".join(str(exc).split())  # one line, even for multi-line config errors
        print(f"score_compliance_risk: error: {message}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
