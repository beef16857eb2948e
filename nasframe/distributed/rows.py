"""Measured rows: a network trained with a seed, in this process or on a pool of Ray actors.

What ``nasframe bench build`` and ``nasframe finalize`` share (issue 31): both turn
(network, seed) jobs into :class:`~nasframe.bench.TableRow` s -- one training each,
measured in full (learning curve, test accuracy, training accuracy), optionally saving
the trained model -- and both run them either here or on Ray actors.

:func:`measure_row` is the one step from a network to its row. :func:`measure_rows`
runs a list of jobs: in this process with one worker, else on :class:`RowPool`'s actors.

The pool takes everything from ``[ray]`` (:class:`PoolSettings`): the CPUs and GPUs each
actor reserves, how often a job whose actor died is retried on a fresh actor, and the
thread variables of every actor (``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``: the CPUs it reserves, rounded up), so two
trainings never fight over one core. Every actor it starts, replacements included, is
killed when the pool ends, even on a cluster that outlives it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasframe.bench.table import TableRow
from nasframe.contracts import DatasetHandler, Evaluation, Measurement, PerformanceEstimator, Status
from nasframe.errors import ConfigError, NasframeError
from nasframe.nsc import NSC

__all__ = ["PoolSettings", "RowPool", "measure_row", "measure_rows"]

log = logging.getLogger("nasframe.distributed")

#: the thread variables every actor gets (TensorFlow's, OpenMP's and MKL's pools)
THREAD_VARIABLES = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)

#: a job: the network, its seed, and where to save the trained model (``None``: nowhere)
Job = tuple[NSC, int, Path | None]


def measure_row(
    estimator: PerformanceEstimator,
    dataset: DatasetHandler,
    nsc: NSC,
    seed: int,
    *,
    save_to: Path | None = None,
) -> TableRow:
    """Train ``nsc`` with ``seed``, measured in full; its table row. Never raises.

    ``estimator.measure`` with the test split; ``save_to`` passes on where to save the
    trained model. An exception a plugin raises anyway becomes status ``error``.
    """
    start = time.perf_counter()
    try:
        if save_to is None:
            measured = estimator.measure(nsc, dataset, seed=seed, test=True)
        else:
            measured = estimator.measure(nsc, dataset, seed=seed, test=True, save_to=save_to)
    except NotImplementedError:
        raise
    except Exception as exc:  # the contract says never raise; a plugin may still do
        measured = Measurement(Evaluation.failed(Status.ERROR, f"{type(exc).__name__}: {exc}"))
    evaluation = measured.evaluation
    return TableRow(
        arch_hash=nsc.canonical_hash,
        nsc=str(nsc),
        depth=len(nsc),
        seed=seed,
        status=evaluation.status.value,
        params=evaluation.params,
        flops=evaluation.flops,
        seconds=evaluation.seconds or time.perf_counter() - start,
        train_seconds=measured.train_seconds,
        epochs=evaluation.epochs,
        curve=measured.curve,
        test=math.nan if measured.test_accuracy is None else measured.test_accuracy,
        message=evaluation.message,
        train=math.nan if evaluation.train_accuracy is None else evaluation.train_accuracy,
    )


@dataclass(frozen=True)
class PoolSettings:
    """The ``[ray]`` settings a pool of actors runs with.

    Attributes:
        num_cpus: CPUs each actor reserves (fractions allowed); its thread variables are
            this rounded up.
        num_gpus: GPUs each actor reserves.
        max_retries: retries of a job whose actor died, each on a fresh actor; after
            that the job's row has status ``error``.
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 2

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> PoolSettings:
        """The settings of a ``[ray]`` section (missing keys: the defaults).

        Raises:
            ConfigError: a value is out of range; the message names the key.
        """
        settings = cls(
            num_cpus=float(section.get("num_cpus", 1.0)),
            num_gpus=float(section.get("num_gpus", 0.0)),
            max_retries=int(section.get("max_retries", 2)),
        )
        if not settings.num_cpus > 0:
            raise ConfigError(f"[ray] num_cpus = {settings.num_cpus:g}: must be > 0")
        if settings.num_gpus < 0:
            raise ConfigError(f"[ray] num_gpus = {settings.num_gpus:g}: must be >= 0")
        if settings.max_retries < 0:
            raise ConfigError(f"[ray] max_retries = {settings.max_retries}: must be >= 0")
        return settings

    def environment(self) -> dict[str, str]:
        """The environment variables of every actor: its threads, TensorFlow's log level."""
        threads = str(max(1, math.ceil(self.num_cpus)))
        environment = dict.fromkeys(THREAD_VARIABLES, threads)
        environment["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")
        return environment


