"""The zero-cost proxies on a built Keras model (imports TensorFlow; see ``__init__``).

Every function takes the untrained model ``keras-v1`` would train (logits out) and
returns a float score; higher is meant to rank better. None of them updates a weight:
each restores every variable it touched (synflow's absolute weights, batch
normalisation's moving statistics) before it returns.

"Weights" are the kernels of the ``Conv2D`` and ``Dense`` layers (the prunable weights
of the proxies' papers); biases and batch normalisation parameters are not scored.
The data-based proxies run the model in training mode (batch statistics, as one
training step would see them; dropout draws from the seeded generator).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["DATA_FREE", "PROXY_FUNCTIONS", "grad_norm", "jacob_cov", "naswot", "snip", "synflow"]

#: jacob_cov's regulariser of the eigenvalues (Mellor et al.).
JACOB_K = 1e-5


def _kernels(model: Any) -> list[Any]:
    return [layer.kernel for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense")]


class _Restored:
    """Snapshot every variable of ``model`` and put it back on exit."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.saved = [v.numpy().copy() for v in self.model.variables]

    def __exit__(self, *exc: object) -> None:
        for variable, value in zip(self.model.variables, self.saved, strict=True):
            variable.assign(value)


def synflow(
    model: Any, images: np.ndarray | None = None, labels: np.ndarray | None = None
) -> float:
    """SynFlow (Tanaka et al. 2020): no data.

    Every trainable variable replaced by its absolute value, one all-ones input, batch
    normalisation in inference mode with its initial statistics (the identity up to
    ``1/sqrt(1 + eps)``: "off"), dropout off; ``R`` = the sum of the logits;
    score = ``sum |w * dR/dw|`` over the weights. Build the model under the ``float64``
    dtype policy to compute in float64 (the logits layer of ``keras-v1`` is pinned to
    float32 by its builder; the sum is taken in float64).
    """
    kernels = _kernels(model)
    with _Restored(model):
        for variable in model.trainable_variables:
            variable.assign(tf.abs(variable))
        ones = tf.ones((1, *model.input_shape[1:]), dtype=tf.float64)
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(tf.cast(model(ones, training=False), tf.float64))
        grads = tape.gradient(total, kernels)
        score = 0.0
        for kernel, grad in zip(kernels, grads, strict=True):
            if grad is not None:
                product = tf.cast(kernel, tf.float64) * tf.cast(grad, tf.float64)
                score += float(tf.reduce_sum(tf.abs(product)))
    return score


def _relu_codes(model: Any, images: np.ndarray) -> list[np.ndarray]:
    outputs = [
        layer.output
        for layer in model.layers
        if type(layer).__name__ == "ReLU"
        or (type(layer).__name__ == "Dense" and getattr(layer.activation, "__name__", "") == "relu")
    ]
    if not outputs:
        return []
    probe = keras.Model(model.inputs, outputs)
    values = probe(tf.constant(images), training=True)
    values = values if isinstance(values, list | tuple) else [values]
    n = len(images)
    return [(np.asarray(v).reshape(n, -1) > 0).astype(np.float64) for v in values]


def naswot(model: Any, images: np.ndarray, labels: np.ndarray | None = None) -> float:
    """NASWOT (Mellor et al. 2021): the log-determinant of the ReLU-code kernel.

    For each ReLU (the ``ReLU`` layers and the ``relu`` dense layer of the head), the
    binary codes ``c`` (activation > 0) of the minibatch, flattened per example;
    ``K = sum over layers of c c^T + (1 - c)(1 - c)^T`` (how many units two examples
    agree on); score = ``log det K``. ``-inf`` when ``K`` is singular (two examples with
    the same codes everywhere).
    """
    with _Restored(model):
        codes = _relu_codes(model, images)
    n = len(images)
    kernel = np.zeros((n, n), dtype=np.float64)
    for c in codes:
        kernel += c @ c.T + (1.0 - c) @ (1.0 - c).T
    sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def _loss_gradients(
    model: Any, images: np.ndarray, labels: np.ndarray
) -> tuple[list[Any], list[Any]]:
    kernels = _kernels(model)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = model(tf.constant(images), training=True)
        loss = loss_fn(tf.constant(labels), logits)
    return kernels, tape.gradient(loss, kernels)


def grad_norm(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """Gradient norm (Abdelfattah et al. 2021): ``sum over weights of ||dL/dw||_2``.

    ``L`` is the mean cross-entropy of the minibatch.
    """
    with _Restored(model):
        _, grads = _loss_gradients(model, images, labels)
        return float(sum(float(tf.norm(g)) for g in grads if g is not None))


def snip(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """SNIP saliency (Lee et al. 2019): ``sum over weights of |w * dL/dw|``."""
    with _Restored(model):
        kernels, grads = _loss_gradients(model, images, labels)
        return float(
            sum(
                float(tf.reduce_sum(tf.abs(k * g)))
                for k, g in zip(kernels, grads, strict=True)
                if g is not None
            )
        )


def jacob_cov(model: Any, images: np.ndarray, labels: np.ndarray | None = None) -> float:
    """Jacobian covariance (Mellor et al. 2020): how uncorrelated the input gradients are.

    ``J`` = the gradient of the sum of each example's logits with respect to its input,
    flattened (one row per example); ``C`` = their correlation matrix with eigenvalues
    ``v``; score = ``-sum(log(v + k) + 1 / (v + k))`` with ``k = 1e-5``. NaN when a
    row of ``J`` is constant (no correlation defined).
    """
    with _Restored(model):
        x = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(model(x, training=True))
        jacobian = np.asarray(tape.gradient(total, x), dtype=np.float64).reshape(len(images), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobian)
    if not np.isfinite(corr).all():
        return float("nan")
    values = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(values + JACOB_K) + 1.0 / (values + JACOB_K)))


#: The proxies that read no data (synflow uses an all-ones input).
DATA_FREE = ("synflow",)

#: The model-scoring function of each proxy.
PROXY_FUNCTIONS: dict[str, Callable[..., float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
    "jacob_cov": jacob_cov,
}
