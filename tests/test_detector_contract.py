"""One contract, every detector: shape, score range, NaN input, a planted anomaly, refit, pickling,
too little history, a constant series. Pure pandas (no Spark)."""
from __future__ import annotations

import importlib
import pickle

import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection.config import ChangepointConfig, IsolationForestConfig, ProphetConfig
from advanced_anomaly_detection.detectors.base import INSUFFICIENT_HISTORY, OK, CONSTANT_SERIES
from advanced_anomaly_detection.detectors.synthetic_series import make_series, plant, small_lstm_model, split


def _prophet():
    from advanced_anomaly_detection.detectors.prophet_detector import ProphetDetector

    return ProphetDetector(ProphetConfig(history_days=28))


def _isolation_forest():
    from advanced_anomaly_detection.detectors.isolation_forest import IsolationForestDetector

    return IsolationForestDetector(IsolationForestConfig(n_estimators=100, max_samples=256))


def _changepoint():
    from advanced_anomaly_detection.detectors.changepoint import ChangepointDetector

    return ChangepointDetector(ChangepointConfig())


def _lstm():
    from advanced_anomaly_detection.detectors.lstm import LSTMAutoencoderDetector

    cfg, model = small_lstm_model()
    return LSTMAutoencoderDetector(cfg, model)


FACTORIES = {"prophet": _prophet, "isolation_forest": _isolation_forest, "changepoint": _changepoint, "lstm": _lstm}

# Detectors written elsewhere join the contract as soon as their module exists (module, class, factory).
OPTIONAL = {"baseline": ("advanced_anomaly_detection.detectors.baseline", "BaselineDetector")}
for _name, (_module, _cls) in OPTIONAL.items():
    try:
        FACTORIES[_name] = getattr(importlib.import_module(_module), _cls)
    except (ImportError, AttributeError):
        pass


@pytest.fixture(scope="module")
def series():
    # 36 days: 35 of history, the last day scored
    return make_series(days=36, seed=7, base_views=400, brand="contract")


def _check_output(out: pd.DataFrame, frame: pd.DataFrame) -> None:
    assert list(out.index) == list(frame.index)
    for col in ("raw_score", "score", "expected", "signal", "direction"):
        assert col in out.columns
    s = out["score"].to_numpy(dtype=float)
    assert np.all(np.isnan(s) | ((s >= 0) & (s <= 1)))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_detector_contract(name, series):
    make = FACTORIES[name]
    history, frame = split(series)

    # fit / score: shape and range on a clean day, keeping the caller's index
    frame_idx = frame.set_axis(pd.RangeIndex(5000, 5000 + len(frame)))
    det = make().fit(history)
    assert det.status_ == OK, det.reason_
    clean = det.score(frame_idx)
    _check_output(clean, frame_idx)
    assert clean["score"].notna().all()

    # a planted anomaly (six hours of traffic collapse from midday) outscores the clean hours before it
    at = len(series) - 12
    planted_series = plant(series, "views_drop", at=at, hours=6, factor=0.1)
    p_hist, p_frame = split(planted_series)
    out = make().fit(p_hist).score(p_frame)
    planted = out["score"].iloc[12:18]
    assert planted.max() >= 0.99, out["score"].round(4).tolist()
    assert planted.max() > out["score"].iloc[:12].max()

    # NaN input (a lost revenue value in history and in the scored hours) does not break anything
    nan_hist, nan_frame = history.copy(), frame.copy()
    nan_hist.loc[nan_hist.index[-30], "revenue"] = np.nan
    nan_frame.loc[nan_frame.index[3], "revenue"] = np.nan
    out = make().fit(nan_hist).score(nan_frame)
    _check_output(out, nan_frame)
    assert out["score"].notna().sum() >= len(nan_frame) - 1

    # refit: another brand, then the original again gives the original scores (deterministic)
    other = make_series(days=36, seed=8, base_views=60, brand="other")
    o_hist, o_frame = split(other)
    det.fit(o_hist)
    _check_output(det.score(o_frame), o_frame)
    det.fit(history)
    np.testing.assert_allclose(det.score(frame_idx)["raw_score"], clean["raw_score"], rtol=1e-5, atol=1e-8)

    # pickling a fitted detector: the copy scores identically
    copy = pickle.loads(pickle.dumps(det))
    np.testing.assert_allclose(copy.score(frame_idx)["raw_score"], clean["raw_score"], rtol=1e-5, atol=1e-8)

    # too little history: a status, NaN scores, no exception
    short = make().fit(history.iloc[-48:])
    assert short.status_ == INSUFFICIENT_HISTORY
    out = short.score(frame)
    _check_output(out, frame)
    assert out["score"].isna().all()

    # constant series (a brand whose feed is stuck): no crash, status says so or scores are valid
    const = series.copy()
    for col in ("views", "carts", "purchases"):
        const[col] = {"views": 100, "carts": 10, "purchases": 2}[col]
    const["revenue"] = 80.0
    c_hist, c_frame = split(const)
    cdet = make().fit(c_hist)
    assert cdet.status_ in (OK, CONSTANT_SERIES)
    _check_output(cdet.score(c_frame), c_frame)


def test_tail_calibrator_untrusted_top_ignores_past_incidents():
    """Past incidents in the reference (1.5% of it) set the bar with a plain fit; with untrusted_top the
    tail is extrapolated from the clean part, so a new 6-sigma point stays extreme."""
    from advanced_anomaly_detection.detectors.base import TailCalibrator

    rng = np.random.default_rng(0)
    clean = np.abs(rng.normal(size=2000))
    incidents = rng.uniform(6.0, 12.0, size=30)  # 1.5% of the reference
    ref = np.concatenate([clean, incidents])
    plain = TailCalibrator().fit(ref).transform(np.array([6.0]))[0]
    robust = TailCalibrator(untrusted_top=0.05).fit(ref).transform(np.array([6.0]))[0]
    assert 1 - plain > 5e-3  # the incidents make 6 sigma look ordinary
    assert 1 - robust < 1e-4  # (an exponential tail at the lightest: conservative for Gaussian data)
    # on a clean reference both agree that the body is the body
    fit = TailCalibrator(untrusted_top=0.05).fit(clean)
    assert abs(fit.transform(np.array([np.quantile(clean, 0.5)]))[0] - 0.5) < 0.01
    assert 1 - fit.transform(np.array([3.0]))[0] > 1e-4  # a 3-sigma point is not extreme