class RowWorker:
    """The body of one Ray actor: builds the estimator and dataset once, then measures.

    Args:
        estimator: the estimator's :class:`~nasframe.distributed.components.ComponentSpec`.
        dataset: the dataset's.
        task: the dataset task to select (``None``: the handler's default).
        environment: variables set before anything is built (threads).
    """

    def __init__(
        self, estimator: Any, dataset: Any, task: str | None, environment: dict[str, str]
    ) -> None:
        os.environ.update(environment)
        from nasframe.distributed.components import build_component

        self.estimator = build_component(estimator)
        self.dataset = build_component(dataset)
        if task:
            self.dataset.select_task(task)

    def measure(self, nsc: str, seed: int, save_to: str | None) -> TableRow:
        target = None if save_to is None else Path(save_to)
        return measure_row(self.estimator, self.dataset, NSC.parse(nsc), seed, save_to=target)


class RowPool:
    """Ray actors that measure jobs, with retries on a fresh actor when one dies.

    Args:
        estimator: the estimator's component spec (``ComponentSpec``).
        dataset: the dataset's.
        task: the dataset task (``None``: the handler's default).
        workers: actors to start (at most one per job).
        settings: ``[ray]``'s resources and retries.
        ray_address: an existing cluster (default: a new local instance, shut down at
            the end).
        what: the pool's name in messages (``"bench"``, ``"finalize"``).
    """

    def __init__(
        self,
        estimator: Any,
        dataset: Any,
        *,
        task: str | None = None,
        workers: int,
        settings: PoolSettings | None = None,
        ray_address: str | None = None,
        what: str = "row",
    ) -> None:
        self.specs = (estimator, dataset, task)
        self.workers = workers
        self.settings = settings or PoolSettings()
        self.ray_address = ray_address
        self.what = what
        #: every actor the pool started, replacements included: all are killed at the end
        self.actors: list[Any] = []

    def run(self, jobs: Sequence[Job]) -> Iterator[TableRow]:
        """Measure every job; rows in the order they finish."""
        from nasframe.distributed.cluster import connect_ray, import_ray

        if not jobs:
            return
        ray = import_ray()
        owns = connect_ray(self.ray_address)
        settings = self.settings
        actor_class = ray.remote(RowWorker).options(
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_restarts=0
        )
        arguments = (*self.specs, settings.environment())

        def start() -> Any:
            actor = actor_class.remote(*arguments)
            self.actors.append(actor)
            return actor

        queue = list(reversed(jobs))
        retries: dict[tuple[str, int], int] = {}
        running: dict[Any, tuple[Any, Job]] = {}
        try:
            idle = [start() for _ in range(min(self.workers, len(jobs)))]
            while queue or running:
                while idle and queue:
                    actor = idle.pop()
                    job = queue.pop()
                    nsc, seed, save_to = job
                    target = None if save_to is None else str(save_to.resolve())
                    running[actor.measure.remote(str(nsc), seed, target)] = (actor, job)
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    actor, job = running.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayActorError as exc:
                        key = (job[0].canonical_hash, job[1])
                        retries[key] = retries.get(key, 0) + 1
                        idle.append(start())
                        if retries[key] <= settings.max_retries:
                            log.warning("a worker died training %s; retrying", job[0])
                            queue.append(job)
                            continue
                        yield _died(job, retries[key], exc)
                        continue
                    except ray.exceptions.RayTaskError as exc:
                        raise NasframeError(
                            f"a {self.what} worker failed: {' '.join(str(exc).split())[:300]}"
                        ) from None
                    idle.append(actor)
                    yield row
        finally:
            for actor in self.actors:
                ray.kill(actor)
            if owns:
                ray.shutdown()


def _died(job: Job, deaths: int, exc: BaseException) -> TableRow:
    nsc, seed, _ = job
    message = " ".join(str(exc).split())
    return TableRow(
        arch_hash=nsc.canonical_hash,
        nsc=str(nsc),
        depth=len(nsc),
        seed=seed,
        status=Status.ERROR.value,
        message=f"the worker died {deaths} times: {message}"[:300],
    )


def measure_rows(
    jobs: Sequence[Job],
    *,
    estimator: PerformanceEstimator,
    dataset: DatasetHandler,
    pool: Callable[[], RowPool] | None = None,
) -> Iterator[TableRow]:
    """Measure ``jobs``: here with ``estimator`` and ``dataset``, or on ``pool()``'s actors.

    ``pool`` makes the pool only when there is work for it (``None``: run here).
    """
    if pool is None or len(jobs) <= 1:
        for nsc, seed, save_to in jobs:
            yield measure_row(estimator, dataset, nsc, seed, save_to=save_to)
        return
    yield from pool().run(jobs)
