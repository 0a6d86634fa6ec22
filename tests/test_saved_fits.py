"""Per-brand fits kept between nights (saved_fits.py) through score_series, without Spark: a reused
fit scores as a backfill from the night it was made does; stale, foreign, look-ahead and unreadable
fits are refitted and say so."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from advanced_anomaly_detection import saved_fits
from advanced_anomaly_detection.config import load_config
from advanced_anomaly_detection.data import synthetic
from advanced_anomaly_detection.scoring import ScoringContext, score_series
from advanced_anomaly_detection.series import complete_hourly_grid

PROPHET_AND_BASELINE = ["detectors.isolation_forest.enabled=false", "detectors.changepoint.enabled=false",
                        "detectors.lstm.enabled=false", "detectors.prophet.history_days=14"]
NIGHT1 = pd.Timestamp("2026-02-08")
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def brand():
    brands = synthetic.make_brands(1, seed=4, log10_views_min=3.5, log10_views_max=3.6)
    gold, _ = synthetic.generate_gold(0, "2026-01-12", 30, seed=4, anomalies=False, brands=brands)
    return complete_hourly_grid(gold, end=pd.Timestamp("2026-02-10 23:00"))


def _night(series, start, cfg, saved=None):
    """One night scoring `start`'s day: (rows, fits in use)."""
    kept = {}
    rows = series[pd.to_datetime(series["window_start"]) < start + DAY]
    out = score_series(rows, ScoringContext(cfg, start, "r", "v"), saved or {}, kept)
    return out, kept


KEY = "fleokero"  # the brand of the fixture: with refit_days=7 its refit night is NIGHT1 + 2 days
NIGHT2, NIGHT3 = NIGHT1 + DAY, NIGHT1 + 2 * DAY


def test_a_fit_is_reused_on_later_nights_and_scores_as_a_backfill(brand):
    cfg = load_config(None, PROPHET_AND_BASELINE)
    assert brand["brand"].iloc[0] == KEY and not saved_fits.is_refit_night(KEY, NIGHT2, 7)
    _, fits = _night(brand, NIGHT1, cfg)
    assert set(fits) == {"prophet"} and not fits["prophet"].reused
    assert fits["prophet"].fitted_through == NIGHT1 - pd.Timedelta(hours=1)
    assert len(fits["prophet"].blob) < 20_000  # parameters, not Prophet's frames
    out2, fits2 = _night(brand, NIGHT2, cfg, fits)
    assert fits2["prophet"].reused and fits2["prophet"].blob == fits["prophet"].blob
    assert out2["detector_status"].str.contains("prophet=ok (fit of 2026-02-07 23:00 reused)", regex=False).all()
    # the same fit scoring two days at once (a backfill from night 1) gives night 2 the same scores
    rows = brand[pd.to_datetime(brand["window_start"]) < NIGHT2 + DAY]
    backfill = score_series(rows, ScoringContext(cfg, NIGHT1, "r", "v"))
    np.testing.assert_allclose(out2["prophet_anomaly_score"], backfill["prophet_anomaly_score"].iloc[-24:])


def test_refits_are_spread_over_the_cycle(brand):
    keys = [f"brand_{i}" for i in range(700)]
    per_night = [sum(saved_fits.is_refit_night(k, NIGHT1 + n * DAY, 7) for k in keys) for n in range(7)]
    assert sum(per_night) == 700 and 60 < min(per_night) and max(per_night) < 140  # each brand once a cycle
    assert all(saved_fits.is_refit_night(k, NIGHT1 + 7 * DAY, 7) == saved_fits.is_refit_night(k, NIGHT1, 7)
               for k in keys)
    # on its refit night a brand is refitted though its fit is younger than refit_days
    cfg = load_config(None, PROPHET_AND_BASELINE)
    assert saved_fits.is_refit_night(KEY, NIGHT3, 7)
    _, fits = _night(brand, NIGHT1, cfg)
    out, kept = _night(brand, NIGHT3, cfg, fits)
    assert not kept["prophet"].reused and kept["prophet"].fitted_through == NIGHT2 + pd.Timedelta(hours=23)
    assert not out["detector_status"].str.contains("reused").any()


def test_due_foreign_lookahead_and_unreadable_fits_are_refitted(brand):
    cfg = load_config(None, [*PROPHET_AND_BASELINE, "detectors.prophet.refit_days=2"])
    _, fits = _night(brand, NIGHT1, cfg)
    fit = fits["prophet"]
    _, due = _night(brand, NIGHT3, cfg, fits)  # two nights old with refit_days=2
    assert not due["prophet"].reused and due["prophet"].fitted_through == NIGHT2 + pd.Timedelta(hours=23)
    week = load_config(None, PROPHET_AND_BASELINE)  # NIGHT2 is not the brand's refit night
    other = load_config(None, [*PROPHET_AND_BASELINE, "detectors.prophet.changepoint_prior_scale=0.5"])
    cases = {
        "made with other settings or version": (other, fit),
        "saw the scored hours": (week, dataclasses.replace(fit, fitted_through=NIGHT1 + DAY)),
        "unreadable (UnpicklingError)": (week, dataclasses.replace(fit, blob=b"not a pickle")),
    }
    for why, (night_cfg, saved) in cases.items():
        out, kept = _night(brand, NIGHT1 + DAY, night_cfg, {"prophet": saved})
        status = out["detector_status"]
        assert status.str.contains(f"saved fit {why}", regex=False).all(), status.iloc[0]
        assert not kept["prophet"].reused and out["prophet_anomaly_score"].notna().all()


def test_refit_every_night_keeps_nothing(brand):
    cfg = load_config(None, [*PROPHET_AND_BASELINE, "detectors.prophet.refit_days=1"])
    assert saved_fits.reusable_detectors(cfg) == []
    _, kept = _night(brand, NIGHT1, cfg)
    assert kept == {}


def test_fits_travel_on_the_scored_rows_and_back(brand):
    cfg = load_config(None, PROPHET_AND_BASELINE)
    out, fits = _night(brand, NIGHT1, cfg)
    carried = saved_fits.attach(out, fits)
    assert carried["fit_blob"].notna().sum() == 1 and list(carried.columns[-5:]) == list(saved_fits.FIT_SCHEMA)
    back = saved_fits.from_frame(carried[carried["fit_blob"].notna()])
    assert back["prophet"].blob == fits["prophet"].blob and back["prophet"].digest == fits["prophet"].digest
