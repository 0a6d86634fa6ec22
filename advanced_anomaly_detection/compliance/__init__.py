"""Contact-compliance (TCPA / Regulation F) risk: the pure-Python parts.

Rule definitions and citations (rules.py), the offline time-zone lookup (timezones.py), complaint
sentiment (sentiment.py), the Isolation Forest wrapper (model.py), the data generator (generator.py),
the CFPB export adapter (cfpb.py), evaluation (evaluation.py) and the CLI commands (commands.py).
Nothing here imports pyspark; the Spark job is advanced_anomaly_detection/spark/compliance_job.py.
"""
