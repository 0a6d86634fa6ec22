"""Per-brand cost of the detectors: `python -m advanced_anomaly_detection.detectors.timing`.

`time_detectors()` fits each detector on 90 days of hourly history of a synthetic brand and scores the
next day, per brand, after one warm-up brand (imports, graph tracing) that is not counted.
`time_lstm_training()` measures training throughput of the global LSTM autoencoder with the given
config and extrapolates to `brands` brands.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, Optional

import numpy as np

from advanced_anomaly_detection.config import (
    ChangepointConfig,
    IsolationForestConfig,
    LSTMConfig,
    ProphetConfig,
)
from advanced_anomaly_detection.detectors.synthetic_series import make_series, split

log = logging.getLogger(__name__)


def time_detectors(brands: int = 5, history_days: int = 90, lstm_cfg: Optional[LSTMConfig] = None) -> Dict[str, dict]:
    """{detector: {"mean_s", "max_s", "fit_s", "score_s"}} per brand (fit on history, score one day)."""
    from advanced_anomaly_detection.detectors.changepoint import ChangepointDetector
    from advanced_anomaly_detection.detectors.isolation_forest import IsolationForestDetector
    from advanced_anomaly_detection.detectors.lstm import LSTMAutoencoderDetector, train_lstm
    from advanced_anomaly_detection.detectors.prophet_detector import ProphetDetector

    lstm_cfg = lstm_cfg or LSTMConfig()
    series = [
        make_series(days=history_days + 1, seed=500 + i, base_views=float(v), brand=f"t{i}")
        for i, v in enumerate(np.geomspace(20, 3000, brands + 1).round())
    ]
    # inference cost does not depend on how well the model is trained: a quick one will do
    quick = lstm_cfg.model_copy(update={"epochs": 1, "windows_per_brand": 16})
    model = train_lstm([split(s)[0] for s in series[:3]], quick)
    factories = {
        "prophet": lambda: ProphetDetector(ProphetConfig()),
        "isolation_forest": lambda: IsolationForestDetector(IsolationForestConfig()),
        "changepoint": lambda: ChangepointDetector(ChangepointConfig()),
        "lstm": lambda: LSTMAutoencoderDetector(lstm_cfg, model),
    }
    results = {}
    for name, make in factories.items():
        fits, scores = [], []
        for i, s in enumerate(series):
            history, frame = split(s)
            t0 = time.perf_counter()
            det = make().fit(history)
            t1 = time.perf_counter()
            det.score(frame)
            t2 = time.perf_counter()
            if i == 0:
                continue  # warm-up: imports, TF graph tracing
            fits.append(t1 - t0)
            scores.append(t2 - t1)
        total = np.add(fits, scores)
        results[name] = {
            "mean_s": float(total.mean()),
            "max_s": float(total.max()),
            "fit_s": float(np.mean(fits)),
            "score_s": float(np.mean(scores)),
        }
    return results


def time_lstm_training(cfg: Optional[LSTMConfig] = None, sample_brands: int = 100, brands: int = 1000, days: int = 90) -> dict:
    """Train on `sample_brands` brands (one epoch is timed after a warm-up step) and extrapolate the
    full training time of `brands` brands x windows_per_brand windows x epochs."""
    from advanced_anomaly_detection.detectors.lstm import _tf, build_autoencoder, training_windows

    cfg = cfg or LSTMConfig()
    histories = [make_series(days=days, seed=900 + i, base_views=20.0 + 30 * i, with_features=False) for i in range(sample_brands)]
    X, _, _ = training_windows(histories, cfg, seed=0)
    tf = _tf()
    f = len(cfg.signals)
    model = build_autoencoder(cfg.window_hours, f, cfg.units, cfg.latent_dim)
    model.compile(optimizer=tf.keras.optimizers.Adam(cfg.learning_rate), loss="mse")
    inputs, target = [X[..., :f], X[..., f:]], X[..., :f]
    warm = min(len(X), cfg.batch_size * 2)
    model.fit([a[:warm] for a in inputs], target[:warm], batch_size=cfg.batch_size, epochs=1, verbose=0)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(inputs, target, batch_size=cfg.batch_size, epochs=1, verbose=0)
    per_window = (time.perf_counter() - t0) / len(X)
    cpu_per_window = (time.process_time() - c0) / len(X)
    total_windows = brands * cfg.windows_per_brand
    return {
        "windows_timed": int(len(X)),
        "ms_per_window_epoch": per_window * 1e3,
        "cpu_ms_per_window_epoch": cpu_per_window * 1e3,  # CPU time: less sensitive to a busy machine
        "extrapolated_s": per_window * total_windows * cfg.epochs,
        "brands": brands,
        "windows_per_brand": cfg.windows_per_brand,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
    }


if __name__ == "__main__":  # pragma: no cover - a measuring tool
    import json
    import os

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(json.dumps(time_detectors(), indent=2))
    print(json.dumps(time_lstm_training(), indent=2))
