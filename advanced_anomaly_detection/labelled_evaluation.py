"""How `aad score-series` does on labelled series from elsewhere: `aad evaluate-labelled`.

The generated series of `aad evaluate-series` share our own idea of an anomaly; this harness takes
series someone else labelled, in one of two layouts:

* NAB (the Numenta Anomaly Benchmark, github.com/numenta/NAB):
  ``--data NAB/data --labels NAB/labels/combined_windows.json``: the JSON maps "category/file.csv"
  to its anomaly windows [[start, end], ...]. Listed files that are absent under --data are skipped
  and counted (score a subset by copying only some files).
* a label column in each file (Yahoo S5's ``is_anomaly``, ``label``, ...):
  ``--data DIR --label-col is_anomaly``: every CSV under DIR; a window is a run of labelled points.

Each file is scored by `generic_series.score_one`, exactly as `aad score-series --input FILE` scores it
(cadence inferred, walk-forward without look-ahead, default warm-up), and a rolling z rule (|z| >= 3
against the trailing day for intraday data, four weeks for daily data, else 96 points) is scored
beside it on the same points.

Metrics are event metrics as in evaluate-series: flagged points at most 3 steps apart form one alert
event; an event is true when it overlaps a window (NAB windows are already ~10% of a file wide, so no
further tolerance; point labels get 3 steps), and a window is found when an event overlaps it.
Windows that end before the first scored point (inside the walk-forward warm-up, as NAB's
"probationary" first 15% is) are left out and counted. NAB's own score (sigmoid-weighted, one alarm per
window rewarded) is not computed: an alert event is what a person acts on, so events are counted.
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection import cadence as cad
from advanced_anomaly_detection import generic_series as gs
from advanced_anomaly_detection.config import Config, load_config
from advanced_anomaly_detection.errors import UserError
from advanced_anomaly_detection.evaluation import _overlaps
from advanced_anomaly_detection.series_evaluation import TOLERANCE_STEPS, _events, metrics, rolling_z

log = logging.getLogger(__name__)

OURS, ROLLING_Z = "score-series ensemble", "rolling z-score |z|>=3"
Z_WINDOW_POINTS = 96  # rolling z window where the cadence has no day or week


@dataclass(frozen=True)
class LabelledFile:
    name: str  # the file's key: "category/file.csv" for NAB, the path under --data otherwise
    path: Path
    windows: Optional[List[Tuple[str, str]]]  # NAB windows; None: from the label column


def nab_files(data: Path, labels: Path) -> Tuple[List[LabelledFile], List[str]]:
    """The files of a NAB windows JSON present under `data`, and the names of those absent."""
    try:
        raw = json.loads(labels.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--labels {labels}: cannot read it as NAB windows JSON ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise UserError(f"--labels {labels}: expected an object of file -> [[start, end], ...] (NAB's "
                        f"combined_windows.json)")
    present, absent = [], []
    for name, windows in sorted(raw.items()):
        if not all(isinstance(w, list) and len(w) == 2 for w in windows):
            raise UserError(f"--labels {labels}: {name}: each window must be [start, end]")
        path = data / name
        if path.is_file():
            present.append(LabelledFile(name, path, [(str(a), str(b)) for a, b in windows]))
        else:
            absent.append(name)
    return present, absent


def column_files(data: Path) -> List[LabelledFile]:
    return [LabelledFile(str(p.relative_to(data)), p, None) for p in sorted(data.rglob("*.csv"))]


def _windows_from_column(times: pd.Series, labelled: np.ndarray) -> List[Tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of labelled rows (in time order) -> [(first, last)]."""
    order = np.argsort(times.to_numpy(), kind="stable")
    t, flag = times.to_numpy()[order], labelled[order]
    runs, start = [], None
    for i in range(len(t)):
        if flag[i] and start is None:
            start = i
        if start is not None and (not flag[i] or i == len(t) - 1):
            end = i if flag[i] else i - 1
            runs.append((pd.Timestamp(t[start]), pd.Timestamp(t[end])))
            start = None
    return runs


def _label_flags(raw: pd.Series, where: str) -> np.ndarray:
    num = pd.to_numeric(raw, errors="coerce")
    text = raw.astype(str).str.strip().str.lower()
    flags = num.fillna(0).to_numpy() != 0
    flags |= text.isin(["true", "yes"]).to_numpy()
    if (num.isna() & ~text.isin(["true", "false", "yes", "no", "", "nan"])).any():
        raise UserError(f"{where}: label column holds values other than 0/1/true/false")
    return flags


def rolling_z_flags(values: pd.Series, cadence: cad.Cadence, z: float = 3.0) -> np.ndarray:
    """|value - mean| >= z sd over a trailing window of past points (missing points skipped)."""
    window = {"intraday": cadence.day_slots, "daily": 28}.get(cadence.kind, Z_WINDOW_POINTS)
    return rolling_z(values, window, z)


