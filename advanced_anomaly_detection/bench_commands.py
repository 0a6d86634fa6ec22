"""`aad bench`: the speed benchmark (advanced_anomaly_detection/bench.py) from the command line.

Prints one line per scenario, the per-detector table with the seed ratios and the speed targets, and
writes every figure to <out>/bench_<timestamp>.json.
"""
from __future__ import annotations

import argparse
import logging
import time
from typing import List

from advanced_anomaly_detection.config import add_config_args

log = logging.getLogger(__name__)


def _ints(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _names(text: str) -> List[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def bench_cmd(args) -> int:
    from advanced_anomaly_detection import bench
    from advanced_anomaly_detection.config import load_config
    from advanced_anomaly_detection.spark.session import get_spark

    given = {k: v for k, v in {
        "brands": args.brands, "history_days": args.history_days, "backfill_days": args.backfill_days,
        "backfill_brands": args.backfill_brands, "reuse_night_brands": args.reuse_night_brands,
        "detector_sample": args.detector_sample,
        "seed_sample": args.seed_sample, "detectors": args.detectors, "out": args.out,
        "lstm_epochs": args.lstm_epochs, "seed_budget_s": args.seed_budget, "data_seed": args.data_seed,
    }.items() if v is not None}
    options = bench.quick_options(**given) if args.quick else bench.BenchOptions(**given)
    options.keep_data = args.keep_data
    options.validate()
    cfg = load_config(args.config, args.set)  # invalid config fails before any work

    t0 = time.perf_counter()
    spark = get_spark(cfg.spark)  # a session that exists already is reused (and is warm)
    created = round(time.perf_counter() - t0, 1)
    session_info = {"created_by_bench": True, "start_seconds": created, "warm_at_start": False}
    result = bench.run(spark, options, cfg, session_info=session_info)
    path = bench.write_json(result, options.out)
    print(bench.format_report(result))
    print(f"\nall figures: {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="speed benchmark: nightly runs at several brand counts, backfill, "
                                     "per-detector fit/score, seed-configuration ratios")
    p.add_argument("--brands", type=_ints, help="brand counts of the nightly runs (default 100,1000,5000)")
    p.add_argument("--history-days", type=int, help="days of history before the scored day (default 90)")
    p.add_argument("--backfill-days", type=int, help="days scored in the backfill run (default 14; 0 skips it)")
    p.add_argument("--backfill-brands", type=int, help="brands of the backfill run (default 1000)")
    p.add_argument("--reuse-night-brands", type=int,
                   help="nightly brand count that also runs the next night with the fits the first kept "
                        "(default 1000; 0 skips it)")
    p.add_argument("--detector-sample", type=int, help="brands of the per-detector fit/score split (default 20)")
    p.add_argument("--seed-sample", type=int, help="brands timed with the seed's detector settings (default 5)")
    p.add_argument("--seed-budget", type=float,
                   help="seconds per seed-configured detector after which no more brands are timed; the seed's "
                        "pure-Python PELT is stopped mid-brand, its time then a lower bound (default 600)")
    p.add_argument("--detectors", type=_names,
                   help="comma-separated detectors (default baseline,prophet,isolation_forest,changepoint,lstm)")
    p.add_argument("--lstm-epochs", type=int, help="LSTM training epochs (default: lstm.epochs of the config)")
    p.add_argument("--data-seed", type=int, help="seed of the generated gold tables (default 0)")
    p.add_argument("--out", help="where bench_<timestamp>.json goes (default bench_out)")
    p.add_argument("--keep-data", action="store_true", help="keep the generated tables and outputs under --out")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (brands 20,60, 30 days, backfill 3 days x 20 brands, seed sample 2, "
                        "1 LSTM epoch): about a minute; other flags still override")
    add_config_args(p)
    p.set_defaults(handler=bench_cmd)
