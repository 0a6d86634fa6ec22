"""Configuration: defaults valid, layering works, invalid values fail with the key in the message."""
from pathlib import Path

import pytest
import yaml

from advanced_anomaly_detection.config import Config, ConfigError, dump_defaults, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_valid_and_dump_is_in_sync():
    cfg = load_config()
    assert cfg.ensemble.threshold < 1
    on_disk = (ROOT / "config" / "defaults.yaml").read_text()
    assert on_disk == dump_defaults(), "config/defaults.yaml is stale: run `make config-defaults`"


@pytest.mark.parametrize("name", ["local.yaml", "dataproc.yaml", "defaults.yaml"])
def test_shipped_config_files_load(name):
    load_config(ROOT / "config" / name)


def test_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"run": {"lookback_days": 30}, "ensemble": {"threshold": 0.99}}))
    cfg = load_config(f, ["ensemble.threshold=0.995", "features.lags_hours=[1, 24]"])
    assert cfg.run.lookback_days == 30
    assert cfg.ensemble.threshold == 0.995
    assert cfg.features.lags_hours == [1, 24]
    assert cfg.run.min_history_days == Config().run.min_history_days  # untouched keys keep defaults


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("ensemble.thresold=0.9", "'ensemble.thresold': unknown key"),
        ("ensemble.weights={baseline: 0.5, lstm: 0.2}", "'ensemble.weights': weights must sum to 1"),
        ("ensemble.weights={baseline: 0.5, magic: 0.5}", "unknown detector(s) ['magic']"),
        ("features.rolling_windows_hours=[24, -3]", "'features.rolling_windows_hours': windows and lags must be positive"),
        ("run.lookback_days=-1", "'run.lookback_days'"),
        ("ensemble.severity.low=0.99999", "thresholds must increase"),
        ("detectors={baseline: {enabled: false}, prophet: {enabled: false}, isolation_forest: {enabled: false}, "
         "changepoint: {enabled: false}, lstm: {enabled: false}}", "at least one detector must be enabled"),
        ("detectors.baseline.signals=[views, clicks]", "'detectors.baseline.signals.1'"),
    ],
)
def test_invalid_config_names_key_and_problem(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)


def test_bad_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(None, ["no_equals_sign"])


def test_digest_changes_with_config():
    assert load_config().digest() != load_config(None, ["ensemble.threshold=0.99"]).digest()


def test_signal_literal_matches_schema():
    import typing

    from advanced_anomaly_detection import config, schema

    assert typing.get_args(config.Signal) == schema.SIGNALS
