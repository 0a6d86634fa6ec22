"""How `aad score-series` does on series it was not tuned on: `aad evaluate-series`.

The series come from a generator of their own, sharing no code with the funnel generator or the
detectors' test series: five shapes (Gaussian noise around a seasonal level, a drifting random walk,
low Poisson counts, a trend with multiplicative seasonality and log-normal noise, Student-t noise
with three degrees of freedom) at three frequencies (5 minutes over 20 days, hourly over 60 days,
daily over two years), each with five kinds of anomaly planted after the walk-forward warm-up:

    spike, dip          one to three points, 6-9 noise sds away (x3-5 / x0.05-0.2 for counts)
    level_shift         the level moves by 5-8 noise sds and stays; labelled on its first points
    variance_burst      the noise sd is multiplied by 6 for a few points
    pattern_break       the seasonal pattern is gone for one period (a day; a week for daily data)

Scoring is exactly `generic_series.score_one` (walk-forward, no look-ahead). Event-level metrics
as in evaluation.py, with steps instead of hours: flagged points at most 3 steps apart form one
event, a labelled window counts as found when an event comes within 3 steps of it. A rolling
z-score rule (|z| >= 3 against the previous day or four weeks, a common hand-written monitor) is
scored side by side. Numbers depend on the magnitudes chosen above; they say how the system
generalises in shape and frequency, not how it will do on any particular real data set.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection import generic_series as gs
from advanced_anomaly_detection.config import Config, load_config
from advanced_anomaly_detection.evaluation import _overlaps

log = logging.getLogger(__name__)

SHAPES = ("seasonal_gaussian", "random_walk", "poisson_counts", "trend_multiplicative", "student_t")
ANOMALY_KINDS = ("spike", "dip", "level_shift", "variance_burst", "pattern_break")
# frequency -> (days generated, walk-forward warm-up days)
FREQUENCIES = {"5min": (20, 4), "1h": (60, 14), "1D": (730, 112)}
TOLERANCE_STEPS = 3


@dataclass
class LabelledSeries:
    series_id: str
    shape: str
    freq: str
    frame: pd.DataFrame  # ts, value
    labels: pd.DataFrame  # brand (= series id), start, end, type


def _season(ts: pd.DatetimeIndex, freq: str, rng: np.random.Generator) -> np.ndarray:
    """A smooth daily cycle (weekly for daily data) with a random phase and a second harmonic."""
    if freq == "1D":
        angle = 2 * np.pi * ts.dayofweek.to_numpy() / 7.0
    else:
        angle = 2 * np.pi * (ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0) / 24.0
    phase = rng.uniform(0, 2 * np.pi)
    return np.sin(angle + phase) + 0.4 * np.sin(2 * angle + 2 * phase)


def _base(shape: str, ts: pd.DatetimeIndex, freq: str, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, float]:
    """(clean level, noise, noise sd) of one series; value = level + noise (counts: Poisson of level)."""
    n = len(ts)
    season = _season(ts, freq, rng)
    level = rng.uniform(50, 500)
    if shape == "seasonal_gaussian":
        sd = level * rng.uniform(0.02, 0.06)
        return level + rng.uniform(3, 8) * sd * season, rng.normal(0, sd, n), sd
    if shape == "random_walk":
        sd = level * 0.03
        walk = np.cumsum(rng.normal(0, sd * 0.15, n))
        return level + walk + 4 * sd * season, rng.normal(0, sd, n), sd
    if shape == "poisson_counts":
        mean = rng.uniform(3, 30) * (1 + 0.6 * season)
        return np.maximum(mean, 0.2), np.zeros(n), float(np.sqrt(mean.mean()))
    if shape == "trend_multiplicative":
        trend = level * (1 + rng.uniform(-0.3, 0.6) * np.arange(n) / n)
        mult = 1 + 0.3 * season
        noise = trend * mult * (np.exp(rng.normal(0, 0.04, n)) - 1)
        return trend * mult, noise, float(level * 0.04)
    if shape == "student_t":
        sd = level * 0.03
        return level + 5 * sd * season, sd * rng.standard_t(3, n) / np.sqrt(3.0), sd
    raise ValueError(shape)


def make_series(shape: str, freq: str, seed: int) -> LabelledSeries:
    """One labelled series: planted anomalies, their windows, values after planting."""
    rng = np.random.default_rng(seed)
    days, warmup = FREQUENCIES[freq]
    step = gs.FREQUENCIES[freq]
    ts = pd.date_range("2024-01-01", periods=int(pd.Timedelta(days=days) / step), freq=step)
    level, noise, sd = _base(shape, ts, freq, rng)
    period = int(pd.Timedelta(days=7 if freq == "1D" else 1) / step)
    first = int(pd.Timedelta(days=warmup) / step) + period
    # one anomaly of each kind, in random order, spread over the scored part with room between them
    kinds = list(rng.permutation(ANOMALY_KINDS))
    slots = np.linspace(first, len(ts) - 2 * period, len(kinds) + 1).astype(int)
    counts = shape == "poisson_counts"
    labels = []
    for kind, lo, hi in zip(kinds, slots[:-1], slots[1:]):
        at = int(rng.integers(lo, max(lo + 1, hi - period)))
        sign = 1 if kind == "spike" else -1 if kind == "dip" else rng.choice([-1, 1])
        if kind in ("spike", "dip"):
            width = int(rng.integers(1, 4))
            if counts:
                level[at:at + width] *= rng.uniform(3, 5) if sign > 0 else rng.uniform(0.05, 0.2)
            else:
                level[at:at + width] += sign * rng.uniform(6, 9) * sd
            end = at + width - 1
        elif kind == "level_shift":
            if counts:
                level[at:] *= rng.uniform(2.0, 2.5) if sign > 0 else rng.uniform(0.3, 0.45)
            else:
                level[at:] += sign * rng.uniform(5, 8) * sd
            end = at + 2
        elif kind == "variance_burst":
            width = max(3, period // 8)
            if counts:
                level[at:at + width] *= rng.choice([0.1, 3.0], size=width)
            else:
                noise[at:at + width] *= 6.0
            end = at + width - 1
        else:  # pattern_break: the seasonal shape is gone for one period, the mean stays
            seg = slice(at, at + period)
            level[seg] = level[seg].mean()
            end = at + period - 1
        labels.append({"start": ts[at], "end": ts[min(end, len(ts) - 1)], "type": kind})
    value = rng.poisson(level).astype(float) if counts else level + noise
    sid = f"{shape}_{freq}_{seed}"
    lab = pd.DataFrame(labels).assign(brand=sid)
    return LabelledSeries(sid, shape, freq, pd.DataFrame({"ts": ts, "value": value}), lab)


def rolling_z_flags(frame: pd.DataFrame, freq: str, z: float = 3.0) -> np.ndarray:
    """|value - mean| >= z sd over the previous day (four weeks for daily data), past points only."""
    step = gs.FREQUENCIES[freq]
    window = int(pd.Timedelta(days=28 if freq == "1D" else 1) / step)
    v = frame["value"].astype(float)
    mean = v.shift(1).rolling(window, min_periods=window // 2).mean()
    sd = v.shift(1).rolling(window, min_periods=window // 2).std()
    return ((v - mean).abs() >= z * sd.where(sd > 0)).fillna(False).to_numpy()


def _events(series_id: str, ts: pd.Series, flagged: np.ndarray, step: pd.Timedelta) -> pd.DataFrame:
    t = ts[flagged].reset_index(drop=True)
    if t.empty:
        return pd.DataFrame(columns=["brand", "start", "end"])
    new = t.diff().isna() | (t.diff() > TOLERANCE_STEPS * step)
    group = new.cumsum()
    ev = t.groupby(group).agg(["min", "max"]).rename(columns={"min": "start", "max": "end"})
    return ev.assign(brand=series_id).reset_index(drop=True)


def metrics(events: pd.DataFrame, labels: pd.DataFrame, steps_scored: Dict[str, int], step_of: Dict[str, pd.Timedelta]
            ) -> Dict[str, object]:
    """Event precision / recall / F1 over all series; tolerance TOLERANCE_STEPS of each series' step."""
    true_events, found = 0, np.zeros(len(labels), dtype=bool)
    for sid in labels["brand"].unique():
        ev = events[events["brand"] == sid].reset_index(drop=True)
        lab_idx = np.flatnonzero(labels["brand"].to_numpy() == sid)
        hit = _overlaps(ev, labels.iloc[lab_idx].reset_index(drop=True), TOLERANCE_STEPS * step_of[sid])
        true_events += int(hit.any(axis=1).sum())
        found[lab_idx] = hit.any(axis=0)
    n = len(events)
    precision = true_events / n if n else 0.0
    recall = float(found.mean()) if len(labels) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_type = {k: round(float(found[labels["type"].to_numpy() == k].mean()), 3) for k in ANOMALY_KINDS
               if (labels["type"] == k).any()}
    false_events = n - true_events
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "alert_events": n,
            "false_events": false_events,
            "false_per_1000_points": round(1000 * false_events / max(sum(steps_scored.values()), 1), 3),
            "recall_by_type": by_type}


