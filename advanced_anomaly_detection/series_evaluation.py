"""How `aad score-series` does on series it was not tuned on: `aad evaluate-series`.

The series come from a generator of their own, sharing no code with the funnel generator or the
detectors' test series: five shapes (Gaussian noise around a seasonal level, a drifting random walk,
low Poisson counts, a trend with multiplicative seasonality and log-normal noise, Student-t noise
with three degrees of freedom) at the cadences of one table, CADENCES (points generated, cycle in
points, walk-forward warm-up in points):

    5min        20 days (5,760 points), the day (288), warm-up 4 days          default set
    1h          60 days (1,440), the day (24), warm-up 14 days                 default set
    1D          two years (730), the week (7), warm-up 112 days                default set
    month       20 years (240), the year (12), warm-up 60 points
    7D          six years of weeks (313), the year (~52, from the day of the year), warm-up 104
    10s         12,000 ten-second points, the hour (360), warm-up 3,000
    positions   plain integer positions 1..2,000 (the time column holds "1", "2", ...), a cycle drawn
                per series from 12-96 points that the detectors must find, warm-up 500

Each series has five kinds of anomaly planted after the walk-forward warm-up:

    spike, dip          one to three points, 6-9 noise sds away (x3-5 / x0.05-0.2 for counts)
    level_shift         the level moves by 5-8 noise sds and stays; labelled on its first points
    variance_burst      the noise sd is multiplied by 6 for a few points
    pattern_break       the seasonal pattern is gone for one cycle (a day; a week for daily data; a
                        year for monthly data; a quarter of the year for weekly data, as a whole
                        year would not fit between the others)

The first three cadences are generated and scored exactly as before the table existed (same
series from the same seeds, same options: `warmup_days`); the others pass `warmup_points`.

Scoring is exactly `generic_series.score_one` (walk-forward, no look-ahead). Event-level metrics
as in evaluation.py, with steps instead of hours: flagged points at most 3 steps apart form one
event, a labelled window counts as found when an event comes within 3 steps of it. Both are counted
in step positions (point k of a series is `1970-01-01 + k seconds` to evaluation._overlaps, which is
how positions are represented anyway), so calendar months of 28-31 days are 3 steps apart like any
other. A rolling z-score rule (|z| >= 3 against a trailing window: the previous day, four weeks for
daily data, two years for monthly, a year for weekly, an hour for 10-second data, 96 positions; a
common hand-written monitor) is scored side by side. Numbers depend on the magnitudes chosen above;
they say how the system generalises in shape and cadence, not how it will do on any particular real
data set.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection import generic_series as gs
from advanced_anomaly_detection.cadence import EPOCH, timestamp_to_number
from advanced_anomaly_detection.config import Config, load_config
from advanced_anomaly_detection.evaluation import _overlaps

log = logging.getLogger(__name__)

SHAPES = ("seasonal_gaussian", "random_walk", "poisson_counts", "trend_multiplicative", "student_t")
ANOMALY_KINDS = ("spike", "dip", "level_shift", "variance_burst", "pattern_break")
TOLERANCE_STEPS = 3
POSITION_CYCLES = (12, 96)  # positions: the cycle of each series is drawn from this range (points, inclusive)


@dataclass(frozen=True)
class CadenceSpec:
    """How series of one cadence are generated and scored. Counts are in points."""
    step: pd.Timedelta  # the step (calendar months: the nominal one; positions: one unit = 1 s)
    points: int  # length of a series
    period: Optional[int]  # the seasonal cycle; None: drawn per series from POSITION_CYCLES
    warmup: int  # walk-forward warm-up
    z_window: int  # trailing window of the rolling z rule
    cycle: str  # what the seasonal angle follows: day (time of day), week (weekday), month_of_year,
    #             day_of_year (/ 365.25), index (point number modulo the cycle)
    start: str  # first timestamp
    seed_salt: int  # added to run()'s seed (the first three: len(name), as before the table)
    grid: Optional[str] = None  # pandas frequency of the timestamps where it is not `step` (months: MS)
    span: Optional[int] = None  # pattern_break length and room around the anomalies; None: one cycle
    warmup_days: Optional[float] = None  # the warm-up as SeriesOptions.warmup_days (the first three)
    positional: bool = False  # scored as plain integer positions (ts "1", "2", ...; freq inferred)

    @property
    def calendar(self) -> bool:
        return self.grid is not None


CADENCES: Dict[str, CadenceSpec] = {
    "5min": CadenceSpec(pd.Timedelta(minutes=5), 5760, 288, 1152, 288, "day", "2024-01-01", 4, warmup_days=4),
    "1h": CadenceSpec(pd.Timedelta(hours=1), 1440, 24, 336, 24, "day", "2024-01-01", 2, warmup_days=14),
    "1D": CadenceSpec(pd.Timedelta(days=1), 730, 7, 112, 28, "week", "2024-01-01", 2, warmup_days=112),
    "month": CadenceSpec(pd.Timedelta(days=30.436875), 240, 12, 60, 24, "month_of_year", "2005-01-01", 5,
                         grid="MS"),
    "7D": CadenceSpec(pd.Timedelta(days=7), 313, 52, 104, 52, "day_of_year", "2019-01-07", 7, span=13),
    "10s": CadenceSpec(pd.Timedelta(seconds=10), 12000, 360, 3000, 360, "index", "2024-01-01", 10),
    "positions": CadenceSpec(pd.Timedelta(seconds=1), 2000, None, 500, 96, "index", "1970-01-01 00:00:01", 11,
                             positional=True),
}
DEFAULT_CADENCES = ("5min", "1h", "1D")
# The first three as they were specified before CADENCES: frequency -> (days generated, warm-up days)
FREQUENCIES = {name: (int(CADENCES[name].points * CADENCES[name].step / pd.Timedelta(days=1)),
                      CADENCES[name].warmup_days) for name in DEFAULT_CADENCES}


@dataclass
class LabelledSeries:
    series_id: str
    shape: str
    freq: str
    frame: pd.DataFrame  # ts, value (positions: ts = EPOCH + position seconds)
    labels: pd.DataFrame  # brand (= series id), start, end, type
    period: int = 0  # the seasonal cycle in points

    def rows(self) -> pd.DataFrame:
        """The rows score-series reads: ts as text; for positions the integers themselves ("1", "2", ...)."""
        if CADENCES[self.freq].positional:
            pos = timestamp_to_number(self.frame["ts"], "positions").round().astype("int64")
            return self.frame.assign(ts=pos.astype(str))
        return self.frame.assign(ts=self.frame["ts"].astype(str))


def timestamps(freq: str) -> pd.DatetimeIndex:
    spec = CADENCES[freq]
    return pd.date_range(spec.start, periods=spec.points, freq=spec.grid or spec.step)


def _season(ts: pd.DatetimeIndex, spec: CadenceSpec, period: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth cycle (the cadence's: a day, a week, a year, or `period` points) with a random phase and a
    second harmonic."""
    if spec.cycle == "week":
        angle = 2 * np.pi * ts.dayofweek.to_numpy() / 7.0
    elif spec.cycle == "day":
        angle = 2 * np.pi * (ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0) / 24.0
    elif spec.cycle == "month_of_year":
        angle = 2 * np.pi * (ts.month.to_numpy() - 1) / 12.0
    elif spec.cycle == "day_of_year":
        angle = 2 * np.pi * (ts.dayofyear.to_numpy() - 1) / 365.25
    elif spec.cycle == "index":
        angle = 2 * np.pi * (np.arange(len(ts)) % period) / float(period)
    else:
        raise ValueError(spec.cycle)
    phase = rng.uniform(0, 2 * np.pi)
    return np.sin(angle + phase) + 0.4 * np.sin(2 * angle + 2 * phase)


