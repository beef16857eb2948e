"""NSC -> Keras network builders (TensorFlow backend; imported only when a model is built).

Two builders, each versioned (the version is part of the estimator's fingerprint):

``nasgym-v1``
    NASGym's ``sequence_to_net`` (SEED-BEHAVIOUR §2.7): the NSC block is the whole feature
    extractor. Convolution is PCC (ReLU -> Conv2D(filters, k x k, stride 1) -> BatchNorm);
    max/avg pooling is k x k with stride k; identity passes through; ``add`` and ``concat``
    zero-pad both operands (split half before, half after) on height, width *and* channels
    to the larger size; the layers nobody reads are concatenated the same way into the
    block output; the head is Flatten -> Dense(fc_units, ReLU) -> Dropout -> Dense(classes).
    The empty network feeds the input straight to the head.

``blockqnn-v1``
    BlockQNN's stacked network: a stem (3x3 Conv2D + BatchNorm with ``filters``
    channels), then ``stages`` stages of ``blocks_per_stage`` copies of the block, stages
    separated by a stride-2 PCC 3x3 reduction that doubles the channels. Inside a stacked
    block all convolution and pooling uses 'same' padding and stride 1 (so a block keeps
    its input size and can be repeated), merges pad only what differs, and the block ends
    in a 1x1 PCC projection back to the stage's channel count (our choice: it keeps the
    width of the next block bounded whatever the block concatenates). Same head.

An architecture that cannot be built (a merge reading the raw input, a kernel larger
than what is left of the image, a reduction of a 1x1 map) raises :class:`BuildError`,
which the estimator turns into status ``invalid``. Whether a network can be built is
decided by :func:`nasframe.why_invalid`, the one validity rule that ``proxy-v1``, the
zero-cost proxies and the action masks share; ``KerasSettings.why_invalid`` passes it this
builder's settings (:meth:`KerasSettings.why_invalid`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import layers, ops

from nasframe import NSC, LayerType, NSCRow
from nasframe_keras.settings import KerasSettings

if TYPE_CHECKING:
    from keras import KerasTensor

__all__ = ["BuildError", "PadTo", "build_model"]


class BuildError(ValueError):
    """The architecture cannot be built for this input; the message says why.

    A ``ValueError``, as :meth:`nasframe.NetworkBuilder.build` documents.
    """


@keras.saving.register_keras_serializable(package="nasframe_keras")
class PadTo(layers.Layer):
    """Zero-pad ``(h, w, c)`` feature maps to a larger shape, half before and half after.

    NASGym split the padding this way for its merges; the odd extra row, column or
    channel goes after.

    Args:
        target: the ``(height, width, channels)`` to pad to; each at least the input's.
    """

    def __init__(self, target: tuple[int, int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = tuple(int(v) for v in target)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (input_shape[0], *self.target)

    def call(self, inputs: Any) -> Any:
        return ops.pad(inputs, _paddings(tuple(inputs.shape[1:]), self.target))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target": list(self.target)}


def _paddings(shape: tuple[Any, ...], target: tuple[int, ...]) -> list[list[int]]:
    pads = [[0, 0]]
    for have, want in zip(shape, target, strict=True):
        diff = int(want) - int(have)
        pads.append([diff // 2, diff - diff // 2])
    return pads


def _shape(tensor: KerasTensor) -> tuple[int, int, int]:
    h, w, c = tensor.shape[1:]
    return int(h), int(w), int(c)


def _pad_to(tensor: KerasTensor, target: tuple[int, int, int], name: str) -> KerasTensor:
    if _shape(tensor) == target:
        return tensor
    padded: KerasTensor = PadTo(target, name=name)(tensor)
    return padded


def _merge(
    a: KerasTensor, b: KerasTensor, *, concat: bool, pad_channels: bool, name: str
) -> KerasTensor:
    """Add or channel-concatenate ``a`` and ``b`` after zero-padding them to a common shape."""
    (ha, wa, ca), (hb, wb, cb) = _shape(a), _shape(b)
    h, w = max(ha, hb), max(wa, wb)
    if concat and not pad_channels:
        a = _pad_to(a, (h, w, ca), f"{name}_pad_a")
        b = _pad_to(b, (h, w, cb), f"{name}_pad_b")
        out: KerasTensor = layers.Concatenate(axis=-1, name=name)([a, b])
        return out
    c = max(ca, cb)
    a = _pad_to(a, (h, w, c), f"{name}_pad_a")
    b = _pad_to(b, (h, w, c), f"{name}_pad_b")
    layer = layers.Concatenate(axis=-1, name=name) if concat else layers.Add(name=name)
    out = layer([a, b])
    return out


def _block(
    x: KerasTensor,
    nsc: NSC,
    *,
    filters: int,
    padding: str,
    pool_stride: int | None,
    pad_channels: bool,
    prefix: str,
) -> KerasTensor:
    """Build the NSC block on ``x``; returns the (concatenated) block output.

    ``pool_stride`` None means "stride = pool size" (NASGym); 1 keeps the size.
    """
    nodes: dict[int, KerasTensor] = {0: x}
    for row in nsc.without_terminal():
        nodes[row.index] = _layer(
            row,
            nodes,
            filters=filters,
            padding=padding,
            pool_stride=pool_stride,
            pad_channels=pad_channels,
            prefix=prefix,
        )
    leaves = [nodes[leaf] for leaf in nsc.leaves]
    out = leaves[0]
    for number, leaf in enumerate(leaves[1:], start=1):
        out = _merge(out, leaf, concat=True, pad_channels=pad_channels, name=f"{prefix}out{number}")
    return out


def _layer(
    row: NSCRow,
    nodes: dict[int, KerasTensor],
    *,
    filters: int,
    padding: str,
    pool_stride: int | None,
    pad_channels: bool,
    prefix: str,
) -> KerasTensor:
    name = f"{prefix}l{row.index}"
    x = nodes[row.pred1]
    if row.type in (LayerType.ADD, LayerType.CONCAT):
        return _merge(
            x,
            nodes[row.pred2],
            concat=row.type is LayerType.CONCAT,
            pad_channels=pad_channels,
            name=f"{name}_{row.type.yaml_name}",
        )
    if row.type is LayerType.IDENTITY:
        return x
    k = row.kernel
    if row.type is LayerType.CONVOLUTION:
        x = layers.ReLU(name=f"{name}_relu")(x)
        x = layers.Conv2D(filters, k, padding=padding, name=f"{name}_conv{k}")(x)
        out: KerasTensor = layers.BatchNormalization(name=f"{name}_bn")(x)
        return out
    stride = k if pool_stride is None else pool_stride
    pool = layers.MaxPooling2D if row.type is LayerType.MAX_POOLING else layers.AveragePooling2D
    kind = "max" if row.type is LayerType.MAX_POOLING else "avg"
    out = pool(pool_size=k, strides=stride, padding=padding, name=f"{name}_{kind}pool{k}")(x)
    return out


def _head(x: KerasTensor, num_classes: int, settings: KerasSettings) -> KerasTensor:
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dense(settings.fc_units, activation="relu", name="head_fc")(x)
    x = layers.Dropout(settings.dropout, name="head_dropout")(x)
    # float32 logits even under mixed precision: the softmax needs the range.
    out: KerasTensor = layers.Dense(num_classes, dtype="float32", name="head_logits")(x)
    return out


def build_model(
    nsc: NSC,
    input_shape: tuple[int, int, int],
    num_classes: int,
    settings: KerasSettings,
) -> keras.Model:
    """Build the network of ``nsc`` for ``input_shape`` images and ``num_classes`` classes.

    The builder is ``settings.builder`` (``nasgym-v1`` or ``blockqnn-v1``); the model
    outputs logits. The registered builders (:mod:`nasframe_keras.builders`) call this.

    Raises:
        BuildError: the architecture cannot be built for this input
            (:meth:`KerasSettings.why_invalid`).
    """
    reason = settings.why_invalid(nsc, input_shape)
    if reason is not None:
        raise BuildError(reason)
    inputs = keras.Input(shape=input_shape, name="images")
    if settings.builder not in ("nasgym-v1", "blockqnn-v1"):
        raise ValueError(f"build_model builds nasgym-v1 and blockqnn-v1, not {settings.builder!r}")
    if settings.builder == "nasgym-v1":
        features = _block(
            inputs,
            nsc,
            filters=settings.filters,
            padding=settings.padding,
            pool_stride=None,
            pad_channels=True,
            prefix="",
        )
    else:
        features = _stacked(inputs, nsc, settings)
    return keras.Model(inputs, _head(features, num_classes, settings), name="nsc")


def _stacked(inputs: KerasTensor, nsc: NSC, settings: KerasSettings) -> KerasTensor:
    filters = settings.filters
    x = layers.Conv2D(filters, 3, padding="same", name="stem_conv3")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    for stage in range(settings.stages):
        if stage > 0:
            filters *= 2
            x = layers.ReLU(name=f"reduce{stage}_relu")(x)
            x = layers.Conv2D(filters, 3, strides=2, padding="same", name=f"reduce{stage}_conv3")(x)
            x = layers.BatchNormalization(name=f"reduce{stage}_bn")(x)
        for block in range(settings.blocks_per_stage):
            prefix = f"s{stage}b{block}_"
            x = _block(
                x,
                nsc,
                filters=filters,
                padding="same",
                pool_stride=1,
                pad_channels=False,
                prefix=prefix,
            )
            x = layers.ReLU(name=f"{prefix}proj_relu")(x)
            x = layers.Conv2D(filters, 1, name=f"{prefix}proj_conv1")(x)
            x = layers.BatchNormalization(name=f"{prefix}proj_bn")(x)
    return x