def score_file(f: LabelledFile, cfg: Config, time_col: str, value_col: str, label_col: Optional[str]
               ) -> Dict[str, object]:
    """Score one file; its events (ours and the rolling z rule's), windows and a line of figures."""
    where = f.name
    try:
        frame = pd.read_csv(f.path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{where}: cannot read CSV ({exc})") from None
    needed = [time_col, value_col] + ([label_col] if label_col else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise UserError(f"{where}: no column {missing} (columns: {list(frame.columns)})")
    rows = pd.DataFrame({"ts": frame[time_col], "value": frame[value_col]})
    points, report = gs.score_one(rows, f.name, cfg, gs.SeriesOptions())
    if report.get("status") == "unusable":
        return {"name": f.name, "unusable": report.get("message")}
    cadence = gs.cadence_of(report)
    if f.windows is not None:
        windows = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in f.windows]
    else:
        times, _ = cad.read_times(frame[time_col])
        ok = times.notna().to_numpy()
        windows = _windows_from_column(times[ok].reset_index(drop=True),
                                       _label_flags(frame[label_col], where)[ok])
    windows = [tuple(cadence.snap(pd.Series([a, b]))) for a, b in windows]  # onto the grid, as the points
    scored = (points["scoring_status"] == gs.SCORED).to_numpy()
    ts = pd.to_datetime(points["timestamp"]).reset_index(drop=True)
    first_scored = ts[scored].min() if scored.any() else None
    counted = [w for w in windows if first_scored is not None and w[1] >= first_scored]
    ours = points["is_anomaly"].fillna(False).to_numpy(bool) & scored
    theirs = rolling_z_flags(points["value"].reset_index(drop=True), cadence) & scored
    return {
        "name": f.name,
        "events": {OURS: _events(f.name, ts, ours, cadence.step), ROLLING_Z: _events(f.name, ts, theirs, cadence.step)},
        "windows": pd.DataFrame({"brand": f.name, "start": [a for a, _ in counted], "end": [b for _, b in counted],
                                 "type": "window"}),
        "tolerance": pd.Timedelta(0) if f.windows is not None else TOLERANCE_STEPS * cadence.step,
        "scored_points": int(scored.sum()),
        "info": {"points": report["points"], "frequency": report["frequency"], "scored_points": int(scored.sum()),
                 "windows": len(windows), "windows_in_warmup": len(windows) - len(counted),
                 "flagged_points": int(ours.sum())},
    }


def _score_file_args(args):
    return score_file(*args)


def run(files: List[LabelledFile], cfg: Optional[Config] = None, time_col: str = "timestamp",
        value_col: str = "value", label_col: Optional[str] = None, jobs: int = 1) -> Dict[str, object]:
    cfg = cfg or load_config()
    if not files:
        raise UserError("no labelled file to score")
    work = [(f, cfg, time_col, value_col, label_col) for f in files]
    if jobs > 1 and len(files) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(files))) as pool:
            results = list(pool.map(_score_file_args, work))
    else:
        results = [_score_file_args(w) for w in work]
    done = [r for r in results if "unusable" not in r]
    unusable = {r["name"]: r["unusable"] for r in results if "unusable" in r}
    for name, why in unusable.items():
        log.warning("evaluate-labelled: %s not scored: %s", name, why)
    if not done:
        raise UserError(f"no file could be scored: {unusable}")
    labels = pd.concat([r["windows"] for r in done], ignore_index=True)
    scored = {r["name"]: r["scored_points"] for r in done}
    tol = {r["name"]: r["tolerance"] for r in done}
    result: Dict[str, object] = {
        "files": len(done), "unusable": unusable, "labelled_windows": len(labels),
        "windows_in_warmup": sum(r["info"]["windows_in_warmup"] for r in done),
        "scored_points": sum(scored.values()), "methods": {}, "per_file": {},
    }
    for method in (OURS, ROLLING_Z):
        evs = [r["events"][method] for r in done]
        ev = pd.concat([e for e in evs if len(e)] or evs, ignore_index=True)
        result["methods"][method] = metrics(ev, labels, scored, tol)
    for r in done:
        one = labels[labels["brand"] == r["name"]]
        per = {m: metrics(r["events"][m], one, {r["name"]: r["scored_points"]}, tol) for m in (OURS, ROLLING_Z)}
        result["per_file"][r["name"]] = {
            **r["info"], **{f"{m}: {k}": per[m][k] for m in per for k in ("alert_events", "false_events")},
            "windows_found": _found(r["events"][OURS], one, r["tolerance"]),
            "windows_found_rolling_z": _found(r["events"][ROLLING_Z], one, r["tolerance"]),
        }
    for m in result["methods"].values():
        m.pop("recall_by_type", None)
    return result


def _found(events: pd.DataFrame, windows: pd.DataFrame, tolerance: pd.Timedelta) -> int:
    """Windows that an event overlaps (counted, not recovered from a rounded recall)."""
    return int(_overlaps(events, windows.reset_index(drop=True), tolerance).any(axis=0).sum())


def table(result: Dict[str, object]) -> str:
    lines = [f"{result['files']} files, {result['scored_points']:,} points scored, {result['labelled_windows']} "
             f"labelled windows after the warm-up ({result['windows_in_warmup']} inside it, not counted)",
             f"{'method':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'events':>8}{'false/1000pts':>15}"]
    for method, m in result["methods"].items():
        lines.append(f"{method:<28}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>7.3f}{m['alert_events']:>8}"
                     f"{m['false_per_1000_points']:>15.3f}")
    lines.append(f"{'file':<52}{'freq':>7}{'points':>8}{'windows':>9}{'found':>7}{'events':>8}{'false':>7}"
                 f"{'z found':>9}{'z false':>9}")
    for name, p in result["per_file"].items():
        lines.append(f"{name[-52:]:<52}{p['frequency']:>7}{p['points']:>8}{p['windows'] - p['windows_in_warmup']:>9}"
                     f"{p['windows_found']:>7}{p[f'{OURS}: alert_events']:>8}{p[f'{OURS}: false_events']:>7}"
                     f"{p['windows_found_rolling_z']:>9}{p[f'{ROLLING_Z}: false_events']:>9}")
    for name, why in result["unusable"].items():
        lines.append(f"{name}: not scored: {why}")
    return "\n".join(lines)


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 4))
