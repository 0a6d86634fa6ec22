"""LSTM autoencoder: one global model across brands, trained with Keras, scored in NumPy; per-brand
normalised windows.

A window is `window_hours` consecutive hours x the configured signals (log1p counts; rates as the
logit of the volume-shrunk rate, so a rate on tiny volume stays near the brand's pooled rate), each
normalised by the brand's own history median and IQR (std if the IQR is 0), plus four clock inputs
(hour of day, day of week as sin/cos). The model: LSTM encoder over values + clock -> Dense latent ->
RepeatVector -> [latent, clock] -> LSTM decoder -> TimeDistributed Dense. With the clock the decoder
only has to learn what a brand looks like at a given hour (an LSTM learns to generate a daily cycle
from a constant input very slowly); the latent code carries the brand's level and shape.

Error of a window, per signal: squared miss weighted towards the window's last 24 hours, after
removing the weighted mean miss (shape, not level: a uniformly busier or quieter day is the level
detectors' business; a broken daily cycle or an outage of a few hours is ours). Each signal's error
is divided by its median on this brand's history windows (a noisy rate is always reconstructed
badly, a clean daily cycle well) and raw_score is the mean over signals.

* `train_lstm(histories, cfg, seed)` samples `windows_per_brand` random windows per brand and trains
  -> `LSTMModel`; `LSTMModel.save(dir)` / `LSTMModel.load(dir)` (weights.npz + metadata JSON, and the
  Keras `.keras` file; local paths without TensorFlow, URLs such as gs:// through `tf.io.gfile`);
  `get_cached_model(dir)` loads once per process. Scoring runs `lstm_forward` (NumPy), so a Spark
  worker never imports TensorFlow.
* `LSTMAutoencoderDetector(cfg, model)` per brand: fit keeps the brand's normalisation, the last
  `window_hours - 1` hours as context and the errors of ~480 history windows as the calibration
  reference; score is the error of the window ending at each scored hour (one batched call).
  `signal` is the signal with the largest relative error, `expected` its reconstruction at the
  scored hour (back on the signal's scale), `direction` the sign of its mean miss over the last day.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd

from advanced_anomaly_detection import __version__
from advanced_anomaly_detection.config import LSTMConfig
from advanced_anomaly_detection.detectors import _funnel_signals as fs
from advanced_anomaly_detection.detectors import lstm_forward
from advanced_anomaly_detection.detectors.base import CONSTANT_SERIES, FAILED, Detector

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"  # what scoring reads (lstm_forward); model.keras is kept for Keras users
META_FILE = "metadata.json"
# about this many reference windows per brand (every hour on short histories, every 3 hours on 56 days,
# every 5 on 90): their errors are the calibration reference, and scoring them is most of the
# detector's nightly cost (~0.1 ms a window). 720 cost ~25% more (benchmark F1 within a window or two
# of 480, see config.IsolationForestConfig); 360 let a clean-series test raise 6 false hours, not <= 4.
REFERENCE_WINDOWS = 480
# error weight of a timestep: 1 for the last 24 hours of the window, decaying before (e-folding 24 h)
RECENT_HOURS = 24


def _tf():
    """Import TensorFlow quietly (and only when needed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    return tf


# ------------------------------------------------------------------------------------------------
# per-brand features
# ------------------------------------------------------------------------------------------------
@dataclass
class BrandNormaliser:
    """Per-brand transform: signals -> (hours x signals) float32 matrix around 0 with unit spread."""

    signals: List[str]
    priors: Dict[str, float] = field(default_factory=dict)
    center: Optional[np.ndarray] = None
    spread: Optional[np.ndarray] = None

    @classmethod
    def fit(cls, history: pd.DataFrame, signals: Iterable[str]) -> "BrandNormaliser":
        signals = list(signals)
        norm = cls(signals=signals, priors={s: fs.pooled_rate(history, s) for s in signals if fs.is_rate(s)})
        raw = norm._transform(history)
        center = np.nanmedian(raw, axis=0)
        q75, q25 = np.nanpercentile(raw, [75, 25], axis=0)
        spread = (q75 - q25) / 1.349
        std = np.nanstd(raw, axis=0)
        spread = np.where(spread > 1e-6, spread, np.where(std > 1e-6, std, 1.0))
        norm.center = np.where(np.isfinite(center), center, 0.0)
        norm.spread = np.where(np.isfinite(spread), spread, 1.0)
        return norm

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([fs.transformed(frame, s, self.priors.get(s)) for s in self.signals])

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        x = (self._transform(frame) - self.center) / self.spread
        # unknown hours sit at the brand's median; clip so one absurd value cannot blow up the loss
        return np.clip(np.where(np.isfinite(x), x, 0.0), -10.0, 10.0).astype("float32")

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Model input rows: normalised signals, then the clock features."""
        return np.hstack([self.transform(frame), clock_features(frame)])

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Normalised values back to the signals' own scale (counts, revenue, rates)."""
        t = np.asarray(x, dtype=float) * self.spread + self.center
        out = np.empty_like(t)
        for j, s in enumerate(self.signals):
            out[:, j] = fs.expit(t[:, j]) if fs.is_rate(s) else np.maximum(np.expm1(t[:, j]), 0.0)
        return out

    def is_constant(self, frame: pd.DataFrame) -> bool:
        raw = self._transform(frame)
        return all(fs.is_constant(raw[:, j]) for j in range(raw.shape[1]))


def _windows(x: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """Windows x[end-window+1 : end+1] for each end (ends >= window - 1)."""
    idx = ends[:, None] + np.arange(-window + 1, 1)[None, :]
    return x[idx]


def _timestep_weights(window: int) -> np.ndarray:
    age = np.arange(window)[::-1]  # 0 = last hour of the window
    w = np.where(age < RECENT_HOURS, 1.0, np.exp(-(age - RECENT_HOURS + 1) / 24.0))
    return (w / w.sum()).astype("float32")


# ------------------------------------------------------------------------------------------------
# the global model
# ------------------------------------------------------------------------------------------------
def build_autoencoder(window: int, n_features: int, units: int, latent_dim: int):
    """values (window x features) + clock (window x 4: hour / weekday sin, cos) -> reconstructed values.

    The decoder sees the clock of every timestep next to the repeated latent code, so it only has to
    learn "what this brand looks like at this hour", not to generate the daily cycle from a constant
    input (which an LSTM learns slowly); the latent code carries the brand's level and shape.
    """
    tf = _tf()
    keras = tf.keras
    values = keras.Input(shape=(window, n_features), name="values")
    clock = keras.Input(shape=(window, N_CLOCK), name="clock")
    enc_in = keras.layers.Concatenate(name="encoder_input")([values, clock])
    h = keras.layers.LSTM(units, name="encoder")(enc_in)
    z = keras.layers.Dense(latent_dim, name="latent")(h)
    r = keras.layers.RepeatVector(window, name="repeat")(z)
    dec_in = keras.layers.Concatenate(name="decoder_input")([r, clock])
    d = keras.layers.LSTM(units, return_sequences=True, name="decoder")(dec_in)
    out = keras.layers.TimeDistributed(keras.layers.Dense(n_features), name="reconstruction")(d)
    return keras.Model([values, clock], out, name="lstm_autoencoder")


N_CLOCK = 4


def clock_features(frame: pd.DataFrame) -> np.ndarray:
    t = fs.hour_features(frame)
    a = 2 * np.pi * t["hour_of_day"] / 24.0
    b = 2 * np.pi * t["day_of_week"] / 7.0
    return np.column_stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)]).astype("float32")


