"""`aad` command line: one subcommand per job, plus data generation, evaluation and config tools.

Command modules register themselves through `register(subparsers)`; each handler returns an exit code.
User mistakes (bad config, bad input) end with a one-line message and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from advanced_anomaly_detection.config import ConfigError, add_config_args, dump_defaults
from advanced_anomaly_detection.errors import UserError

log = logging.getLogger("aad")

# Modules that add subcommands; each exposes register(subparsers).
COMMAND_MODULES = (
    "advanced_anomaly_detection.commands",
    "advanced_anomaly_detection.bench_commands",
    "advanced_anomaly_detection.series_commands",
    "advanced_anomaly_detection.compliance.commands",
)


def _config_command(args: argparse.Namespace) -> int:
    if args.defaults:
        sys.stdout.write(dump_defaults())
        return 0
    from advanced_anomaly_detection.config import load_config

    cfg = load_config(args.config, args.set)
    import yaml

    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aad", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="print the effective configuration (validated)")
    add_config_args(p)
    p.add_argument("--defaults", action="store_true", help="print the built-in defaults as YAML")
    p.set_defaults(handler=_config_command)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module: surface it
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("py4j", "cmdstanpy", "prophet", "matplotlib", "h5py", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except (ConfigError, UserError, FileNotFoundError) as exc:
        print(f"aad {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
