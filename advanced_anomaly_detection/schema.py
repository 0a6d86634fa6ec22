"""Column names shared by the Spark part, the pure-pandas detectors and the synthetic generators."""

# Raw e-commerce events (REES46 layout): column -> Spark SQL type the gold build casts it to
# (events.py writes them in this order; gold_build.py reads and types them).
RAW_EVENT_COLUMNS = {
    "event_time": "string",
    "event_type": "string",
    "product_id": "bigint",
    "category_id": "bigint",
    "category_code": "string",
    "brand": "string",
    "price": "double",
    "user_id": "bigint",
    "user_session": "string",
}
EVENT_COLUMNS = tuple(RAW_EVENT_COLUMNS)
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")

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
# Every gold signal a detector can watch (config.SIGNALS).
SIGNALS = COUNT_SIGNALS + tuple(RATE_SIGNALS)

# Per-brand series frame handed to detectors (one row per hour, complete grid, sorted):
#   window_start (datetime64, UTC, naive), brand, views, carts, purchases, revenue, the three rates,
#   hour_of_day (0-23), day_of_week (0=Monday), is_weekend, is_filled_hour (bool), and feature columns
#   named f"{signal}_lag_{h}h" and f"{signal}_roll_mean_{h}h" / f"{signal}_roll_std_{h}h".
SERIES_BASE_COLUMNS = (
    "window_start",
    "brand",
    *SIGNALS,
    "hour_of_day",
    "day_of_week",
    "is_weekend",
    "is_filled_hour",
)
FEATURE_SIGNALS = ("views", "purchases", "revenue", "conversion_rate")

SEVERITIES = ("none", "low", "medium", "high", "critical")
