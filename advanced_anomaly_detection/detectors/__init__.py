"""Detectors: one interface (base.Detector), five implementations, built from config by name."""
from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional

from advanced_anomaly_detection.config import Config

# name -> (module, class). Modules are imported only when the detector is enabled, so a heavy or
# missing library (TensorFlow, Prophet) costs nothing unless it is used.
REGISTRY = {
    "baseline": ("advanced_anomaly_detection.detectors.baseline", "BaselineDetector"),
    "prophet": ("advanced_anomaly_detection.detectors.prophet_detector", "ProphetDetector"),
    "isolation_forest": ("advanced_anomaly_detection.detectors.isolation_forest", "IsolationForestDetector"),
    "changepoint": ("advanced_anomaly_detection.detectors.changepoint", "ChangepointDetector"),
    "lstm": ("advanced_anomaly_detection.detectors.lstm", "LSTMAutoencoderDetector"),
}


def detector_class(name: str):
    module, cls = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def build_detector(name: str, cfg: Config, models: Optional[Dict[str, Any]] = None):
    """A fresh, unfitted detector configured from `cfg`; `models` holds shared trained models (LSTM)."""
    cls = detector_class(name)
    section = getattr(cfg.detectors, name)
    if name == "baseline":
        return cls(section, cfg.volume)
    if name == "lstm":
        return cls(section, (models or {}).get("lstm"))
    return cls(section)


def enabled_detectors(cfg: Config) -> List[str]:
    return cfg.detectors.enabled()
