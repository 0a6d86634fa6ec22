"""Funnel subcommands of `aad`: generate data, build gold, detect, evaluate, demo.

Spark is started only by the handlers that need it; every handler returns an exit code.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from advanced_anomaly_detection.config import add_config_args
from advanced_anomaly_detection.errors import UserError

log = logging.getLogger(__name__)


def _load(args):
    from advanced_anomaly_detection.config import load_config

    return load_config(args.config, args.set)


def _spark(cfg):
    from advanced_anomaly_detection.spark.session import get_spark

    return get_spark(cfg.spark)


# --------------------------------------------------------------------------------------------------
# detect
# --------------------------------------------------------------------------------------------------
def add_detect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gold", help="gold_funnel_hourly_brand Parquet path (default: io.gold_path)")
    p.add_argument("--output", help="gold_anomalies_advanced Parquet path (default: io.output_path)")
    p.add_argument("--start", help="first scored date YYYY-MM-DD (default: yesterday, UTC)")
    p.add_argument("--end", help="last scored date YYYY-MM-DD (default: --start or yesterday)")
    p.add_argument("--model-dir", help="trained models (LSTM); trained first if empty or missing")
    add_config_args(p)


def detect(args) -> int:
    from advanced_anomaly_detection.errors import UserError
    from advanced_anomaly_detection.spark import funnel_job

    cfg = _load(args)  # invalid config fails here, before any data is read
    gold = args.gold or cfg.io.gold_path
    output = args.output or cfg.io.output_path
    if not gold or not output:
        raise UserError("--gold and --output are required (or io.gold_path / io.output_path in the config)")
    end = funnel_job.parse_date(args.end, "end")
    start = funnel_job.parse_date(args.start, "start")
    if start and not end:
        end = start
    summary = funnel_job.run(
        _spark(cfg), cfg, gold, output, start, end, model_dir=args.model_dir or cfg.io.model_dir
    )
    print(format_summary(summary))
    return 0


def format_summary(s: Dict[str, Any]) -> str:
    lines = [
        f"output table : {s['output_path']}  (dates {s['start']}..{s['end']}, run {s['run_id']})",
        f"run summary  : {s['summary_path']}",
        f"rows scored  : {s['output_rows']} brand-hours of {s['brands_scored']} brands "
        f"({s['filled_hours']} absent hours filled as zero; row accounting ok: {s['row_accounting_ok']})",
        f"quarantined  : {sum(s['quarantined_in_scored_dates'].values())} rows "
        + json.dumps({k: v for k, v in s["quarantined_in_scored_dates"].items() if v}),
        f"anomalies    : {s['anomalies']} hours; by severity "
        + json.dumps({k: v for k, v in s["anomalies_by_severity"].items() if k != "none"})
        + "; by type " + json.dumps(s["anomalies_by_type"]),
    ]
    lines.append(f"alert events : {s['alert_events']} (consecutive flagged hours of a brand) -> {s['alerts_path']}")
    fits = s.get("saved_fits") or {}
    if fits.get("fits_path"):
        lines.append(f"saved fits   : reused {json.dumps(fits['fits_reused'])}, new {json.dumps(fits['fits_new'])} "
                     f"-> {fits['fits_path']}")
    if s["top_brands"]:
        lines.append("top brands   : " + ", ".join(
            f"{b['brand']} ({b['anomalous_hours']} h, revenue impact {b['revenue_impact']})" for b in s["top_brands"][:5]
        ))
    return "\n".join(lines)


def train_cmd(args) -> int:
    from advanced_anomaly_detection.errors import UserError
    from advanced_anomaly_detection.spark import funnel_job, training

    cfg = _load(args)
    gold = args.gold or cfg.io.gold_path
    model_dir = args.model_dir or cfg.io.model_dir
    if not gold or not model_dir:
        raise UserError("--gold and --model-dir are required (or io.gold_path / io.model_dir in the config)")
    end = funnel_job.parse_date(args.end, "end") or funnel_job.yesterday_utc()
    result = training.train_lstm_model(_spark(cfg), cfg, gold, model_dir, end)
    print(f"trained lstm {result['version']} on {result['windows']} windows of {result['brands']} brands "
          f"in {result['seconds']} s -> {result['path']}")
    return 0


# --------------------------------------------------------------------------------------------------
# data generation and gold build
# --------------------------------------------------------------------------------------------------
def generate_cmd(args) -> int:
    """generate-gold / generate-events: labelled sample data from the same realism model."""
    from advanced_anomaly_detection.data import events, synthetic

    start = dt.date.fromisoformat(args.start) if args.start else dt.date.today() - dt.timedelta(days=args.days)
    out = Path(args.out)
    if args.kind == "gold":
        data, labels = synthetic.generate_gold(args.brands, start, args.days, seed=args.seed, anomalies=not args.clean)
        synthetic.write_gold_parquet(data, out / "gold_funnel_hourly_brand")
        what = "gold rows"
    else:
        data, labels = events.generate_events(args.brands, start, args.days, seed=args.seed, anomalies=not args.clean)
        events.write_events_csv(data, out / "raw_events")
        what = f"raw events (planted dirt: {data.attrs.get('dirty_report')})"
    synthetic.write_labels(labels, out / "labels.csv")
    print(f"wrote {len(data)} {what} for {args.brands} brands x {args.days} days from {start} and "
          f"{len(labels)} labelled anomalies under {out}")
    return 0


def build_gold_cmd(args) -> int:
    from advanced_anomaly_detection.spark import gold_build

    cfg = _load(args)
    summary = gold_build.run(_spark(cfg), args.raw, args.output_root, start=args.start, end=args.end)
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.summary_json:
        Path(args.summary_json).write_text(text)
    return 0


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------
def run_evaluation(spark, cfg, workdir: Path, brands: int, history_days: int, scored_days: int, seed: int,
                   tolerance_hours: int = 2, rescore: bool = False, history_anomalies: bool = False,
                   nightly: bool = False) -> Dict[str, Any]:
    """Generate a labelled benchmark, run the real job on it, score every method on the same hours.

    rescore: reuse the benchmark and job output already in `workdir` and only recombine the stored
    per-detector scores with the current ensemble settings (detector settings are not re-applied).
    history_anomalies: plant incidents in the history too (from its third week to two days before the
    scored days), as real histories hold them; only the scored days' labels are scored.
    nightly: score the days one run each, in order, as the nightly schedule does (models and per-brand
    fits kept in the workdir between them) instead of one backfill run over all of them.
    """
    import pandas as pd

    from advanced_anomaly_detection import ensemble, evaluation
    from advanced_anomaly_detection.config import DETECTOR_NAMES
    from advanced_anomaly_detection.data import synthetic
    from advanced_anomaly_detection.spark import funnel_job

    first = dt.date(2026, 1, 5)
    start = first + dt.timedelta(days=history_days)
    end = start + dt.timedelta(days=scored_days - 1)
    gold_path, out_path = workdir / "gold_funnel_hourly_brand", workdir / "gold_anomalies_advanced"
    if rescore:
        if not out_path.exists():
            raise UserError(f"--rescore: no job output under {workdir}; run `aad evaluate --workdir {workdir}` first")
        gold, labels = pd.read_parquet(gold_path), synthetic.read_labels(workdir / "labels.csv")
        gold["window_start"] = pd.to_datetime(gold["window_start"]).dt.tz_localize(None)
        out = pd.read_parquet(out_path)
        # each hour as last written (one backfill run, or one run per night)
        out = out.sort_values("run_id").drop_duplicates(["brand", "window_start"], keep="last")
        job_seconds = None
    else:
        past = (first + dt.timedelta(days=14), start) if history_anomalies else None
        gold, labels = synthetic.generate_gold(
            brands, first, history_days + scored_days, seed=seed, anomaly_start=start,
            anomaly_end=dt.datetime.combine(end, dt.time(23)), history_anomaly_window=past,
        )
        synthetic.write_gold_parquet(gold, gold_path)
        synthetic.write_labels(labels, workdir / "labels.csv")
        runs = [(start, end)] if not nightly else [
            (day, day) for day in (start + dt.timedelta(days=i) for i in range(scored_days))]
        summaries = [funnel_job.run(spark, cfg, str(gold_path), str(out_path), a, b, model_dir=str(workdir / "models"))
                     for a, b in runs]
        out = pd.read_parquet(out_path)
        out = out[out["run_id"].isin([s["run_id"] for s in summaries])]
        job_seconds = round(sum(s["elapsed_seconds"] for s in summaries), 1)
    brand_days = out["brand"].nunique() * scored_days
    in_history = labels["start"] < pd.Timestamp(start)
    past_incidents = int(in_history.sum())
    labels = labels[~in_history].reset_index(drop=True)
    rows: List[Dict[str, Any]] = []

    def add(method: str, flags: pd.DataFrame) -> None:
        m = evaluation.event_metrics(flags, labels, brand_days, tolerance_hours, cfg.alerts)
        rows.append({"method": method, **m})

    score_cols = {n: f"{n}_anomaly_score" for n in DETECTOR_NAMES if out[f"{n}_anomaly_score"].notna().any()}
    stored = out[list(score_cols.values())].set_axis(list(score_cols), axis=1)
    other = "mean" if cfg.ensemble.method == "evidence_mean" else "evidence_mean"
    for method in (cfg.ensemble.method, other) if len(score_cols) > 1 else (cfg.ensemble.method,):
        flags = ensemble.combine(stored, cfg.ensemble.model_copy(update={"method": method}))["is_anomaly"]
        add(f"ensemble ({method})", out[["brand", "window_start"]].assign(is_anomaly=flags.to_numpy()))
    for name, col in score_cols.items():
        alone = out[["brand", "window_start"]].assign(is_anomaly=out[col].fillna(0) >= cfg.ensemble.threshold)
        add(f"{name} alone", alone)
    add("seed z-score rule", evaluation.seed_zscore_flags(gold, start, end))
    return {
        "benchmark": {"brands": int(out["brand"].nunique()), "history_days": history_days,
                      "scored_days": scored_days, "seed": seed, "labelled_windows": len(labels),
                      "runs": "one per scored day (nightly)" if nightly else "one over all scored days (backfill)",
                      "history_incidents": past_incidents,
                      "brand_days": brand_days, "tolerance_hours": tolerance_hours},
        "job_seconds": job_seconds,
        "methods": rows,
    }


def evaluate_cmd(args) -> int:
    import tempfile

    from advanced_anomaly_detection.evaluation import comparison_table

    cfg = _load(args)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="aad-eval-"))
    if args.rescore and not args.workdir:
        raise UserError("--rescore needs --workdir (the directory of an earlier `aad evaluate` run)")
    spark = None if args.rescore else _spark(cfg)
    result = run_evaluation(spark, cfg, workdir, args.brands, args.history_days, args.scored_days, args.seed,
                            rescore=args.rescore, history_anomalies=args.history_anomalies, nightly=args.nightly)
    b = result["benchmark"]
    print(f"benchmark: {b['brands']} brands, {b['history_days']} days history ({b['history_incidents']} incidents "
          f"planted there), {b['scored_days']} days scored, "
          f"{b['labelled_windows']} labelled windows, seed {b['seed']}, {b.get('runs', 'one run')} "
          f"(data under {workdir}); "
          f"job {result['job_seconds']} s")
    print(comparison_table(result["methods"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        print(f"metrics written to {args.json}")
    return 0


# --------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------
def demo_cmd(args) -> int:
    from advanced_anomaly_detection.data import events, synthetic
    from advanced_anomaly_detection.spark import funnel_job, gold_build

    cfg = _load(args)
    out = Path(args.workdir)
    days, brands = 42, 24
    end = dt.date.today() - dt.timedelta(days=1)
    first = end - dt.timedelta(days=days - 1)
    start = end - dt.timedelta(days=1)  # score the last two days
    print(f"[1/3] generating {brands} brands x {days} days of raw events ({first}..{end}) ...", flush=True)
    ev, labels = events.generate_events(brands, first, days, seed=args.seed, anomaly_start=start, n_anomalies=4,
                                        anomaly_end=dt.datetime.combine(end, dt.time(23)))
    events.write_events_csv(ev, out / "raw_events")
    synthetic.write_labels(labels, out / "labels.csv")
    spark = _spark(cfg)
    print(f"[2/3] building bronze -> silver -> gold from {len(ev)} events ...", flush=True)
    g = gold_build.run(spark, str(out / "raw_events"), str(out))
    print(f"      rows per layer {json.dumps(g['rows'])}; duplicates removed {g['duplicates_removed']}; "
          f"quarantined {json.dumps(g['quarantined'])}")
    print(f"[3/3] detecting anomalies for {start}..{end} ...", flush=True)
    s = funnel_job.run(spark, cfg, str(out / "gold_funnel_hourly_brand"), str(out / "gold_anomalies_advanced"),
                       start, end, model_dir=str(out / "models"))
    print(format_summary(s))
    print(f"planted anomalies (labels): {out / 'labels.csv'}")
    print(labels.to_string(index=False) if len(labels) else "(none)")
    return 0


# --------------------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("detect", help="score gold_funnel_hourly_brand into gold_anomalies_advanced")
    add_detect_args(p)
    p.set_defaults(handler=detect)

    p = sub.add_parser("train", help="train the global LSTM autoencoder on gold history up to --end")
    p.add_argument("--gold", help="gold_funnel_hourly_brand Parquet path (default: io.gold_path)")
    p.add_argument("--model-dir", help="model directory, local or gs:// (default: io.model_dir)")
    p.add_argument("--end", help="last history date YYYY-MM-DD (default: yesterday, UTC)")
    add_config_args(p)
    p.set_defaults(handler=train_cmd)

    p = sub.add_parser("build-gold", help="raw events -> bronze -> silver -> gold_funnel_hourly_brand")
    p.add_argument("--raw", required=True, help="raw events (CSV directory/file or Parquet)")
    p.add_argument("--output-root", required=True, help="directory for bronze_events, silver_events, gold")
    p.add_argument("--start", help="first event date to build (YYYY-MM-DD); default: all")
    p.add_argument("--end", help="last event date to build (inclusive); default: all")
    p.add_argument("--summary-json", help="also write the run summary to this local file")
    add_config_args(p)
    p.set_defaults(handler=build_gold_cmd)

    for name, kind, what in (
        ("generate-gold", "gold", "a labelled synthetic gold table (fast; for benchmarks)"),
        ("generate-events", "events", "labelled synthetic raw events in the REES46 schema"),
    ):
        p = sub.add_parser(name, help=f"write {what}")
        p.add_argument("--out", required=True)
        p.add_argument("--brands", type=int, default=50)
        p.add_argument("--days", type=int, default=42)
        p.add_argument("--start", help="first date (default: --days before today)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--clean", action="store_true", help="no planted anomalies")
        p.set_defaults(handler=generate_cmd, kind=kind)

    p = sub.add_parser("evaluate", help="labelled benchmark: event-level precision/recall/F1 vs the seed rule")
    p.add_argument("--brands", type=int, default=200)
    p.add_argument("--history-days", type=int, default=56)
    p.add_argument("--scored-days", type=int, default=14)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", help="where the benchmark data and output go (default: a temp dir)")
    p.add_argument("--json", help="also write the metrics as JSON here")
    p.add_argument("--rescore", action="store_true",
                   help="recombine the stored detector scores of --workdir with the current ensemble settings")
    p.add_argument("--history-anomalies", action="store_true",
                   help="plant incidents in the history too, as real histories hold them (only the scored "
                        "days' labels are scored)")
    p.add_argument("--nightly", action="store_true",
                   help="score the days one run each, in order, as the nightly schedule does (models and kept "
                        "per-brand fits carried from night to night), instead of one backfill run")
    add_config_args(p)
    p.set_defaults(handler=evaluate_cmd)

    p = sub.add_parser("demo", help="sample events -> gold -> detection, with a printed summary")
    p.add_argument("--workdir", default="data_out/demo")
    p.add_argument("--seed", type=int, default=1)
    add_config_args(p)
    p.set_defaults(handler=demo_cmd)


if __name__ == "__main__":  # pragma: no cover
    from advanced_anomaly_detection.cli import main

    sys.exit(main(sys.argv[1:]))
