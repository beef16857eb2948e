"""Plugin ``cascade``: ``cascade-v1``, a multi-fidelity estimator over a chain of estimators.

A network is scored by the first (cheapest) estimator of the chain and goes on to the
next only when its score ranks in the top ``fraction`` of the scores that fidelity has
given so far (successive halving, one network at a time); the first ``warmup`` networks a
fidelity scores always go on, so the next fidelity sees a spread before any cut. The
reward is the accuracy of the highest fidelity the network reached; the evaluation says
which (``message``: ``fidelity 2/3 keras-1-...``; ``epochs``: that fidelity's epochs;
``measure``: ``cascade 1/2: synflow score`` below the last fidelity, so a low-fidelity
answer is never shown or summarised as an accuracy);
its ``seconds`` are the seconds the fidelities reported for it (0 for cached ones), so a
table-answered cascade reports simulated training seconds.

Every fidelity is cached under its own fingerprint: a network scored once by a fidelity
is never scored by it again (in memory, and in ``database`` if one is given), so a
network promoted later reuses its cheaper scores. See ``docs/fidelities.md``.

Configuration ``[cascade]``: ``chain`` (estimator names, comma-separated, cheapest
first; each built from the same configuration as the cascade, so ``--set
keras.epochs=1`` reaches its keras fidelity), ``fraction`` and ``warmup``. A chain that
cannot answer on the dataset or search space (a ``table-v1`` of another dataset) is
refused when the environment is built, as that estimator alone is.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import nasframe
from nasframe import (
    NSC,
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Record,
    Status,
)

__all__ = [
    "CascadeEstimator",
    "CascadeSettings",
    "Fidelity",
    "nasframe_add_config",
    "nasframe_register_estimators",
]


@dataclass
class Fidelity:
    """One stage of the cascade and what it has seen.

    Attributes:
        estimator: the estimator of this fidelity.
        scores: the ok accuracies it gave, sorted (the promotion threshold's data).
        evaluations: how many networks it scored (cache hits not counted).
        seconds: the wall seconds of its evaluations.
    """

    estimator: PerformanceEstimator
    scores: list[float]
    evaluations: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class CascadeSettings(nasframe.Settings):
    """The settings of ``cascade-v1``, declared once: the dataclass and ``[cascade]``."""

    SECTION: ClassVar[str] = "cascade"
    DESCRIPTION: ClassVar[str] = "The multi-fidelity cascade estimator."

    chain: str = nasframe.setting(
        "zerocost-v1,keras-v1", "estimator names, cheapest first (each with its defaults)"
    )
    fraction: float = nasframe.setting(0.25, "top share of a fidelity that goes on", above=0, max=1)
    warmup: int = nasframe.setting(10, "networks each fidelity promotes before it cuts", min=0)


class CascadeEstimator(PerformanceEstimator):
    """Scores with a chain of estimators, promoting only the top fraction to the next.

    Args:
        chain: estimator names (comma-separated string or a sequence), cheapest first;
            at least two. Ignored when ``estimators`` is given.
        fraction: the share of a fidelity's scores a network must rank in to go on, in
            (0, 1].
        warmup: the first ``warmup`` networks of every fidelity but the last go on
            whatever they score.
        estimators: the fidelities as instances (instead of ``chain``).
        database: an experiment database that also stores every fidelity's evaluations,
            each under that fidelity's fingerprint (and answers from them).
        composition: the configuration and plugin manager the fidelities of ``chain``
            are built from (``nasframe.compose.create`` passes the ones building the
            cascade; default: the built-in defaults).

    Raises:
        ConfigError: fewer than two fidelities, or ``fraction``/``warmup`` out of range.
        RegistryError: a name in ``chain`` is unknown.
    """

    name = "cascade-v1"
    version = "1"

    def __init__(
        self,
        chain: str | Sequence[str] = "zerocost-v1,keras-v1",
        fraction: float = 0.25,
        warmup: int = 10,
        *,
        estimators: Sequence[PerformanceEstimator] | None = None,
        database: ExperimentDB | None = None,
        composition: nasframe.Composition | None = None,
    ) -> None:
        #: the validated settings (:class:`CascadeSettings`, also the ``[cascade]`` section)
        self.settings = CascadeSettings(
            chain=chain if isinstance(chain, str) else ",".join(chain),
            fraction=fraction,
            warmup=warmup,
        )
        if estimators is None:
            names = [n.strip() for n in self.settings.chain.split(",")]
            names = [n for n in names if n]
            if len(names) < 2:
                raise nasframe.ConfigError(
                    f"[cascade] chain must name at least two estimators, got {chain!r}"
                )
            composition = composition or nasframe.Composition.default()
            estimators = [composition.create("estimator", n) for n in names]
        if len(estimators) < 2:
            raise nasframe.ConfigError("[cascade] needs at least two fidelities")
        self.fidelities = [Fidelity(e, []) for e in estimators]
        self.fraction = self.settings.fraction
        self.warmup = self.settings.warmup
        self.database = database
        self._cache: dict[CacheKey, Evaluation] = {}

    def fingerprint(self) -> str:
        """The fidelities' fingerprints, ``fraction`` and ``warmup``."""
        settings = {
            "fidelities": [f.estimator.fingerprint() for f in self.fidelities],
            "fraction": self.fraction,
            "warmup": self.warmup,
        }
        return nasframe.fingerprint_of("cascade", self.version, settings)

    @property
    def deterministic(self) -> bool:
        """False: whether a network is promoted depends on what was scored before it."""
        return False

    def check_setup(self, search_space: nasframe.SearchSpace, dataset: DatasetHandler) -> None:
        """Refuse a search space or dataset any fidelity cannot answer on.

        Each fidelity's own ``check_setup`` decides (``table-v1`` refuses a table of
        another dataset or space); the message names the fidelity.

        Raises:
            ConfigError: a fidelity refused the setup.
        """
        for number, fidelity in enumerate(self.fidelities, start=1):
            try:
                fidelity.estimator.check_setup(search_space, dataset)
            except nasframe.ConfigError as exc:
                raise nasframe.ConfigError(
                    f"[cascade] chain: fidelity {number} ({fidelity.estimator.name}) cannot "
                    f"answer here: {exc}"
                ) from None

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """The first fidelity that can tell (the one validity rule where they build networks)."""
        for fidelity in self.fidelities:
            reason = fidelity.estimator.why_invalid(architecture, dataset)
            if reason is not None:
                return reason
        return None

    def threshold(self, level: int) -> float:
        """The score a network needs at fidelity ``level`` (0-based) to go on now.

        ``-inf`` during warm-up; else the smallest score in the top ``fraction`` of the
        scores seen (at least one).
        """
        scores = self.fidelities[level].scores
        if len(scores) <= self.warmup:
            return -math.inf
        keep = max(1, math.ceil(self.fraction * len(scores)))
        return scores[len(scores) - keep]

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """Score ``architecture`` up the chain while it ranks in the top fraction."""
        network = architecture.without_terminal()
        last = len(self.fidelities) - 1
        evaluation: Evaluation | None = None
        level = 0
        spent = 0.0
        for level, fidelity in enumerate(self.fidelities):
            evaluation, cached = self._evaluate(fidelity, network, dataset, seed)
            spent += 0.0 if cached else evaluation.seconds
            if evaluation.status is not Status.OK or level == last:
                break
            if not evaluation.accuracy >= self.threshold(level):
                break
        assert evaluation is not None
        reached = self.fidelities[level].estimator
        note = f"fidelity {level + 1}/{len(self.fidelities)} {reached.fingerprint()}"
        message = f"{note}: {evaluation.message}" if evaluation.message else note
        measure = evaluation.measure  # the last fidelity's: "" for a trainer's accuracy
        if level < last:  # a low fidelity's answer is never shown as an accuracy
            inner = evaluation.measure or _accuracy_after(evaluation.epochs)
            measure = f"cascade {level + 1}/{len(self.fidelities)}: {inner}"
        return replace(evaluation, seconds=spent, message=message, measure=measure)

    def _evaluate(
        self, fidelity: Fidelity, network: NSC, dataset: DatasetHandler, seed: int | None
    ) -> tuple[Evaluation, bool]:
        estimator = fidelity.estimator
        key = CacheKey(dataset.identity, network.canonical_hash, estimator.fingerprint())
        hit = self._cache.get(key)
        if hit is None and self.database is not None:
            record = self.database.get(key)
            hit = record.evaluation if record is not None else None
        if hit is not None:
            return hit, True
        start = time.perf_counter()
        evaluation = estimator.evaluate(network, dataset, seed=seed)
        fidelity.seconds += time.perf_counter() - start
        fidelity.evaluations += 1
        self._cache[key] = evaluation
        if evaluation.status is Status.OK:
            bisect.insort(fidelity.scores, float(evaluation.accuracy))
        if self.database is not None:
            self.database.put(
                Record(
                    dataset=dataset.identity,
                    task=dataset.task,
                    arch_hash=network.canonical_hash,
                    nsc=str(network),
                    estimator=estimator.name,
                    estimator_version=estimator.version,
                    fingerprint=key.fingerprint,
                    evaluation=evaluation,
                    seed=seed,
                    timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    nasframe_version=nasframe.__version__,
                )
            )
        return evaluation, False

    def close(self) -> None:
        """Close every fidelity."""
        for fidelity in self.fidelities:
            fidelity.estimator.close()


def _accuracy_after(epochs: int) -> str:
    """``accuracy after 1 epoch``: a low fidelity's accuracy, named by its training."""
    if epochs <= 0:
        return "accuracy"
    return f"accuracy after {epochs} epoch{'' if epochs == 1 else 's'}"


def _create(composition: nasframe.Composition | None = None, **settings: Any) -> CascadeEstimator:
    return CascadeEstimator(**settings, composition=composition)


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(
    registry: nasframe.Registry[nasframe.PerformanceEstimator],
) -> None:
    """Register ``cascade-v1``."""
    registry.add(
        "cascade-v1",
        _create,
        summary="multi-fidelity chain: the top fraction of each fidelity goes on to the next",
        section="cascade",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[cascade]`` section (from :class:`CascadeSettings`)."""
    CascadeSettings.declare(schema)
