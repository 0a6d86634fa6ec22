"""Prophet detector: per watched signal, a daily + weekly seasonal Prophet fit (MAP) on recent history.

Counts and revenue are modelled on log1p; rates on the logit of the volume-shrunk rate (a rate on a
handful of trials is pulled to the brand's pooled rate, so it barely moves the fit). The expected
value is Prophet's yhat, back-transformed. The residual is standardised count-aware (see
_funnel_signals.DeviationScale; its dispersion is fitted on the in-sample residuals), so a miss of 30
views means a lot at 100 expected and little at 10,000. raw_score = max over signals of |z|.

With ``uncertainty_samples > 0`` (Prophet's own default is 1000) the noise scale comes from Prophet's
sampled predictive interval instead, on the transformed scale: slower (the sampling dominates run
time) and not count-aware; kept so that a benchmark can compare against it.

Two things keep a fit cheap without changing its result: the data go to CmdStan as NumPy arrays
(Prophet hands over nested Python lists, which stanio then walks element by element; with ujson
installed the write is a C call), and without sampling the forecast is evaluated straight from the
fitted parameters (trend + Fourier terms, `FittedProphet`), not through ``Prophet.predict``'s DataFrame
machinery. The same parameters are all a saved fit holds, so a fit reused on later nights (config
`refit_days`; scoring.py) pickles to a few kB.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
from scipy.stats import norm

from advanced_anomaly_detection.config import ProphetConfig
from advanced_anomaly_detection.detectors import _funnel_signals as fs
from advanced_anomaly_detection.detectors.base import CONSTANT_SERIES, Detector

log = logging.getLogger(__name__)


def _quiet_prophet_logs() -> None:
    """cmdstanpy adds an INFO stream handler on first use; pre-empt it and keep only warnings."""
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        lg = logging.getLogger(name)
        if name == "cmdstanpy" and not lg.handlers:
            lg.addHandler(logging.NullHandler())
        lg.setLevel(logging.WARNING)
        for h in lg.handlers:
            h.setLevel(logging.WARNING)


class ProphetDetector(Detector):
    name = "prophet"
    min_history_hours = 24 * 7

    def __init__(self, cfg: ProphetConfig | None = None, **settings):
        base = cfg.model_dump() if cfg is not None else {}
        self.cfg = ProphetConfig(**{**base, **settings})

    # ---------------------------------------------------------------------------------------------
    def _fit(self, history: pd.DataFrame) -> None:
        _quiet_prophet_logs()
        from prophet import Prophet  # heavy; ImportError -> library_missing in the base class

        _quiet_prophet_logs()
        cfg = self.cfg
        hist = _recent(history, cfg.history_days)
        self.models_: Dict[str, FittedProphet] = {}
        self.scales_: Dict[str, fs.DeviationScale] = {}
        self.priors_: Dict[str, float] = {}
        self.interval_z_ = float(norm.ppf(0.5 + cfg.interval_width / 2.0))
        ds = pd.to_datetime(hist["window_start"]).dt.tz_localize(None).to_numpy()
        self.history_raw_: np.ndarray | None = None
        per_signal_z: List[np.ndarray] = []
        for signal in cfg.signals:
            prior = fs.pooled_rate(hist, signal) if fs.is_rate(signal) else None
            y = fs.transformed(hist, signal, prior)
            if fs.is_constant(y):
                log.debug("prophet: %s constant on history, not modelled", signal)
                continue
            model = Prophet(
                growth="linear",
                daily_seasonality=cfg.daily_seasonality,
                weekly_seasonality=cfg.weekly_seasonality,
                yearly_seasonality=False,
                changepoint_prior_scale=cfg.changepoint_prior_scale,
                interval_width=cfg.interval_width,
                uncertainty_samples=cfg.uncertainty_samples,
                mcmc_samples=0,
            )
            if cfg.uncertainty_samples:
                np.random.seed(cfg.random_state)  # Prophet samples with the global NumPy RNG
            self.models_[signal] = fit_map(model, pd.DataFrame({"ds": ds, "y": y}), cfg.tol_rel_grad)
            self.priors_[signal] = prior if prior is not None else np.nan
            fc = self._forecast(signal, hist)
            self.scales_[signal] = fs.DeviationScale.fit(signal, hist, fc["expected"])
            per_signal_z.append(self._z(signal, hist, fc))
        if not self.models_:
            self._fail(CONSTANT_SERIES, f"all of {list(cfg.signals)} constant on history")
            return
        z = np.vstack(per_signal_z)
        self.history_raw_ = _nanmax_abs(z)

    def _history_raw(self, history: pd.DataFrame) -> np.ndarray:
        return self.history_raw_  # in-sample residuals on the fitted window, computed in _fit

    def _fit_calibration(self, history: pd.DataFrame) -> None:
        super()._fit_calibration(history)
        self.history_raw_ = None  # needed only to calibrate: a saved fit stays small

    # ---------------------------------------------------------------------------------------------
    def _forecast(self, signal: str, frame: pd.DataFrame) -> Dict[str, np.ndarray]:
        ds = pd.DatetimeIndex(pd.to_datetime(frame["window_start"]).dt.tz_localize(None).to_numpy())
        if self.cfg.uncertainty_samples:
            np.random.seed(self.cfg.random_state)
        fc = self.models_[signal].forecast(ds)
        yhat = fc["yhat"]
        out = {"yhat": yhat}
        if fs.is_rate(signal):
            out["expected"] = fs.expit(yhat)
        else:
            out["expected"] = np.maximum(np.expm1(yhat), 0.0)
        if self.cfg.uncertainty_samples and "yhat_upper" in fc:
            half = (fc["yhat_upper"] - fc["yhat_lower"]) / 2.0
            out["sd_transformed"] = np.maximum(half / self.interval_z_, 1e-6)
        return out

    def _z(self, signal: str, frame: pd.DataFrame, fc: Dict[str, np.ndarray]) -> np.ndarray:
        if "sd_transformed" in fc:  # Prophet's own (sampled) interval, on the transformed scale
            y = fs.transformed(frame, signal, self.priors_[signal] if fs.is_rate(signal) else None)
            return (y - fc["yhat"]) / fc["sd_transformed"]
        return self.scales_[signal].z(frame, fc["expected"])

    def _raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        signals = list(self.models_)
        zs, expected = [], []
        for signal in signals:
            fc = self._forecast(signal, frame)
            zs.append(self._z(signal, frame, fc))
            expected.append(fc["expected"])
        z = np.vstack(zs)
        e = np.vstack(expected)
        return _pick(frame.index, z, e, signals)


_BACKEND: list = []  # one per Python worker (it holds the loaded CmdStan model)


def _numpy_backend():
    """Prophet's CmdStanPy backend whose `prepare_data` hands NumPy arrays to stanio (same keys and
    values; Prophet's own turns them into nested lists, which stanio then walks element by element).
    None when this Prophet release lacks the class: the model then keeps its stock backend."""
    if not _BACKEND:
        try:
            from prophet.models import CmdStanPyBackend

            class NumpyCmdStanPyBackend(CmdStanPyBackend):
                @staticmethod
                def prepare_data(init, data):
                    def arr(value):
                        return value.to_numpy() if isinstance(value, (pd.DataFrame, pd.Series)) else value

                    return {k: arr(v) for k, v in init.items()}, {k: arr(v) for k, v in data.items()}

            _BACKEND.append(NumpyCmdStanPyBackend())
        except Exception as exc:  # noqa: BLE001 - any failure leaves Prophet's own backend in place
            log.debug("prophet: stock backend (%s)", exc)
            _BACKEND.append(None)
    return _BACKEND[0]


PROPHET_NEWTON_BELOW = 100


def fit_map(model, frame: pd.DataFrame, tol_rel_grad: Optional[float] = None) -> "FittedProphet":
    """Fit a Prophet `model` on `frame` (ds, y) with its data handed to CmdStan as arrays; returns its
    forecast as a `FittedProphet`. `tol_rel_grad`: CmdStan's L-BFGS relative-gradient tolerance (None:
    CmdStan's default)."""
    stock, model.stan_backend = model.stan_backend, _numpy_backend() or model.stan_backend
    # Prophet fits fewer than 100 observed points with Newton's method, which takes no tol_rel_grad
    lbfgs = tol_rel_grad is not None and int(frame["y"].notna().sum()) >= PROPHET_NEWTON_BELOW
    try:
        model.fit(frame, **({"tol_rel_grad": tol_rel_grad} if lbfgs else {}))
    finally:
        model.stan_backend = stock  # the fitted model pickles as any Prophet model does
    return FittedProphet(model, pd.Timestamp(frame["ds"].iloc[-1]))


