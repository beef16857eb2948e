"""``zerocost-v1``: a zero-cost proxy as a performance estimator (no training).

Importing this module does not import TensorFlow; scoring does.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, PerformanceEstimator, Status

__all__ = ["PROXIES", "SQUASH", "ProxyScore", "ZeroCostEstimator", "create_estimator", "squash"]

#: Every proxy the estimator computes: five zero-cost proxies and two baselines.
PROXIES = ("synflow", "naswot", "grad_norm", "snip", "jacob_cov", "params", "flops")

#: How each proxy's score becomes a reward in [0, 1]: ``(transform, center, scale)``;
#: ``t = log10(score)`` for ``log10`` (scores that span orders of magnitude; a score
#: <= 0 maps to 0), ``t = score`` for ``linear``; reward = ``1 / (1 + exp(-(t - center) /
#: scale))``. The centers are the medians seen on 60 NSC-Bench networks (16 filters,
#: 128 head units; ``benchmarks/proxies.py`` prints them); settings ``center`` and
#: ``scale`` override. Note: on NSC-Bench every proxy ranks *inversely* to the final
#: accuracy (see docs/fidelities.md), so their reward there is a poor guide.
SQUASH: dict[str, tuple[str, float, float]] = {
    "synflow": ("log10", 4.7, 1.0),
    "naswot": ("linear", 310.0, 50.0),
    "grad_norm": ("log10", 1.1, 0.5),
    "snip": ("log10", 1.8, 0.5),
    "jacob_cov": ("linear", -100.0, 50.0),
    "params": ("log10", 5.0, 0.5),
    "flops": ("log10", 5.8, 0.5),
}


def squash(
    proxy: str, score: float, *, center: float | None = None, scale: float | None = None
) -> float:
    """The reward in [0, 1] of ``score`` of ``proxy``: a fixed, strictly monotone map.

    Monotone, so ranks (and every rank correlation) are those of the raw score; fixed,
    so a cached reward never depends on what else was scored. ``-inf`` (and a score <= 0
    of a ``log10`` proxy) maps to 0, ``+inf`` to 1.

    Raises:
        ConfigError: ``proxy`` is unknown or ``scale`` is not positive.
        ValueError: ``score`` is NaN.
    """
    if proxy not in SQUASH:
        raise nasframe.ConfigError(f"[zerocost] proxy {proxy!r} is not one of {', '.join(PROXIES)}")
    transform, default_center, default_scale = SQUASH[proxy]
    center = default_center if center is None else float(center)
    scale = default_scale if scale is None else float(scale)
    if not scale > 0:
        raise nasframe.ConfigError(f"[zerocost] scale must be > 0, got {scale!r}")
    if math.isnan(score):
        raise ValueError(f"a {proxy} score of NaN has no reward")
    if transform == "log10":
        if score <= 0:
            return 0.0
        t = math.log10(score) if math.isfinite(score) else math.inf
    else:
        t = score
    if t == math.inf:
        return 1.0
    if t == -math.inf:
        return 0.0
    z = (t - center) / scale
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass(frozen=True)
class ProxyScore:
    """One proxy measurement.

    Attributes:
        status: ``ok``, ``invalid`` (the network cannot be built), ``diverged`` (the
            score is NaN) or ``error``/``out_of_memory``.
        score: the raw score (NaN unless ``ok``).
        params: parameters of the built model.
        flops: FLOPs of one forward pass of one example (0 when the network estimator
            cannot count them).
        seconds: wall seconds, model build included.
        message: why the status is not ``ok``.
    """

    status: Status
    score: float
    params: int = 0
    flops: int = 0
    seconds: float = 0.0
    message: str = ""


def create_estimator(
    composition: nasframe.Composition | None = None, **settings: Any
) -> ZeroCostEstimator:
    """The registry factory: an estimator from the ``[zerocost]`` section's values.

    The network estimator is built from ``composition`` (the configuration building this
    one), so it scores the network the configured estimator would train.
    """
    return ZeroCostEstimator(**settings, composition=composition)


class ZeroCostEstimator(PerformanceEstimator):
    """Scores the untrained network another estimator would train, with one proxy.

    The network is built by the network estimator's ``build_network(architecture,
    dataset)`` (``keras-v1`` has one), so it is exactly the network that estimator
    trains, for the same input shape; validity is that estimator's ``why_invalid`` (the
    one validity rule). The evaluation's ``accuracy`` is :func:`squash` of the score, its
    ``message`` holds the raw score (``synflow=1.234e+09``), ``epochs`` is 0.

    Args:
        proxy: one of :data:`PROXIES`.
        network: the estimator whose network is scored: a registered name (built with its
            defaults, or ``network_settings``) or an instance with ``build_network``.
        batch_size: examples of the one minibatch the data-based proxies read (drawn from
            the train split with the evaluation's seed).
        center: the squashing center (default: the proxy's in :data:`SQUASH`).
        scale: the squashing scale (default: the proxy's).
        network_settings: settings of the network estimator when ``network`` is a name;
            they win over its configuration section.
        composition: the configuration and plugin manager a named network estimator is
            built from (default: the built-in defaults).

    Raises:
        ConfigError: a setting is unknown or out of range, or the network estimator
            cannot build networks.
    """

    name = "zerocost-v1"
    version = "1"

    def __init__(
        self,
        proxy: str = "synflow",
        network: str | PerformanceEstimator = "keras-v1",
        batch_size: int = 64,
        center: float | None = None,
        scale: float | None = None,
        network_settings: Mapping[str, Any] | None = None,
        composition: nasframe.Composition | None = None,
    ) -> None:
        if proxy not in PROXIES:
            raise nasframe.ConfigError(
                f"[zerocost] proxy {proxy!r} is not one of {', '.join(PROXIES)}"
                f"{nasframe.closest(proxy, PROXIES)}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise nasframe.ConfigError(
                f"[zerocost] batch_size must be an integer >= 2, got {batch_size!r}"
            )
        squash(proxy, 1.0, center=center, scale=scale)  # checks scale
        if isinstance(network, str):
            composition = composition or nasframe.Composition.default()
            network = composition.create("estimator", network, overrides=network_settings)
        if not callable(getattr(network, "build_network", None)):
            raise nasframe.ConfigError(
                f"[zerocost] network estimator {getattr(network, 'name', network)!r} cannot "
                "build networks (it has no build_network method); use keras-v1"
            )
        self.proxy = proxy
        self.network: Any = network
        self.batch_size = batch_size
        self.center = center
        self.scale = scale

    def fingerprint(self) -> str:
        """Proxy, minibatch size, squashing and the network estimator's fingerprint."""
        settings = {
            "proxy": self.proxy,
            "batch_size": self.batch_size,
            "center": self.center,
            "scale": self.scale,
            "network": self.network.fingerprint(),
        }
        return nasframe.fingerprint_of("zerocost", self.version, settings)

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """The network estimator's answer (the one validity rule)."""
        reason: str | None = self.network.why_invalid(architecture, dataset)
        return reason

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """Score ``architecture``; ``accuracy`` is the squashed score (see :func:`squash`).

        The evaluation's ``measure`` names the proxy (``"synflow score"``), so no result,
        summary or plot presents the score as an accuracy.
        """
        network = architecture.without_terminal()
        result = self.score(network, dataset, seed=seed)
        density = network.density()
        if result.status is not Status.OK:
            return Evaluation.failed(
                result.status,
                result.message,
                params=result.params,
                flops=result.flops,
                density=density,
                seconds=result.seconds,
            )
        return Evaluation(
            status=Status.OK,
            accuracy=squash(self.proxy, result.score, center=self.center, scale=self.scale),
            params=result.params,
            flops=result.flops,
            density=density,
            seconds=result.seconds,
            message=f"{self.proxy}={result.score:.6g}",
            measure=f"{self.proxy} score",
        )

    def minibatch(self, dataset: DatasetHandler, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The seeded minibatch of the train split the data-based proxies read."""
        images, labels = dataset.arrays("train")
        rng = np.random.default_rng(0 if seed is None else seed)
        size = min(self.batch_size, len(labels))
        index = np.sort(rng.choice(len(labels), size=size, replace=False))
        return np.asarray(images[index], dtype=np.float32), np.asarray(
            labels[index], dtype=np.int64
        )

    def score(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> ProxyScore:
        """The raw score of ``architecture``; never raises for a bad network."""
        start = time.perf_counter()
        network = architecture.without_terminal()
        reason = self.why_invalid(network, dataset)
        if reason is not None:
            return ProxyScore(
                Status.INVALID,
                math.nan,
                seconds=time.perf_counter() - start,
                message=f"{network or 'the empty network'}: {reason}",
            )
        params = flops = 0
        try:
            import keras

            from nasframe_zerocost.proxies import PROXY_FUNCTIONS

            _freeze_once()
            if seed is not None:
                seed_keras(seed)
            keras.config.set_dtype_policy("float64" if self.proxy == "synflow" else "float32")
            try:
                model = self.network.build_network(network, dataset)
            except ValueError as exc:
                return ProxyScore(
                    Status.INVALID,
                    math.nan,
                    seconds=time.perf_counter() - start,
                    message=f"{network}: cannot build: {' '.join(str(exc).split())}",
                )
            params = int(model.count_params())
            count = getattr(self.network, "network_flops", None)
            flops = int(count(model)) if callable(count) else 0
            if self.proxy == "params":
                value = float(params)
            elif self.proxy == "flops":
                value = float(flops)
            else:
                images, labels = self.minibatch(dataset, seed)
                value = float(PROXY_FUNCTIONS[self.proxy](model, images, labels))
        except Exception as exc:  # the env must never see an exception
            text = " ".join(str(exc).split())
            kind = type(exc).__name__
            status = (
                Status.OUT_OF_MEMORY
                if kind in ("ResourceExhaustedError", "MemoryError")
                else Status.ERROR
            )
            return ProxyScore(
                status,
                math.nan,
                params,
                flops,
                time.perf_counter() - start,
                f"{kind}: {text}"[:500],
            )
        finally:
            import keras

            keras.config.set_dtype_policy("float32")
            # Not keras.backend.clear_session(): see seed_keras. The model is freed with
            # its last reference; what Keras keeps between scores is its layer-name counters.
        seconds = time.perf_counter() - start
        if math.isnan(value):
            return ProxyScore(
                Status.DIVERGED,
                value,
                params,
                flops,
                seconds,
                f"{network or 'the empty network'}: the {self.proxy} score is NaN",
            )
        return ProxyScore(Status.OK, value, params, flops, seconds)

    def close(self) -> None:
        """Close the network estimator."""
        self.network.close()


def seed_keras(seed: int) -> None:
    """Seed every random draw a proxy makes, keeping TensorFlow's eager kernel cache.

    Keras takes the default seed of every initializer and dropout layer from Python's
    ``random``, and the proxies use only stateless random ops, so seeding Python and
    NumPy makes a score reproducible. Not ``keras.utils.set_random_seed``: it also calls
    ``tf.random.set_seed``, which (like ``keras.backend.clear_session``) empties
    TensorFlow's eager kernel cache, and every eager op after that creates its kernel
    anew: about 30 ms per network on NSC-Bench, a third of a proxy's cost
    (``benchmarks/proxies.py --cost-only``). Scores are bit-identical either way.
    """
    random.seed(seed)
    np.random.seed(seed)


_frozen = False


def _freeze_once() -> None:
    """Move the objects alive now (TensorFlow's modules) out of the garbage collector's reach.

    Python's collector runs a full collection now and then (and ``keras-v1``'s
    ``clear_session`` after every training, when the two share a process); walking the
    millions of objects TensorFlow creates at import cost about 1 s each time here, more
    than the proxy. keras-v1 does the same for its trainings (``docs/estimator.md``).
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
