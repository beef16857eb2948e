"""An example nasframe plugin: a network builder and a training-free estimator.

It registers two components, each with a configuration section of its own:

* the builder ``random-features-v1`` (section ``[random_features]``): turns an NSC into
  a small network of *random, untrained* NumPy layers (convolution, pooling, identity,
  add, concat, all with 'same' padding), ending in a global average pool;
* the estimator ``probe-v1`` (section ``[probe]``): builds the network with the builder
  named in ``[probe] builder`` -- any registered builder of NumPy networks -- pushes the
  train and validation images through it and scores the architecture by the validation
  accuracy of a nearest-class-mean classifier on those random features.

Scoring untrained networks is a (crude) *training-free* estimate, seconds instead of
minutes per architecture; it shows the shape of a real estimator without TensorFlow:
a fingerprint holding every setting that changes a result (the builder's own
fingerprint included), failures reported as a status and never raised, a deterministic
result for a seed. It imports only nasframe's public API.

Use it (once installed with pip)::

    nasframe search --estimator probe --dataset digits --steps 50
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

import nasframe
from nasframe import NSC, LayerType

__all__ = ["ProbeEstimator", "RandomFeatureBuilder", "RandomFeatureNetwork"]

__version__ = "0.1.0"


# -- the builder ---------------------------------------------------------------------------


class RandomFeatureNetwork:
    """A network of random NumPy layers: images in, one feature vector per image out.

    Args:
        nsc: the architecture (no terminal row).
        channels: the input channels.
        width: the channels of every convolution.
        seed: where the random weights come from.
    """

    def __init__(self, nsc: NSC, channels: int, width: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.nsc = nsc
        self.weights: dict[int, np.ndarray] = {}
        sizes = {0: channels}
        for row in nsc:
            inputs = [sizes[p] for p in row.predecessors]
            if row.type is LayerType.CONVOLUTION:
                fan_in = inputs[0] * row.kernel**2
                shape = (inputs[0], row.kernel, row.kernel, width)
                self.weights[row.index] = rng.normal(0, np.sqrt(2 / fan_in), shape)
                sizes[row.index] = width
            elif row.type is LayerType.CONCAT:
                sizes[row.index] = sum(inputs)
            else:  # pooling and identity keep the channels, add pads to the wider
                sizes[row.index] = max(inputs)
        self.params = int(sum(w.size for w in self.weights.values()))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """The features of ``images`` ``(n, h, w, c)``: ``(n, channels of the last layer)``."""
        outputs = {0: images.astype(np.float32)}
        for row in self.nsc:
            inputs = [outputs[p] for p in row.predecessors]
            if row.type is LayerType.CONVOLUTION:
                windows = _windows(inputs[0], row.kernel)  # (n, h, w, c, k, k)
                conv = np.tensordot(windows, self.weights[row.index], axes=([3, 4, 5], [0, 1, 2]))
                outputs[row.index] = np.maximum(conv, 0.0)
            elif row.type is LayerType.MAX_POOLING:
                outputs[row.index] = _windows(inputs[0], row.kernel).max(axis=(4, 5))
            elif row.type is LayerType.AVG_POOLING:
                outputs[row.index] = _windows(inputs[0], row.kernel).mean(axis=(4, 5))
            elif row.type is LayerType.ADD:
                a, b = _same_channels(*inputs)
                outputs[row.index] = a + b
            elif row.type is LayerType.CONCAT:
                outputs[row.index] = np.concatenate(inputs, axis=-1)
            else:  # identity
                outputs[row.index] = inputs[0]
        last = outputs[len(self.nsc)] if len(self.nsc) else outputs[0]
        features: np.ndarray = last.mean(axis=(1, 2))  # global average pool
        return features


def _windows(x: np.ndarray, kernel: int) -> np.ndarray:
    """Every ``kernel`` x ``kernel`` window of ``x``, stride 1, 'same' zero padding."""
    before = (kernel - 1) // 2
    padded = np.pad(
        x, ((0, 0), (before, kernel - 1 - before), (before, kernel - 1 - before), (0, 0))
    )
    windows: np.ndarray = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), (1, 2))
    return windows


def _same_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = max(a.shape[-1], b.shape[-1])
    pad = [(0, 0)] * 3
    return (
        np.pad(a, [*pad, (0, width - a.shape[-1])]),
        np.pad(b, [*pad, (0, width - b.shape[-1])]),
    )


class RandomFeatureBuilder(nasframe.NetworkBuilder):
    """``random-features-v1``: an NSC as a :class:`RandomFeatureNetwork`.

    Args:
        width: the channels of every convolution (``[random_features] width``).
    """

    name = "random-features-v1"
    framework = "numpy"

    def __init__(self, width: int = 8) -> None:
        self.width = width

    def fingerprint(self) -> str:
        """Its name, version and width: a wider network scores differently."""
        return nasframe.fingerprint_of("random-features", "1", {"width": self.width})

    def build(
        self,
        architecture: NSC,
        input_shape: tuple[int, int, int],
        num_classes: int,
        settings: Mapping[str, Any],
    ) -> RandomFeatureNetwork:
        """The random network of ``architecture``; ``settings["seed"]`` seeds its weights.

        Raises:
            ValueError: a merge reads the raw input (the network has no image to add).
        """
        for row in architecture:
            if row.type in (LayerType.ADD, LayerType.CONCAT) and 0 in row.predecessors:
                raise ValueError(f"layer {row.index} merges the raw input")
        seed = int(settings.get("seed") or 0)
        return RandomFeatureNetwork(architecture, input_shape[2], self.width, seed)


# -- the estimator -------------------------------------------------------------------------


class ProbeEstimator(nasframe.PerformanceEstimator):
    """``probe-v1``: the nearest-class-mean accuracy of an untrained network's features.

    Args:
        builder: a builder of NumPy networks (``[probe] builder``; the composition hands
            the registered builder itself).
        samples: the most train examples the class means are computed from.

    Raises:
        ConfigError: the builder does not build NumPy networks.
    """

    name = "probe-v1"
    version = "1"

    def __init__(self, builder: nasframe.NetworkBuilder | None = None, samples: int = 500) -> None:
        builder = builder if builder is not None else RandomFeatureBuilder()
        if builder.framework != "numpy":
            raise nasframe.ConfigError(
                f"[probe] builder: {builder.name!r} builds {builder.framework or 'unknown'} "
                "networks; probe-v1 needs a builder of numpy networks"
            )
        self.builder = builder
        self.samples = samples

    def fingerprint(self) -> str:
        """Name, version, the builder's fingerprint and the sample count."""
        return nasframe.fingerprint_of(
            "probe", self.version, {"builder": self.builder.fingerprint(), "samples": self.samples}
        )

    def evaluate(
        self, architecture: NSC, dataset: nasframe.DatasetHandler, *, seed: int | None = None
    ) -> nasframe.Evaluation:
        """Score ``architecture``: never raises, a failure is a status."""
        start = time.perf_counter()
        network = architecture.without_terminal()
        density = network.density()
        try:
            model = self.builder.build(
                network,
                dataset.input_shape,
                dataset.num_classes,
                {"seed": seed or 0, "samples": self.samples},
            )
        except ValueError as exc:
            return nasframe.Evaluation.failed(
                nasframe.Status.INVALID, f"{network}: {exc}", density=density
            )
        try:
            images, labels = dataset.arrays("train")
            images, labels = images[: self.samples], labels[: self.samples]
            val_images, val_labels = dataset.arrays("validation")
            train, val = model(images), model(val_images)
            mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6
            train, val = (train - mean) / std, (val - mean) / std
            classes = np.arange(dataset.num_classes)
            centroids = np.stack(
                [
                    train[labels == c].mean(axis=0) if (labels == c).any() else mean * 0
                    for c in classes
                ]
            )
            distances = ((val[:, None, :] - centroids[None]) ** 2).sum(axis=2)
            accuracy = float((distances.argmin(axis=1) == val_labels).mean())
        except Exception as exc:  # the env must never see an exception
            return nasframe.Evaluation.failed(
                nasframe.Status.ERROR, f"{type(exc).__name__}: {exc}", density=density
            )
        return nasframe.Evaluation(
            accuracy=accuracy,
            params=getattr(model, "params", 0),
            density=density,
            seconds=time.perf_counter() - start,
        )


