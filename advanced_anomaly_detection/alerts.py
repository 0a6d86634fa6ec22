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
# Extra columns summarised when the flagged rows carry them (the job's alert table).
SEVERITY_ORDER = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
ALERT_TABLE_COLUMNS = EVENT_COLUMNS + ["severity", "anomaly_type", "metrics", "revenue_impact", "conversion_loss"]


def alert_events(flags: pd.DataFrame, cfg: AlertConfig | None = None, score_col: str | None = None) -> pd.DataFrame:
    """flags: rows with brand, window_start and a boolean `is_anomaly` (only True rows matter).

    When the rows also carry anomaly_severity / anomaly_type / anomaly_metric /
    estimated_revenue_impact / conversion_loss, each event gets its worst severity, most common type,
    the metrics that moved and the summed impact (ALERT_TABLE_COLUMNS).
    """
    cfg = cfg or AlertConfig()
    hit = flags.loc[flags["is_anomaly"].astype(bool)].copy()
    rich = "anomaly_severity" in hit.columns
    columns = ALERT_TABLE_COLUMNS if rich else EVENT_COLUMNS
    if hit.empty:
        return pd.DataFrame(columns=columns)
    hit["window_start"] = pd.to_datetime(hit["window_start"])
    hit = hit.sort_values(["brand", "window_start"])
    gap_hours = hit.groupby("brand")["window_start"].diff() / pd.Timedelta(hours=1)
    new_event = gap_hours.isna() | (gap_hours > cfg.merge_gap_hours + 1)
    hit["_event"] = new_event.cumsum()
    score = score_col if score_col and score_col in hit else None
    groups = hit.groupby("_event")
    events = groups.agg(
        brand=("brand", "first"),
        start=("window_start", "min"),
        end=("window_start", "max"),
        hours=("window_start", "size"),
    )
    events["max_score"] = groups[score].max() if score else np.nan
    if rich:
        rank = hit["anomaly_severity"].map(SEVERITY_ORDER).fillna(0)
        events["severity"] = hit.loc[rank.groupby(hit["_event"]).idxmax(), "anomaly_severity"].to_numpy()
        events["anomaly_type"] = groups["anomaly_type"].agg(lambda t: t.mode().iat[0] if t.notna().any() else None)
        events["metrics"] = groups["anomaly_metric"].agg(lambda m: sorted(set(m.dropna())))
        events["revenue_impact"] = groups["estimated_revenue_impact"].sum().round(2)
        events["conversion_loss"] = groups["conversion_loss"].sum().round(2)
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
    return events[columns]
