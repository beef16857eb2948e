"""Parallel and distributed evaluation on Ray, with one cache and one database owner.

:class:`RayEvaluator` has the interface of :class:`nasframe.evaluation.Evaluator`
(``evaluate``, ``evaluate_many``, ``key``, ``lookup``, ``store``, the ``trainings`` and
``hits`` counters), but trains on a pool of Ray actors instead of in the calling process:

* **Workers.** ``workers`` actors each build the estimator and hold the dataset once, for
  their whole life; an evaluation ships only the NSC string, the task name and the seed
  there and an :class:`~nasframe.contracts.Evaluation` back. Each actor reserves
  ``num_cpus`` CPUs and ``num_gpus`` GPUs (fractions allowed, e.g. ``0.25`` puts four
  workers on one GPU), so one worker runs one evaluation at a time.
* **What is shipped.** The estimator and the dataset are given either as instances (they
  are pickled with Ray's cloudpickle and put into the object store once; every worker
  gets a copy, numpy arrays are shared read-only memory on a node) or as
  :class:`ComponentSpec` -- a registry name plus settings -- that every worker builds with
  its own plugin manager, so nothing but the name and the settings travels. Specs need
  the plugin installed on every node; instances need only their classes importable or
  picklable by value. The driver builds its own copy too, but only asks it for the
  estimator fingerprint and the dataset identity (the cache key); it never trains.
* **One cache, one writer.** Only the driver reads and writes the experiment database,
  so records are never lost or written twice. Concurrent requests for one cache key
  (dataset identity, canonical hash, estimator fingerprint) -- twice in one batch, or
  from several threads -- train once: the first starts the evaluation, the others wait
  for the same record (they count as cache hits).
* **Faults.** A worker that dies mid-evaluation (its process killed, ``os._exit``, out of
  host memory) is replaced by a fresh one and the evaluation is retried, up to
  ``max_retries`` times; after that it is stored with status ``error`` and the message
  says why, and the search goes on.

:class:`NASVectorEnv` steps N environments that share one evaluator with one batched
``evaluate_many`` per step, and :func:`make_parallel_env` builds it from a configuration
or components (``nasframe search --workers N --ray-address A``). Ray is imported only
inside functions: it is the ``ray`` extra, and ``import nasframe.distributed`` works
without it.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from nasframe.contracts import (
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Record,
    Status,
)
from nasframe.errors import ConfigError, NasframeError, PluginError
from nasframe.evaluation import Evaluator, Outcome, make_record
from nasframe.nsc import NSC

__all__ = [
    "ComponentSpec",
    "NASVectorEnv",
    "RayEvaluator",
    "WorkerInfo",
    "connect_ray",
    "make_parallel_env",
    "to_sb3",
]

#: Seconds the dispatcher waits for a result before it looks for new work that an idle
#: worker could take; with every worker busy it only needs to wake for results.
_POLL_SECONDS = 0.01
_BUSY_POLL_SECONDS = 0.5

log = logging.getLogger("nasframe.distributed")


@dataclass(frozen=True)
class ComponentSpec:
    """A component named by its registry entry, built where it is used.

    Shipping a spec instead of an instance sends only ``kind``, ``name`` and
    ``settings`` to a Ray worker, which builds the component with its own plugin
    manager (the plugin must be installed there).

    Attributes:
        kind: the component kind: ``"estimator"`` or ``"dataset"``.
        name: the registered name, with or without its version (``"keras"``).
        settings: keyword settings passed to the factory (its configuration section).
    """

    kind: str
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def build(self, plugin_manager: Any = None) -> Any:
        """Build the component with ``plugin_manager`` (default: a fresh one).

        Raises:
            RegistryError: the name is unknown.
            PluginError: the component needs a package that is not installed.
        """
        if plugin_manager is None:
            from nasframe.plugins import get_plugin_manager

            plugin_manager = get_plugin_manager()
        return plugin_manager.registry(self.kind).create(self.name, **dict(self.settings))


def _build(component: Any, plugin_manager: Any = None) -> Any:
    return component.build(plugin_manager) if isinstance(component, ComponentSpec) else component


def _ray() -> Any:
    """Import Ray, or say how to install it."""
    try:
        import ray
    except ImportError:
        raise PluginError(
            "parallel evaluation (workers > 1) needs ray, which is not installed; "
            "run: pip install 'nasframe[ray]'"
        ) from None
    return ray


def connect_ray(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Connect to Ray unless this process already is; return whether a cluster was started.

    Args:
        address: an existing cluster (``"auto"``, ``"10.0.0.1:6379"``, ``"ray://..."``);
            ``None`` or ``""``: the ``RAY_ADDRESS`` environment variable if set, else a
            new local Ray instance in this process -- never a cluster Ray finds on its
            own (a ``ray start`` on this machine, or the stale address file of one that
            has ended); pass ``"auto"`` for that.
        num_cpus: CPUs of a locally started instance (default: all).

    Raises:
        PluginError: Ray is not installed.
        NasframeError: the cluster at ``address`` cannot be reached.
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    target = _address(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    local = target == "local"
    if local:
        # Ray's own default would join a cluster it finds in its address file, which
        # outlives the cluster if it crashed; "local" always starts a fresh instance.
        options["address"] = "local"
        if num_cpus is not None:
            options["num_cpus"] = num_cpus
    else:
        options["address"] = target
    # Ray retries an address where nothing listens for many minutes; a host:port that
    # refuses a plain TCP connection is reported at once instead.
    refused = None if local else _unreachable(target)
    try:
        if refused:
            raise ConnectionError(f"nothing answers there ({refused})")
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "locally" if local else f"at {target!r}"
        reason = " ".join(str(exc).split())[:300]
        if local:
            hint = "start one with 'ray start --head' and pass its address"
        elif refused:
            hint = "is the cluster up? 'ray start --head' starts one; 'ray status' checks it"
        else:
            hint = (
                "a cluster that uses token authentication also needs RAY_AUTH_MODE=token "
                "and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here"
            )
        raise NasframeError(
            f"could not start or reach the Ray cluster {where}: {reason} ({hint})"
        ) from None
    return local


def _address(address: str | None) -> str:
    """The cluster address a driver given ``address`` connects to (see connect_ray)."""
    return address or os.environ.get("RAY_ADDRESS") or "local"


def _unreachable(address: str, timeout: float = 10.0) -> str | None:
    """Why a TCP connection to the ``host:port`` of ``address`` fails, or ``None``.

    ``None`` too for addresses without a port (``"auto"``), which Ray resolves itself.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _check_settings(workers: int, num_cpus: float, num_gpus: float, max_retries: int) -> None:
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


