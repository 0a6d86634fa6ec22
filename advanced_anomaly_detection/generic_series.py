"""Score one generic metric series (pure pandas): clean, infer the frequency, grid, walk-forward score.

    grid, report = clean_series(rows, series_id, options)        # UserError when unusable as a whole
    points, report = score_grid(grid, report, cfg, options)      # per-point output + what was done
    points, report = score_one(rows, series_id, cfg, options)    # both; unusable -> report only

Input rows hold two string (or typed) columns ``ts`` and ``value``. Cleaning counts and drops rows
whose timestamp is missing or unparseable, counts non-numeric values (the point stays on the grid as
a gap), snaps timestamps onto the grid of the inferred cadence (cadence.py: any step of whole seconds,
jitter snapped to round steps, or calendar months / quarters / years; a time column of plain numbers
is read as Unix epochs, yyyymmdd dates or positions), merges duplicate timestamps (mean) and
reindexes gaps (``is_filled``; never scored).

Scoring, without ``train_until``: walk forward block by block (a day for intraday data, a week
(Mon-Sun) for daily data, a year for monthly / quarterly data, else MAX_BLOCKS runs of points); each
block is scored by detectors fitted only on the points before it; the first blocks are warm-up
(``scoring_status = warmup``). With ``train_until``: fit on points <= it (``training``), score the
rest. Calibrated detector scores go through ``ensemble.combine``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from advanced_anomaly_detection import cadence as cad
from advanced_anomaly_detection.cadence import Cadence
from advanced_anomaly_detection.config import Config
from advanced_anomaly_detection.detectors import generic
from advanced_anomaly_detection.detectors.base import OK
from advanced_anomaly_detection.ensemble import combine
from advanced_anomaly_detection.errors import UserError

log = logging.getLogger(__name__)

# Walk-forward for cadences without a day or week to block by: at most this many blocks (fits).
MAX_BLOCKS = 40
DETECTORS = ("baseline", "prophet", "isolation_forest", "changepoint")
NOT_APPLICABLE = {"lstm": "not_applicable"}  # global model trained on funnel windows

SCORED, WARMUP, TRAINING, FILLED, NO_DETECTOR = "scored", "warmup", "training", "filled_gap", "no_detector_ran"
POINT_COLUMNS = ["timestamp", "series_id", "value", "is_filled", "expected_value"]
# A time column of plain numbers (positions, Unix epochs) also gets each grid point in its own numbers.
TIME_NUMBER = "time_number"
NUMERIC_TIMES = ("positions",) + tuple(h for h, _, _, _ in cad.EPOCH_UNITS)


@dataclass
class SeriesOptions:
    train_until: Optional[Union[pd.Timestamp, float]] = None  # naive UTC, or a number in the time column's units
    freq: Optional[str] = None  # force a cadence (cadence.parse_cadence) instead of inferring it
    warmup_days: Optional[float] = None  # walk-forward warm-up; None: auto
    warmup_points: Optional[int] = None  # the same in points (for any cadence)
    min_history_days: Optional[float] = None  # smallest history a fit accepts; None: 2 days / 14 days
    history_days: Optional[float] = None  # fit on at most this much recent history; None: 28 d / 730 d
    max_history_points: int = 6000
    detectors: Tuple[str, ...] = field(default=DETECTORS)


# --------------------------------------------------------------------------------------------------
# cleaning
# --------------------------------------------------------------------------------------------------
def _blank(s: pd.Series) -> pd.Series:
    return s.isna() | s.astype(str).str.strip().isin(["", "nan", "NaN", "None", "null", "NULL", "NaT"])


def clean_series(rows: pd.DataFrame, series_id: str, options: SeriesOptions) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """rows: columns ts, value -> (grid frame [timestamp, value, is_filled], report)."""
    n = len(rows)
    ts, read_as = cad.read_times(rows["ts"])
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
    positional = read_as == "positions"
    if options.freq:
        cadence, median = cad.parse_cadence(options.freq, positional), None
    else:
        cadence, median = cad.infer_cadence(frame["timestamp"], series_id, positional)
    snapped = cadence.snap(frame["timestamp"])
    off_grid = int((snapped != frame["timestamp"]).sum())
    frame["timestamp"] = snapped
    # duplicates: rows sharing a grid timestamp; the mean of their numeric values is kept
    counts = frame.loc[np.isfinite(frame["value"].to_numpy()), "timestamp"].value_counts()
    dup_rows = int((counts - 1).clip(lower=0).sum())
    dup_ts = int((counts > 1).sum())
    agg = frame.groupby("timestamp", sort=True)["value"].mean()
    grid_index = cadence.grid(agg.index[0], agg.index[-1])
    grid = pd.DataFrame({"timestamp": grid_index})
    grid["value"] = agg.reindex(grid_index).to_numpy(dtype=float)
    grid["is_filled"] = ~np.isfinite(grid["value"].to_numpy())
    absent = int(len(grid_index) - len(agg))
    report.update(
        frequency=cadence.name,
        cadence=cadence.kind,
        step_seconds=cadence.step.total_seconds(),
        time_read_as=read_as,
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
    if read_as in NUMERIC_TIMES:  # the span in the input's own numbers too
        first, last = cad.timestamp_to_number(pd.Series(grid_index[[0, -1]]), read_as)
        report.update(first_time_number=float(first), last_time_number=float(last))
    return grid, report


# --------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------
def cadence_of(report: Dict[str, Any]) -> Cadence:
    """The cadence clean_series chose, from its report (reports travel as JSON)."""
    name = report["frequency"]
    if name in cad.CALENDAR:
        return cad.Cadence(name, cad.CALENDAR[name][2], calendar=name)
    return cad.Cadence(name, pd.Timedelta(seconds=report["step_seconds"]),
                       positional=report.get("time_read_as") == "positions")


def _day_based(cadence: Cadence) -> bool:
    return cadence.kind in ("intraday", "daily")


def _points_of_days(cadence: Cadence, days: Optional[float], what: str) -> Optional[int]:
    if days is None:
        return None
    if cadence.positional:
        raise UserError(f"{what} is in days, but this series' time column holds plain positions: no days there")
    return cadence.points_in(days)


def _resolve(options: SeriesOptions, cadence: Cadence) -> Dict[str, int]:
    """Smallest history a fit accepts and the most recent history it uses, in points: 2 / 28 days for
    intraday data, 14 / 730 days for daily data; two cycles of the calendar (24 months, 12 quarters,
    8 years) or 48 points / everything up to max_history_points otherwise."""
    if _day_based(cadence):
        daily = cadence.kind == "daily"
        min_points = cadence.points_in(options.min_history_days or (14 if daily else 2))
        history = cadence.points_in(options.history_days or (730 if daily else 28))
    else:
        default_min = {"month": 24, "quarter": 12, "year": 8}.get(cadence.calendar or "", 48)
        min_points = _points_of_days(cadence, options.min_history_days, "--min-history-days") or default_min
        history = _points_of_days(cadence, options.history_days, "--history-days") or options.max_history_points
    return {"min_points": max(min_points, 8), "history_points": min(history, options.max_history_points)}


def build_detectors(cfg: Config, cadence: Cadence, options: SeriesOptions) -> Dict[str, generic.Detector]:
    r = _resolve(options, cadence)
    d = cfg.detectors
    out: Dict[str, generic.Detector] = {}
    for name in options.detectors:
        if not getattr(d, name).enabled:
            continue
        if name == "baseline":
            out[name] = generic.GenericBaselineDetector(cadence, **r)
        elif name == "prophet":
            out[name] = generic.GenericProphetDetector(
                cadence, **r, changepoint_prior_scale=d.prophet.changepoint_prior_scale, tol_rel_grad=d.prophet.tol_rel_grad
            )
        elif name == "isolation_forest":
            c = d.isolation_forest
            out[name] = generic.GenericIsolationForestDetector(
                cadence, **r, n_estimators=c.n_estimators, max_samples=c.max_samples, random_state=c.random_state
            )
        elif name == "changepoint":
            c = d.changepoint
            out[name] = generic.GenericChangepointDetector(
                cadence, **r, min_size=c.min_size, penalty_factor=c.penalty_factor, jump=c.jump
            )
    return out


def _blocks(ts: pd.Series, cadence: Cadence) -> Tuple[np.ndarray, str]:
    """Walk-forward block of each point, and what a block is: a day (intraday data), a week from
    Monday (daily data), a year (monthly / quarterly data), else MAX_BLOCKS equal runs of points."""
    if cadence.kind == "intraday":
        return ts.dt.floor("D").to_numpy(), "day"
    if cadence.kind == "daily":
        return (ts.dt.floor("D") - pd.to_timedelta(ts.dt.dayofweek, unit="D")).to_numpy(), "week"
    if cadence.calendar in ("month", "quarter"):
        return ts.dt.year.to_numpy(), "year"
    size = max(int(np.ceil(len(ts) / MAX_BLOCKS)), 1)
    return np.arange(len(ts)) // size, f"run of {size} point{'s' if size > 1 else ''}"


def _warmup_rows(ts: pd.Series, cadence: Cadence, options: SeriesOptions, r: Dict[str, int]) -> Tuple[int, str]:
    """Rows of the walk-forward warm-up: 2-7 days of intraday data and 14-28 days of daily data (a
    third of the span within those), else a third of the series within [min_points, history_points]."""
    n = len(ts)
    if options.warmup_points is not None:
        return int(options.warmup_points), f"{int(options.warmup_points)} points"
    if _day_based(cadence):
        daily = cadence.kind == "daily"
        span_days = (ts.iloc[-1] - ts.iloc[0]) / pd.Timedelta(days=1)
        warm = options.warmup_days or float(max(14, min(28, int(span_days // 3))) if daily
                                            else max(2, min(7, int(span_days // 3))))
        warm_end = (ts.iloc[0] + pd.Timedelta(days=warm)).to_datetime64()
        return int(np.searchsorted(ts.to_numpy(), warm_end)), f"{warm:g} days"
    rows = _points_of_days(cadence, options.warmup_days, "--warmup-days")
    if rows is None:
        rows = max(r["min_points"], min(n // 3, r["history_points"]))
    return rows, f"{rows} points"


def _short_history_bar(n: int, cfg: Config) -> float:
    """1 - 1/n for a history of n points, within [series_threshold_floor, series_threshold]."""
    ec = cfg.ensemble
    return float(np.clip(1.0 - 1.0 / max(n, 1), min(ec.series_threshold_floor, ec.series_threshold), ec.series_threshold))


def _bridge_alarms(raised: np.ndarray, score: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Points between two raised alarms are flagged too when the score stays >= `lower` all the way
    between them: one incident whose evidence wavers about the bar is one run of flags. Nothing is
    flagged before the first or after the last raised point of a run; a missing score breaks a run."""
    above = (np.nan_to_num(score, nan=-1.0) >= lower) | raised
    run = np.cumsum(~above)  # a run of points above the lower bar shares the id of the point before it
    r = pd.Series(raised)
    since_first = r.groupby(run).cummax().to_numpy(bool)
    until_last = r[::-1].groupby(run[::-1]).cummax()[::-1].to_numpy(bool)
    return since_first & until_last & above


