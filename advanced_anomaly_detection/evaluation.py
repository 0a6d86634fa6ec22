"""Event-level evaluation against labelled anomaly windows, and the seed system's z-score rule.

Definitions (also in README):
  * alert event: a brand's flagged hours grouped when consecutive or one hour apart (alerts.py);
  * precision: alert events overlapping a labelled window of the same brand (+-tolerance hours) / all events;
  * recall: labelled windows with at least one flagged hour inside them (+-tolerance) / all windows;
  * false alerts per 1000 brand-days: unmatched events / (brands x scored days) x 1000.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from advanced_anomaly_detection.alerts import alert_events
from advanced_anomaly_detection.config import AlertConfig


def _overlaps(events: pd.DataFrame, labels: pd.DataFrame, tol: pd.Timedelta) -> np.ndarray:
    """Boolean matrix events x labels: same brand and [start-tol, end+tol] intersects."""
    if events.empty or labels.empty:
        return np.zeros((len(events), len(labels)), dtype=bool)
    same = events["brand"].to_numpy()[:, None] == labels["brand"].to_numpy()[None, :]
    e_start = pd.to_datetime(events["start"]).to_numpy()[:, None]
    e_end = pd.to_datetime(events["end"]).to_numpy()[:, None]
    l_start = (pd.to_datetime(labels["start"]) - tol).to_numpy()[None, :]
    l_end = (pd.to_datetime(labels["end"]) + tol).to_numpy()[None, :]
    return same & (e_start <= l_end) & (e_end >= l_start)


def event_metrics(
    flags: pd.DataFrame, labels: pd.DataFrame, brand_days: float, tolerance_hours: int = 2,
    alert_cfg: Optional[AlertConfig] = None,
) -> Dict[str, object]:
    """flags: brand, window_start, is_anomaly over the scored hours. labels: brand, start, end, type."""
    events = alert_events(flags, alert_cfg)
    labels = labels.reset_index(drop=True)
    hit = _overlaps(events, labels, pd.Timedelta(hours=tolerance_hours))
    true_events = int(hit.any(axis=1).sum())
    n_events = len(events)
    found = hit.any(axis=0)
    precision = true_events / n_events if n_events else (1.0 if labels.empty else 0.0)
    recall = float(found.mean()) if len(labels) else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_type = {}
    if len(labels):
        for kind, idx in labels.groupby("type").groups.items():
            by_type[str(kind)] = round(float(found[np.asarray(list(idx))].mean()), 3)
    false_events = n_events - true_events
    return {
        "alert_events": n_events,
        "true_events": true_events,
        "false_events": false_events,
        "labelled_windows": len(labels),
        "windows_found": int(found.sum()),
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "false_alerts_per_1000_brand_days": round(false_events / brand_days * 1000, 2) if brand_days else None,
        "recall_by_type": by_type,
    }


def seed_zscore_flags(gold: pd.DataFrame, start, end, min_views: int = 50, z: float = 2.0) -> pd.DataFrame:
    """The seed system's rule, reproduced as it was: per brand and per brand x hour-of-day mean/std of
    conversion_rate over ALL rows (including the row itself and the future), views >= 50, |z| >= 2."""
    g = gold[["brand", "window_start", "views", "conversion_rate"]].copy()
    g["window_start"] = pd.to_datetime(g["window_start"])
    g["hour"] = g["window_start"].dt.hour
    by_brand = g.groupby("brand")["conversion_rate"]
    by_hour = g.groupby(["brand", "hour"])["conversion_rate"]
    z_brand = (g["conversion_rate"] - by_brand.transform("mean")) / by_brand.transform("std")
    z_hour = (g["conversion_rate"] - by_hour.transform("mean")) / by_hour.transform("std")
    extreme = (z_brand.abs() >= z) | (z_hour.abs() >= z)
    g["is_anomaly"] = (g["views"] >= min_views) & extreme.fillna(False)
    in_range = (g["window_start"] >= pd.Timestamp(start)) & (g["window_start"] < pd.Timestamp(end) + pd.Timedelta(days=1))
    return g.loc[in_range, ["brand", "window_start", "is_anomaly"]]


def comparison_table(rows: List[Dict[str, object]]) -> str:
    """Plain-text table: one row per method."""
    header = f"{'method':<28}{'precision':>10}{'recall':>8}{'F1':>7}{'events':>8}{'false/1000bd':>14}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['method']:<28}{r['precision']:>10.3f}{r['recall']:>8.3f}{r['f1']:>7.3f}"
            f"{r['alert_events']:>8d}{r['false_alerts_per_1000_brand_days']:>14.2f}"
        )
    types = sorted({t for r in rows for t in r.get("recall_by_type", {})})
    if types:
        lines.append("")
        lines.append(f"{'recall by type':<28}" + "".join(f"{t[:14]:>16}" for t in types))
        for r in rows:
            lines.append(f"{r['method']:<28}" + "".join(f"{r['recall_by_type'].get(t, float('nan')):>16.2f}" for t in types))
    return "\n".join(lines)