def _base(shape: str, ts: pd.DatetimeIndex, spec: CadenceSpec, period: int, rng: np.random.Generator
          ) -> Tuple[np.ndarray, np.ndarray, float]:
    """(clean level, noise, noise sd) of one series; value = level + noise (counts: Poisson of level)."""
    n = len(ts)
    season = _season(ts, spec, period, rng)
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
    spec = CADENCES[freq]
    ts = timestamps(freq)
    # positions: the cycle is the series' own (the first draw; the other cadences draw nothing here)
    period = spec.period or int(rng.integers(POSITION_CYCLES[0], POSITION_CYCLES[1] + 1))
    level, noise, sd = _base(shape, ts, spec, period, rng)
    span = spec.span or period
    first = spec.warmup + span
    # one anomaly of each kind, in random order, spread over the scored part with room between them
    kinds = list(rng.permutation(ANOMALY_KINDS))
    slots = np.linspace(first, len(ts) - 2 * span, len(kinds) + 1).astype(int)
    counts = shape == "poisson_counts"
    labels = []
    for kind, lo, hi in zip(kinds, slots[:-1], slots[1:]):
        at = int(rng.integers(lo, max(lo + 1, hi - span)))
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
        else:  # pattern_break: the seasonal shape is gone for one cycle (`span`), the mean stays
            seg = slice(at, at + span)
            level[seg] = level[seg].mean()
            end = at + span - 1
        labels.append({"start": ts[at], "end": ts[min(end, len(ts) - 1)], "type": kind})
    value = rng.poisson(level).astype(float) if counts else level + noise
    sid = f"{shape}_{freq}_{seed}"
    lab = pd.DataFrame(labels).assign(brand=sid)
    return LabelledSeries(sid, shape, freq, pd.DataFrame({"ts": ts, "value": value}), lab, period)


