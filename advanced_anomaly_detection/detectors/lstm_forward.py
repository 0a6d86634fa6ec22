"""The LSTM autoencoder's forward pass in NumPy (float32): Keras' output to rounding, without TensorFlow.

Scoring only runs the trained model forward. A Spark worker that imports TensorFlow for that spends
~5 s on the import and ~2 s loading the Keras model before its first brand; this pass needs NumPy and
the weights (~80 KB), and on one core is as fast as TensorFlow's graph (504 windows x 168 hours:
~0.09 s against ~0.14 s). Training stays in Keras (lstm.train_lstm).

The arrays are Keras' own, named "<layer>/<array>" for the layers lstm.build_autoencoder makes:
encoder LSTM over [values, clock] -> latent Dense -> repeated -> decoder LSTM over [latent, clock]
-> reconstruction Dense on every timestep. Keras' LSTM gates are ordered i, f, c, o.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

LAYERS = {
    "encoder": ("kernel", "recurrent_kernel", "bias"),
    "latent": ("kernel", "bias"),
    "decoder": ("kernel", "recurrent_kernel", "bias"),
    "reconstruction": ("kernel", "bias"),
}
ARRAY_NAMES = tuple(f"{layer}/{part}" for layer, parts in LAYERS.items() for part in parts)


def weights_from_keras(keras_model) -> Dict[str, np.ndarray]:
    """The named float32 arrays of a model built by lstm.build_autoencoder; ValueError for an LSTM this
    pass does not compute (other activations, no bias, reversed)."""
    for name in ("encoder", "decoder"):
        c = keras_model.get_layer(name).get_config()
        got = (c.get("activation"), c.get("recurrent_activation"), c.get("use_bias", True),
               c.get("go_backwards", False))
        if got != ("tanh", "sigmoid", True, False):
            raise ValueError(f"LSTM layer {name!r} has (activation, recurrent_activation, use_bias, go_backwards) "
                             f"{got}; the NumPy forward pass computes ('tanh', 'sigmoid', True, False) only")
    out = {}
    for layer, parts in LAYERS.items():
        arrays = keras_model.get_layer(layer).get_weights()
        if len(arrays) != len(parts):
            raise ValueError(f"layer {layer!r} has {len(arrays)} weight arrays, expected {len(parts)} ({parts})")
        out.update({f"{layer}/{part}": np.asarray(a, dtype=np.float32) for part, a in zip(parts, arrays)})
    return out


class Autoencoder:
    """Callable (values (n, T, f), clock (n, T, 4)) -> reconstructed values (n, T, f), float32."""

    def __init__(self, weights: Dict[str, np.ndarray]):
        missing = [k for k in ARRAY_NAMES if k not in weights]
        if missing:
            raise ValueError(f"LSTM weights lack {missing}")
        w = {k: np.asarray(weights[k], dtype=np.float32) for k in ARRAY_NAMES}
        self.units = w["encoder/recurrent_kernel"].shape[0]
        self.latent_dim = w["latent/kernel"].shape[1]
        u = self.units
        for layer in ("encoder", "decoder"):
            if w[f"{layer}/recurrent_kernel"].shape != (u, 4 * u) or w[f"{layer}/bias"].shape != (4 * u,):
                raise ValueError(f"LSTM layer {layer!r}: inconsistent weight shapes")
        # sigmoid(x) = (tanh(x / 2) + 1) / 2: halving the i, f, o columns up front lets one tanh over all
        # four gates serve each step; `gate_scale` / `gate_shift` then turn i, f, o back into sigmoids.
        half = np.concatenate([np.full(2 * u, 0.5), np.ones(u), np.full(u, 0.5)]).astype(np.float32)
        self.gate_scale = half
        self.gate_shift = np.where(half == 0.5, 0.5, 0.0).astype(np.float32)
        # Each step is one product [h, x_t] @ [recurrent; kernel]. The decoder's input is [latent, clock]:
        # its latent rows multiply a constant, folded into a per-window bias at call time.
        self.enc_stacked = np.vstack([w["encoder/recurrent_kernel"], w["encoder/kernel"]]) * half
        self.enc_bias = w["encoder/bias"] * half
        dec_kernel = w["decoder/kernel"] * half
        self.dec_kernel_latent = dec_kernel[: self.latent_dim]
        self.dec_stacked = np.vstack([w["decoder/recurrent_kernel"] * half, dec_kernel[self.latent_dim :]])
        self.dec_bias = w["decoder/bias"] * half
        self.latent_kernel, self.latent_bias = w["latent/kernel"], w["latent/bias"]
        self.out_kernel, self.out_bias = w["reconstruction/kernel"], w["reconstruction/bias"]

    def __call__(self, values: np.ndarray, clock: np.ndarray) -> np.ndarray:
        # time-major (T, n, .) so each step reads a contiguous block
        x = np.concatenate([values, clock], axis=-1).astype(np.float32).transpose(1, 0, 2)
        h = self._recur(x, self.enc_stacked, self.enc_bias, sequence=False)
        z = h @ self.latent_kernel + self.latent_bias
        clock_t = np.ascontiguousarray(clock.transpose(1, 0, 2), dtype=np.float32)
        d = self._recur(clock_t, self.dec_stacked, z @ self.dec_kernel_latent + self.dec_bias, sequence=True)
        return np.ascontiguousarray((d @ self.out_kernel + self.out_bias).transpose(1, 0, 2))

    def _recur(self, inputs: np.ndarray, stacked: np.ndarray, bias: np.ndarray, sequence: bool) -> np.ndarray:
        """The LSTM recurrence over inputs (T, n, k) with `stacked` = [recurrent; kernel] (u + k, 4u):
        the last hidden state (n, u), or every step's (T, n, u) when `sequence`. `bias` is (4u,) or
        (n, 4u) (the decoder's constant latent input folded in)."""
        steps, n, k = inputs.shape
        u = self.units
        hx = np.zeros((n, u + k), np.float32)  # [h, x_t]
        h = hx[:, :u]
        c = np.zeros((n, u), np.float32)
        gates = np.empty((n, 4 * u), np.float32)
        ig = np.empty((n, u), np.float32)
        seq = np.empty((steps, n, u), np.float32) if sequence else None
        i, f, g, o = (gates[:, j * u : (j + 1) * u] for j in range(4))
        for t in range(steps):
            hx[:, u:] = inputs[t]
            np.matmul(hx, stacked, out=gates)
            gates += bias
            np.tanh(gates, out=gates)
            gates *= self.gate_scale
            gates += self.gate_shift
            c *= f
            np.multiply(i, g, out=ig)
            c += ig
            np.tanh(c, out=h)
            h *= o
            if sequence:
                seq[t] = h
        return seq if sequence else h.copy()
