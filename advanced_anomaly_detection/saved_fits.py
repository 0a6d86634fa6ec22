"""Per-brand detector fits kept from one night to the next (pure Python; the Spark side is in
spark/fits_store.py).

A detector whose config section has ``refit_days`` > 1 (Prophet: its fit costs a CmdStan run) is
fitted on one night and the same fit scores the brand on the following nights until its refit
night: each brand has its own night in the ``refit_days``-night cycle (a hash of the brand), so a
night refits ~1/refit_days of the brands, and no fit is ever more than ``refit_days`` nights old.
Reuse is safe by construction: a fit is only taken when it was made with the same detector settings
and package version (its digest), on history that ends before the first scored hour (no
look-ahead), and recently enough. Anything else, an unreadable fit included, is
refitted and the reason is recorded in the row's detector_status.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd

from advanced_anomaly_detection import __version__
from advanced_anomaly_detection.config import DETECTOR_NAMES, Config

HOUR = pd.Timedelta(hours=1)

# Columns of a saved fit, in the fits table and on the scored rows that carry new ones out of a worker.
FIT_SCHEMA = {
    "fit_detector": "string",
    "fit_through": "timestamp",  # last history hour the fit saw
    "fit_digest": "string",
    "fit_reused": "boolean",
    "fit_blob": "binary",
}


@dataclass
class SavedFit:
    detector: str
    fitted_through: pd.Timestamp
    digest: str
    blob: bytes
    reused: bool = False

    def age_days(self, target_start: pd.Timestamp) -> float:
        """Nights since the fit: 0 when its history ends the hour before the first scored hour."""
        return (pd.Timestamp(target_start) - (self.fitted_through + HOUR)) / pd.Timedelta(days=1)


def refit_days(cfg: Config, name: str) -> int:
    """Nights a fit of detector `name` serves (1, refit every night, for a detector without the knob)."""
    return getattr(getattr(cfg.detectors, name), "refit_days", 1)


def reusable_detectors(cfg: Config) -> List[str]:
    """Enabled detectors whose fits are kept between nights."""
    return [n for n in cfg.detectors.enabled() if refit_days(cfg, n) > 1]


def fit_digest(name: str, cfg: Config) -> str:
    """Settings a fit depends on (its config section but refit_days) and the package version."""
    settings = getattr(cfg.detectors, name).model_dump(mode="json", exclude={"refit_days"})
    payload = json.dumps({"detector": name, "settings": settings, "version": __version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def refit_slot(key: str, days: int) -> int:
    """The brand's night in a refit cycle of `days` nights (a stable hash: the same in every process)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % days


def is_refit_night(key: str, target_start: pd.Timestamp, days: int) -> bool:
    """Whether the run starting at `target_start` is the brand's refit night. Brands are spread over
    the cycle by their slot, so a night refits ~1/days of them instead of all of them every days-th night."""
    night = (pd.Timestamp(target_start).normalize() - pd.Timestamp("1970-01-01")).days
    return (night + refit_slot(key, days)) % days == 0


def reuse(fit: Optional[SavedFit], name: str, cfg: Config, target_start: pd.Timestamp,
          key: str) -> Tuple[Optional[Any], str]:
    """(fitted detector, note) from a saved fit, or (None, why not) when it must be refitted.
    `key` (the brand) picks its refit night; a fit is never older than refit_days nights."""
    if fit is None:
        return None, ""
    if fit.digest != fit_digest(name, cfg):
        return None, "saved fit made with other settings or version, refitted"
    if fit.fitted_through >= pd.Timestamp(target_start):
        return None, "saved fit saw the scored hours, refitted"
    days = refit_days(cfg, name)
    if fit.age_days(target_start) >= days or is_refit_night(key, target_start, days):
        return None, ""  # due: the normal refit
    try:
        det = pickle.loads(fit.blob)
    except Exception as exc:  # noqa: BLE001 - any unreadable fit is refitted, never fatal
        return None, f"saved fit unreadable ({type(exc).__name__}), refitted"
    return det, f"fit of {fit.fitted_through:%Y-%m-%d %H:%M} reused"


def saved(det: Any, name: str, cfg: Config, fitted_through: pd.Timestamp) -> SavedFit:
    """The SavedFit of a detector just fitted on history up to `fitted_through`."""
    return SavedFit(name, pd.Timestamp(fitted_through), fit_digest(name, cfg),
                    pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))


def from_frame(frame: Optional[pd.DataFrame]) -> Dict[str, SavedFit]:
    """Saved fits of one brand (rows with the FIT_SCHEMA columns) by detector name."""
    if frame is None or frame.empty:
        return {}
    return {
        r.fit_detector: SavedFit(r.fit_detector, pd.Timestamp(r.fit_through), r.fit_digest, bytes(r.fit_blob))
        for r in frame.itertuples(index=False)
        if r.fit_detector in DETECTOR_NAMES and r.fit_blob is not None
    }


def attach(out: pd.DataFrame, fits: Dict[str, SavedFit]) -> pd.DataFrame:
    """Scored rows with the FIT_SCHEMA columns: the i-th fit on the i-th row, null elsewhere (a brand
    has a few fits and at least a day of scored rows, so every fit finds a row)."""
    out = out.copy()
    n = len(out)
    items = list(fits.values())[:n]
    pad = [None] * (n - len(items))
    out["fit_detector"] = [f.detector for f in items] + pad
    out["fit_through"] = pd.to_datetime([f.fitted_through for f in items] + pad)
    out["fit_digest"] = [f.digest for f in items] + pad
    out["fit_reused"] = pd.array([f.reused for f in items] + pad, dtype="boolean")
    out["fit_blob"] = [f.blob for f in items] + pad
    return out