class FittedProphet:
    """A fitted Prophet's forecast, with no trend extrapolation: past the end of history the trend is
    held at its last value (Prophet's piecewise-linear trend, extrapolated for days from a late
    changepoint, drifts away from the data faster than any anomaly we want to see).

    An additive, linear-trend model without sampling, holidays or regressors (every model the
    detectors fit by default) is kept as its MAP parameters only, about a hundred numbers: the forecast
    is evaluated from them (what ``Prophet.predict`` returns when it does not sample, at a fraction of
    the cost) and a saved fit takes a few kB. Any other model is kept whole and forecast by ``predict``.
    """

    def __init__(self, model, end: pd.Timestamp):
        plain = (
            model.uncertainty_samples == 0 and model.growth == "linear" and not model.extra_regressors
            and model.holidays is None and not model.country_holidays and not model.logistic_floor
            and all(p["mode"] == "additive" and p["condition_name"] is None for p in model.seasonalities.values())
        )
        self.model = None if plain else model
        if plain:
            self.start, self.t_scale, self.y_scale = model.start, model.t_scale, float(model.y_scale)
            self.floor = float(model.y_min) if model.scaling == "minmax" else 0.0
            self.changepoints_t = np.asarray(model.changepoints_t, dtype=float)
            self.k, self.m = float(np.nanmean(model.params["k"])), float(np.nanmean(model.params["m"]))
            self.delta = np.nanmean(model.params["delta"], axis=0)
            self.beta = np.nanmean(model.params["beta"], axis=0)
            self.seasonalities = [(float(p["period"]), int(p["fourier_order"])) for p in model.seasonalities.values()]
        self.end = end
        self.end_trend = float(self.forecast(pd.DatetimeIndex([end]), hold=False)["trend"][0])

    def forecast(self, ds: pd.DatetimeIndex, hold: bool = True) -> Dict[str, np.ndarray]:
        """yhat and trend at `ds` (and yhat_lower / yhat_upper for a sampling model)."""
        if self.model is not None:
            fc = self.model.predict(pd.DataFrame({"ds": ds}))
            out = {c: fc[c].to_numpy(dtype=float) for c in ("yhat", "trend", "yhat_lower", "yhat_upper") if c in fc}
        else:
            from prophet import Prophet

            t = np.asarray((ds - self.start) / self.t_scale, dtype=float)
            trend = Prophet.piecewise_linear(t, self.delta, self.k, self.m, self.changepoints_t)
            trend = trend * self.y_scale + self.floor
            dates = pd.Series(ds)
            features = [Prophet.fourier_series(dates, period, order) for period, order in self.seasonalities]
            seasonal = (np.hstack(features) @ self.beta) * self.y_scale if features else 0.0
            out = {"yhat": trend + seasonal, "trend": trend}
        if hold:
            out["yhat"] = np.where(np.asarray(ds > self.end), out["yhat"] - out["trend"] + self.end_trend, out["yhat"])
        return out


