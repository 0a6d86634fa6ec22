"""The cadence of a generic series: its step, how its timestamps become a regular grid, and which
cycles its detectors may assume.

    times, read_as = read_times(raw)        # datetimes, Unix epochs, yyyymmdd or plain positions
    cadence = infer_cadence(times)          # or parse_cadence("10min") for --freq
    snapped = cadence.snap(times); grid = cadence.grid(first, last)
    phases = cadence.phases(grid, cycle)    # slot in the cycle, weekday

Kinds of cadence, and the cycles they bring:

* ``intraday``: a fixed step from 1 minute to 12 hours that divides a day: the day (slots of the day)
  and the week (weekday), as business metrics move.
* ``daily``: the week.
* ``calendar``: a month, quarter or year per point (any timestamp inside the period snaps to its
  start, so month-end and month-start files agree): the year (12 or 4 slots; none for yearly data).
* ``points``: every other step (under a minute, steps that do not divide a day, several days, a
  week) and positions (a time column of plain numbers without a unit): no calendar cycle is
  assumed; the detectors look for one in each history they fit (generic.detect_cycle).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection.errors import UserError

DAY = pd.Timedelta(days=1)
EPOCH = pd.Timestamp("1970-01-01")
# Median steps are snapped to these when within SNAP_SLACK of one (clock jitter); any other step of
# whole seconds is used as it is.
NICE_STEPS = [pd.Timedelta(s) for s in (
    "1s", "2s", "5s", "10s", "15s", "20s", "30s", "1min", "2min", "3min", "4min", "5min", "6min", "10min",
    "12min", "15min", "20min", "30min", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1D", "7D")]
SNAP_SLACK = 0.05
# calendar cadences: name -> (pandas period alias, grid alias, nominal step, slots of the year)
CALENDAR = {
    "month": ("M", "MS", pd.Timedelta(days=30.436875), 12),
    "quarter": ("Q", "QS", pd.Timedelta(days=91.310625), 4),
    "year": ("Y", "YS", pd.Timedelta(days=365.2425), 1),
}
CALENDAR_ALIASES = {"month": "month", "monthly": "month", "m": "month", "ms": "month", "me": "month",
                    "quarter": "quarter", "quarterly": "quarter", "q": "quarter", "qs": "quarter", "qe": "quarter",
                    "year": "year", "yearly": "year", "annual": "year", "y": "year", "ys": "year", "ye": "year",
                    "a": "year", "as": "year"}
# Intraday cycles are modelled up to this many slots a day (1-minute data); finer data has no
# calendar cycle assumed (a day would not fit in a fitted history).
MAX_DAY_SLOTS = 1440
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# Plain numbers in these ranges are Unix epochs in that unit (years ~1979 .. 2100).
EPOCH_UNITS = (("unix_seconds", "s", 3e8, 4.2e9), ("unix_milliseconds", "ms", 3e11, 4.2e12),
               ("unix_microseconds", "us", 3e14, 4.2e15), ("unix_nanoseconds", "ns", 3e17, 4.2e18))


@dataclass(frozen=True)
class Cadence:
    name: str
    step: pd.Timedelta  # fixed step; for calendar cadences the nominal (average) one
    calendar: Optional[str] = None  # key of CALENDAR
    positional: bool = False  # the time column held plain positions (one unit = one second here)

    @property
    def kind(self) -> str:
        if self.calendar:
            return "calendar"
        if self.positional:
            return "points"
        if self.step == DAY:
            return "daily"
        if self.step < DAY and DAY % self.step == pd.Timedelta(0) and DAY / self.step <= MAX_DAY_SLOTS:
            return "intraday"
        return "points"

    @property
    def day_slots(self) -> int:
        """Points per day for intraday data, else 1."""
        return int(DAY / self.step) if self.kind == "intraday" else 1

    @property
    def weekly(self) -> bool:
        return self.kind in ("intraday", "daily")

    @property
    def calendar_cycle(self) -> Optional[int]:
        """Slots of the cycle the calendar gives (1: none but the week), None: to be detected."""
        if self.kind == "intraday":
            return self.day_slots
        if self.kind == "daily":
            return 1
        if self.kind == "calendar":
            return CALENDAR[self.calendar][3]
        return None

    def points_in(self, days: float) -> int:
        return max(int(round(pd.Timedelta(days=days) / self.step)), 1)

    # ---------------------------------------------------------------------------------------------
    def snap(self, ts: pd.Series) -> pd.Series:
        """Each timestamp onto its grid point: the start of its calendar period; the step's floor for
        steps that divide a day (clock-aligned); else the nearest step counted from the first point."""
        if self.calendar:
            return ts.dt.to_period(CALENDAR[self.calendar][0]).dt.start_time
        if DAY % self.step == pd.Timedelta(0):
            return ts.dt.floor(self.step)
        origin = ts.min()
        return origin + ((ts - origin) / self.step).round().astype("int64") * self.step

    def grid(self, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
        return pd.date_range(first, last, freq=CALENDAR[self.calendar][1] if self.calendar else self.step)

    def phases(self, ts: pd.Series, cycle: int = 1) -> Dict[str, np.ndarray]:
        """slot: position in the cycle (0 .. p-1), dow: weekday (0 = Monday; 0 everywhere when the week is
        not a cycle), p: slots, q: 7 or 1. `cycle` is used where the calendar gives none."""
        t = pd.to_datetime(pd.Series(ts))
        n = len(t)
        kind = self.kind
        dow = t.dt.dayofweek.to_numpy().astype(int) if self.weekly else np.zeros(n, int)
        if kind == "intraday":
            p = self.day_slots
            secs = (t.dt.hour * 3600 + t.dt.minute * 60 + t.dt.second).to_numpy()
            slot = np.minimum((secs // self.step.total_seconds()).astype(int), p - 1)
        elif kind == "calendar" and self.calendar_cycle > 1:
            p = self.calendar_cycle
            slot = (t.dt.month.to_numpy().astype(int) - 1) * p // 12
        elif kind == "points" and cycle > 1:
            p = int(cycle)
            index = np.round((t - EPOCH).to_numpy().astype("timedelta64[ns]").astype(np.int64) / self.step.value)
            slot = np.mod(index.astype(np.int64), p)
        else:
            p, slot = 1, np.zeros(n, int)
        return {"slot": slot, "dow": dow, "p": p, "q": 7 if self.weekly else 1}


def infer_cadence(ts: pd.Series, series_id: str, positional: bool = False) -> Tuple[Cadence, pd.Timedelta]:
    """(cadence, median step) of a series' timestamps; UserError when they have no usable step."""
    uniq = np.sort(pd.to_datetime(ts.unique()).astype("datetime64[ns]").astype(np.int64))
    median = pd.Timedelta(int(np.median(np.diff(uniq))), unit="ns")
    if not positional:
        for name, (_, _, nominal, _) in CALENDAR.items():
            if 0.9 <= median / nominal <= 1.1:
                return Cadence(name, nominal, calendar=name), median
    if median < pd.Timedelta(seconds=1):
        unit = "units" if positional else "seconds"
        raise UserError(f"series '{series_id}': median step {median.total_seconds():g} {unit}: steps under one "
                        f"{'unit' if positional else 'second'} are not supported (pass --freq to force one)")
    nice = min(NICE_STEPS, key=lambda s: abs(np.log(median / s)))
    step = nice if abs(median / nice - 1) <= SNAP_SLACK else pd.Timedelta(seconds=round(median.total_seconds()))
    return Cadence(step_name(step, positional), step, positional=positional), median