class _Worker:
    """The body of one Ray actor: builds the components once, then evaluates on request.

    A failure to build is kept and reported by :meth:`ready`, so the driver can say
    which component failed instead of showing a dead actor's traceback.
    """

    def __init__(self, estimator: Any, dataset: Any, threads: Mapping[str, str]) -> None:
        # Before anything imports TensorFlow or torch: one worker, its own share of cores.
        os.environ.update(threads)
        self.error = ""
        self.estimator: PerformanceEstimator | None = None
        self.dataset: DatasetHandler | None = None
        try:
            self.estimator = _build(estimator)
            self.dataset = _build(dataset)
        except Exception as exc:  # reported to the driver by ready()
            self.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"

    def ready(self) -> tuple[WorkerInfo, str]:
        """Where this worker runs, and its build error (``""`` if none)."""
        import ray

        gpus = tuple(str(gpu) for gpu in ray.get_gpu_ids())
        return WorkerInfo(os.getpid(), ray.util.get_node_ip_address(), gpus), self.error

    def evaluate(self, nsc: str, task: str, seed: int | None) -> Evaluation:
        """Evaluate the network ``nsc`` (its string form) on ``task`` of the dataset."""
        start = time.perf_counter()
        if self.estimator is None or self.dataset is None:
            return Evaluation.failed(Status.ERROR, f"the worker could not build: {self.error}")
        try:
            if self.dataset.task != task:
                self.dataset.select_task(task)
            return self.estimator.evaluate(NSC.parse(nsc), self.dataset, seed=seed)
        except Exception as exc:  # the contract says never raise; a plugin may still do
            return Evaluation.failed(
                Status.ERROR,
                f"estimator {self.estimator.name!r} raised {type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
            )


