"""The Ray actor that evaluates: it builds the components once and holds them."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasframe.contracts import (
    DatasetHandler,
    Evaluation,
    PerformanceEstimator,
    Status,
)
from nasframe.distributed.components import build_component
from nasframe.nsc import NSC


class EvaluationWorker:
    """The body of one Ray actor: builds the components once, then evaluates on request.

    A failure to build is kept and reported by :meth:`ready`, so the driver can say
    which component failed instead of showing a dead actor's traceback.
    """

    def __init__(self, estimator: Any, dataset: Any, environment: Mapping[str, str]) -> None:
        # Before anything imports TensorFlow or torch: one worker, its own share of cores.
        os.environ.update(environment)
        self.error = ""
        self.estimator: PerformanceEstimator | None = None
        self.dataset: DatasetHandler | None = None
        try:
            self.estimator = build_component(estimator)
            self.dataset = build_component(dataset)
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
