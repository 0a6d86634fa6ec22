"""Ensemble: renormalised weights, agreement, severity, confidence; alert events."""
import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection import ensemble
from advanced_anomaly_detection.alerts import alert_events
from advanced_anomaly_detection.config import AlertConfig, EnsembleConfig, VolumeGateConfig, load_config


def _cfg(**kw):
    return load_config(None, [f"ensemble.{k}={v}" for k, v in kw.items()]).ensemble


def test_weights_renormalise_over_detectors_that_ran():
    cfg = _cfg(method="mean")
    scores = pd.DataFrame({"baseline": [0.9, 0.9], "prophet": [0.1, np.nan]})
    out = ensemble.combine(scores, cfg)
    w_b, w_p = cfg.weights["baseline"], cfg.weights["prophet"]
    assert out["ensemble_anomaly_score"][0] == pytest.approx((0.9 * w_b + 0.1 * w_p) / (w_b + w_p))
    assert out["ensemble_anomaly_score"][1] == pytest.approx(0.9)  # prophet missing: baseline alone
    assert out["detectors_ran"].tolist() == [2, 1]
    assert ensemble.renormalised_weights(cfg, ["baseline", "prophet"]) == pytest.approx(
        {"baseline": w_b / (w_b + w_p), "prophet": w_p / (w_b + w_p)}
    )


def test_evidence_mean_keeps_one_strong_detector_strong():
    cfg = _cfg(method="evidence_mean", threshold=0.999)
    scores = pd.DataFrame({"baseline": [1 - 1e-12, 0.6], "prophet": [0.5, 0.6], "lstm": [0.5, 0.6]})
    out = ensemble.combine(scores, cfg)
    assert out["ensemble_anomaly_score"][0] > 0.999 and out["is_anomaly"][0]
    assert out["ensemble_anomaly_score"][1] == pytest.approx(0.6)  # equal scores: the mean is that score
    assert not out["is_anomaly"][1]
    arithmetic = ensemble.combine(scores, _cfg(method="mean", threshold=0.999, single_detector_threshold="null"))
    assert not arithmetic["is_anomaly"][0]  # why evidence_mean is the default


def test_one_decisive_detector_flags_alone_unless_disabled():
    scores = pd.DataFrame({"baseline": [1 - 10**-7.9, 1 - 1e-6], "prophet": [0.1, 0.1], "lstm": [0.1, 0.1]})
    cfg = _cfg(method="evidence_mean", threshold=0.9999)
    out = ensemble.combine(scores, cfg)
    assert out["ensemble_anomaly_score"][0] < 0.9999  # the mean alone would not flag it...
    assert out["is_anomaly"].tolist() == [True, False]  # ...but 1 - 1e-7.9 is decisive, 1 - 1e-6 is not
    off = _cfg(method="evidence_mean", threshold=0.9999, single_detector_threshold="null")
    assert not ensemble.combine(scores, off)["is_anomaly"].any()


def test_min_agreement_is_required_and_capped_by_detectors_that_ran():
    cfg = _cfg(method="mean", threshold=0.5, min_agreement=2, detector_threshold=0.9)
    scores = pd.DataFrame({"baseline": [0.95, 0.95, 0.95], "prophet": [0.95, 0.2, np.nan]})
    out = ensemble.combine(scores, cfg)
    assert out["detector_agreement"].tolist() == [2, 1, 1]
    # row 3: only one detector ran, so one agreeing detector is enough
    assert out["is_anomaly"].tolist() == [True, False, True]


def test_severity_follows_configured_thresholds():
    cfg = EnsembleConfig()
    sev = cfg.severity
    score = np.array([0.5, sev.low, sev.medium, sev.high, sev.critical, sev.low])
    flags = np.array([False, True, True, True, True, False])
    assert ensemble.severity(score, flags, cfg).tolist() == ["none", "low", "medium", "high", "critical", "none"]


def test_confidence_grows_with_agreement_and_volume():
    vol = VolumeGateConfig()
    c = ensemble.confidence(np.array([1, 3, 3]), np.array([3, 3, 3]), np.array([5000.0, 5000.0, 2.0]), vol)
    assert c[1] == 1.0 and c[0] == pytest.approx(1 / 3, abs=1e-4) and 0 < c[2] < 0.3


def test_alert_events_group_merge_and_suppress():
    t = pd.Timestamp("2026-03-01")
    hours = [0, 1, 3, 10, 30]  # 0-1-3 merge (gap of one hour), 10 alone, 30 alone
    flags = pd.DataFrame({"brand": "b", "window_start": [t + pd.Timedelta(hours=h) for h in hours], "is_anomaly": True})
    ev = alert_events(flags, AlertConfig(merge_gap_hours=1))
    assert ev["hours"].tolist() == [3, 1, 1]
    assert ev["start"].iloc[0] == t and ev["end"].iloc[0] == t + pd.Timedelta(hours=3)
    assert len(alert_events(flags, AlertConfig(merge_gap_hours=1, min_duration_hours=2))) == 1
    assert len(alert_events(flags, AlertConfig(merge_gap_hours=1, suppression_hours=8))) == 2