@dataclass(frozen=True)
class WorkerInfo:
    """A running worker, for logs and tests.

    Attributes:
        pid: the process id of the actor.
        node: the address of the node it runs on.
        gpus: the ids of the GPUs Ray gave it (``CUDA_VISIBLE_DEVICES``); workers with
            fractional ``num_gpus`` share ids.
    """

    pid: int
    node: str
    gpus: tuple[str, ...] = ()


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
        plugin_manager: Any = None,
        address: str | None = None,
        start_timeout: float = 120.0,
        timeout: float | None = None,
    ) -> None:
        _check_settings(workers, num_cpus, num_gpus, max_retries)
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout={timeout!r} is not valid; need seconds > 0 or None")
        super().__init__(
            _build(estimator, plugin_manager),
            _build(dataset, plugin_manager),
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
        self._threads = {
            name: threads
            for name in (
                "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
            )
        }
        ray = _ray()
        self._owns_ray = connect_ray(address)
        self._lock = threading.Condition(threading.RLock())
        self._queue: collections.deque[_Job] = collections.deque()
        self._inflight: dict[CacheKey, Future[Record]] = {}
        self._idle: list[_Slot] = []
        self._running: dict[Any, tuple[_Job, _Slot]] = {}
        self._deadlines: dict[Any, float] = {}
        self._closed = False
        # Put once, shared by every worker (and every replacement) by reference.
        self._shipped = (ray.put(estimator), ray.put(dataset))
        self._actor_class = ray.remote(_Worker).options(
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            max_restarts=0,
            runtime_env={"env_vars": self._threads},
        )
        try:
            slots = [self._new_slot() for _ in range(workers)]
            self._await_ready(slots, start_timeout)
        except BaseException:
            if self._owns_ray:
                ray.shutdown()
            raise
        self._idle = slots
        nodes = {slot.info.node for slot in slots if slot.info}
        log.info(
            "evaluating on %d Ray worker(s) of %s, on %d node(s); each reserves "
            "num_cpus=%g, num_gpus=%g and runs %s thread(s)",
            workers,
            "a local Ray instance" if self._owns_ray else f"the cluster at {_address(address)}",
            len(nodes),
            self.num_cpus,
            self.num_gpus,
            threads,
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

    # -- workers --------------------------------------------------------------------------
    def worker_info(self) -> list[WorkerInfo]:
        """The workers alive now (process, node, GPUs); waits for replacements to start."""
        ray = _ray()
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
        ray = _ray()
        error = NasframeError("the Ray evaluator was closed before the evaluation finished")
        with self._lock:
            for job in list(self._queue) + [job for job, _ in self._running.values()]:
                if not job.future.done():
                    job.future.set_exception(error)
            slots = self._idle + [slot for _, slot in self._running.values()]
            self._queue.clear()
            self._running.clear()
            self._deadlines.clear()
            self._idle = []
            self._inflight.clear()
        for slot in slots:
            ray.kill(slot.actor, no_restart=True)
        if self._owns_ray:
            ray.shutdown()
        self.estimator.close()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------
    def _new_slot(self) -> _Slot:
        actor = self._actor_class.remote(*self._shipped, self._threads)
        return _Slot(actor, actor.ready.remote())

    def _await_ready(self, slots: Sequence[_Slot], timeout: float) -> None:
        ray = _ray()
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
        ray = _ray()
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
        ray = _ray()
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
        ray = _ray()
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
            job.network, evaluation, estimator=self.estimator, dataset=self.dataset, seed=self.seed
        )
        # Key the record by the task it was trained on, even if the env switched since.
        record = replace(record, dataset=job.key.dataset, task=job.task)
        with self._lock:
            self.database.put(record)
            self._inflight.pop(job.key, None)
        # The hook fires in the caller's thread (evaluate_many), not in this one.
        job.future.set_result(record)


# -- vector environments ---------------------------------------------------------------------


def _step_all(
    envs: Sequence[Any], evaluator: Any, actions: Sequence[Any], active: Sequence[bool]
) -> list[tuple[Any, float, bool, bool, dict[str, Any]] | None]:
    """Step every active env: apply all actions, evaluate all networks at once, finish.

    One batched ``evaluate_many`` is what makes the steps parallel; the results come
    back in env order, so the outcome is the same as stepping the envs one by one.
    """
    plans = [
        env.begin_step(action) if on else None
        for env, action, on in zip(envs, actions, active, strict=True)
    ]
    todo = [i for i, plan in enumerate(plans) if plan is not None and plan.nsc is not None]
    networks = [plan.nsc for plan in plans if plan is not None and plan.nsc is not None]
    outcomes = dict(zip(todo, evaluator.evaluate_many(networks), strict=True))
    return [
        None if plan is None else env.finish_step(plan, outcomes.get(i))
        for i, (env, plan) in enumerate(zip(envs, plans, strict=True))
    ]


class NASVectorEnv(gymnasium.vector.VectorEnv):
    """N :class:`~nasframe.NASEnv` stepping together, sharing one evaluator.

    Each ``step`` applies the N actions, evaluates the N new networks with one
    ``evaluator.evaluate_many`` call (in parallel on a :class:`RayEvaluator`, in
    order on an in-process ``Evaluator``) and finishes the N steps. Episodes reset
    automatically in Gymnasium's default ``next-step`` mode: the step after an
    episode ended returns the first observation of the next one (reward 0).

    Args:
        envs: the environments; they should share one search space and encoder.
        evaluator: the evaluator all of them use (default: the first env's).

    Attributes:
        envs: the environments.
        evaluator: the shared evaluator.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(self, envs: Sequence[Any], evaluator: Any = None) -> None:
        if not envs:
            raise ConfigError("a vector env needs at least one environment")
        self.envs = list(envs)
        self.evaluator = evaluator if evaluator is not None else self.envs[0].evaluator
        for env in self.envs:
            env.evaluator = self.evaluator
        self.num_envs = len(self.envs)
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = self.envs[0].render_mode
        self._needs_reset = [False] * self.num_envs

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env; an integer ``seed`` seeds env ``i`` with ``seed + i``."""
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ConfigError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
        observations: list[Any] = []
        infos: dict[str, Any] = {}
        for i, (env, env_seed) in enumerate(zip(self.envs, seeds, strict=True)):
            obs, info = env.reset(seed=env_seed, options=options)
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        self._needs_reset = [False] * self.num_envs
        return np.stack(observations), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all envs with one batched evaluation (see the class docs)."""
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ConfigError(f"step got {len(actions)} actions for {self.num_envs} envs")
        active = [not flag for flag in self._needs_reset]
        results = _step_all(self.envs, self.evaluator, actions, active)
        observations, rewards, terminated, truncated = [], [], [], []
        infos: dict[str, Any] = {}
        for i, (env, result) in enumerate(zip(self.envs, results, strict=True)):
            if result is None:  # ended last step: next-step autoreset
                obs, info = env.reset()
                result = (obs, 0.0, False, False, info)
            obs, reward, term, trunc, info = result
            observations.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            infos = self._add_info(infos, info, i)
        self._needs_reset = [t or u for t, u in zip(terminated, truncated, strict=True)]
        return (
            np.stack(observations),
            np.asarray(rewards, dtype=np.float64),
            np.asarray(terminated, dtype=np.bool_),
            np.asarray(truncated, dtype=np.bool_),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close the envs and the shared evaluator."""
        for env in self.envs:
            env.close()
        close = getattr(self.evaluator, "close", None)
        if close is not None:
            close()


def make_parallel_env(
    *,
    workers: int | None = None,
    address: str | None = None,
    num_envs: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    config: Any = None,
    plugin_manager: Any = None,
    seed: int | None = None,
    search_space: Any = None,
    state_encoder: Any = None,
    estimator: Any = None,
    dataset: Any = None,
    database: Any = None,
    **env_settings: Any,
) -> NASVectorEnv:
    """A :class:`NASVectorEnv` of ``num_envs`` environments evaluating on ``workers`` workers.

    The contract for ``nasframe search --workers N --ray-address A``::

        vector_env = make_parallel_env(config=config, workers=N, address=A or None, seed=s)

    (``workers`` and ``address`` left out come from ``[run] workers`` and
    ``[run] ray_address`` of the configuration.)

    Components and ``env_settings`` are those of :func:`nasframe.make_env` (names or
    instances; unnamed ones come from the configuration's ``[env]`` section), and every
    env shares one search space, encoder, estimator, dataset and database.

    * ``workers == 1`` (the default): no Ray; the envs share one in-process
      :class:`~nasframe.evaluation.Evaluator` and a step evaluates in order.
    * ``workers > 1``: one :class:`RayEvaluator` with ``workers`` actors. An estimator or
      dataset given by *name* (or by the configuration) is shipped as a
      :class:`ComponentSpec` (its registry name and configuration section), built once
      per worker; one given as an *instance* is pickled to the workers.

    Args:
        workers: parallel evaluations (more than 1 uses Ray); default ``[run] workers``.
        address: an existing Ray cluster; default ``[run] ray_address``, where empty
            starts a local one when needed.
        num_envs: environments stepped together (default: ``workers``).
        num_cpus: CPUs per evaluation (Ray); default ``[ray] num_cpus``.
        num_gpus: GPUs per evaluation, fractions allowed (Ray); default ``[ray] num_gpus``.
        max_retries: retries of an evaluation whose worker died (Ray); default
            ``[ray] max_retries``.
        timeout: seconds before a busy worker is stopped and the evaluation stored as
            ``timeout`` (Ray; ``0``: no limit); default ``[ray] timeout``.
        config: a :class:`~nasframe.Config` or the path of an INI file.
        plugin_manager: builds the components (default: a fresh one).
        seed: the estimator's seed; env ``i`` is first reset with ``seed + i`` (as
            ``vector_env.reset(seed=seed)`` does).
        search_space: see :func:`nasframe.make_env`.
        state_encoder: see :func:`nasframe.make_env`.
        estimator: see :func:`nasframe.make_env`.
        dataset: see :func:`nasframe.make_env`.
        database: see :func:`nasframe.make_env`.
        **env_settings: keys of the ``[env]`` section (``max_steps``, ``reward``, ...).

    Raises:
        ConfigError: a setting is out of range.
        RegistryError: a component name is unknown.
        PluginError: a component or Ray needs an extra that is not installed.
        NasframeError: the Ray cluster cannot be reached or lacks the resources.
    """
    import nasframe
    from nasframe.config import Config, load_config
    from nasframe.plugins import get_plugin_manager

    manager = plugin_manager if plugin_manager is not None else get_plugin_manager()
    no_config = config is None
    if not isinstance(config, Config):
        config = load_config(config, plugin_manager=manager)
    if workers is None:
        workers = int(config.get("run", "workers"))
    if address is None:
        address = str(config.get("run", "ray_address") or "") or None
    ray_settings = config.section("ray")
    num_cpus = ray_settings["num_cpus"] if num_cpus is None else num_cpus
    num_gpus = ray_settings["num_gpus"] if num_gpus is None else num_gpus
    max_retries = ray_settings["max_retries"] if max_retries is None else max_retries
    timeout = (ray_settings["timeout"] if timeout is None else timeout) or None
    _check_settings(workers, num_cpus, num_gpus, max_retries)
    count = workers if num_envs is None else num_envs
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"num_envs={num_envs!r} is not valid; need an integer >= 1")
    parts: dict[str, Any] = {
        "search_space": search_space,
        "state_encoder": state_encoder,
        "estimator": estimator,
        "dataset": dataset,
        "database": database,
    }
    if database is None and no_config:
        parts["database"] = "memory"  # as make_env: a quick script writes no files
    evaluator: Any = None
    if workers > 1:

        def spec(kind: str) -> Any:
            given = parts[kind]
            if given is not None and not isinstance(given, str):
                return given  # an instance: pickled to the workers
            info = manager.registry(kind).get(given or config.get("env", kind))
            return ComponentSpec(kind, info.name, config.component_settings(info))

        if parts["database"] is None or isinstance(parts["database"], str):
            # The driver owns the database: build it here, as make_env would.
            name = parts["database"] or config.get("env", "database")
            info = manager.registry("database").get(name)
            settings = config.component_settings(info)
            parts["database"] = manager.registry("database").create(info.name, **settings)
        evaluator = RayEvaluator(
            spec("estimator"),
            spec("dataset"),
            parts["database"],
            workers=workers,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_retries=max_retries,
            timeout=timeout,
            seed=seed,
            retry_transient=bool(
                env_settings.get("retry_transient", config.get("env", "retry_transient"))
            ),
            plugin_manager=manager,
            address=address,
        )
        parts["estimator"], parts["dataset"] = evaluator.estimator, evaluator.dataset
    envs: list[Any] = []
    try:
        _make_envs(envs, count, nasframe.make_env, parts, config, manager, seed, env_settings)
    except BaseException:
        if evaluator is not None:
            evaluator.close()  # do not leave the workers running
        raise
    return NASVectorEnv(envs, evaluator)


