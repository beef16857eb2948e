"""The one validity rule: does the network built for this input exist?

A pure-Python shape walk, no TensorFlow. Every component that needs to know whether a
network can be built -- the Keras builder (``keras-v1``), the analytic ``proxy-v1``, the
zero-cost proxies and the env's action masks -- asks :func:`why_invalid` (directly or
through :meth:`~nasframe.PerformanceEstimator.why_invalid`), so they can never disagree.

The network is the block of an NSC on an ``(h, w, c)`` input, as NASGym built it:

* convolution k: output ``(h', w', filters)``; with ``valid`` padding ``h' = h - k + 1``,
  so it needs ``h >= k`` and ``w >= k``; with ``same`` padding ``h' = h``;
* pooling k with stride ``s`` (``None``: ``s = k``, NASGym): ``valid`` needs ``h >= k``,
  ``h' = (h - k) // s + 1``; ``same``: ``h' = ceil(h / s)``;
* identity passes its input through;
* ``add`` and ``concat`` must read two layers: a merge that reads the raw input
  (predecessor 0) is invalid. Both operands are zero-padded to the larger height and
  width; with ``pad_channels`` (NASGym) also to the larger channel count, so ``add``
  gives ``max(c1, c2)`` channels and ``concat`` ``2 * max(c1, c2)``; without it ``concat``
  gives ``c1 + c2`` (and ``add`` still pads channels, as it must);
* the layers nobody reads (the leaves) are concatenated the same way, in order, into
  the block output.

A stacked network (``reductions`` > 0) repeats the block with ``same`` padding and
stride-1 pooling and separates stages by stride-2 reductions; each reduction needs an
input of at least 2 x 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasframe.errors import NasframeError
from nasframe.nsc.code import INPUT, NSC, LayerType

__all__ = ["InvalidNetworkError", "NetworkShapes", "block_shapes", "why_invalid"]

Shape = tuple[int, int, int]

#: The paddings the rule knows.
PADDINGS = ("valid", "same")


class InvalidNetworkError(NasframeError):
    """The network cannot be built for this input; the message says which layer and why."""


@dataclass(frozen=True)
class NetworkShapes:
    """The output shape of every node of a block.

    Attributes:
        nodes: ``(height, width, channels)`` by node (0 is the input, else a layer index).
        output: the shape of the block output (the leaves concatenated).
        convolutions: how many convolution layers the block has.
    """

    nodes: dict[int, Shape]
    output: Shape
    convolutions: int


def _out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1 if size >= kernel else 0


def _merge(a: Shape, b: Shape, *, concat: bool, pad_channels: bool) -> Shape:
    h, w = max(a[0], b[0]), max(a[1], b[1])
    if concat and not pad_channels:
        return h, w, a[2] + b[2]
    c = max(a[2], b[2])
    return h, w, 2 * c if concat else c


def block_shapes(
    nsc: NSC,
    input_shape: tuple[int, int, int],
    *,
    filters: int = 32,
    padding: str = "valid",
    pool_stride: int | None = None,
    pad_channels: bool = True,
) -> NetworkShapes:
    """Walk the shapes of the block of ``nsc`` (terminal row ignored) on ``input_shape``.

    Args:
        nsc: the network.
        input_shape: ``(height, width, channels)`` of the block input.
        filters: output channels of a convolution.
        padding: ``valid`` or ``same``, for convolution and pooling.
        pool_stride: pooling stride; ``None`` means the pool size (NASGym).
        pad_channels: whether merges pad channels (NASGym); see the module docs.

    Raises:
        InvalidNetworkError: the network cannot be built; the message names the layer.
        ValueError: ``padding`` is not ``valid`` or ``same``.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding {padding!r} is not one of {', '.join(PADDINGS)}")
    network = nsc.without_terminal()
    h0, w0, c0 = (int(v) for v in input_shape)
    nodes: dict[int, Shape] = {INPUT: (h0, w0, c0)}
    convolutions = 0
    for row in network:
        where = f"layer {row.index} ({row.type.yaml_name}"
        h, w, c = nodes[row.pred1]
        if row.type in (LayerType.ADD, LayerType.CONCAT):
            if INPUT in (row.pred1, row.pred2):
                raise InvalidNetworkError(
                    f"{where}) merges the raw input (predecessor 0); a merge needs two layers"
                )
            nodes[row.index] = _merge(
                nodes[row.pred1],
                nodes[row.pred2],
                concat=row.type is LayerType.CONCAT,
                pad_channels=pad_channels,
            )
            continue
        if row.type is LayerType.IDENTITY:
            nodes[row.index] = (h, w, c)
            continue
        k = row.kernel
        stride = k if pool_stride is None else pool_stride
        if row.type is LayerType.CONVOLUTION:
            stride = 1
        out_h, out_w = _out(h, k, stride, padding), _out(w, k, stride, padding)
        if out_h < 1 or out_w < 1:
            raise InvalidNetworkError(
                f"{where} {k}x{k}) needs an input of at least {k}x{k}, got {h}x{w}"
            )
        if row.type is LayerType.CONVOLUTION:
            convolutions += 1
            nodes[row.index] = (out_h, out_w, int(filters))
        else:
            nodes[row.index] = (out_h, out_w, c)
    leaves = [nodes[leaf] for leaf in network.leaves]
    output = leaves[0]
    for leaf in leaves[1:]:
        output = _merge(output, leaf, concat=True, pad_channels=pad_channels)
    return NetworkShapes(nodes, output, convolutions)


def why_invalid(
    nsc: NSC,
    input_shape: tuple[int, int, int],
    *,
    padding: str = "valid",
    pool_stride: int | None = None,
    reductions: int = 0,
) -> str | None:
    """Why the network of ``nsc`` cannot be built for ``input_shape``, or ``None`` if it can.

    The rule every validity check of nasframe uses (see the module docs).

    Args:
        nsc: the network (a terminal row is ignored).
        input_shape: ``(height, width, channels)`` of one example.
        padding: ``valid`` (NASGym) or ``same``.
        pool_stride: pooling stride; ``None`` means the pool size (NASGym).
        reductions: stride-2 reductions of a stacked network (stages - 1); 0 for NASGym's
            single block.

    Raises:
        ValueError: ``padding`` is unknown or ``reductions`` is negative.
    """
    if reductions < 0:
        raise ValueError(f"reductions must be >= 0, got {reductions!r}")
    try:
        block_shapes(nsc, input_shape, padding=padding, pool_stride=pool_stride)
    except InvalidNetworkError as exc:
        return str(exc)
    h, w = int(input_shape[0]), int(input_shape[1])
    for stage in range(1, reductions + 1):
        if min(h, w) < 2:
            return (
                f"stage {stage + 1} of {reductions + 1} needs a 2x2 input to reduce, got "
                f"{h}x{w}; use fewer stages"
            )
        h, w = -(-h // 2), -(-w // 2)
    return None