def score_grid(grid: pd.DataFrame, report: Dict[str, Any], cfg: Config, options: SeriesOptions,
               ) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """Per-point output for a cleaned grid; UserError when there is too little to score."""
    sid = report["series_id"]
    cadence = cadence_of(report)
    r = _resolve(options, cadence)
    ts = grid["timestamp"]
    status = np.full(len(grid), WARMUP, dtype=object)
    plans: List[Tuple[np.ndarray, np.ndarray]] = []  # (history rows, scored rows)
    if options.train_until is not None:
        tu = options.train_until
        if not isinstance(tu, pd.Timestamp):  # a number: in the time column's own units
            if report.get("time_read_as") not in NUMERIC_TIMES:
                raise UserError(f"--train-until {tu:g} is a number, but series '{sid}' has date-times: pass one")
            tu = cad.number_to_timestamp(tu, report["time_read_as"])
        hist_rows = np.flatnonzero((ts <= tu).to_numpy())
        score_rows = np.flatnonzero((ts > tu).to_numpy())
        status[hist_rows] = TRAINING
        if len(hist_rows) < r["min_points"]:
            raise UserError(f"series '{sid}': {len(hist_rows)} points at {report['frequency']} up to --train-until "
                            f"{tu}; need at least {r['min_points']}")
        if len(score_rows) == 0:
            raise UserError(f"series '{sid}': no points after --train-until {tu} (last is {ts.iloc[-1]})")
        plans.append((hist_rows, score_rows))
        given = options.train_until
        report["mode"] = f"train_until {given if isinstance(given, pd.Timestamp) else f'{given:g}'}"
    else:
        warm_rows, warm_text = _warmup_rows(ts, cadence, options, r)
        blocks, unit = _blocks(ts, cadence)
        first_rows = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
        ends = np.r_[first_rows[1:], len(grid)]
        starts = [(i, e) for i, e in zip(first_rows, ends) if i >= max(warm_rows, r["min_points"])]
        if not starts:
            need = max(r["min_points"], warm_rows)
            raise UserError(
                f"series '{sid}': {len(grid)} points at {report['frequency']} ({ts.iloc[0]} .. {ts.iloc[-1]}) is too "
                f"short for walk-forward scoring: needs about {need} points of warm-up plus one "
                f"{unit} to score (or pass --train-until)"
            )
        plans += [(np.arange(i), np.arange(i, e)) for i, e in starts]
        report["mode"] = f"walk_forward per {unit}, warm-up {warm_text}"
    names = [n for n in options.detectors if getattr(cfg.detectors, n).enabled]
    scores = pd.DataFrame(np.nan, index=grid.index, columns=names)
    expected = pd.Series(np.nan, index=grid.index)
    det_status: Dict[str, Dict[str, int]] = {n: {} for n in names}
    bar = np.full(len(grid), cfg.ensemble.series_threshold)  # the ensemble's alarm bar per point
    for hist_rows, score_rows in plans:
        history = grid.iloc[hist_rows[-r["history_points"]:]]
        if not _day_based(cadence):
            bar[score_rows] = _short_history_bar(len(history), cfg)
        frame = grid.iloc[score_rows]
        status[score_rows] = SCORED
        exp_set = False
        for name, det in build_detectors(cfg, cadence, options).items():
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
    ec = cfg.ensemble
    floor = min(ec.series_threshold_floor, ec.series_threshold)
    ens = combine(scores, ec.model_copy(update={"single_detector_threshold": None, "threshold": floor}))
    ens["is_anomaly"] &= ens["ensemble_anomaly_score"].to_numpy() >= bar
    lower = 1.0 - (1.0 - bar) ** ec.series_bridge_fraction
    ens["is_anomaly"] = _bridge_alarms(ens["is_anomaly"].to_numpy(bool), ens["ensemble_anomaly_score"].to_numpy(), lower)
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
    how = report.get("time_read_as")
    out[TIME_NUMBER] = cad.timestamp_to_number(out["timestamp"], how).to_numpy(float) if how in NUMERIC_TIMES else np.nan
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
    cols = POINT_COLUMNS + [f"score_{n}" for n in DETECTORS] + ["ensemble_anomaly_score", "is_anomaly", "scoring_status",
                                                                 TIME_NUMBER]
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
    span = f"{report['first_timestamp']} .. {report['last_timestamp']}"
    if "first_time_number" in report:
        span = f"{report['time_read_as']} {report['first_time_number']:.15g} .. {report['last_time_number']:.15g}" + (
            "" if report["time_read_as"] == "positions" else f" = {span} UTC")
    return (
        f"series '{sid}': {report['points']} points at {report['frequency']} ({span}); "
        f"{report['duplicates_merged']} duplicate rows merged "
        f"({report['duplicate_timestamps']} timestamps); {report['gaps_filled']} gaps filled "
        f"({report['missing_points']} points without a value, not scored); bad rows: {bad}; "
        f"scored {report['scored_points']} ({report['mode']}), not scored: {not_scored}; "
        f"anomalies {report['anomalies']}; detectors: {', '.join(dets)}"
    )