def rolling_z_flags(frame: pd.DataFrame, freq: str, z: float = 3.0) -> np.ndarray:
    """|value - mean| >= z sd over the cadence's trailing window (CadenceSpec.z_window: the previous day,
    four weeks for daily data, ...), past points only."""
    return rolling_z(frame["value"], CADENCES[freq].z_window, z)


def rolling_z(values: pd.Series, window: int, z: float = 3.0) -> np.ndarray:
    """|value - mean| >= z sd of the previous `window` points (at least half of them present)."""
    v = values.astype(float)
    mean = v.shift(1).rolling(window, min_periods=window // 2).mean()
    sd = v.shift(1).rolling(window, min_periods=window // 2).std()
    return ((v - mean).abs() >= z * sd.where(sd > 0)).fillna(False).to_numpy()


def step_positions(ts: pd.Series, freq: str, origin: pd.Timestamp) -> pd.Series:
    """Timestamps as step positions from `origin` (point k -> EPOCH + k seconds), so that events and
    labels are compared in steps whatever the cadence (calendar months count as one step each)."""
    spec = CADENCES[freq]
    t = pd.to_datetime(pd.Series(ts)).reset_index(drop=True)
    if spec.calendar:
        k = (t.dt.year - origin.year) * 12 + (t.dt.month - origin.month)
    else:
        k = ((t - origin) / spec.step).round()
    return EPOCH + pd.to_timedelta(k.astype("int64"), unit="s")


def _events(series_id: str, ts: pd.Series, flagged: np.ndarray, step: pd.Timedelta) -> pd.DataFrame:
    t = ts[flagged].reset_index(drop=True)
    if t.empty:
        return pd.DataFrame(columns=["brand", "start", "end"])
    new = t.diff().isna() | (t.diff() > TOLERANCE_STEPS * step)
    group = new.cumsum()
    ev = t.groupby(group).agg(["min", "max"]).rename(columns={"min": "start", "max": "end"})
    return ev.assign(brand=series_id).reset_index(drop=True)


def metrics(events: pd.DataFrame, labels: pd.DataFrame, steps_scored: Dict[str, int], tolerance: Dict[str, pd.Timedelta]
            ) -> Dict[str, object]:
    """Event precision / recall / F1 over all series; an event and a label match when they are at most
    tolerance[series] apart."""
    true_events, found = 0, np.zeros(len(labels), dtype=bool)
    for sid in labels["brand"].unique():
        ev = events[events["brand"] == sid].reset_index(drop=True)
        lab_idx = np.flatnonzero(labels["brand"].to_numpy() == sid)
        hit = _overlaps(ev, labels.iloc[lab_idx].reset_index(drop=True), tolerance[sid])
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


def _options(freq: str) -> "gs.SeriesOptions":
    """score-series' options for a cadence: the first three as they always were (warmup_days, freq
    forced); the others their warm-up in points; positions with the cadence inferred from the integers."""
    spec = CADENCES[freq]
    if spec.warmup_days is not None:
        return gs.SeriesOptions(warmup_days=spec.warmup_days, freq=freq)
    return gs.SeriesOptions(warmup_points=spec.warmup, freq=None if spec.positional else freq)


def run(seeds: int = 2, cfg: Optional[Config] = None, freqs: Tuple[str, ...] = DEFAULT_CADENCES,
        shapes: Tuple[str, ...] = SHAPES, first_seed: int = 0) -> Dict[str, object]:
    """Generate, score with score-series' own path and with the rolling z rule, and compare."""
    cfg = cfg or load_config()
    rows: Dict[str, List[pd.DataFrame]] = {"score-series ensemble": [], "rolling z-score |z|>=3": []}
    labels, scored, tolerance, per_freq = [], {}, {}, {}
    unit = pd.Timedelta(seconds=1)  # one step, in step positions (see step_positions)
    for freq in freqs:
        spec = CADENCES[freq]
        for shape in shapes:
            for k in range(first_seed, first_seed + seeds):
                s = make_series(shape, freq, seed=1000 * k + 17 * SHAPES.index(shape) + spec.seed_salt)
                points, report = gs.score_one(s.rows(), s.series_id, cfg, _options(freq))
                ok = (points["scoring_status"] == gs.SCORED).to_numpy()
                origin = s.frame["ts"].iloc[0]
                # positions score as EPOCH + position seconds, as the generated frame holds them
                ts = step_positions(points["timestamp"], freq, origin)
                ours = points["is_anomaly"].fillna(False).to_numpy(bool) & ok
                theirs = rolling_z_flags(s.frame, freq) & ok
                rows["score-series ensemble"].append(_events(s.series_id, ts, ours, unit))
                rows["rolling z-score |z|>=3"].append(_events(s.series_id, ts, theirs, unit))
                labels.append(s.labels.assign(start=step_positions(s.labels["start"], freq, origin),
                                              end=step_positions(s.labels["end"], freq, origin)))
                scored[s.series_id], tolerance[s.series_id] = int(ok.sum()), TOLERANCE_STEPS * unit
                per_freq.setdefault(freq, []).append(s.series_id)
                log.info("evaluate-series: %s scored %d points, %d flagged", s.series_id, int(ok.sum()), int(ours.sum()))
    lab = pd.concat(labels, ignore_index=True)
    result: Dict[str, object] = {"series": len(scored), "labelled_windows": len(lab), "seeds": seeds,
                                 "first_seed": first_seed,
                                 "frequencies": list(freqs), "shapes": list(shapes), "methods": {}}
    for method, evs in rows.items():
        # series without events add no rows (and leaving them out keeps pandas' empty-frame warning away)
        ev = pd.concat([e for e in evs if len(e)] or evs, ignore_index=True)
        entry = metrics(ev, lab, scored, tolerance)
        entry["by_frequency"] = {
            f: metrics(ev[ev["brand"].isin(ids)], lab[lab["brand"].isin(ids)], {i: scored[i] for i in ids}, tolerance)
            for f, ids in per_freq.items()
        }
        result["methods"][method] = entry
    return result


def table(result: Dict[str, object]) -> str:
    w = max([6] + [len(f) + 1 for f in result["frequencies"]])  # 6 as always for the first three
    lines = [f"{result['series']} series ({', '.join(result['shapes'])}) at {', '.join(result['frequencies'])}; "
             f"{result['labelled_windows']} labelled windows",
             f"{'method':<28}{'freq':>{w}}{'precision':>11}{'recall':>8}{'F1':>7}{'events':>8}{'false/1000pts':>15}"]
    for method, m in result["methods"].items():
        for freq, mm in [("all", m)] + list(m["by_frequency"].items()):
            lines.append(f"{method:<28}{freq:>{w}}{mm['precision']:>11.3f}{mm['recall']:>8.3f}{mm['f1']:>7.3f}"
                         f"{mm['alert_events']:>8}{mm['false_per_1000_points']:>15.3f}")
    lines.append("recall by type: " + "; ".join(
        f"{method}: " + ", ".join(f"{k} {v:.2f}" for k, v in m["recall_by_type"].items())
        for method, m in result["methods"].items()))
    return "\n".join(lines)
