"""Default plugin ``proxy``: ``proxy-v1``, a cheap, deterministic performance estimator.

It trains nothing. It follows the shapes of the network NASGym would build for the
dataset's input (see ``docs/environment.md``) analytically and reports real parameter
and FLOP counts, the block's density, and an accuracy *proxy* that grows with the
receptive field and the number of convolutions. It exists so that the environment, the
agents and the caches can be exercised in milliseconds; its accuracy is a score, not a
measurement.

The network (NASGym's builder): convolution = ReLU -> Conv2D(``filters``, k x k, stride
1, valid padding) -> BatchNorm; pooling k x k with stride k, valid padding; add/concat
zero-pad both operands to the larger height, width and channels; the leaves are
concatenated the same way into the block output; the head is Flatten ->
Dense(``dense_units``) -> Dense(classes). Shapes and validity come from
:func:`nasframe.block_shapes` / :func:`nasframe.why_invalid`, the one validity rule that
``keras-v1`` uses too, so the two agree on which networks exist.

Per node it tracks ``(h, w, c, r, j)``: spatial size, channels, receptive field and jump
(the product of the strides so far). Starting from the input ``(H, W, C, 1, 1)``:

* conv k: ``(h-k+1, w-k+1, filters, r+(k-1)j, j)``; params ``k*k*c*filters + 5*filters``
  (bias, BN gamma/beta/mean/variance); FLOPs ``2*k*k*c*filters*h'*w'``;
* pool k: ``(h//k, w//k, c, r+(k-1)j, j*k)``; FLOPs ``k*k*c*h'*w'``;
* add: element-wise maxima of ``h, w, c, r, j``; FLOPs ``h'*w'*c'``; concat: the same with
  ``c' = 2 max(c1, c2)`` (channels padded, as the builder does) and no FLOPs; identity
  passes through;
* invalid (status ``invalid``): a conv or pool whose kernel is larger than its input
  (``h < k`` or ``w < k``) -- the spatial size ran out, as NASGym's valid padding did --
  and a merge that reads the raw input (predecessor 0).

Version history: fingerprint version 1 accepted merges of the input and counted concat
channels as ``c1 + c2``; version 2 (the same name, ``proxy-v1``) follows the shared rule.

With ``R`` the receptive field of the block output, ``S = min(H, W)``, ``n`` the number of
convolutions and ``K`` the classes::

    coverage = 1 - exp(-2 R / S)
    capacity = 1 - 0.5 exp(-n / 2)
    accuracy = 1/K + (1 - 1/K) * 0.9 * coverage * capacity     (rounded to 6 digits)

so the accuracy lies in ``[1/K, 0.9 + 0.1/K]`` within ``[0, 1]``, and only depends on the
architecture and the input shape: two evaluations always agree (``seed`` is ignored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, LayerType, PerformanceEstimator, Status

__all__ = ["ProxyEstimator"]


class _InvalidError(Exception):
    pass


@dataclass(frozen=True)
class ProxySettings(nasframe.Settings):
    """The settings of ``proxy-v1``, declared once: the dataclass and the ``[proxy]`` section."""

    SECTION: ClassVar[str] = "proxy"
    DESCRIPTION: ClassVar[str] = "The proxy estimator (no training; for smoke runs)."

    filters: int = nasframe.setting(32, "convolution filters (sizes params and FLOPs)", min=1)
    dense_units: int = nasframe.setting(1024, "units of the dense head layer", min=1)


class ProxyEstimator(PerformanceEstimator):
    """A deterministic, analytic score of an architecture for smoke runs and tests.

    Args:
        filters: convolution filters (NASGym: 32); changes params and FLOPs.
        dense_units: units of the dense layer of the head (NASGym: 1024).

    Raises:
        ConfigError: a setting is unknown or below 1 (the message names [proxy] and the key).
    """

    name = "proxy-v1"
    #: 2: validity is the shared rule (merges of the input are invalid) and merges pad
    #: channels as keras-v1's NASGym builder does; the fingerprint changes with it, so no
    #: cached version-1 score is reused.
    version = "2"

    def __init__(self, **settings: Any) -> None:
        #: the validated settings (:class:`ProxySettings`, also the ``[proxy]`` section)
        self.settings = ProxySettings.from_mapping(settings)
        self.filters = self.settings.filters
        self.dense_units = self.settings.dense_units

    def fingerprint(self) -> str:
        """``proxy-2-<hash of filters and dense_units>``: fingerprint version 2 of ``proxy-v1``."""
        settings = {"filters": self.filters, "dense_units": self.dense_units}
        return nasframe.fingerprint_of("proxy", self.version, settings)

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """Score ``architecture`` on the input shape and classes of ``dataset``."""
        height, width, channels = dataset.input_shape
        classes = dataset.num_classes
        network = architecture.without_terminal()
        try:
            params, flops, receptive, convs = self._walk(network, height, width, channels, classes)
        except _InvalidError as exc:
            return Evaluation.failed(
                Status.INVALID,
                str(exc),
                density=network.density(),
                seconds=0.0,
            )
        coverage = 1.0 - math.exp(-2.0 * receptive / min(height, width))
        capacity = 1.0 - 0.5 * math.exp(-convs / 2.0)
        chance = 1.0 / classes
        accuracy = round(chance + (1.0 - chance) * 0.9 * coverage * capacity, 6)
        return Evaluation(
            status=Status.OK,
            accuracy=accuracy,
            params=params,
            flops=flops,
            density=network.density(),
            seconds=0.0,  # it trains nothing; a measured time would make runs differ
        )

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """The one validity rule (:func:`nasframe.why_invalid`, NASGym's valid padding)."""
        return nasframe.why_invalid(architecture.without_terminal(), dataset.input_shape)

    def _walk(
        self, network: NSC, height: int, width: int, channels: int, classes: int
    ) -> tuple[int, int, int, int]:
        try:
            shapes = nasframe.block_shapes(network, (height, width, channels), filters=self.filters)
        except nasframe.InvalidNetworkError as exc:
            raise _InvalidError(str(exc)) from None
        # receptive field r and jump j per node; shapes come from the shared rule
        fields = {0: (1, 1)}
        params = flops = 0
        for row in network:
            r, j = fields[row.pred1]
            h, w, c = shapes.nodes[row.pred1]
            out_h, out_w, out_c = shapes.nodes[row.index]
            k = row.kernel
            kind = row.type
            if kind is LayerType.CONVOLUTION:
                fields[row.index] = (r + (k - 1) * j, j)
                params += k * k * c * self.filters + 5 * self.filters
                flops += 2 * k * k * c * self.filters * out_h * out_w
            elif kind in (LayerType.MAX_POOLING, LayerType.AVG_POOLING):
                fields[row.index] = (r + (k - 1) * j, j * k)
                flops += k * k * c * out_h * out_w
            elif kind in (LayerType.ADD, LayerType.CONCAT):
                r2, j2 = fields[row.pred2]
                fields[row.index] = (max(r, r2), max(j, j2))
                if kind is LayerType.ADD:
                    flops += out_h * out_w * out_c
            else:  # identity
                fields[row.index] = (r, j)
        h, w, c = shapes.output
        flat = h * w * c
        params += flat * self.dense_units + self.dense_units
        params += self.dense_units * classes + classes
        flops += 2 * (flat * self.dense_units + self.dense_units * classes)
        receptive = max(fields[leaf][0] for leaf in network.leaves)
        return params, flops, receptive, shapes.convolutions


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(
    registry: nasframe.Registry[nasframe.PerformanceEstimator],
) -> None:
    """Register ``proxy-v1``."""
    registry.add(
        "proxy-v1",
        ProxyEstimator,
        summary="deterministic analytic score (params, FLOPs, receptive field); no training",
        section="proxy",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[proxy]`` section (from :class:`ProxySettings`)."""
    ProxySettings.declare(schema)
