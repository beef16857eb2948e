"""A cluster simulated on one machine: the real schedulers over a virtual clock.

Planning for 32 or 64 workers needs no cluster. :class:`SimulatedEvaluator` is the
evaluation back end with ``workers`` simulated workers and a virtual clock: a submitted
evaluation waits in a first-in-first-out queue for a free worker (as on
:class:`~nasframe.distributed.RayEvaluator`), then occupies it for the ``seconds`` its
estimator reports, and ``wait`` advances the clock to the next evaluation that ends -- a
discrete-event simulation. Cache hits and architectures already in flight are answered
without a worker, as on Ray. What drives it is the real code: the lockstep
:class:`~nasframe.distributed.NASVectorEnv` (one ``evaluate_many`` per step, waiting for
all), the :class:`~nasframe.distributed.scheduler.AsyncScheduler` with the real random
agent, or a real Stable-Baselines3 PPO over the vector env, in lockstep or pipelined
(:class:`~nasframe.distributed.vector_env.StepPipeline`: rewards pending until the
rollout ends). The driver's own time (about 1 ms per evaluation on Ray) is not simulated.

:class:`TableTimedEstimator` gives every architecture the duration and accuracy an
NSC-Bench table recorded for it (its mean over the table's seeds); an architecture
outside the table gets the recorded values of a table row chosen by its hash, so
durations follow the table's distribution. :func:`simulate` runs one search and
returns its :class:`SimulationResult` (utilization, evaluations per hour).
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import itertools
import statistics
from collections.abc import Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.contracts import (
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Status,
    fingerprint_of,
)
from nasframe.errors import ConfigError
from nasframe.evaluation import Evaluator, Outcome
from nasframe.nsc import NSC

__all__ = [
    "AGENTS",
    "SCHEDULERS",
    "SimulatedEvaluator",
    "SimulationResult",
    "TableTimedEstimator",
    "shipped_table",
    "simulate",
]

#: The scheduling policies :func:`simulate` compares.
SCHEDULERS = ("lockstep", "async", "pipelined")

#: The agents :func:`simulate` runs (``pipelined`` needs an on-policy learner: ``ppo``).
AGENTS = ("random", "ppo")


def shipped_table() -> Path | None:
    """The NSC-Bench table shipped with nasframe (package data), if it is there."""
    from nasframe.bench.table import BenchTable

    folder = BenchTable.shipped()
    return folder if (folder / "table.csv.gz").exists() else None


class TableTimedEstimator(PerformanceEstimator):
    """Reports the recorded duration and accuracy of an NSC-Bench table; trains nothing.

    Args:
        table: a :class:`~nasframe.bench.BenchTable`, or the path of a table folder or
            file (``table.csv.gz`` or ``rows.csv``).
        scale: factor on every duration.

    Raises:
        ConfigError: the table cannot be read or has no row with a recorded duration.
    """

    name = "table-timed"
    version = "1"

    def __init__(self, table: Any, *, scale: float = 1.0) -> None:
        from nasframe.bench import BenchTable

        if not isinstance(table, BenchTable):
            table = BenchTable.load(table)
        if not scale > 0:
            raise ConfigError(f"scale={scale!r} is not valid; need a number > 0")
        self.scale = float(scale)
        self.source = table.source
        self._by_hash: dict[str, Evaluation] = {}
        for arch_hash, rows in table.by_hash.items():
            timed = [row for row in rows if row.seconds > 0]
            if not timed:
                continue
            try:
                status = Status(timed[0].status)
            except ValueError:
                status = Status.ERROR
            self._by_hash[arch_hash] = Evaluation(
                accuracy=statistics.fmean(row.accuracy() for row in timed),
                status=status,
                params=timed[0].params,
                flops=timed[0].flops,
                seconds=statistics.fmean(row.seconds for row in timed),
                epochs=timed[0].epochs,
            )
        if not self._by_hash:
            raise ConfigError(f"{table.source}: no row of the table records a duration")
        self._rows = [self._by_hash[key] for key in sorted(self._by_hash)]

    @property
    def durations(self) -> list[float]:
        """The recorded (scaled) duration of every architecture of the table."""
        return [evaluation.seconds * self.scale for evaluation in self._rows]

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version, {"table": self.source, "scale": self.scale})

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        arch_hash = architecture.canonical_hash
        recorded = self._by_hash.get(arch_hash)
        if recorded is None:
            pick = int.from_bytes(hashlib.sha256(arch_hash.encode()).digest()[:8], "big")
            recorded = self._rows[pick % len(self._rows)]
        return Evaluation(
            accuracy=recorded.accuracy,
            status=recorded.status,
            params=recorded.params,
            flops=recorded.flops,
            seconds=recorded.seconds * self.scale,
            epochs=recorded.epochs,
        )


@dataclass
class _Job:
    key: CacheKey
    network: NSC
    waiters: list[tuple[Future[Outcome], bool]] = field(default_factory=list)


class SimulatedEvaluator(Evaluator):
    """An evaluator on ``workers`` simulated workers with a virtual clock.

    It has the interface of :class:`~nasframe.distributed.RayEvaluator` (``evaluate``,
    ``evaluate_many``, ``submit``, ``wait``, ``settle``, ``in_flight``, the counters).
    The estimator runs when an evaluation starts on a worker, in the calling thread; the
    evaluation then lasts its reported ``seconds`` of virtual time.

    Args:
        estimator: reports each evaluation's duration in ``Evaluation.seconds``.
        dataset: the dataset (its identity is part of the cache key).
        database: the experiment database.
        workers: simulated workers.
        seed: passed to the estimator.

    Attributes:
        now: the virtual time in seconds.
        busy_seconds: the sum of the durations of every evaluation started.
        joined: requests that waited for an evaluation already in flight.
        intervals: ``(start, end)`` in virtual seconds of every evaluation started, in
            the order they started (the order they were submitted: the queue is FIFO).

    Raises:
        ConfigError: ``workers`` < 1.
    """

    def __init__(
        self,
        estimator: PerformanceEstimator,
        dataset: DatasetHandler,
        database: ExperimentDB,
        *,
        workers: int,
        seed: int | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers={workers!r} is not valid; need an integer >= 1")
        super().__init__(estimator, dataset, database, seed=seed)
        self.workers = workers
        self.now = 0.0
        self.busy_seconds = 0.0
        self.joined = 0
        self.intervals: list[tuple[float, float]] = []
        self._queue: collections.deque[_Job] = collections.deque()
        self._jobs: dict[CacheKey, _Job] = {}
        self._running: list[tuple[float, int, _Job, Evaluation]] = []
        self._order = itertools.count()

    def utilization(self) -> float:
        """Busy worker seconds over (virtual seconds x workers), so far."""
        return self.busy_seconds / (self.now * self.workers) if self.now > 0 else 0.0

    def busy_until(self, moment: float) -> float:
        """Worker seconds spent evaluating between the start and virtual time ``moment``."""
        return sum(max(0.0, min(end, moment) - start) for start, end in self.intervals)

    # -- the scheduler's interface ----------------------------------------------------------
    def submit(self, nsc: NSC) -> Future[Outcome]:
        """Queue ``nsc`` for a simulated worker; a cache hit is done at once."""
        future: Future[Outcome] = Future()
        record = self.lookup(nsc)
        if record is not None:
            self.hits += 1
            future.set_result(Outcome(record, True, 0.0))
            return future
        key = self.key(nsc)
        job = self._jobs.get(key)
        if job is not None:
            self.hits += 1
            self.joined += 1
            job.waiters.append((future, True))
            return future
        self.trainings += 1
        job = self._jobs[key] = _Job(key, nsc.without_terminal(), [(future, False)])
        self._queue.append(job)
        self._start()
        return future

    def wait(
        self, pending: Collection[Future[Outcome]], timeout: float | None = None
    ) -> set[Future[Outcome]]:
        """Advance the clock until one of ``pending`` is done; return the done ones."""
        done = {future for future in pending if future.done()}
        while not done and self._running:
            self._complete_next()
            done = {future for future in pending if future.done()}
        return done

    @property
    def in_flight(self) -> int:
        """Evaluations queued or running now."""
        return len(self._jobs)

    def evaluate_many(self, nscs: Sequence[NSC]) -> list[Outcome]:
        """Submit all, then advance the clock until all are done (lockstep)."""
        futures = [self.submit(nsc) for nsc in nscs]
        while not all(future.done() for future in futures):
            self._complete_next()
        return [future.result() for future in futures]

    def evaluate(self, nsc: NSC) -> Outcome:
        """One evaluation, waited for."""
        return self.evaluate_many([nsc])[0]

    # -- internals ----------------------------------------------------------------------
    def _start(self) -> None:
        while self._queue and len(self._running) < self.workers:
            job = self._queue.popleft()
            evaluation = self._run_estimator_quietly(job.network)
            seconds = max(0.0, float(evaluation.seconds))
            self.busy_seconds += seconds
            self.intervals.append((self.now, self.now + seconds))
            heapq.heappush(self._running, (self.now + seconds, next(self._order), job, evaluation))

    def _run_estimator_quietly(self, nsc: NSC) -> Evaluation:
        try:
            return self.estimator.evaluate(nsc, self.dataset, seed=self.seed)
        except Exception as exc:
            return Evaluation.failed(Status.ERROR, f"{type(exc).__name__}: {exc}")

    def _complete_next(self) -> None:
        end, _, job, evaluation = heapq.heappop(self._running)
        self.now = max(self.now, end)
        record = self.store(job.network, evaluation)
        del self._jobs[job.key]
        for future, hit in job.waiters:
            future.set_result(Outcome(record, hit, 0.0))
        self._start()


@dataclass(frozen=True)
class SimulationResult:
    """One simulated search.

    Attributes:
        scheduler: ``lockstep``, ``async`` or ``pipelined``.
        workers: simulated workers.
        envs: environments (lockstep, pipelined: stepped together; async: most episodes
            open).
        trainings: evaluations that occupied a worker.
        steps: environment steps taken.
        seconds: virtual wall seconds of the search.
        busy_seconds: worker seconds spent evaluating.
        agent: ``random`` or ``ppo``.
        steady_seconds: virtual seconds until the budget's last evaluation started on a
            worker (what follows is the end-of-search drain).
        steady_busy_seconds: worker seconds spent evaluating until then.
    """

    scheduler: str
    workers: int
    envs: int
    trainings: int
    steps: int
    seconds: float
    busy_seconds: float
    agent: str = "random"
    steady_seconds: float = 0.0
    steady_busy_seconds: float = 0.0

    @property
    def utilization(self) -> float:
        """Busy seconds over (wall seconds x workers), the whole search."""
        return self.busy_seconds / (self.seconds * self.workers) if self.seconds else 0.0

    @property
    def steady_utilization(self) -> float:
        """Utilization until the budget's last evaluation started (the drain left out)."""
        if not self.steady_seconds:
            return 0.0
        return self.steady_busy_seconds / (self.steady_seconds * self.workers)

    @property
    def per_hour(self) -> float:
        """Evaluations (trainings) per hour of virtual time."""
        return self.trainings * 3600.0 / self.seconds if self.seconds else 0.0


