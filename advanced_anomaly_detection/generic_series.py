"""Score one generic metric series (pure pandas): clean, infer the frequency, grid, walk-forward score.

    grid, report = clean_series(rows, series_id, options)        # UserError when unusable as a whole
    points, report = score_grid(grid, report, cfg, options)      # per-point output + what was done
    points, report = score_one(rows, series_id, cfg, options)    # both; unusable -> report only

Input rows hold two string (or typed) columns ``ts`` and ``value``. Cleaning counts and drops rows
whose timestamp is missing or unparseable, counts non-numeric values (the point stays on the grid as
a gap), snaps timestamps onto the inferred regular grid (median step snapped to 1/5/10/15/30 min,
1 h, 1 day), merges duplicate timestamps (mean) and reindexes gaps (``is_filled``; never scored).

Scoring, without ``train_until``: walk forward block by block (a day for sub-daily data, a week
(Mon-Sun) for daily data); each block is scored by detectors fitted only on the points before it; the
first blocks are warm-up (``scoring_status = warmup``). With ``train_until``: fit on points <= it
(``training``), score the rest. Calibrated detector scores go through ``ensemble.combine``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.config import Config
from advanced_anomaly_detection.detectors import generic
from advanced_anomaly_detection.detectors.base import OK
from advanced_anomaly_detection.ensemble import combine
from advanced_anomaly_detection.errors import UserError

log = logging.getLogger(__name__)

FREQUENCIES: Dict[str, pd.Timedelta] = {
    "1min": pd.Timedelta(minutes=1),
    "5min": pd.Timedelta(minutes=5),
    "10min": pd.Timedelta(minutes=10),
    "15min": pd.Timedelta(minutes=15),
    "30min": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "1D": pd.Timedelta(days=1),
}
# A median step further than this factor from every supported frequency is "unknown".
SNAP_TOLERANCE = 1.5
DETECTORS = ("baseline", "prophet", "isolation_forest", "changepoint")
NOT_APPLICABLE = {"lstm": "not_applicable"}  # global model trained on funnel windows

SCORED, WARMUP, TRAINING, FILLED, NO_DETECTOR = "scored", "warmup", "training", "filled_gap", "no_detector_ran"
POINT_COLUMNS = ["timestamp", "series_id", "value", "is_filled", "expected_value"]


@dataclass
class SeriesOptions:
    train_until: Optional[pd.Timestamp] = None  # naive UTC
    freq: Optional[str] = None  # force one of FREQUENCIES instead of inferring
    warmup_days: Optional[float] = None  # walk-forward warm-up; None: auto
    min_history_days: Optional[float] = None  # smallest history a fit accepts; None: 2 days / 14 days
    history_days: Optional[float] = None  # fit on at most this much recent history; None: 28 d / 730 d
    max_history_points: int = 6000
    detectors: Tuple[str, ...] = field(default=DETECTORS)


# --------------------------------------------------------------------------------------------------
# cleaning
# --------------------------------------------------------------------------------------------------
def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype(str).str.strip().isin(["", "nan", "NaN", "None", "null", "NULL", "NaT"])


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """Naive UTC timestamps (offsets converted to UTC); NaT where missing or unparseable."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = pd.to_datetime(raw, utc=True)
    else:
        ts = pd.to_datetime(raw.astype("string").str.strip(), errors="coerce", utc=True, format="mixed")
    return ts.dt.tz_localize(None)


def infer_frequency(ts: pd.Series, series_id: str) -> Tuple[str, pd.Timedelta, pd.Timedelta]:
    """(name, step, median step) of sorted unique timestamps; UserError if no supported step fits."""
    steps = np.diff(np.sort(pd.to_datetime(ts.unique())).astype("datetime64[ns]").astype(np.int64))
    median = pd.Timedelta(int(np.median(steps)), unit="ns")
    name, step = min(FREQUENCIES.items(), key=lambda kv: abs(np.log(median / kv[1])))
    if not (1 / SNAP_TOLERANCE <= median / step <= SNAP_TOLERANCE):
        raise UserError(
            f"series '{series_id}': unknown frequency: median step {median} is not close to any of "
            f"{', '.join(FREQUENCIES)} (pass --freq to force one)"
        )
    return name, step, median


