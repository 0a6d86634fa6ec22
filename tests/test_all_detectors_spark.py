"""All five detectors through Spark end to end, with small settings, on two nights: every score column
filled, the model directory written on first use and reused on the next night, Prophet's per-brand
fits kept and reused."""
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from advanced_anomaly_detection import saved_fits
from advanced_anomaly_detection.config import DETECTOR_NAMES, load_config
from advanced_anomaly_detection.data import synthetic
from advanced_anomaly_detection.spark import funnel_job

FIRST = dt.date(2026, 4, 6)
DAYS = 24
DAY = FIRST + dt.timedelta(days=DAYS - 1)
ONE = dt.timedelta(days=1)

SMALL = [
    "detectors.prophet.enabled=true",
    "detectors.prophet.history_days=14",
    "detectors.isolation_forest.enabled=true",
    "detectors.isolation_forest.n_estimators=30",
    "detectors.changepoint.enabled=true",
    "detectors.lstm.enabled=true",
    "detectors.lstm.window_hours=24",
    "detectors.lstm.epochs=1",
    "detectors.lstm.windows_per_brand=8",
    "detectors.lstm.units=8",
    "detectors.lstm.latent_dim=4",
    "run.min_history_days=10",
]


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("all_detectors")
    brands = synthetic.make_brands(5, seed=5, log10_views_min=3.0, log10_views_max=4.5)
    gold, _ = synthetic.generate_gold(0, FIRST, DAYS, seed=5, anomalies=False, brands=brands)
    synthetic.write_gold_parquet(gold, root / "gold")
    cfg = load_config(None, SMALL)
    first = funnel_job.run(spark, cfg, str(root / "gold"), str(root / "out"), DAY - ONE, DAY - ONE,
                           model_dir=str(root / "models"))
    second = funnel_job.run(spark, cfg, str(root / "gold"), str(root / "out"), DAY, DAY, model_dir=str(root / "models"))
    return root, first, second, pd.read_parquet(root / "out")


def test_every_detector_scores_every_row(runs):
    _, first, second, out = runs
    assert first["scoring_status"]["scored"] + second["scoring_status"]["scored"] == len(out) == 2 * 24 * 5
    for name in DETECTOR_NAMES:
        col = out[f"{name}_anomaly_score"]
        assert col.notna().all(), (name, out["detector_status"].iloc[0])
        assert col.between(0, 1).all()
    assert all(list(used) == list(DETECTOR_NAMES) for used in out["detectors_used"])
    assert out["detector_status"].str.contains("lstm=ok").all()


def test_model_trained_on_first_use_then_reused(runs):
    root, first, second, _ = runs
    lstm_dir = Path(first["models"]["lstm"])
    assert lstm_dir.parent == root / "models" / "lstm"
    assert (root / "models" / "lstm" / "LATEST").read_text().strip() == lstm_dir.name
    meta = json.loads((lstm_dir / "metadata.json").read_text())
    assert meta["window_hours"] == 24 and meta["brands"] == 5
    assert meta["training_end_date"] == str(DAY - 2 * ONE)
    assert second["models"] == first["models"]  # no retraining on the second night
    assert lstm_dir.name in second["model_version"]


def test_prophet_fits_kept_and_reused_on_the_next_night(runs):
    root, first, second, out = runs
    fits = root / "models" / "fits"
    # none of the five brands has its refit night on DAY (how refits spread: tests/test_saved_fits.py)
    assert not any(saved_fits.is_refit_night(b, pd.Timestamp(DAY), 7) for b in out["brand"].unique())
    assert first["saved_fits"]["fits_new"] == {"prophet": 5} and first["saved_fits"]["fits_reused"] == {"prophet": 0}
    assert second["saved_fits"]["fits_reused"] == {"prophet": 5} and second["saved_fits"]["fits_new"] == {"prophet": 0}
    assert sorted(p.name for p in fits.iterdir() if p.is_dir()) == [f"as_of={DAY - 2 * ONE}", f"as_of={DAY - ONE}"]
    snapshot = pd.read_parquet(fits / f"as_of={DAY - ONE}")
    assert len(snapshot) == 5 and snapshot["fit_reused"].all()
    assert (pd.to_datetime(snapshot["fit_through"]) == pd.Timestamp(DAY - ONE) - pd.Timedelta(hours=1)).all()
    night2 = out[pd.to_datetime(out["window_start"]) >= pd.Timestamp(DAY)]
    assert night2["detector_status"].str.contains(f"prophet=ok \\(fit of {DAY - 2 * ONE} 23:00 reused\\)").all()
    assert night2["prophet_anomaly_score"].notna().all()


def test_snapshots_too_old_to_reuse_are_deleted(runs, spark):
    from advanced_anomaly_detection.spark import fits_store

    fits = runs[0] / "models" / "fits"
    (fits / f"as_of={DAY - 9 * ONE}").mkdir()  # older than any refit_days=7 run from DAY could reuse
    (fits / "notes").mkdir()  # not a snapshot: left alone
    assert fits_store.prune_fits(spark, str(fits), DAY, load_config(None, SMALL)) == 1
    assert not (fits / f"as_of={DAY - 9 * ONE}").exists() and (fits / "notes").exists()
    assert (fits / f"as_of={DAY - 2 * ONE}").exists()


def test_an_unreadable_fits_table_means_refits_not_a_failed_night(spark, tmp_path):
    from advanced_anomaly_detection.spark import fits_store

    snapshot = tmp_path / f"as_of={DAY - 2 * ONE}"
    snapshot.mkdir()
    (snapshot / "part-0.parquet").write_text("not parquet")
    assert fits_store.read_fits(spark, str(tmp_path), DAY, load_config(None, SMALL)).count() == 0
    assert fits_store.read_fits(spark, str(tmp_path / "absent"), DAY, load_config(None, SMALL)).count() == 0


def test_training_data_reaches_the_driver_in_chunks_of_brands(runs, spark, monkeypatch):
    """Collected a few brands at a time, the training histories are the same as in one collect."""
    from advanced_anomaly_detection.spark import training

    root = runs[0]
    cfg = load_config(None, SMALL)
    end = DAY - dt.timedelta(days=1)
    whole = list(training.training_histories(spark, cfg, str(root / "gold"), end))
    monkeypatch.setattr(training, "BRANDS_PER_COLLECT", 2)
    chunked = list(training.training_histories(spark, cfg, str(root / "gold"), end))
    assert [f["brand"].iloc[0] for f in chunked] == [f["brand"].iloc[0] for f in whole]
    assert len(whole) == 5 and all(len(f) == DAYS * 24 - 24 for f in whole)
    for a, b in zip(whole, chunked):
        pd.testing.assert_frame_equal(a, b)
