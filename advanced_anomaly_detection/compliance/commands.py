"""`aad` subcommands of the compliance workload (Spark is imported only by the handlers that need it).

    aad score-compliance --journey PATH --complaints PATH [--accounts PATH] --output PATH [--as-of DATE]
                         [--config FILE] [--set KEY=VALUE ...]
    aad generate-compliance --out DIR [--customers N] [--seed S] [--as-of DATE] [--with-cfpb CSV]
    aad evaluate-compliance [--customers N] [--seed S] [--config FILE] [--work-dir DIR] [--top-k K ...]
    aad convert-cfpb --input CFPB.csv --output complaints.csv [--keys-from journey.csv] [--seed S]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Dict

from advanced_anomaly_detection.errors import UserError

log = logging.getLogger(__name__)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def add_score_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--journey", required=True, help="contact events (CSV, Parquet or JSON lines)")
    p.add_argument("--complaints", required=True, help="complaints (CSV, Parquet or JSON lines)")
    p.add_argument("--accounts", help="optional accounts table (temp_key, account_open_date) for tenure")
    p.add_argument("--output", required=True, help="gold_compliance_risk location (Parquet, overwritten per as_of_date)")
    p.add_argument("--as-of", type=_date, help="scoring date (default: date of the latest journey event, UTC)")
    p.add_argument("--config", help="override YAML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one config key, e.g. "
                   "compliance.rules.quiet_hours.enabled=false")
    return p


def format_summary(summary: Dict[str, object]) -> str:
    """Human-readable run summary: customers scored, flagged by reason, tiers, skipped rules, inputs."""
    if summary.get("status") != "ok":
        return f"compliance job: {summary.get('status')}: {summary.get('message', '')}"
    lines = [
        f"compliance risk as of {summary['as_of']} (run {summary['run_id']})",
        f"  customers scored: {summary['customers_scored']:,}   flagged: {summary['customers_flagged']:,}",
        "  flagged by reason:",
    ]
    rules = summary.get("rules", {})
    for code, n in summary["flagged_by_reason"].items():
        state = rules.get(code, "ran")
        if code == "MODEL_ANOMALY":
            state = "ran" if summary["model"].get("status") == "ok" else f"skipped: {summary['model'].get('status')}"
        lines.append(f"    {code:<30} {n:>8,}" + ("" if state == "ran" else f"   ({state})"))
    tiers = summary["risk_tiers"]
    lines.append("  risk tiers: " + ", ".join(f"{t} {n:,}" for t, n in tiers.items()))
    tz = summary["time_zones"]
    lines.append(
        f"  time zones: {tz['zone_unknown_checked_fallback']:,} outbound calls/texts with unknown zone "
        f"(checked {' and '.join(tz['fallback_zones'])}), {tz['zone_ambiguous_checked_all']:,} ambiguous"
    )
    for name, info in summary["inputs"].items():
        if not info:
            continue
        rej = sum(info["rejected"].values())
        text = f"  {name}: {info['rows']:,} rows, {rej:,} quarantined"
        if rej:
            text += " (" + ", ".join(f"{k} {v:,}" for k, v in info["rejected"].items()) + ")"
        if info.get("outside_window"):
            ow = info["outside_window"]
            text += f", {ow['after_as_of']:,} after as-of"
            if "before_lookback" in ow:
                text += f", {ow['before_lookback']:,} before lookback"
        if info["missing_optional_columns"]:
            text += f"; missing optional columns: {', '.join(info['missing_optional_columns'])}"
        lines.append(text)
    lines.append(f"  output: {summary['output']}   summary: {summary['summary_path']}")
    if summary.get("quarantine"):
        lines.append("  quarantine: " + ", ".join(summary["quarantine"].values()))
    lines.append(f"  elapsed: {summary['elapsed_s']}s")
    return "\n".join(lines)


def _load_cfg(args):
    from advanced_anomaly_detection.config import load_config

    return load_config(getattr(args, "config", None), getattr(args, "set", None) or [])


def score_command(args: argparse.Namespace) -> int:
    cfg = _load_cfg(args)
    from advanced_anomaly_detection.spark.compliance_job import run
    from advanced_anomaly_detection.spark.session import get_spark

    spark = get_spark(cfg.spark)
    summary = run(spark, cfg, args.journey, args.complaints, args.accounts, args.output, args.as_of)
    print(format_summary(summary))
    return 0


def generate_command(args: argparse.Namespace) -> int:
    from advanced_anomaly_detection.compliance.generator import generate

    if args.customers < 5:
        raise UserError(f"--customers must be at least 5, got {args.customers}")
    data = generate(args.customers, seed=args.seed, as_of=args.as_of, days=args.days)
    if args.with_cfpb:
        import pandas as pd

        from advanced_anomaly_detection.compliance.cfpb import assign_keys, read_cfpb

        real = assign_keys(read_cfpb(args.with_cfpb), data.labels["temp_key"].tolist(), seed=args.seed)
        real = real.drop(columns=["source_complaint_id"])
        # Real complaints keep their own dates; only those up to the as-of date are relevant.
        data.complaints = pd.concat([data.complaints, real], ignore_index=True)
    paths = data.write(args.out)
    print(
        f"generated {args.customers:,} customers (seed {args.seed}), {len(data.journey):,} journey events, "
        f"{len(data.complaints):,} complaints, as of {data.as_of}"
    )
    kinds = data.labels["kind"].value_counts()
    print("  labels: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    import pandas as pd

    from advanced_anomaly_detection.compliance.evaluation import evaluate, format_table
    from advanced_anomaly_detection.compliance.generator import generate

    cfg = _load_cfg(args)
    t0 = time.time()
    data = generate(args.customers, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="aad-compliance-eval-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        paths = data.write(work / "input")
        output = str(work / "gold_compliance_risk")
        from advanced_anomaly_detection.spark.compliance_job import run
        from advanced_anomaly_detection.spark.session import get_spark

        spark = get_spark(cfg.spark)
        summary = run(spark, cfg, paths["journey"], paths["complaints"], paths["accounts"], output, data.as_of)
        cols = ["temp_key", "rule_score", "model_score", "model_flag", "risk_score", "is_flagged", "reasons"]
        scored = pd.read_parquet(output, columns=cols + ["run_id"])
        scored = scored[scored["run_id"] == summary["run_id"]]
    table = evaluate(scored, data.labels, args.top_k)
    print(format_summary(summary))
    print()
    print(f"evaluation: {args.customers:,} generated customers, seed {args.seed}, as of {data.as_of} "
          f"({time.time() - t0:.0f}s including generation)")
    print(format_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table.to_dict(orient="records"), **table.attrs},
                                              indent=2, default=str))
    return 0


def convert_cfpb_command(args: argparse.Namespace) -> int:
    from advanced_anomaly_detection.compliance.cfpb import assign_keys, read_cfpb

    complaints = read_cfpb(args.input)
    if args.keys_from:
        import pandas as pd

        keys = pd.read_csv(args.keys_from, usecols=["temp_key"], dtype=str)["temp_key"].dropna().unique().tolist()
        complaints = assign_keys(complaints, keys, seed=args.seed)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    complaints.to_csv(args.output, index=False)
    with_text = int(complaints["complaint_description"].notna().sum())
    print(f"{len(complaints):,} complaints ({with_text:,} with narrative) -> {args.output}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("score-compliance", help="score contact-compliance (TCPA / Reg F) risk per customer")
    add_score_arguments(p)
    p.set_defaults(handler=score_command)

    p = subparsers.add_parser("generate-compliance", help="write synthetic journeys, complaints, accounts, labels")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--as-of", type=_date, default=dt.date(2026, 11, 20), help="last day of the data")
    p.add_argument("--days", type=int, default=90, help="days of history")
    p.add_argument("--with-cfpb", metavar="CSV", help="also attach the complaints of a CFPB export to random customers")
    p.set_defaults(handler=generate_command)

    p = subparsers.add_parser("evaluate-compliance", help="generate labelled data, run the job, print P/R table")
    p.add_argument("--customers", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="override YAML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--work-dir", help="keep inputs and output here (default: a temporary directory)")
    p.add_argument("--top-k", type=int, nargs="+", help="k values for precision at top k (default: n/2 and n problems)")
    p.add_argument("--json", help="also write the table as JSON here")
    p.set_defaults(handler=evaluate_command)

    p = subparsers.add_parser("convert-cfpb", help="CFPB complaint export -> complaints input of score-compliance")
    p.add_argument("--input", required=True, help="CFPB Consumer Complaint Database CSV export")
    p.add_argument("--output", required=True, help="complaints CSV to write")
    p.add_argument("--keys-from", metavar="JOURNEY_CSV", help="attach complaints to temp_keys of this journey CSV")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=convert_cfpb_command)