def clean_series(rows: pd.DataFrame, series_id: str, options: SeriesOptions) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """rows: columns ts, value -> (grid frame [timestamp, value, is_filled], report)."""
    n = len(rows)
    ts = parse_timestamps(rows["ts"])
    ts_missing = _blank(rows["ts"]).to_numpy() if not pd.api.types.is_datetime64_any_dtype(rows["ts"]) else rows["ts"].isna().to_numpy()
    ts_bad = ts.isna().to_numpy() & ~ts_missing
    if pd.api.types.is_numeric_dtype(rows["value"]):
        num = pd.to_numeric(rows["value"], errors="coerce").astype(float)
        v_missing = rows["value"].isna().to_numpy()
    else:
        num = pd.to_numeric(rows["value"].astype("string").str.strip(), errors="coerce").astype(float)
        v_missing = _blank(rows["value"]).to_numpy()
    num = num.where(np.isfinite(num))
    v_bad = num.isna().to_numpy() & ~v_missing
    keep_ts = ~(ts_missing | ts_bad)
    bad = {
        "missing_timestamp": int(ts_missing.sum()),
        "unparseable_timestamp": int(ts_bad.sum()),
        "non_numeric_value": int((v_bad & keep_ts).sum()),
        "missing_value": int((v_missing & keep_ts).sum()),
    }
    examples = {}
    if ts_bad.any():
        examples["unparseable_timestamp"] = [str(x) for x in rows["ts"][ts_bad].head(3)]
    if (v_bad & keep_ts).any():
        examples["non_numeric_value"] = [str(x) for x in rows["value"][v_bad & keep_ts].head(3)]
    report: Dict[str, Any] = {"series_id": series_id, "status": "ok", "message": "", "rows_in": n,
                              "bad_rows": bad, "bad_examples": examples}
    where = f"series '{series_id}'"
    if n == 0:
        raise UserError(f"{where}: no rows")
    if not keep_ts.any():
        ex = f" (e.g. {examples['unparseable_timestamp'][0]!r})" if ts_bad.any() else ""
        raise UserError(f"{where}: no parseable timestamp in {n} rows{ex}")
    observed = keep_ts & np.isfinite(num.to_numpy())
    if not observed.any():
        ex = f" (e.g. {examples['non_numeric_value'][0]!r})" if "non_numeric_value" in examples else ""
        raise UserError(f"{where}: no numeric value in {n} rows{ex}")
    frame = pd.DataFrame({"timestamp": ts[keep_ts].to_numpy(), "value": num[keep_ts].to_numpy()})
    if frame["timestamp"].nunique() < 2:
        raise UserError(f"{where}: a single point in time ({frame['timestamp'].iloc[0]}); need a series")
    if options.freq:
        if options.freq not in FREQUENCIES:
            raise UserError(f"--freq {options.freq!r}: supported: {', '.join(FREQUENCIES)}")
        fname, step, median = options.freq, FREQUENCIES[options.freq], None
    else:
        fname, step, median = infer_frequency(frame["timestamp"], series_id)
    snapped = frame["timestamp"].dt.floor(step)
    off_grid = int((snapped != frame["timestamp"]).sum())
    frame["timestamp"] = snapped
    # duplicates: rows sharing a grid timestamp; the mean of their numeric values is kept
    counts = frame.loc[np.isfinite(frame["value"].to_numpy()), "timestamp"].value_counts()
    dup_rows = int((counts - 1).clip(lower=0).sum())
    dup_ts = int((counts > 1).sum())
    agg = frame.groupby("timestamp", sort=True)["value"].mean()
    grid_index = pd.date_range(agg.index[0], agg.index[-1], freq=step)
    grid = pd.DataFrame({"timestamp": grid_index})
    grid["value"] = agg.reindex(grid_index).to_numpy(dtype=float)
    grid["is_filled"] = ~np.isfinite(grid["value"].to_numpy())
    absent = int(len(grid_index) - len(agg))
    report.update(
        frequency=fname,
        median_step=str(median) if median is not None else None,
        first_timestamp=str(grid_index[0]),
        last_timestamp=str(grid_index[-1]),
        points=int(len(grid)),
        observed_points=int((~grid["is_filled"]).sum()),
        off_grid_timestamps_snapped=off_grid,
        duplicate_timestamps=dup_ts,
        duplicates_merged=dup_rows,
        gaps_filled=absent,  # grid points with no input row at all
        missing_points=int(grid["is_filled"].sum()),  # gaps + rows whose value was missing/non-numeric
    )
    return grid, report


# --------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------
def _per_day(step: pd.Timedelta) -> int:
    return generic.periods_per_day(step)


def _resolve(options: SeriesOptions, step: pd.Timedelta) -> Dict[str, int]:
    daily = _per_day(step) == 1
    ppd = _per_day(step)
    min_days = options.min_history_days or (14 if daily else 2)
    hist_days = options.history_days or (730 if daily else 28)
    return {
        "min_points": max(int(round(min_days * ppd)), 8),
        "history_points": min(int(round(hist_days * ppd)), options.max_history_points),
    }


