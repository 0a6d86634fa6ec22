"""The LSTM's NumPy forward pass is Keras' model, and scoring with it never imports TensorFlow."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from advanced_anomaly_detection.detectors import lstm_forward
from advanced_anomaly_detection.detectors.lstm import WEIGHTS_FILE, LSTMModel, build_autoencoder

SIGNALS = ["views", "carts", "purchases", "conversion_rate"]


def _keras_model(window=48, units=16, latent=8, seed=3):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = build_autoencoder(window, len(SIGNALS), units, latent)
    # large random weights: saturated and unsaturated gates alike, not an untrained model's near-zero output
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.4, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_numpy_forward_pass_equals_keras_predict():
    keras_model = _keras_model()
    x = np.random.default_rng(0).normal(size=(700, 48, len(SIGNALS) + 4)).astype("float32")
    expected = keras_model.predict([x[..., :4], x[..., 4:]], batch_size=256, verbose=0)
    model = LSTMModel.from_keras(keras_model, {"window_hours": 48, "signals": SIGNALS})
    got = model.reconstruct(x, batch_size=300)  # several batches, the last one partial
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4)
    assert np.abs(expected).max() > 1.0  # the comparison is not between two near-zero outputs


def test_an_lstm_the_numpy_pass_does_not_compute_is_rejected():
    import tensorflow as tf

    keras_model = _keras_model()
    config = keras_model.get_config()
    for layer in config["layers"]:
        if layer["config"]["name"] == "encoder":
            layer["config"]["recurrent_activation"] = "hard_sigmoid"
    other = tf.keras.Model.from_config(config)
    with pytest.raises(ValueError, match="encoder.*hard_sigmoid.*computes"):
        lstm_forward.weights_from_keras(other)
    with pytest.raises(ValueError, match="lack"):
        lstm_forward.Autoencoder({"encoder/kernel": np.zeros((8, 64), np.float32)})


def test_a_model_saved_without_weights_npz_still_loads(tmp_path):
    """Model directories written before weights.npz existed hold model.keras only: read with Keras."""
    model = LSTMModel.from_keras(_keras_model(), {"window_hours": 48, "signals": SIGNALS, "version": "old"})
    directory = tmp_path / "v1"
    model.save(str(directory))
    assert {p.name for p in directory.iterdir()} == {"model.keras", "metadata.json", WEIGHTS_FILE}
    (directory / WEIGHTS_FILE).unlink()
    old = LSTMModel.load(str(directory))
    x = np.random.default_rng(1).normal(size=(20, 48, 8)).astype("float32")
    np.testing.assert_allclose(old.reconstruct(x), model.reconstruct(x), atol=1e-6)
    assert old.metadata["version"] == "old"


def test_scoring_with_a_saved_model_never_imports_tensorflow(tmp_path):
    """What a Spark worker does: unpickle the model shipped with the scoring function (or load it from
    a local directory), fit on a brand's history and score its day, without TensorFlow in the process."""
    from advanced_anomaly_detection.detectors.synthetic_series import small_lstm_model

    cfg, model = small_lstm_model()
    model.save(str(tmp_path / "model"))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps((cfg, model)))
    script = textwrap.dedent(f"""
        import pickle, sys
        from advanced_anomaly_detection.detectors.lstm import LSTMAutoencoderDetector
        from advanced_anomaly_detection.detectors.synthetic_series import make_series, split
        cfg, model = pickle.load(open({str(tmp_path / "model.pkl")!r}, "rb"))
        history, frame = split(make_series(days=36, seed=5, base_views=300))
        a = LSTMAutoencoderDetector(cfg, model).fit(history).score(frame)
        b = LSTMAutoencoderDetector(cfg, {str(tmp_path / "model")!r}).fit(history).score(frame)
        assert a["score"].notna().all() and (a["raw_score"] == b["raw_score"]).all()
        print("tensorflow" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
