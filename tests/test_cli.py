"""The `aad` command: data generation, config printing, one-line user errors (no Spark)."""
import pandas as pd

from advanced_anomaly_detection.cli import main


def test_generate_gold_and_events(tmp_path, capsys):
    assert main(["generate-gold", "--out", str(tmp_path / "g"), "--brands", "4", "--days", "9", "--start", "2026-01-05"]) == 0
    gold = pd.read_parquet(tmp_path / "g" / "gold_funnel_hourly_brand")
    assert gold["brand"].nunique() == 4 and (tmp_path / "g" / "labels.csv").exists()
    assert main(["generate-events", "--out", str(tmp_path / "e"), "--brands", "2", "--days", "2", "--clean"]) == 0
    assert any((tmp_path / "e" / "raw_events").iterdir())
    assert "labelled anomalies" in capsys.readouterr().out


def test_config_command_and_user_errors(capsys):
    assert main(["config", "--set", "ensemble.threshold=0.999"]) == 0
    assert "threshold: 0.999" in capsys.readouterr().out
    assert main(["detect", "--gold", "x", "--output", "y", "--set", "run.lookback_days=-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("aad detect: error: invalid configuration") and "'run.lookback_days'" in err[1]
    assert main(["detect", "--gold", "x", "--output", "y", "--start", "2026-13-01"]) == 2
    assert "--start must be a date" in capsys.readouterr().err


def test_evaluate_series_rejects_unknown_frequency(capsys):
    assert main(["evaluate-series", "--freqs", "1h,7min"]) == 2
    assert "--freqs: unknown ['7min']" in capsys.readouterr().err