def build_detectors(cfg: Config, step: pd.Timedelta, options: SeriesOptions) -> Dict[str, generic.Detector]:
    r = _resolve(options, step)
    d = cfg.detectors
    out: Dict[str, generic.Detector] = {}
    for name in options.detectors:
        if not getattr(d, name).enabled:
            continue
        if name == "baseline":
            out[name] = generic.GenericBaselineDetector(step, **r)
        elif name == "prophet":
            out[name] = generic.GenericProphetDetector(step, **r, changepoint_prior_scale=d.prophet.changepoint_prior_scale,
                                                     tol_rel_grad=d.prophet.tol_rel_grad)
        elif name == "isolation_forest":
            c = d.isolation_forest
            out[name] = generic.GenericIsolationForestDetector(
                step, **r, n_estimators=c.n_estimators, max_samples=c.max_samples, random_state=c.random_state
            )
        elif name == "changepoint":
            c = d.changepoint
            out[name] = generic.GenericChangepointDetector(
                step, **r, min_size=c.min_size, penalty_factor=c.penalty_factor, jump=c.jump
            )
    return out


def _blocks(ts: pd.Series, step: pd.Timedelta) -> pd.Series:
    day = ts.dt.floor("D")
    if _per_day(step) > 1:
        return day
    return day - pd.to_timedelta(ts.dt.dayofweek, unit="D")  # weeks starting Monday