def _recent(history: pd.DataFrame, days: int) -> pd.DataFrame:
    ts = pd.to_datetime(history["window_start"])
    return history.loc[ts > ts.iloc[-1] - pd.Timedelta(days=days)]


def _nanmax_abs(z: np.ndarray) -> np.ndarray:
    a = np.abs(z)
    all_nan = np.all(~np.isfinite(a), axis=0)
    return np.where(all_nan, np.nan, np.nanmax(np.where(np.isfinite(a), a, -np.inf), axis=0))


def _pick(index: pd.Index, z: np.ndarray, expected: np.ndarray, signals: List[str]) -> pd.DataFrame:
    """Per row: the signal with the largest |z| -> raw_score, signal, direction, expected."""
    a = np.where(np.isfinite(z), np.abs(z), -np.inf)
    best = np.argmax(a, axis=0)
    cols = np.arange(z.shape[1])
    raw = a[best, cols]
    found = np.isfinite(raw)
    return pd.DataFrame(
        {
            "raw_score": np.where(found, raw, np.nan),
            "expected": np.where(found, expected[best, cols], np.nan),
            "signal": np.where(found, np.asarray(signals, dtype=object)[best], None),
            "direction": np.where(found, np.sign(z[best, cols]), np.nan),
        },
        index=index,
    )
