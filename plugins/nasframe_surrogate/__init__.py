"""Default plugin ``surrogate``: ``surrogate-v1``, an estimator that predicts instead of training.

It answers any network of a space from a surrogate model fitted on a table of that
space (``nasframe bench fit``, ``docs/surrogate.md``): a space too large for an
exhaustive table (the multi-branch one) is searched in simulated time, as NAS-Bench-301
does for the DARTS space. Settings (section ``[surrogate]``):

* ``file`` -- the surrogate folder (``surrogate.json`` and ``models.pkl.gz``);
* ``epochs`` -- the fidelity: the predicted validation accuracy after that many epochs
  (``0``: the last the table recorded);
* ``noise`` -- add Gaussian noise with the standard deviation of one training seed, as
  measured on the table's networks trained twice (the card's ``seed_noise``), so a search
  sees the noise real training has; drawn from the network and the env's seed, so the
  same query gives the same answer;
* ``simulated_cost`` -- report the predicted seconds of the training as the
  evaluation's cost (the fixed part plus the fidelity's share of the training), so
  ``bench run`` budgets in simulated time. Off: the seconds of the query itself.

A network the surrogate's space cannot hold (deeper than its depth, a layer kind it never
saw) or that the table's estimator could not build gets status ``invalid`` and a
one-line message; it never raises. When the environment is built, a surrogate of another
search space or dataset is refused with a one-line :class:`~nasframe.ConfigError`.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, PerformanceEstimator, SearchSpace, Status

__all__ = ["SurrogateEstimator", "SurrogateSettings"]


@dataclass(frozen=True)
class SurrogateSettings(nasframe.Settings):
    """The settings of ``surrogate-v1``: the dataclass and the ``[surrogate]`` section."""

    SECTION: ClassVar[str] = "surrogate"
    DESCRIPTION: ClassVar[str] = "The surrogate estimator: predicts accuracy and cost."

    file: str | None = nasframe.setting(None, "the surrogate folder written by nasframe bench fit")
    epochs: int = nasframe.setting(
        0, "fidelity: predicted validation accuracy after this many epochs (0: last)", min=0
    )
    noise: bool = nasframe.setting(
        False, "add noise of one training seed's size (the card's seed_noise)"
    )
    simulated_cost: bool = nasframe.setting(
        True, "report the predicted training seconds as the evaluation's cost"
    )


class SurrogateEstimator(PerformanceEstimator):
    """Predicts a network's accuracy and cost with a fitted :class:`nasframe.Surrogate`.

    Args:
        file: the surrogate folder (``nasframe bench fit --output``).
        epochs: the fidelity; 0: the last epoch of the table it was fitted on.
        noise: add seed noise of the measured size.
        simulated_cost: report predicted training seconds as the cost.
        composition: the plugin manager whose estimators give the table's validity rule
            (passed by ``nasframe.compose.create``).

    Raises:
        ConfigError: no ``file``, no surrogate there, or ``epochs`` beyond its curves;
            the message names ``[surrogate]`` and the key.
    """

    name = "surrogate-v1"
    version = "1"

    def __init__(
        self,
        file: str | None = None,
        epochs: int = 0,
        noise: bool = False,
        simulated_cost: bool = True,
        composition: nasframe.Composition | None = None,
    ) -> None:
        self.settings = SurrogateSettings(
            file=file, epochs=epochs, noise=noise, simulated_cost=simulated_cost
        )
        if not file:
            raise nasframe.ConfigError(
                "[surrogate] file is empty; give a folder written by nasframe bench fit"
            )
        self.surrogate = nasframe.Surrogate.load(file)
        self.source = str(file)
        card = self.surrogate.card
        most = self.surrogate.epochs
        if epochs > most:
            raise nasframe.ConfigError(
                f"[surrogate] epochs = {epochs}: {file} predicts 1 to {most} epochs (0 = last)"
            )
        self.epochs = epochs or most
        self.depth = int(card.get("depth") or 0)
        self.space_name: str | None = card.get("space")
        self.dataset_identity: str | None = card.get("dataset")
        noise_card = card.get("seed_noise") or {}
        self.noise_std = float(noise_card.get("seed_std", 0.0)) if noise else 0.0
        if noise and not noise_card:
            raise nasframe.ConfigError(
                f"[surrogate] noise = true: {file} has no seed noise (its table trained "
                "no network twice); set noise = false"
            )
        self._manager = composition.plugin_manager if composition is not None else None
        self._rule: Any = None
        # the three targets a query needs, walked together: the accuracy and the costs
        names = self.surrogate.targets
        wanted = [names.index(key) for key in (f"val_{self.epochs}", "seconds", "train_seconds")]
        self._forest = self.surrogate.forest.select(wanted)
        self._cache: dict[str, tuple[float, float, float]] = {}

    # -- the contract ------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """``surrogate-1-<hash>`` of the model file and every setting."""
        return nasframe.fingerprint_of(
            "surrogate",
            self.version,
            {
                "models": self.surrogate.card.get("models_sha256"),
                "epochs": self.epochs,
                "noise": self.noise_std > 0,
                "simulated_cost": self.settings.simulated_cost,
            },
        )

    def check_setup(self, search_space: SearchSpace, dataset: DatasetHandler) -> None:
        """Refuse a search space or dataset other than the surrogate's.

        Raises:
            ConfigError: the surrogate was fitted for another search space or dataset.
        """
        space = getattr(search_space, "name", "") or type(search_space).__name__
        if self.space_name is not None and space != self.space_name:
            raise nasframe.ConfigError(
                f"[surrogate] file: {self.source} was fitted for search space "
                f"{self.space_name!r}, not {space!r}; choose its space or another surrogate"
            )
        if self.dataset_identity is not None and dataset.identity != self.dataset_identity:
            raise nasframe.ConfigError(
                f"[surrogate] file: {self.source} was fitted on dataset "
                f"{self.dataset_identity!r}, not {dataset.identity!r}"
            )

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """Why the surrogate's space cannot hold ``architecture``; ``None`` if it can."""
        network = architecture.without_terminal()
        if self.depth and len(network) > self.depth:
            return (
                f"network has {len(network)} layers; the surrogate {self.source} knows "
                f"networks of at most {self.depth}"
            )
        unknown = self.surrogate.encoding.unknown_layer(network)
        if unknown is not None:
            return f"{unknown} is not in the space of the surrogate {self.source}"
        rule = self._validity_rule()
        return rule.why_invalid(network, dataset) if rule is not None else None

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """The predicted evaluation of ``architecture``; never raises."""
        start = time.perf_counter()
        if self.dataset_identity is not None and dataset.identity != self.dataset_identity:
            return Evaluation.failed(
                Status.INVALID,
                f"surrogate {self.source} was fitted on dataset {self.dataset_identity}, "
                f"not {dataset.identity}",
            )
        network = architecture.without_terminal()
        arch_hash = network.canonical_hash
        answer = self._cache.get(arch_hash)
        if answer is None:
            why = self.why_invalid(network, dataset)
            if why is not None:
                return Evaluation.failed(Status.INVALID, why, seconds=time.perf_counter() - start)
            features = self.surrogate.encoding.transform([network])
            accuracy, seconds, train_seconds = (float(v) for v in self._forest.predict(features)[0])
            answer = self._cache[arch_hash] = (
                min(1.0, max(0.0, accuracy)),
                math.exp(seconds),
                math.exp(train_seconds),
            )
        accuracy, seconds, train_seconds = answer
        if self.noise_std:
            key = f"{seed}:{arch_hash}" if seed is not None else f"{time.perf_counter_ns()}"
            draw = np.random.default_rng(zlib.crc32(key.encode())).normal(0.0, self.noise_std)
            accuracy = min(1.0, max(0.0, accuracy + float(draw)))
        if self.settings.simulated_cost:
            most = self.surrogate.epochs
            cost = max(0.0, seconds - train_seconds) + train_seconds * self.epochs / most
        else:
            cost = time.perf_counter() - start
        return Evaluation(
            status=Status.OK,
            accuracy=accuracy,
            density=network.density(),
            seconds=cost,
            epochs=self.epochs,
        )

    def forget(self) -> None:
        """Drop the cached answers: the next query of every network runs the models again."""
        self._cache.clear()

    # -- helpers ---------------------------------------------------------------------------
    def _validity_rule(self) -> PerformanceEstimator | None:
        """The estimator the table was built with, for its validity rule (no training)."""
        if self._rule is None:
            component = self.surrogate.card.get("estimator_component") or {}
            self._rule = False
            name = component.get("name")
            if name:
                manager = self._manager or nasframe.get_plugin_manager()
                try:
                    self._rule = manager.estimators().create(
                        name, **(component.get("settings") or {})
                    )
                except (nasframe.NasframeError, TypeError, ValueError):
                    self._rule = False  # the table's estimator is not installed here
        return self._rule or None


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(
    registry: nasframe.Registry[nasframe.PerformanceEstimator],
) -> None:
    """Register ``surrogate-v1``."""
    registry.add(
        "surrogate-v1",
        SurrogateEstimator,
        summary="predicts accuracy and cost with a fitted surrogate (bench fit); trains nothing",
        section="surrogate",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[surrogate]`` section (from :class:`SurrogateSettings`)."""
    SurrogateSettings.declare(schema)
