"""Analytic FLOPs of a built Keras model, from its layers' shapes.

One forward pass of one example, counting a multiply-add as two operations (the
convention of most NAS papers' FLOPs tables):

* Conv2D: ``2 * k_h * k_w * c_in * c_out`` per output position, plus one per bias;
* Dense: ``2 * in * out`` plus ``out`` for the bias;
* BatchNormalization: 2 per element (scale and shift at inference);
* ReLU / activation: 1 per element; Add: ``inputs - 1`` per element;
* pooling: ``k_h * k_w`` per output element;
* reshaping, padding, concatenation and dropout (identity at inference): 0.

NASGym asked the TF1 profiler for the float ops of the block alone; these figures cover
the whole network and do not depend on TensorFlow's graph rewriting.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["layer_flops", "model_flops"]


def _elements(shape: Any) -> int:
    return math.prod(int(v) for v in tuple(shape)[1:])


def layer_flops(layer: Any) -> int:
    """The FLOPs of one Keras layer for one example (0 for layers that do no arithmetic)."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        c_in = int(layer.input.shape[-1])
        out = _elements(layer.output.shape)
        return out * 2 * kh * kw * c_in + (out if layer.use_bias else 0)
    if kind == "Dense":
        n_in, n_out = int(layer.input.shape[-1]), int(layer.units)
        return 2 * n_in * n_out + (n_out if layer.use_bias else 0)
    if kind == "BatchNormalization":
        return 2 * _elements(layer.output.shape)
    if kind in ("ReLU", "Activation"):
        return _elements(layer.output.shape)
    if kind == "Add":
        return (len(layer.input) - 1) * _elements(layer.output.shape)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        kh, kw = layer.pool_size
        return kh * kw * _elements(layer.output.shape)
    return 0


def model_flops(model: Any) -> int:
    """The FLOPs of one forward pass of one example through ``model`` (a built Keras model).

    Activations fused into a layer (``Dense(activation="relu")``) add one per output.
    """
    total = 0
    for layer in model.layers:
        total += layer_flops(layer)
        activation = getattr(layer, "activation", None)
        if type(layer).__name__ == "Dense" and getattr(activation, "__name__", "") == "relu":
            total += int(layer.units)
    return total