def run(seeds: int = 2, cfg: Optional[Config] = None, freqs: Tuple[str, ...] = tuple(FREQUENCIES),
        shapes: Tuple[str, ...] = SHAPES, first_seed: int = 0) -> Dict[str, object]:
    """Generate, score with score-series' own path and with the rolling z rule, and compare."""
    cfg = cfg or load_config()
    rows: Dict[str, List[pd.DataFrame]] = {"score-series ensemble": [], "rolling z-score |z|>=3": []}
    labels, scored, step_of, per_freq = [], {}, {}, {}
    for freq in freqs:
        for shape in shapes:
            for k in range(first_seed, first_seed + seeds):
                s = make_series(shape, freq, seed=1000 * k + 17 * SHAPES.index(shape) + len(freq))
                step = gs.FREQUENCIES[freq]
                opts = gs.SeriesOptions(warmup_days=FREQUENCIES[freq][1], freq=freq)
                points, report = gs.score_one(s.frame.assign(ts=s.frame["ts"].astype(str)), s.series_id, cfg, opts)
                ok = (points["scoring_status"] == gs.SCORED).to_numpy()
                ts = pd.Series(pd.to_datetime(points["timestamp"]))
                ours = points["is_anomaly"].fillna(False).to_numpy(bool) & ok
                theirs = rolling_z_flags(s.frame, freq) & ok
                rows["score-series ensemble"].append(_events(s.series_id, ts, ours, step))
                rows["rolling z-score |z|>=3"].append(_events(s.series_id, ts, theirs, step))
                labels.append(s.labels)
                scored[s.series_id], step_of[s.series_id] = int(ok.sum()), step
                per_freq.setdefault(freq, []).append(s.series_id)
                log.info("evaluate-series: %s scored %d points, %d flagged", s.series_id, int(ok.sum()), int(ours.sum()))
    lab = pd.concat(labels, ignore_index=True)
    result: Dict[str, object] = {"series": len(scored), "labelled_windows": len(lab), "seeds": seeds,
                                 "first_seed": first_seed,
                                 "frequencies": list(freqs), "shapes": list(shapes), "methods": {}}
    for method, evs in rows.items():
        ev = pd.concat(evs, ignore_index=True)
        entry = metrics(ev, lab, scored, step_of)
        entry["by_frequency"] = {
            f: metrics(ev[ev["brand"].isin(ids)], lab[lab["brand"].isin(ids)], {i: scored[i] for i in ids}, step_of)
            for f, ids in per_freq.items()
        }
        result["methods"][method] = entry
    return result


def table(result: Dict[str, object]) -> str:
    lines = [f"{result['series']} series ({', '.join(result['shapes'])}) at {', '.join(result['frequencies'])}; "
             f"{result['labelled_windows']} labelled windows",
             f"{'method':<28}{'freq':>6}{'precision':>11}{'recall':>8}{'F1':>7}{'events':>8}{'false/1000pts':>15}"]
    for method, m in result["methods"].items():
        for freq, mm in [("all", m)] + list(m["by_frequency"].items()):
            lines.append(f"{method:<28}{freq:>6}{mm['precision']:>11.3f}{mm['recall']:>8.3f}{mm['f1']:>7.3f}"
                         f"{mm['alert_events']:>8}{mm['false_per_1000_points']:>15.3f}")
    lines.append("recall by type: " + "; ".join(
        f"{method}: " + ", ".join(f"{k} {v:.2f}" for k, v in m["recall_by_type"].items())
        for method, m in result["methods"].items()))
    return "\n".join(lines)
