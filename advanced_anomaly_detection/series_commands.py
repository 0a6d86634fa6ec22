"""`aad score-series`: score any metric series (CSV/Parquet, one or many series) for anomalies.

Uses the funnel job's detector methods in their generic form (detectors/generic.py), the same
calibration and the same `ensemble` configuration; see generic_series.py for what is done to a series.
"""
from __future__ import annotations

import argparse
import logging
import sys

from advanced_anomaly_detection.config import add_config_args

log = logging.getLogger(__name__)

MAX_SERIES_LINES = 20


def register(sub) -> None:
    p = sub.add_parser(
        "score-series",
        help="score any metric series (timestamp,value[,series]) with the detectors and ensemble",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--input", required=True, help="CSV or Parquet file or directory")
    p.add_argument("--output", required=True, help="output Parquet path (summary JSON written beside it)")
    p.add_argument("--time-col", default="timestamp", help="timestamp column (default: timestamp)")
    p.add_argument("--value-col", default="value", help="value column (default: value)")
    p.add_argument("--series-col", help="series id column (default: one series named after --value-col)")
    p.add_argument("--train-until", metavar="TIMESTAMP",
                   help="fit on points <= TIMESTAMP (UTC unless an offset is given; a number where the time "
                        "column holds numbers: positions or Unix epochs) and score the rest; "
                        "default: walk forward, each day (week for daily data) scored with models of the past")
    p.add_argument("--freq", help="force the grid's step instead of inferring it from the median step: 10s, 5min, "
                                  "1h, 1D, 7D, ... or month, quarter, year")
    p.add_argument("--warmup-days", type=float, help="walk-forward warm-up (default: 2-7 days, daily data 14-28; "
                                                     "other cadences: a third of the series)")
    p.add_argument("--warmup-points", type=int, help="walk-forward warm-up in points (any cadence)")
    p.add_argument("--format", default="auto", choices=["auto", "csv", "parquet"], help="input format")
    add_config_args(p)
    p.set_defaults(handler=score_series)

    e = sub.add_parser(
        "evaluate-series",
        help="precision/recall of score-series on labelled series of other shapes and frequencies",
        description="Generalisation check of score-series (see advanced_anomaly_detection/series_evaluation.py).",
    )
    e.add_argument("--seeds", type=int, default=2, help="series per shape and frequency (default 2)")
    e.add_argument("--first-seed", type=int, default=0,
                   help="first seed group (default 0; 1 and up give series the defaults were not chosen on)")
    e.add_argument("--freqs", default="5min,1h,1D",
                   help="comma-separated cadences of 5min, 1h, 1D, month, 7D, 10s, positions (default 5min,1h,1D)")
    e.add_argument("--json", help="write the metrics here as JSON")
    add_config_args(e)
    e.set_defaults(handler=evaluate_series)

    lab = sub.add_parser(
        "evaluate-labelled",
        help="precision/recall of score-series on labelled files from elsewhere (NAB windows, a label column)",
        description="score-series on someone else's labelled series (see "
                    "advanced_anomaly_detection/labelled_evaluation.py).",
    )
    lab.add_argument("--data", required=True, help="folder of CSV files (NAB: its data/ folder)")
    how = lab.add_mutually_exclusive_group(required=True)
    how.add_argument("--labels", help="NAB windows JSON (labels/combined_windows.json); files it lists that are "
                                      "absent under --data are skipped")
    how.add_argument("--label-col", help="a 0/1 label column in every CSV under --data (Yahoo S5: is_anomaly)")
    lab.add_argument("--time-col", default="timestamp", help="timestamp column (default: timestamp)")
    lab.add_argument("--value-col", default="value", help="value column (default: value)")
    lab.add_argument("--jobs", type=int, help="files scored at once (default: the cores, at most 4)")
    lab.add_argument("--json", help="write the metrics here as JSON")
    add_config_args(lab)
    lab.set_defaults(handler=evaluate_labelled)


def evaluate_series(args: argparse.Namespace) -> int:
    import json

    from advanced_anomaly_detection import series_evaluation as se
    from advanced_anomaly_detection.config import load_config
    from advanced_anomaly_detection.errors import UserError

    cfg = load_config(args.config, args.set)
    freqs = tuple(f.strip() for f in args.freqs.split(",") if f.strip())
    unknown = [f for f in freqs if f not in se.CADENCES]
    if unknown or not freqs:
        raise UserError(f"--freqs: unknown {unknown}; choose from {', '.join(se.CADENCES)}")
    if args.seeds < 1:
        raise UserError("--seeds must be at least 1")
    result = se.run(args.seeds, cfg, freqs, first_seed=args.first_seed)
    print(se.table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"metrics written to {args.json}")
    return 0


def evaluate_labelled(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from advanced_anomaly_detection import labelled_evaluation as le
    from advanced_anomaly_detection.config import load_config
    from advanced_anomaly_detection.errors import UserError

    cfg = load_config(args.config, args.set)
    data = Path(args.data)
    if not data.is_dir():
        raise UserError(f"--data {data}: not a folder")
    if args.labels:
        files, absent = le.nab_files(data, Path(args.labels))
        if absent:
            print(f"{len(absent)} labelled files absent under {data}, skipped")
    else:
        files = le.column_files(data)
    if not files:
        raise UserError(f"--data {data}: no labelled CSV file found")
    if args.jobs is not None and args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    result = le.run(files, cfg, args.time_col, args.value_col, args.label_col, args.jobs or le.default_jobs())
    print(le.table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2, default=str)
        print(f"metrics written to {args.json}")
    return 0


def _parse_timestamp(text: str):
    import pandas as pd

    from advanced_anomaly_detection.errors import UserError

    from advanced_anomaly_detection.cadence import NUMBER

    if NUMBER.match(text.strip()):
        return float(text)  # in the time column's own units (generic_series.score_grid)
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise UserError(f"--train-until {text!r} is not a timestamp (e.g. 2024-05-01 or 2024-05-01T12:00)") from None
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def score_series(args: argparse.Namespace) -> int:
    from advanced_anomaly_detection import generic_series as gs
    from advanced_anomaly_detection.config import load_config

    cfg = load_config(args.config, args.set)  # invalid config fails before any data is read
    from advanced_anomaly_detection.errors import UserError

    if args.warmup_days is not None and args.warmup_days <= 0:
        raise UserError("--warmup-days must be positive")
    if args.warmup_points is not None and args.warmup_points <= 0:
        raise UserError("--warmup-points must be positive")
    if args.freq:
        from advanced_anomaly_detection.cadence import parse_cadence

        parse_cadence(args.freq)  # a bad --freq fails before Spark starts
    options = gs.SeriesOptions(
        train_until=_parse_timestamp(args.train_until) if args.train_until else None,
        freq=args.freq,
        warmup_days=args.warmup_days,
        warmup_points=args.warmup_points,
    )
    from advanced_anomaly_detection.spark import series_job
    from advanced_anomaly_detection.spark.session import get_spark

    spark = get_spark(cfg.spark)
    summary = series_job.run(spark, cfg, args.input, args.output, args.time_col, args.value_col,
                             args.series_col, options, fmt=args.format)
    print(format_summary(summary))
    return 0


def format_summary(summary) -> str:
    from advanced_anomaly_detection import generic_series as gs

    bad = ", ".join(f"{v} {k}" for k, v in summary["bad_rows"].items() if v) or "none"
    lines = [
        f"score-series: {summary['series']} series ({summary['series_unusable']} unusable), {summary['points']} points, "
        f"{summary['scored_points']} scored, {summary['anomalies']} anomalies; {summary['duplicates_merged']} duplicate "
        f"rows merged, {summary['gaps_filled']} gaps filled, bad rows: {bad}",
    ]
    per = summary["per_series"]
    lines += ["  " + gs.describe(r) for r in per[:MAX_SERIES_LINES]]
    if len(per) > MAX_SERIES_LINES:
        lines.append(f"  ... {len(per) - MAX_SERIES_LINES} more series in {summary['summary_path']}")
    lines.append(f"output: {summary['output']}  summary: {summary['summary_path']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    from advanced_anomaly_detection.cli import main

    sys.exit(main())