def _make_envs(
    envs: list[Any],
    count: int,
    make_env: Any,
    parts: dict[str, Any],
    config: Any,
    manager: Any,
    seed: int | None,
    env_settings: Mapping[str, Any],
) -> None:
    for i in range(count):
        # Env i starts from seed + i, so the envs do not all search the same episodes;
        # the evaluator (env 0's, or the Ray one) uses ``seed`` itself.
        env = make_env(
            config=config,
            plugin_manager=manager,
            seed=None if seed is None else seed + i,
            **parts,
            **env_settings,
        )
        # Every env shares the first one's components (and so its cache).
        parts.update(
            search_space=env.search_space,
            state_encoder=env.state_encoder,
            estimator=env.estimator,
            dataset=env.dataset,
            database=env.database,
        )
        envs.append(env)


def to_sb3(vector_env: NASVectorEnv) -> Any:
    """Stable-Baselines3's view of ``vector_env``: a ``VecEnv`` over the same envs.

    It steps the envs exactly as :class:`NASVectorEnv` does (one batched evaluation per
    step) but resets in SB3's way: an env whose episode ended is reset in the same step,
    its last observation goes to ``info["terminal_observation"]`` and
    ``info["TimeLimit.truncated"]`` says whether the step limit ended it. Seeds set with
    ``vec_env.seed(s)`` reach env ``i`` as ``s + i`` at the next ``reset()``.

    Raises:
        PluginError: Stable-Baselines3 is not installed (the ``rl`` extra).
    """
    if "sb3" not in _CLASSES:
        _CLASSES["sb3"] = _sb3_class()
    return _CLASSES["sb3"](vector_env)


