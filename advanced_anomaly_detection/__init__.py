"""advanced_anomaly_detection: nightly Spark jobs for funnel anomalies and contact-compliance risk."""

__version__ = "0.1.0"
