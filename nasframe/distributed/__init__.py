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

The modules of this package:

* ``cluster`` -- :func:`connect_ray`: a fresh local instance or an existing cluster;
* ``components`` -- :class:`ComponentSpec`, a component shipped by name and settings;
* ``worker`` -- the Ray actor that builds the components once and evaluates, and
  :class:`WorkerInfo`;
* ``evaluator`` -- :class:`RayEvaluator`: the pool, the in-flight table, retries and
  timeouts, workers kept between searches (:func:`stop_kept_workers`);
* ``scheduler`` -- :class:`~nasframe.distributed.scheduler.AsyncScheduler`: ask/tell
  agents run asynchronously over any evaluator's ``submit``;
* ``simulation`` -- a cluster simulated with a virtual clock (the real schedulers,
  NSC-Bench durations);
* ``vector_env`` -- :class:`NASVectorEnv` and :func:`make_parallel_env`;
* ``sb3`` -- :func:`to_sb3`, deprecated: the Stable-Baselines3 ``VecEnv`` adapter moved
  into the agents plugin (SB3 agents adapt a vector env themselves).
"""

from __future__ import annotations

from nasframe.distributed.cluster import connect_ray
from nasframe.distributed.components import ComponentSpec
from nasframe.distributed.evaluator import RayEvaluator, stop_kept_workers
from nasframe.distributed.sb3 import to_sb3
from nasframe.distributed.vector_env import NASVectorEnv, make_parallel_env
from nasframe.distributed.worker import WorkerInfo

__all__ = [
    "ComponentSpec",
    "NASVectorEnv",
    "RayEvaluator",
    "WorkerInfo",
    "connect_ray",
    "make_parallel_env",
    "stop_kept_workers",
    "to_sb3",
]