def step_name(step: pd.Timedelta, positional: bool = False) -> str:
    secs = int(step.total_seconds())
    if positional:
        return "positions" if secs == 1 else f"positions/{secs}"
    for unit, size in (("D", 86400), ("h", 3600), ("min", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def parse_cadence(text: str, positional: bool = False) -> Cadence:
    """--freq: a calendar period (month, quarter, year, or MS/QS/YS...) or a fixed step ('10s', '5min',
    '1h', '1D', '7D', 'W'); UserError otherwise."""
    key = text.strip().lower()
    if key in CALENDAR_ALIASES and not positional:
        name = CALENDAR_ALIASES[key]
        return Cadence(name, CALENDAR[name][2], calendar=name)
    if key in ("w", "week", "weekly") or key.startswith("w-"):
        key = "7D"
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(key.upper() if key.endswith("d") else key))
    except (ValueError, TypeError):
        step = None
    if step is None or step < pd.Timedelta(seconds=1):
        raise UserError(f"--freq {text!r}: not a step; use e.g. 10s, 5min, 1h, 1D, 7D, or month, quarter, year")
    return Cadence(step_name(step, positional), step, positional=positional)


# --------------------------------------------------------------------------------------------------
# the time column
# --------------------------------------------------------------------------------------------------
def parse_datetimes(raw: pd.Series) -> pd.Series:
    """Naive UTC timestamps (offsets converted to UTC); NaT where missing or unparseable."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = pd.to_datetime(raw, utc=True)
    else:
        ts = pd.to_datetime(raw.astype("string").str.strip(), errors="coerce", utc=True, format="mixed")
    return ts.dt.tz_localize(None)


def read_times(raw: pd.Series) -> Tuple[pd.Series, str]:
    """(naive UTC timestamps, how the column was read): 'datetime'; for a column of plain numbers
    'yyyymmdd' (8-digit dates), a Unix epoch unit (seconds .. nanoseconds, told by magnitude) or
    'positions' (no unit: one unit = one second from 1970-01-01, see Cadence.positional)."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return parse_datetimes(raw), "datetime"
    text = raw.astype("string").str.strip()
    present = text[text.notna() & (text != "")]
    if present.empty or not present.str.match(NUMBER).all():
        return parse_datetimes(raw), "datetime"
    num = pd.to_numeric(text, errors="coerce").astype(float)
    finite = num[np.isfinite(num)]
    if (finite == np.round(finite)).all() and finite.between(1e7, 1e8 - 1).all():
        dates = pd.to_datetime(num.astype("Int64").astype("string"), format="%Y%m%d", errors="coerce")
        if dates[np.isfinite(num)].notna().all():
            return dates, "yyyymmdd"
    for how, unit, lo, hi in EPOCH_UNITS:
        if finite.between(lo, hi).all():
            return number_to_timestamp(num, how), how
    return number_to_timestamp(num, "positions"), "positions"


def _unit(how: str) -> str:
    """pandas' time unit of a numeric time column read as `how` (positions: seconds)."""
    return {h: u for h, u, _, _ in EPOCH_UNITS}.get(how, "s")


def number_to_timestamp(x, how: str):
    """A number (or Series of them) in the time column's units (`read_times`' `how`) -> timestamp(s)."""
    unit = _unit(how)
    if isinstance(x, pd.Series):
        return EPOCH + pd.to_timedelta(x, unit=unit)
    return EPOCH + pd.Timedelta(float(x), unit=unit)


def timestamp_to_number(ts: pd.Series, how: str) -> pd.Series:
    """Inverse of number_to_timestamp (positions and epochs): the input's own numbers for output."""
    return (pd.to_datetime(ts) - EPOCH) / pd.Timedelta(1, unit=_unit(how))
