"""The :class:`RayEvaluator`: an evaluator that trains on a pool of Ray actors."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nasframe.contracts import (
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Record,
    Status,
)
from nasframe.distributed.cluster import (
    check_workers_fit,
    connect_ray,
    import_ray,
    resolve_address,
)
from nasframe.distributed.components import ComponentSpec, build_component
from nasframe.distributed.worker import EvaluationWorker, WorkerInfo
from nasframe.errors import ConfigError, NasframeError, PluginError
from nasframe.evaluation import Evaluator, Outcome, make_record
from nasframe.nsc import NSC

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

#: Seconds the dispatcher waits for a result before it looks for new work that an idle
#: worker could take; with every worker busy it only needs to wake for results.
_POLL_SECONDS = 0.01
_BUSY_POLL_SECONDS = 0.5

log = logging.getLogger("nasframe.distributed")

#: The Ray namespace of the workers kept between searches (``keep_workers``).
KEPT_NAMESPACE = "nasframe"
_KEPT_PREFIX = "nasframe-worker-"

#: Environment variables of the driver that its workers get too.
_FORWARDED_ENV = ("TF_CPP_MIN_LOG_LEVEL",)


def check_worker_settings(workers: int, num_cpus: float, num_gpus: float, max_retries: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} is not valid; need an integer >= 1")
    if not isinstance(num_cpus, int | float) or num_cpus <= 0:
        raise ConfigError(f"num_cpus={num_cpus!r} per evaluation is not valid; need a number > 0")
    if not isinstance(num_gpus, int | float) or num_gpus < 0:
        raise ConfigError(
            f"num_gpus={num_gpus!r} per evaluation is not valid; need a number >= 0 "
            "(a fraction such as 0.5 shares a GPU)"
        )
    if num_gpus > 1 and num_gpus != int(num_gpus):
        raise ConfigError(
            f"num_gpus={num_gpus!r} is not valid; above 1 it must be a whole number of GPUs"
        )
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries={max_retries!r} is not valid; need an integer >= 0")


@dataclass
class _Job:
    key: CacheKey
    network: NSC
    task: str
    future: Future[Record]
    deaths: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Slot:
    actor: Any
    ready: Any  # the reference to its first call, ready()
    info: WorkerInfo | None = None


class RayEvaluator(Evaluator):
    """An :class:`~nasframe.evaluation.Evaluator` that trains on a pool of Ray actors.

    Use it like an ``Evaluator``; call :meth:`close` (or use ``with``) when done. Calls
    may come from several threads; all of them share one in-flight table, so one cache
    key is never trained twice at once.

    Args:
        estimator: a picklable estimator instance or a :class:`ComponentSpec`.
        dataset: a picklable dataset handler or a :class:`ComponentSpec`.
        database: the experiment database, read and written by this process only.
        workers: the number of actors (evaluations running at once).
        num_cpus: CPUs each actor reserves (fractions allowed).
        num_gpus: GPUs each actor reserves (fractions such as ``0.5`` share a GPU).
        max_retries: how often an evaluation whose worker died is retried on a fresh
            worker before it is stored with status ``error``.
        threads_per_worker: intra-/inter-op threads of TensorFlow, torch and OpenMP in a
            worker (default: ``num_cpus`` rounded up), so workers do not oversubscribe.
        seed: passed to the estimator.
        retry_transient: retrain stored results with a transient status.
        plugin_manager: builds specs on the driver; its ``nasframe_evaluation_stored``
            hook fires for every stored record.
        address: the Ray cluster to use if Ray is not initialised yet (``None``: start a
            local one, which :meth:`close` shuts down again).
        start_timeout: seconds to wait for all workers to start.
        timeout: seconds an evaluation may take on a worker (``None``: no limit). A
            worker still busy after that is stopped and replaced, and the evaluation is
            stored with status ``timeout`` (not retried: it would most likely hang
            again). A guard against hung workers; estimators have their own budgets.
        keep_workers: on a cluster this evaluator did not start, leave the idle workers
            running at :meth:`close` (detached Ray actors, named by a digest of the
            components, the resources and the workers' environment) and reuse such
            workers when they are there -- so the next search with the same components
            skips building them (and importing TensorFlow). Only components given as
            :class:`ComponentSpec` can be matched; instances are never kept. Kept
            workers hold their CPUs and GPUs until :func:`stop_kept_workers` (or
            ``ray stop``).

    Attributes:
        trainings: evaluations sent to workers (cache misses; a retry is not counted).
        hits: requests answered by the database or by an evaluation already in flight.
        joined: the part of ``hits`` that waited for an evaluation in flight.
        retries: evaluations resent after their worker died.
        worker_deaths: workers that died and were replaced.

    Raises:
        ConfigError: a resource setting is out of range.
        PluginError: Ray is not installed, or a worker could not build a component.
        NasframeError: the workers did not start in time (the cluster lacks the
            resources) or the cluster cannot be reached.
    """

    def __init__(
        self,
        estimator: PerformanceEstimator | ComponentSpec,
        dataset: DatasetHandler | ComponentSpec,
        database: ExperimentDB,
        *,
        workers: int = 2,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_retries: int = 2,
        threads_per_worker: int | None = None,
        seed: int | None = None,
        retry_transient: bool = False,
        plugin_manager: PluginManager | None = None,
        address: str | None = None,
        start_timeout: float = 120.0,
        timeout: float | None = None,
        keep_workers: bool = False,
    ) -> None:
        check_worker_settings(workers, num_cpus, num_gpus, max_retries)
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout={timeout!r} is not valid; need seconds > 0 or None")
        super().__init__(
            build_component(estimator, plugin_manager),
            build_component(dataset, plugin_manager),
            database,
            seed=seed,
            retry_transient=retry_transient,
            plugin_manager=plugin_manager,
        )
        self.workers = workers
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self.max_retries = max_retries
        self.timeout = timeout
        self.joined = 0
        self.retries = 0
        self.worker_deaths = 0
        threads = str(threads_per_worker or max(1, math.ceil(self.num_cpus)))
        # The workers' environment: their share of threads, and the driver's choice of
        # TensorFlow's C++ log level (workers on a cluster do not inherit the driver's).
        self._worker_env = {
            name: threads
            for name in (
                "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
            )
        }
        for name in _FORWARDED_ENV:
            if name in os.environ:
                self._worker_env[name] = os.environ[name]
        ray = import_ray()
        self._owns_ray = connect_ray(address)
        if self._owns_ray:
            try:
                check_workers_fit(workers, self.num_cpus, self.num_gpus)
            except NasframeError:
                ray.shutdown()
                raise
        self._lock = threading.Condition(threading.RLock())
        self._queue: collections.deque[_Job] = collections.deque()
        self._inflight: dict[CacheKey, Future[Record]] = {}
        self._idle: list[_Slot] = []
        self._running: dict[Any, tuple[_Job, _Slot]] = {}
        self._deadlines: dict[Any, float] = {}
        self._closed = False
        # Put once, shared by every worker (and every replacement) by reference.
        self._shipped = (ray.put(estimator), ray.put(dataset))
        self._actor_options: dict[str, Any] = {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "max_restarts": 0,
            "runtime_env": {"env_vars": self._worker_env},
        }
        self._remote = ray.remote(EvaluationWorker)
        self._keep = ""
        if keep_workers and self._owns_ray:
            log.info("keep_workers: not on a Ray instance this search starts and stops")
        elif (
            keep_workers
            and isinstance(estimator, ComponentSpec)
            and isinstance(dataset, ComponentSpec)
        ):
            self._keep = _KEPT_PREFIX + self._kept_digest(estimator, dataset)
        elif keep_workers:
            log.info("keep_workers: only components named by a ComponentSpec are kept")
        self.reused = 0
        try:
            slots = self._kept_slots(workers)
            self.reused = len(slots)
            slots += [self._new_slot() for _ in range(workers - len(slots))]
            self._await_ready(slots, start_timeout)
        except BaseException:
            if self._owns_ray:
                ray.shutdown()
            raise
        self._idle = slots
        nodes = {slot.info.node for slot in slots if slot.info}
        where = "a local Ray instance"
        if not self._owns_ray:
            where = f"the cluster at {resolve_address(address)}"
        log.info(
            "evaluating on %d Ray worker(s) of %s, on %d node(s); each reserves "
            "num_cpus=%g, num_gpus=%g and runs %s thread(s)%s",
            workers,
            where,
            len(nodes),
            self.num_cpus,
            self.num_gpus,
            threads,
            f"; {self.reused} kept from an earlier search" if self._keep else "",
        )
        if self.num_gpus:
            gpus = ["+".join(slot.info.gpus) or "none" for slot in slots if slot.info]
            log.info("GPU ids of the workers: %s", ", ".join(gpus))
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="nasframe-ray-dispatcher", daemon=True
        )
        self._dispatcher.start()

    # -- the Evaluator interface ----------------------------------------------------------
    def lookup(self, nsc: NSC) -> Record | None:
        """The usable stored record of ``nsc``, or ``None`` if it must be (re)trained."""
        with self._lock:
            return super().lookup(nsc)

    def store(self, nsc: NSC, evaluation: Evaluation) -> Record:
        """Store ``evaluation`` of ``nsc`` (from this process only) and fire the hook."""
        with self._lock:
            return super().store(nsc, evaluation)

    def evaluate(self, nsc: NSC) -> Outcome:
        """The evaluation of ``nsc``: from the cache, in flight, or trained by a worker."""
        return self.evaluate_many([nsc])[0]

    def evaluate_many(self, nscs: Sequence[NSC]) -> list[Outcome]:
        """Evaluate several architectures at once on the workers, in the order given.

        Architectures with one cache key (duplicates, or already in flight for another
        caller) are trained once. ``Outcome.seconds`` is the wait from this call's start.

        Raises:
            NasframeError: the evaluator is closed.
        """
        start = time.perf_counter()
        requests = [self._request(nsc) for nsc in nscs]
        outcomes = []
        for future, hit in requests:
            record = future.result()
            if not hit and self.plugin_manager is not None:
                # Once per stored record: only the request that started the training
                # is not a hit. Observers run in the caller's thread, as in Evaluator.
                self.plugin_manager.hook.nasframe_evaluation_stored(record=record)
            outcomes.append(Outcome(record, hit, time.perf_counter() - start))
        return outcomes

    # -- the scheduler's interface ------------------------------------------------------------
    def submit(self, nsc: NSC) -> Future[Outcome]:
        """Start evaluating ``nsc`` on the workers; return at once.

        A cache hit (or an architecture already in flight) is answered without a worker:
        its future is done at once (or with the evaluation it joined). Pass each outcome
        to :meth:`settle` in the thread whose observers should see it.

        Raises:
            NasframeError: the evaluator is closed.
        """
        start = time.perf_counter()
        record_future, hit = self._request(nsc)
        outcome: Future[Outcome] = Future()

        def resolve(done: Future[Record]) -> None:
            error = done.exception()
            if error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(Outcome(done.result(), hit, time.perf_counter() - start))

        record_future.add_done_callback(resolve)
        return outcome

    def settle(self, outcome: Outcome) -> None:
        """Fire ``nasframe_evaluation_stored`` for a submitted outcome that trained."""
        if not outcome.cache_hit and self.plugin_manager is not None:
            self.plugin_manager.hook.nasframe_evaluation_stored(record=outcome.record)

    @property
    def in_flight(self) -> int:
        """Distinct evaluations queued or running on the workers now."""
        with self._lock:
            return len(self._inflight)

    # -- workers --------------------------------------------------------------------------
    def worker_info(self) -> list[WorkerInfo]:
        """The workers alive now (process, node, GPUs); waits for replacements to start."""
        ray = import_ray()
        with self._lock:
            slots = self._idle + [slot for _, slot in self._running.values()]
        for slot in slots:
            if slot.info is None:
                slot.info, _ = ray.get(slot.ready, timeout=120)
        return [slot.info for slot in slots if slot.info is not None]

    def close(self) -> None:
        """Stop the workers (and Ray, if this evaluator started it); pending calls fail."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        self._dispatcher.join(timeout=10)
        ray = import_ray()
        error = NasframeError("the Ray evaluator was closed before the evaluation finished")
        with self._lock:
            for job in list(self._queue) + [job for job, _ in self._running.values()]:
                if not job.future.done():
                    job.future.set_exception(error)
            slots = self._idle + [slot for _, slot in self._running.values()]
            idle = list(self._idle)
            self._queue.clear()
            self._running.clear()
            self._deadlines.clear()
            self._idle = []
            self._inflight.clear()
        kept = set(map(id, idle)) if self._keep else set()
        for slot in slots:
            if id(slot) not in kept:
                ray.kill(slot.actor, no_restart=True)
        if kept:
            log.info("%d idle Ray worker(s) kept running for the next search", len(kept))
        if self._owns_ray:
            ray.shutdown()
        self.estimator.close()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------
    def _new_slot(self) -> _Slot:
        options = dict(self._actor_options)
        if self._keep:
            options.update(
                name=f"{self._keep}-{os.urandom(4).hex()}",
                namespace=KEPT_NAMESPACE,
                lifetime="detached",
            )
        actor = self._remote.options(**options).remote(*self._shipped, self._worker_env)
        return _Slot(actor, actor.ready.remote())

    def _kept_digest(self, estimator: ComponentSpec, dataset: ComponentSpec) -> str:
        from nasframe import __version__

        identity = {
            "components": [
                [spec.kind, spec.name, {k: str(v) for k, v in sorted(spec.settings.items())}]
                for spec in (estimator, dataset)
            ],
            "resources": [self.num_cpus, self.num_gpus],
            "environment": sorted(self._worker_env.items()),
            "nasframe": __version__,
        }
        blob = json.dumps(identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _kept_slots(self, count: int) -> list[_Slot]:
        """Workers an earlier search with the same components left running (keep_workers)."""
        if not self._keep:
            return []
        ray = import_ray()
        names = sorted(
            entry["name"]
            for entry in ray.util.list_named_actors(all_namespaces=True)
            if entry.get("namespace") == KEPT_NAMESPACE
            and entry["name"].startswith(self._keep + "-")
        )
        slots = []
        for name in names[:count]:
            try:
                actor = ray.get_actor(name, namespace=KEPT_NAMESPACE)
            except ValueError:  # it ended meanwhile
                continue
            slots.append(_Slot(actor, actor.ready.remote()))
        return slots

    def _await_ready(self, slots: Sequence[_Slot], timeout: float) -> None:
        ray = import_ray()
        refs = [slot.ready for slot in slots]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        if len(done) < len(refs):
            for slot in slots:
                ray.kill(slot.actor, no_restart=True)
            raise NasframeError(
                f"only {len(done)} of {len(refs)} Ray workers started within {timeout:g} s; "
                f"the cluster may lack num_cpus={self.num_cpus:g}, "
                f"num_gpus={self.num_gpus:g} per worker (see 'ray status')"
            )
        for slot, ref in zip(slots, refs, strict=True):
            slot.info, error = ray.get(ref)
            if error:
                for other in slots:
                    ray.kill(other.actor, no_restart=True)
                raise PluginError(f"a Ray worker could not build its components: {error}")

    def _request(self, nsc: NSC) -> tuple[Future[Record], bool]:
        key = self.key(nsc)
        with self._lock:
            if self._closed:
                raise NasframeError("the Ray evaluator is closed")
            record = self.lookup(nsc)
            if record is not None:
                self.hits += 1
                done: Future[Record] = Future()
                done.set_result(record)
                return done, True
            pending = self._inflight.get(key)
            if pending is not None:
                self.hits += 1
                self.joined += 1
                return pending, True
            future: Future[Record] = Future()
            self._inflight[key] = future
            self.trainings += 1
            self._queue.append(_Job(key, nsc.without_terminal(), self.dataset.task, future))
            self._lock.notify_all()
            return future, False

    def _dispatch(self) -> None:
        try:
            self._dispatch_loop()
        except BaseException as exc:  # never leave a caller waiting on a dead dispatcher
            with self._lock:
                for job in list(self._queue) + [job for job, _ in self._running.values()]:
                    if not job.future.done():
                        job.future.set_exception(exc)
            raise

    def _dispatch_loop(self) -> None:
        ray = import_ray()
        while True:
            with self._lock:
                while not self._closed and not self._running and not self._queue:
                    self._lock.wait()
                if self._closed:
                    return
                while self._queue and self._idle:
                    job, slot = self._queue.popleft(), self._idle.pop()
                    ref = slot.actor.evaluate.remote(str(job.network), job.task, self.seed)
                    self._running[ref] = (job, slot)
                    if self.timeout is not None:
                        self._deadlines[ref] = time.monotonic() + self.timeout
                refs = list(self._running)
                timeout = _POLL_SECONDS if self._idle else _BUSY_POLL_SECONDS
            done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            for ref in done:
                self._finish(ref)
            if self._deadlines:
                self._stop_overdue()

    def _stop_overdue(self) -> None:
        ray = import_ray()
        now = time.monotonic()
        with self._lock:
            overdue = [ref for ref, deadline in self._deadlines.items() if deadline < now]
            stopped = [(self._running.pop(ref), self._deadlines.pop(ref)) for ref in overdue]
        for (job, slot), _ in stopped:
            ray.kill(slot.actor, no_restart=True)
            replacement = self._new_slot()
            with self._lock:
                self._idle.append(replacement)
            self._complete(
                job,
                Evaluation.failed(
                    Status.TIMEOUT,
                    f"no result from the Ray worker within timeout={self.timeout:g} s; "
                    "the worker was stopped and replaced",
                    seconds=float(self.timeout or 0),
                ),
            )

    def _finish(self, ref: Any) -> None:
        ray = import_ray()
        from ray.exceptions import RayActorError, RayError, WorkerCrashedError

        with self._lock:
            job, slot = self._running.pop(ref)
            self._deadlines.pop(ref, None)
        try:
            evaluation = ray.get(ref)
        except (RayActorError, WorkerCrashedError) as exc:
            ray.kill(slot.actor, no_restart=True)
            replacement = self._new_slot()
            with self._lock:
                self.worker_deaths += 1
                self._idle.append(replacement)
                job.deaths += 1
                pid = slot.info.pid if slot.info else "?"
                job.reasons.append(f"worker pid {pid}: {type(exc).__name__}")
                if job.deaths <= self.max_retries:
                    self.retries += 1
                    self._queue.appendleft(job)  # first in line: it has waited longest
                    return
            evaluation = Evaluation.failed(
                Status.ERROR,
                f"the Ray worker died {job.deaths} time(s) evaluating it, more than "
                f"max_retries={self.max_retries} ({'; '.join(job.reasons)})",
            )
            self._complete(job, evaluation)
            return
        except RayError as exc:  # e.g. the result could not be unpickled: not retried
            evaluation = Evaluation.failed(
                Status.ERROR, f"Ray failed the evaluation: {type(exc).__name__}: {exc}"
            )
        with self._lock:
            self._idle.append(slot)
        self._complete(job, evaluation)

    def _complete(self, job: _Job, evaluation: Evaluation) -> None:
        record = make_record(
            job.network,
            evaluation,
            estimator=self.estimator,
            dataset=self.dataset,
            seed=self.seed,
            fingerprint=job.key.fingerprint,
        )
        # Key the record by the task it was trained on, even if the env switched since.
        record = replace(record, dataset=job.key.dataset, task=job.task)
        with self._lock:
            self.database.put(record)
            self._inflight.pop(job.key, None)
        # The hook fires in the caller's thread (evaluate_many), not in this one.
        job.future.set_result(record)


def stop_kept_workers(address: str | None = None) -> int:
    """Stop every worker that ``keep_workers`` left running on the cluster; return how many.

    Args:
        address: the cluster, if this process is not connected to Ray yet (see
            :func:`~nasframe.distributed.connect_ray`).
    """
    ray = import_ray()
    started = connect_ray(address)
    try:
        stopped = 0
        for entry in ray.util.list_named_actors(all_namespaces=True):
            if entry.get("namespace") != KEPT_NAMESPACE:
                continue
            if not entry["name"].startswith(_KEPT_PREFIX):
                continue
            try:
                ray.kill(ray.get_actor(entry["name"], namespace=KEPT_NAMESPACE), no_restart=True)
            except ValueError:
                continue
            stopped += 1
        return stopped
    finally:
        if started:
            ray.shutdown()
