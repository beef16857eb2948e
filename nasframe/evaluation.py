"""The cache-aware evaluation service between the environment and the estimator.

:class:`Evaluator` answers "how good is this architecture?" for the environment: it
looks the architecture up in the experiment database by (dataset identity, canonical
hash, estimator fingerprint) and trains only on a miss, storing the result. It is the
one place where that policy lives; parallel back ends (Ray) provide the same interface.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Collection, Sequence
from concurrent import futures as _futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasframe.contracts import (
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Record,
    Status,
)
from nasframe.nsc import NSC

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["Evaluator", "Outcome", "make_record"]


@dataclass(frozen=True)
class Outcome:
    """What :meth:`Evaluator.evaluate` returns.

    Attributes:
        record: the stored (or just made) record.
        cache_hit: whether it came from the database without training.
        seconds: wall seconds spent by this call (lookup included).
    """

    record: Record
    cache_hit: bool
    seconds: float

    @property
    def evaluation(self) -> Evaluation:
        """The evaluation of the record."""
        return self.record.evaluation


def make_record(
    nsc: NSC,
    evaluation: Evaluation,
    *,
    estimator: PerformanceEstimator,
    dataset: DatasetHandler,
    seed: int | None,
    fingerprint: str | None = None,
) -> Record:
    """The database record of ``evaluation`` of ``nsc`` (terminal row dropped).

    ``fingerprint`` is ``estimator.fingerprint()`` when the caller has it already (an
    :class:`Evaluator` computes it once); ``None`` asks the estimator.
    """
    from nasframe._version import __version__

    network = nsc.without_terminal()
    return Record(
        dataset=dataset.identity,
        task=dataset.task,
        arch_hash=network.canonical_hash,
        nsc=str(network),
        estimator=estimator.name,
        estimator_version=str(estimator.version),
        fingerprint=estimator.fingerprint() if fingerprint is None else fingerprint,
        evaluation=evaluation,
        seed=seed,
        timestamp=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        nasframe_version=__version__,
    )


class Evaluator:
    """Evaluates architectures through the experiment-database cache.

    Args:
        estimator: trains or scores architectures.
        dataset: the data; its :attr:`~nasframe.contracts.DatasetHandler.identity` is part
            of the cache key, so switching tasks never mixes results.
        database: the experiment database (the cache).
        seed: passed to the estimator.
        retry_transient: retrain when the stored result has a transient status
            (``out_of_memory``, ``timeout``, ``error``) instead of returning it.
        plugin_manager: its ``nasframe_evaluation_stored`` hook fires for every stored
            record.

    Attributes:
        trainings: how many times the estimator was asked (cache misses).
        hits: how many lookups the cache answered.
    """

    def __init__(
        self,
        estimator: PerformanceEstimator,
        dataset: DatasetHandler,
        database: ExperimentDB,
        *,
        seed: int | None = None,
        retry_transient: bool = False,
        plugin_manager: PluginManager | None = None,
    ) -> None:
        self.estimator = estimator
        self.dataset = dataset
        self.database = database
        self.seed = seed
        self.retry_transient = retry_transient
        self.plugin_manager = plugin_manager
        self.trainings = 0
        self.hits = 0
        self._fingerprint = estimator.fingerprint()
        self._fingerprinted = estimator

    @property
    def fingerprint(self) -> str:
        """The estimator's fingerprint, computed once per estimator object.

        Every cache key and every record this evaluator makes carries it; the estimator's
        settings are frozen, so only another estimator object can change it.
        """
        if self._fingerprinted is not self.estimator:
            self._fingerprint = self.estimator.fingerprint()
            self._fingerprinted = self.estimator
        return self._fingerprint

    def key(self, nsc: NSC) -> CacheKey:
        """The cache key of ``nsc`` on the current dataset task."""
        network = nsc.without_terminal()
        return CacheKey(self.dataset.identity, network.canonical_hash, self.fingerprint)

    def lookup(self, nsc: NSC) -> Record | None:
        """The usable stored record of ``nsc``, or ``None`` if it must be (re)trained."""
        record = self.database.get(self.key(nsc))
        if record is None:
            return None
        if self.retry_transient and record.evaluation.status.transient:
            return None
        return record

    def evaluate(self, nsc: NSC) -> Outcome:
        """The evaluation of ``nsc``: from the cache, or trained now and stored."""
        start = time.perf_counter()
        record = self.lookup(nsc)
        if record is not None:
            self.hits += 1
            return Outcome(record, True, time.perf_counter() - start)
        evaluation = self._run_estimator(nsc)
        record = self.store(nsc, evaluation)
        return Outcome(record, False, time.perf_counter() - start)

    def evaluate_many(self, nscs: Sequence[NSC]) -> list[Outcome]:
        """Evaluate several architectures (in order, here; in parallel on Ray)."""
        return [self.evaluate(nsc) for nsc in nscs]

    # -- the scheduler's interface: requests in, results as they finish ----------------------
    def submit(self, nsc: NSC) -> Future[Outcome]:
        """Start evaluating ``nsc``; the future gives its :class:`Outcome` once stored.

        Here the evaluation runs at once, in the calling thread, and the future is done
        on return; a parallel back end returns at once and trains elsewhere. Pass every
        outcome taken from such a future to :meth:`settle`.
        """
        future: Future[Outcome] = Future()
        future.set_result(self.evaluate(nsc))
        return future

    def wait(
        self, pending: Collection[Future[Outcome]], timeout: float | None = None
    ) -> set[Future[Outcome]]:
        """Wait until at least one of ``pending`` is done (or ``timeout`` seconds pass).

        Returns:
            The futures of ``pending`` that are done (empty after a timeout).
        """
        done, _ = _futures.wait(pending, timeout=timeout, return_when=_futures.FIRST_COMPLETED)
        return set(done)

    def settle(self, outcome: Outcome) -> None:
        """Fire ``nasframe_evaluation_stored`` for a submitted outcome, if not yet fired.

        In-process the hook has fired when the record was stored; a parallel back end
        fires it here, in the caller's thread, as :meth:`evaluate_many` does.
        """

    @property
    def in_flight(self) -> int:
        """Distinct evaluations queued or running now (0 in-process: nothing waits)."""
        return 0

    def store(self, nsc: NSC, evaluation: Evaluation) -> Record:
        """Store ``evaluation`` of ``nsc`` and fire ``nasframe_evaluation_stored``."""
        record = make_record(
            nsc,
            evaluation,
            estimator=self.estimator,
            dataset=self.dataset,
            seed=self.seed,
            fingerprint=self.fingerprint,
        )
        self.database.put(record)
        if self.plugin_manager is not None:
            self.plugin_manager.hook.nasframe_evaluation_stored(record=record)
        return record

    def _run_estimator(self, nsc: NSC) -> Evaluation:
        self.trainings += 1
        start = time.perf_counter()
        try:
            return self.estimator.evaluate(nsc.without_terminal(), self.dataset, seed=self.seed)
        except Exception as exc:  # the contract says never raise; a plugin may still do
            return Evaluation.failed(
                Status.ERROR,
                f"estimator {self.estimator.name!r} raised {type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
            )