def score_grid(grid: pd.DataFrame, report: Dict[str, Any], cfg: Config, options: SeriesOptions,
               ) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """Per-point output for a cleaned grid; UserError when there is too little to score."""
    sid = report["series_id"]
    step = FREQUENCIES[report["frequency"]]
    r = _resolve(options, step)
    ts = grid["timestamp"]
    status = np.full(len(grid), WARMUP, dtype=object)
    plans: List[Tuple[np.ndarray, np.ndarray]] = []  # (history rows, scored rows)
    if options.train_until is not None:
        tu = options.train_until
        hist_rows = np.flatnonzero((ts <= tu).to_numpy())
        score_rows = np.flatnonzero((ts > tu).to_numpy())
        status[hist_rows] = TRAINING
        if len(hist_rows) < r["min_points"]:
            raise UserError(f"series '{sid}': {len(hist_rows)} points at {report['frequency']} up to --train-until "
                            f"{tu}; need at least {r['min_points']}")
        if len(score_rows) == 0:
            raise UserError(f"series '{sid}': no points after --train-until {tu} (last is {ts.iloc[-1]})")
        plans.append((hist_rows, score_rows))
        report["mode"] = f"train_until {tu}"
    else:
        daily = _per_day(step) == 1
        span_days = (ts.iloc[-1] - ts.iloc[0]) / pd.Timedelta(days=1)
        warm = options.warmup_days or float(max(14, min(28, int(span_days // 3))) if daily else max(2, min(7, int(span_days // 3))))
        warm_end = ts.iloc[0] + pd.Timedelta(days=warm)
        blocks = _blocks(ts, step)
        starts = [b for b in blocks.unique() if b >= warm_end and int((ts < b).sum()) >= r["min_points"]]
        if not starts:
            need = max(r["min_points"], int(warm * _per_day(step)))
            raise UserError(
                f"series '{sid}': {len(grid)} points at {report['frequency']} ({ts.iloc[0]} .. {ts.iloc[-1]}) is too "
                f"short for walk-forward scoring: needs about {need} points of warm-up plus one "
                f"{'week' if daily else 'day'} to score (or pass --train-until)"
            )
        bvals = blocks.to_numpy()
        for b in starts:
            score_rows = np.flatnonzero(bvals == np.datetime64(b))
            plans.append((np.arange(score_rows[0]), score_rows))
        report["mode"] = f"walk_forward per {'week' if daily else 'day'}, warm-up {warm:g} days"
    names = [n for n in options.detectors if getattr(cfg.detectors, n).enabled]
    scores = pd.DataFrame(np.nan, index=grid.index, columns=names)
    expected = pd.Series(np.nan, index=grid.index)
    det_status: Dict[str, Dict[str, int]] = {n: {} for n in names}
    for hist_rows, score_rows in plans:
        history = grid.iloc[hist_rows[-r["history_points"]:]]
        frame = grid.iloc[score_rows]
        status[score_rows] = SCORED
        exp_set = False
        for name, det in build_detectors(cfg, step, options).items():
            det.fit(history)
            key = det.status_ if det.status_ == OK else f"{det.status_}: {det.reason_}"[:200]
            det_status[name][key] = det_status[name].get(key, 0) + 1
            if det.status_ != OK:
                continue
            try:
                out = det.score(frame)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                key = f"failed: {type(exc).__name__}: {exc}"[:200]
                det_status[name][key] = det_status[name].get(key, 0) + 1
                continue
            sc = out["score"].to_numpy(dtype=float)
            sc[frame["is_filled"].to_numpy()] = np.nan  # never score a filled point as observed
            scores.iloc[score_rows, scores.columns.get_loc(name)] = sc
            if not exp_set and np.isfinite(out["expected"].to_numpy(dtype=float)).any():
                expected.iloc[score_rows] = out["expected"].to_numpy(dtype=float)
                exp_set = True
    filled = grid["is_filled"].to_numpy()
    scored = status == SCORED
    status[scored & filled] = FILLED
    # Generic series are fitted on days, not months, of history: one detector's extreme score is not
    # decisive there, so the funnel job's single-detector rule is not applied (measured: it tripled
    # the false alarms of the clean parts in tests/test_score_series.py).
    ens = combine(scores, cfg.ensemble.model_copy(
        update={"single_detector_threshold": None, "threshold": cfg.ensemble.series_threshold}))
    none_ran = scored & ~filled & (ens["detectors_ran"].to_numpy() == 0)
    status[none_ran] = NO_DETECTOR
    ok = status == SCORED
    out = pd.DataFrame({
        "timestamp": grid["timestamp"].to_numpy(),
        "series_id": sid,
        "value": grid["value"].to_numpy(dtype=float),
        "is_filled": filled,
        "expected_value": expected.to_numpy(dtype=float),
    })
    for name in DETECTORS:
        out[f"score_{name}"] = scores[name].to_numpy(dtype=float) if name in scores else np.nan
    out["ensemble_anomaly_score"] = np.where(ok, ens["ensemble_anomaly_score"].to_numpy(dtype=float), np.nan)
    out["is_anomaly"] = pd.array(np.where(ok, ens["is_anomaly"].to_numpy(), None), dtype="boolean")
    out["scoring_status"] = status
    flagged = out.loc[out["is_anomaly"].fillna(False).to_numpy(bool), "timestamp"]
    report["scoring_status"] = {k: int(v) for k, v in pd.Series(status).value_counts().items()}
    report["scored_points"] = int(ok.sum())
    report["anomalies"] = int(len(flagged))
    report["anomaly_timestamps"] = [str(t) for t in flagged.head(50)]
    report["detectors"] = {**det_status, **{n: {"disabled": 1} for n in DETECTORS if n not in names},
                           **{k: {v: 1} for k, v in NOT_APPLICABLE.items()}}
    return out, report


def score_one(rows: pd.DataFrame, series_id: str, cfg: Config, options: SeriesOptions
              ) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """Clean and score one series. An unusable series gives no points and status 'unusable' with the
    reason (the job decides whether that is fatal); it never raises UserError."""
    report: Dict[str, Any] = {"series_id": series_id, "rows_in": int(len(rows))}
    try:
        grid, report = clean_series(rows, series_id, options)
        return score_grid(grid, report, cfg, options)
    except UserError as exc:
        report.update(status="unusable", message=str(exc))
        return empty_points(), report


def empty_points() -> pd.DataFrame:
    cols = POINT_COLUMNS + [f"score_{n}" for n in DETECTORS] + ["ensemble_anomaly_score", "is_anomaly", "scoring_status"]
    return pd.DataFrame({c: [] for c in cols})


# --------------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------------
def describe(report: Dict[str, Any]) -> str:
    """One line saying what was done to a series."""
    sid = report.get("series_id")
    if report.get("status") == "unusable":
        return f"series '{sid}': UNUSABLE: {report.get('message')}"
    bad = ", ".join(f"{v} {k}" for k, v in report.get("bad_rows", {}).items() if v) or "none"
    st = report.get("scoring_status", {})
    not_scored = ", ".join(f"{v} {k}" for k, v in st.items() if k != SCORED) or "none"
    dets = []
    for name, counts in report.get("detectors", {}).items():
        ok = counts.get(OK, 0)
        total = sum(counts.values())
        if name in NOT_APPLICABLE or "disabled" in counts:
            dets.append(f"{name} {next(iter(counts))}")
        else:
            dets.append(f"{name} {ok}/{total} fits ok" if ok < total else f"{name} ok")
    return (
        f"series '{sid}': {report['points']} points at {report['frequency']} ({report['first_timestamp']} .. "
        f"{report['last_timestamp']}); {report['duplicates_merged']} duplicate rows merged "
        f"({report['duplicate_timestamps']} timestamps); {report['gaps_filled']} gaps filled "
        f"({report['missing_points']} points without a value, not scored); bad rows: {bad}; "
        f"scored {report['scored_points']} ({report['mode']}), not scored: {not_scored}; "
        f"anomalies {report['anomalies']}; detectors: {', '.join(dets)}"
    )
