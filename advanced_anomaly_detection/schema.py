"""Column names shared by the Spark part and the pure-pandas detectors."""

GOLD_COLUMNS = {
    "window_start": "timestamp",
    "window_end": "timestamp",
    "brand": "string",
    "views": "long",
    "carts": "long",
    "purchases": "long",
    "revenue": "double",
    "view_to_cart_rate": "double",
    "cart_to_purchase_rate": "double",
    "conversion_rate": "double",
    "window_date": "date",
}
# Columns the detection job cannot do without; the rates are recomputed from counts when missing.
REQUIRED_GOLD_COLUMNS = ("window_start", "brand", "views", "carts", "purchases", "revenue")

COUNT_SIGNALS = ("views", "carts", "purchases", "revenue")
# rate -> (numerator, denominator)
RATE_SIGNALS = {
    "view_to_cart_rate": ("carts", "views"),
    "cart_to_purchase_rate": ("purchases", "carts"),
    "conversion_rate": ("purchases", "views"),
}

# Per-brand series frame handed to detectors (one row per hour, complete grid, sorted):
#   window_start (datetime64, UTC, naive), brand, views, carts, purchases, revenue, the three rates,
#   hour_of_day (0-23), day_of_week (0=Monday), is_weekend, is_filled_hour (bool), and feature columns
#   named f"{signal}_lag_{h}h" and f"{signal}_roll_mean_{h}h" / f"{signal}_roll_std_{h}h".
SERIES_BASE_COLUMNS = (
    "window_start",
    "brand",
    "views",
    "carts",
    "purchases",
    "revenue",
    "view_to_cart_rate",
    "cart_to_purchase_rate",
    "conversion_rate",
    "hour_of_day",
    "day_of_week",
    "is_weekend",
    "is_filled_hour",
)
FEATURE_SIGNALS = ("views", "purchases", "revenue", "conversion_rate")

SEVERITIES = ("none", "low", "medium", "high", "critical")
