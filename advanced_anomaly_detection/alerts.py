"""Alarm post-processing: flagged hours -> alert events (a step of its own, after scoring).

Consecutive flagged hours of one brand (at most `merge_gap_hours` apart) form one event; events
shorter than `min_duration_hours` are dropped; an event starting within `suppression_hours` after
the previous event of the same brand ended is suppressed (merged into nothing, counted).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from advanced_anomaly_detection.config import AlertConfig

EVENT_COLUMNS = ["brand", "start", "end", "hours", "max_score"]


def alert_events(flags: pd.DataFrame, cfg: AlertConfig | None = None, score_col: str | None = None) -> pd.DataFrame:
    """flags: rows with brand, window_start and a boolean `is_anomaly` (only True rows matter)."""
    cfg = cfg or AlertConfig()
    hit = flags.loc[flags["is_anomaly"].astype(bool)].copy()
    if hit.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    hit["window_start"] = pd.to_datetime(hit["window_start"])
    hit = hit.sort_values(["brand", "window_start"])
    gap_hours = hit.groupby("brand")["window_start"].diff() / pd.Timedelta(hours=1)
    new_event = gap_hours.isna() | (gap_hours > cfg.merge_gap_hours + 1)
    hit["_event"] = new_event.cumsum()
    score = score_col if score_col and score_col in hit else None
    events = hit.groupby("_event").agg(
        brand=("brand", "first"),
        start=("window_start", "min"),
        end=("window_start", "max"),
        hours=("window_start", "size"),
        max_score=(score, "max") if score else ("window_start", "size"),
    )
    if not score:
        events["max_score"] = np.nan
    events = events.loc[events["hours"] >= cfg.min_duration_hours].reset_index(drop=True)
    if cfg.suppression_hours and not events.empty:
        keep = []
        last_end = {}
        for row in events.itertuples(index=False):
            prev = last_end.get(row.brand)
            if prev is not None and (row.start - prev) <= pd.Timedelta(hours=cfg.suppression_hours):
                keep.append(False)
            else:
                keep.append(True)
                last_end[row.brand] = row.end
        events = events.loc[keep].reset_index(drop=True)
    return events[EVENT_COLUMNS]
