"""Pure-pandas helpers for one brand's hourly series (used by tests, score-series and the UDF)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from advanced_anomaly_detection.schema import RATE_SIGNALS


def safe_rate(num, den) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def add_time_and_rate_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add hour_of_day, day_of_week, is_weekend and the funnel rates (recomputed from counts)."""
    out = frame.copy()
    ts = pd.to_datetime(out["window_start"])
    out["hour_of_day"] = ts.dt.hour.astype("int32")
    out["day_of_week"] = ts.dt.dayofweek.astype("int32")
    out["is_weekend"] = out["day_of_week"] >= 5
    for rate, (num, den) in RATE_SIGNALS.items():
        out[rate] = safe_rate(out[num], out[den])
    if "is_filled_hour" not in out:
        out["is_filled_hour"] = False
    return out


def complete_hourly_grid(frame: pd.DataFrame, end=None, brand_col: str = "brand") -> pd.DataFrame:
    """One series' rows on a complete hourly grid; absent hours become zero-count hours."""
    ts = pd.to_datetime(frame["window_start"]).dt.floor("h")
    last = pd.Timestamp(end) if end is not None else ts.max()
    grid = pd.DataFrame({"window_start": pd.date_range(ts.min(), last, freq="h")})
    merged = grid.merge(frame.assign(window_start=ts), on="window_start", how="left", indicator=True)
    merged["is_filled_hour"] = merged.pop("_merge") == "left_only"
    for col in ("views", "carts", "purchases", "revenue"):
        merged[col] = merged[col].fillna(0)
    if brand_col in frame and len(frame):
        merged[brand_col] = frame[brand_col].iloc[0]
    return add_time_and_rate_columns(merged)