class LSTMModel:
    """A trained autoencoder: its weights (NumPy arrays) and the metadata needed to use it safely
    (window, signals, versions); the Keras model too when it was trained or loaded with Keras here.

    Scoring runs the NumPy forward pass (lstm_forward), so loading, pickling to Spark workers and
    scoring never import TensorFlow; only training and reading a model saved without weights.npz do.
    """

    def __init__(self, weights: Dict[str, np.ndarray], metadata: Dict[str, Any], keras_model=None):
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.metadata = dict(metadata)
        self.keras_model = keras_model
        self._forward: Optional[lstm_forward.Autoencoder] = None

    @classmethod
    def from_keras(cls, keras_model, metadata: Dict[str, Any]) -> "LSTMModel":
        return cls(lstm_forward.weights_from_keras(keras_model), metadata, keras_model)

    @property
    def window(self) -> int:
        return int(self.metadata["window_hours"])

    @property
    def signals(self) -> List[str]:
        return list(self.metadata["signals"])

    def reconstruct(self, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Reconstructed values of a (n, window, signals + clock) batch (NumPy, one BLAS thread: a
        Spark worker has one core)."""
        from threadpoolctl import threadpool_limits

        f = len(self.signals)
        if self._forward is None:
            self._forward = lstm_forward.Autoencoder(self.weights)
        out = []
        with threadpool_limits(1, user_api="blas"):
            for i in range(0, len(windows), batch_size):
                chunk = windows[i : i + batch_size]
                out.append(self._forward(chunk[..., :f], chunk[..., f:]))
        return np.concatenate(out) if out else np.zeros(windows.shape[:2] + (f,), np.float32)

    def errors(self, windows: np.ndarray, return_reconstruction: bool = False):
        """Per-window, per-signal weighted mean squared reconstruction error, shape (n, signals);
        the last day of the window weighs most."""
        f = len(self.signals)
        if len(windows) == 0:
            empty = np.zeros((0, f))
            return (empty, windows[..., :f]) if return_reconstruction else empty
        rec = self.reconstruct(windows)
        w = _timestep_weights(windows.shape[1])[None, :, None]
        miss = windows[..., :f] - rec
        # Shape, not level: the (weighted) mean miss is removed, so a day that is uniformly a bit
        # busier or quieter than the model expects (level detectors' business) does not count, while
        # a broken daily cycle or an outage of a few hours does.
        miss = miss - (miss * w).sum(axis=1, keepdims=True)
        err = ((miss**2) * w).sum(axis=1).astype(float)
        return (err, rec) if return_reconstruction else err

    # --- persistence ----------------------------------------------------------------------------
    def save(self, directory: str) -> str:
        """weights.npz + metadata.json (what scoring reads), and model.keras when there is a Keras model."""
        _write_bytes(_join(directory, WEIGHTS_FILE), weights_npz(self.weights))
        _write_bytes(_join(directory, META_FILE), json.dumps(self.metadata, indent=2, sort_keys=True).encode())
        if self.keras_model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                local = os.path.join(tmp, MODEL_FILE)
                self.keras_model.save(local)
                with open(local, "rb") as fh:
                    _write_bytes(_join(directory, MODEL_FILE), fh.read())
        return directory

    @classmethod
    def load(cls, directory: str, read: Optional[Callable[[str], bytes]] = None,
             exists: Optional[Callable[[str], bool]] = None) -> "LSTMModel":
        """From a directory: weights.npz + metadata.json, or, for a model saved before weights.npz
        existed, model.keras through Keras (imports TensorFlow). `read` / `exists` give the filesystem
        (default: local paths with plain Python, URLs such as gs:// through tf.io.gfile; the Spark jobs
        pass Hadoop's FileSystem)."""
        read, exists = read or _read_bytes, exists or _exists
        metadata = json.loads(read(_join(directory, META_FILE)))
        if exists(_join(directory, WEIGHTS_FILE)):
            with np.load(io.BytesIO(read(_join(directory, WEIGHTS_FILE))), allow_pickle=False) as arrays:
                model = cls({k: arrays[k] for k in arrays.files}, metadata)
        else:
            log.info("lstm model %s has no %s (saved by an older version): reading its Keras file", directory,
                     WEIGHTS_FILE)
            tf = _tf()
            with tempfile.TemporaryDirectory() as tmp:
                local = os.path.join(tmp, MODEL_FILE)
                with open(local, "wb") as fh:
                    fh.write(read(_join(directory, MODEL_FILE)))
                model = cls.from_keras(tf.keras.models.load_model(local, compile=False), metadata)
        model.metadata["loaded_from"] = directory
        return model

    def __getstate__(self):
        # The weights travel with the pickle (~80 KB); the Keras model does not (scoring never needs it).
        return {"metadata": self.metadata, "weights": self.weights}

    def __setstate__(self, state):
        self.__init__(state["weights"], state["metadata"])

    def __repr__(self) -> str:
        m = self.metadata
        return f"LSTMModel(version={m.get('version')!r}, window={m.get('window_hours')}, signals={m.get('signals')})"


def weights_npz(weights: Dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **weights)
    return buf.getvalue()


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


# Local paths with plain Python (no TensorFlow import); URLs (gs://, ...) through tf.io.gfile. The
# Spark jobs read models through Hadoop's FileSystem instead (spark/training.py).
def _read_bytes(path: str) -> bytes:
    if _is_url(path):
        with _tf().io.gfile.GFile(path, "rb") as fh:
            return fh.read()
    with open(_local(path), "rb") as fh:
        return fh.read()


def _write_bytes(path: str, data: bytes) -> None:
    if _is_url(path):
        gfile = _tf().io.gfile
        gfile.makedirs(path.rsplit("/", 1)[0])
        with gfile.GFile(path, "wb") as fh:
            fh.write(data)
        return
    local = _local(path)
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    with open(local, "wb") as fh:
        fh.write(data)


def _exists(path: str) -> bool:
    return _tf().io.gfile.exists(path) if _is_url(path) else os.path.exists(_local(path))


def config_hash(cfg: LSTMConfig) -> str:
    payload = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def training_windows(
    histories: Iterable[pd.DataFrame], cfg: LSTMConfig, seed: int = 0
) -> Tuple[np.ndarray, int, Tuple[Optional[str], Optional[str]]]:
    """Sampled normalised windows from every usable brand history -> (windows, brands used, date span)."""
    rng = np.random.default_rng(seed)
    w = cfg.window_hours
    chunks, brands, first, last = [], 0, None, None
    for hist in histories:
        if len(hist) < w:
            continue
        norm = BrandNormaliser.fit(hist, cfg.signals)
        if norm.is_constant(hist):
            continue
        x = norm.matrix(hist)
        n_possible = len(x) - w + 1
        k = min(cfg.windows_per_brand, n_possible)
        ends = rng.choice(n_possible, size=k, replace=False) + w - 1
        chunks.append(_windows(x, np.sort(ends), w))
        brands += 1
        ts = pd.to_datetime(hist["window_start"])
        first = ts.iloc[0] if first is None else min(first, ts.iloc[0])
        last = ts.iloc[-1] if last is None else max(last, ts.iloc[-1])
    if not chunks:
        raise ValueError(f"no brand history of at least {w} hours with a non-constant signal to train on")
    span = (None if first is None else str(first), None if last is None else str(last))
    return np.concatenate(chunks).astype("float32"), brands, span


class _EpochLog:
    """A progress line per epoch (loss, elapsed) through logging, not Keras' progress bar."""

    def __init__(self, epochs: int, started: float):
        self.epochs, self.started = epochs, started

    def callback(self):
        tf = _tf()
        outer = self

        class _Cb(tf.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                log.info("lstm: epoch %d/%d loss %.4f (%.0f s)", epoch + 1, outer.epochs,
                         (logs or {}).get("loss", float("nan")), time.time() - outer.started)

        return _Cb()


def train_lstm(
    histories: Iterable[pd.DataFrame],
    cfg: LSTMConfig | None = None,
    seed: Optional[int] = None,
    config_digest: Optional[str] = None,
    version: Optional[str] = None,
) -> LSTMModel:
    """Train the global autoencoder on `windows_per_brand` random windows of each brand history."""
    cfg = cfg or LSTMConfig()
    seed = cfg.random_state if seed is None else seed
    started = time.time()
    X, brands, span = training_windows(histories, cfg, seed)
    tf = _tf()
    keras = tf.keras
    keras.utils.set_random_seed(seed)
    f = len(cfg.signals)
    model = build_autoencoder(cfg.window_hours, f, cfg.units, cfg.latent_dim)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate), loss="mse")
    log.info("lstm: training on %d windows from %d brands (%d epochs)", len(X), brands, cfg.epochs)
    progress = _EpochLog(cfg.epochs, started)
    fit_started = time.time()
    hist = model.fit(
        [X[..., :f], X[..., f:]], X[..., :f], epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True,
        verbose=0, callbacks=[progress.callback()],
    )
    losses = [float(v) for v in hist.history.get("loss", [])]
    elapsed = time.time() - started
    log.info("lstm: trained in %.1f s, loss %s", elapsed, ["%.4f" % v for v in losses])
    metadata = {
        "version": version or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "package_version": __version__,
        "window_hours": cfg.window_hours,
        "signals": list(cfg.signals),
        "units": cfg.units,
        "latent_dim": cfg.latent_dim,
        "training_start": span[0],
        "training_end": span[1],
        "brands": brands,
        "windows": int(len(X)),
        "epochs": cfg.epochs,
        "seed": seed,
        "loss": losses,
        "train_seconds": round(elapsed, 1),
        "fit_seconds": round(time.time() - fit_started, 1),  # the epochs alone (train_seconds: + data, windows)
        "config_hash": config_digest or config_hash(cfg),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__ if hasattr(keras, "__version__") else tf.keras.__version__,
    }
    return LSTMModel.from_keras(model, metadata)


_CACHE: Dict[str, LSTMModel] = {}
_CACHE_LOCK = threading.Lock()


def get_cached_model(path: str) -> LSTMModel:
    """The model at `path`, loaded once per Python process and reused."""
    with _CACHE_LOCK:
        model = _CACHE.get(path)
        if model is None:
            model = LSTMModel.load(path)
            _CACHE[path] = model
        return model


# ------------------------------------------------------------------------------------------------
# the detector
# ------------------------------------------------------------------------------------------------
class LSTMAutoencoderDetector(Detector):
    name = "lstm"

    def __init__(self, cfg: LSTMConfig | None = None, model: LSTMModel | str | None = None, **settings):
        base = cfg.model_dump() if cfg is not None else {}
        self.cfg = LSTMConfig(**{**base, **settings})
        self.model = model  # an LSTMModel, or a directory to load it from (once per process)

    @property
    def min_history_hours(self) -> int:
        # a full window plus two weeks of reference windows (with one week the calibration reference
        # is a handful of overlapping windows and a normal day can look like nothing seen before)
        return self.cfg.window_hours + 24 * 14

    def _model(self) -> Optional[LSTMModel]:
        if isinstance(self.model, str):
            return get_cached_model(self.model)
        return self.model

    def _fit(self, history: pd.DataFrame) -> None:
        model = self._model()
        if model is None:
            self._fail(FAILED, "no trained LSTM model given (train_lstm / LSTMModel.load)")
            return
        if model.window != self.cfg.window_hours or model.signals != list(self.cfg.signals):
            self._fail(FAILED, f"model {model!r} does not match config (window {self.cfg.window_hours}, "
                               f"signals {list(self.cfg.signals)})")
            return
        norm = BrandNormaliser.fit(history, model.signals)
        if norm.is_constant(history):
            self._fail(CONSTANT_SERIES, f"all of {model.signals} constant on history")
            return
        self.normaliser_ = norm
        x = norm.matrix(history)
        w = model.window
        n_windows = len(x) - w + 1
        stride = max(1, int(np.ceil(n_windows / REFERENCE_WINDOWS)))
        ends = np.arange(len(x) - 1, w - 2, -stride)[::-1]
        err = model.errors(_windows(x, ends, w))
        # Each signal's error relative to how well the model usually reconstructs it for this brand:
        # a noisy rate is always reconstructed badly, a clean daily cycle well; both count alike.
        typical = np.median(err, axis=0)
        self.error_scale_ = np.where(typical > 1e-6, typical, max(float(np.mean(typical)), 1e-6))
        self.history_raw_ = (err / self.error_scale_).mean(axis=1)
        self.context_ = x[-(w - 1):]

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        model = self._model()
        x = np.vstack([self.context_, self.normaliser_.matrix(frame)])
        w = model.window
        ends = np.arange(len(self.context_), len(x))
        win = _windows(x, ends, w)
        err, rec = model.errors(win, return_reconstruction=True)
        rel = err / self.error_scale_
        best = rel.argmax(axis=1)
        rows = np.arange(len(ends))
        f = rec.shape[2]
        # direction: sign of the mean miss over the last day for that signal; expected: reconstruction
        miss = (win[:, -RECENT_HOURS:, :f] - rec[:, -RECENT_HOURS:, :]).mean(axis=1)
        expected = self.normaliser_.inverse(rec[:, -1, :])[rows, best]
        return pd.DataFrame(
            {
                "raw_score": rel.mean(axis=1),
                "expected": expected,
                "signal": np.asarray(model.signals, dtype=object)[best],
                "direction": np.sign(miss[rows, best]),
            },
            index=frame.index,
        )