_CLASSES: dict[str, type] = {}


def _sb3_class() -> type:
    try:
        from stable_baselines3.common.env_util import is_wrapped
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError:
        raise PluginError(
            "the SB3 adapter needs stable-baselines3, which is not installed; "
            "run: pip install 'nasframe[rl]'"
        ) from None

    class SB3NASVecEnv(VecEnv):
        """A Stable-Baselines3 ``VecEnv`` over a :class:`NASVectorEnv` (see :func:`to_sb3`)."""

        def __init__(self, vector_env: NASVectorEnv) -> None:
            self.vector_env = vector_env
            self.envs = vector_env.envs
            super().__init__(
                vector_env.num_envs,
                vector_env.single_observation_space,
                vector_env.single_action_space,
            )
            self._actions: list[int] = []

        def reset(self) -> np.ndarray:
            observations = []
            for i, env in enumerate(self.envs):
                obs, self.reset_infos[i] = env.reset(
                    seed=self._seeds[i], options=self._options[i] or None
                )
                observations.append(obs)
            self._reset_seeds()
            self._reset_options()
            return np.stack(observations)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = [int(action) for action in actions]

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            results = _step_all(
                self.envs, self.vector_env.evaluator, self._actions, [True] * self.num_envs
            )
            observations, rewards, dones, infos = [], [], [], []
            for i, (env, result) in enumerate(zip(self.envs, results, strict=True)):
                assert result is not None  # every env was active
                obs, reward, terminated, truncated, info = result
                info = dict(info, **{"TimeLimit.truncated": truncated and not terminated})
                if terminated or truncated:
                    info["terminal_observation"] = obs
                    obs, self.reset_infos[i] = env.reset()
                observations.append(obs)
                rewards.append(reward)
                dones.append(terminated or truncated)
                infos.append(info)
            return (
                np.stack(observations),
                np.asarray(rewards, dtype=np.float32),
                np.asarray(dones, dtype=np.bool_),
                infos,
            )

        def close(self) -> None:
            self.vector_env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            for i in self._get_indices(indices):
                setattr(self.envs[i], attr_name, value)

        def env_method(
            self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
        ) -> list[Any]:
            return [
                getattr(self.envs[i], method_name)(*args, **kwargs)
                for i in self._get_indices(indices)
            ]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [is_wrapped(self.envs[i], wrapper_class) for i in self._get_indices(indices)]

    return SB3NASVecEnv
