"""Synthetic data: the hourly funnel model with labelled anomalies (gold) and REES46-like raw events.

Pure NumPy/pandas; nothing here imports pyspark.
"""
from advanced_anomaly_detection.data.synthetic import (  # noqa: F401
    ANOMALY_KINDS,
    LABEL_COLUMNS,
    HourlySimulation,
    generate_gold,
    make_brands,
    read_labels,
    simulate_hourly,
    write_gold_parquet,
    write_labels,
)
from advanced_anomaly_detection.data.events import (  # noqa: F401,E402
    EVENT_COLUMNS,
    add_dirt,
    expand_events,
    generate_events,
    write_events_csv,
)