def simulate(
    scheduler: str,
    workers: int,
    *,
    trainings: int,
    estimator: PerformanceEstimator,
    envs: int | None = None,
    seed: int = 0,
    search_space: str = "chained",
    dataset: str = "digits",
    max_steps: int = 10,
    plugin_manager: Any = None,
    agent: str | None = None,
) -> SimulationResult:
    """Run a search on ``workers`` simulated workers until ``trainings`` trainings.

    Args:
        scheduler: ``lockstep`` (a ``NASVectorEnv`` of ``envs`` environments, default
            ``workers``), ``async`` (the :class:`AsyncScheduler` with ``envs`` open
            episodes at most, default ``2 * workers``) or ``pipelined`` (the vector env
            pipelined, :class:`~nasframe.distributed.vector_env.StepPipeline`; default
            ``workers`` environments).
        workers: simulated workers.
        trainings: stop once this many evaluations have occupied a worker (the last
            step, or the evaluations under way, still finish).
        estimator: reports the durations (e.g. :class:`TableTimedEstimator`).
        envs: see ``scheduler``.
        seed: the agent's seed.
        search_space: the search space's registered name.
        dataset: the dataset's registered name (only its identity matters).
        max_steps: steps per episode before it is truncated.
        plugin_manager: builds the components (default: a fresh one).
        agent: ``random`` (the default for ``lockstep`` and ``async``) or ``ppo`` (the
            default and the only choice for ``pipelined``; also in ``lockstep``): the
            real Stable-Baselines3 PPO of the agents plugin, its ``[ppo]`` defaults
            (needs the ``rl`` extra).

    Raises:
        ConfigError: an unknown scheduler or agent, or a bad number.
    """
    import nasframe
    from nasframe.distributed.scheduler import AsyncScheduler
    from nasframe.distributed.vector_env import NASVectorEnv

    if scheduler not in SCHEDULERS:
        raise ConfigError(f"scheduler={scheduler!r} is not known; valid: {', '.join(SCHEDULERS)}")
    if agent is None:
        agent = "ppo" if scheduler == "pipelined" else "random"
    if agent not in AGENTS or (scheduler == "async" and agent != "random"):
        raise ConfigError(f"agent={agent!r} is not known for scheduler {scheduler!r}")
    if scheduler == "pipelined" and agent != "ppo":
        raise ConfigError(f"agent={agent!r} cannot learn pipelined; use agent='ppo'")
    if not isinstance(trainings, int) or trainings < 1:
        raise ConfigError(f"trainings={trainings!r} is not valid; need an integer >= 1")
    if plugin_manager is None:
        plugin_manager = nasframe.get_plugin_manager()
    count = envs if envs is not None else (2 * workers if scheduler == "async" else workers)
    first = nasframe.make_env(
        search_space=search_space,
        estimator=estimator,
        dataset=dataset,
        database="memory",
        max_steps=max_steps,
        seed=seed,
        plugin_manager=plugin_manager,
    )
    evaluator = SimulatedEvaluator(
        estimator, first.dataset, first.database, workers=workers, seed=seed
    )
    env_list = [first]
    for _ in range(count - 1):
        env_list.append(
            nasframe.make_env(
                search_space=first.search_space,
                state_encoder=first.state_encoder,
                estimator=estimator,
                dataset=first.dataset,
                database=first.database,
                max_steps=max_steps,
                seed=seed,
                plugin_manager=plugin_manager,
            )
        )
    for env in env_list:
        env.evaluator = evaluator

    def more() -> bool:
        return evaluator.trainings < trainings

    if scheduler == "async":
        learner = nasframe.make_agent("random", first, seed=seed, plugin_manager=plugin_manager)
        loop = AsyncScheduler(env_list, evaluator, learner, workers=workers, poll=0.0)
        steps = loop.run(should_stop=lambda: not more())
    else:
        vector: Any = NASVectorEnv(env_list, evaluator)
        if scheduler == "pipelined":
            vector.enable_pipeline()
        learner = nasframe.make_agent(agent, vector, seed=seed, plugin_manager=plugin_manager)
        steps = learner.learn(10**9, more)
    last = evaluator.intervals[min(trainings, len(evaluator.intervals)) - 1][0]
    return SimulationResult(
        scheduler=scheduler,
        workers=workers,
        envs=count,
        trainings=evaluator.trainings,
        steps=steps,
        seconds=evaluator.now,
        busy_seconds=evaluator.busy_seconds,
        agent=agent,
        steady_seconds=last,
        steady_busy_seconds=evaluator.busy_until(last),
    )