# -- the hooks -----------------------------------------------------------------------------


@nasframe.hookimpl
def nasframe_register_builders(registry: nasframe.Registry[nasframe.NetworkBuilder]) -> None:
    """Register the builder ``random-features-v1`` (settings: ``[random_features]``)."""
    registry.add(
        "random-features-v1",
        RandomFeatureBuilder,
        summary="random, untrained NumPy layers (for training-free scores)",
        section="random_features",
    )


@nasframe.hookimpl
def nasframe_register_estimators(
    registry: nasframe.Registry[nasframe.PerformanceEstimator],
) -> None:
    """Register the estimator ``probe-v1`` (settings: ``[probe]``)."""
    registry.add(
        "probe-v1",
        ProbeEstimator,
        summary="nearest-class-mean accuracy of random features (no training)",
        section="probe",
    )


@nasframe.hookimpl
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare ``[probe]`` and ``[random_features]``."""
    probe = schema.section("probe", "The training-free probe estimator (example plugin).")
    probe.add(
        "builder",
        str,
        "random-features",
        "network builder of NumPy networks",
        component="builder",
    )
    probe.add("samples", int, 500, "most train examples the class means use", min=10)
    features = schema.section("random_features", "The random-feature network builder.")
    features.add("width", int, 8, "channels of every convolution", min=1, max=256)
