"""The asynchronous search on a local Ray instance (2 CPUs), started once for the module.

The searches use the proxy estimator; the fault tests a real estimator of this module
that sleeps, logs one line per evaluation (so trainings are counted across worker
processes) and can kill its worker process.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, PerformanceEstimator
from nasframe.distributed import RayEvaluator, connect_ray
from nasframe.distributed.scheduler import AsyncScheduler
from nasframe.results import StepLog
from nasframe.search import run_search

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_async_search import BigImages, setup  # noqa: E402


class SleepyEstimator(PerformanceEstimator):
    """Scores by hash after ``sleep`` seconds; logs ``pid start|end nsc``; may kill itself.

    Args:
        log: the file that gets one ``start`` and one ``end`` line per evaluation.
        sleep: seconds each evaluation takes.
        crash_on: an NSC string whose first evaluation kills the worker (``os._exit``);
            a marker file beside ``log`` remembers that it did.
    """

    name = "sleepy"
    version = "1"

    def __init__(self, log: Path, *, sleep: float = 0.3, crash_on: str = "") -> None:
        self.log = Path(log)
        self.sleep = sleep
        self.crash_on = crash_on

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {})

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        with self.log.open("a") as handle:
            handle.write(f"{os.getpid()} start {architecture}\n")
        marker = self.log.with_suffix(".crashed")
        if str(architecture) == self.crash_on and not marker.exists():
            marker.touch()
            os._exit(3)
        time.sleep(self.sleep)
        digest = hashlib.sha256(architecture.canonical_hash.encode()).digest()
        with self.log.open("a") as handle:
            handle.write(f"{os.getpid()} end {architecture}\n")
        return Evaluation(accuracy=digest[0] / 255, seconds=self.sleep, epochs=1)


class FixedEpisodes:
    """An ask/tell agent that asks the given episodes in turn (and records what it is told)."""

    def __init__(self, episodes: list[list[int]]) -> None:
        self.episodes = list(episodes)
        self.told: list[tuple[list[int], float]] = []

    def ask(self) -> list[int]:
        return self.episodes.pop(0)

    def tell(self, actions: list[int], reward: float) -> None:
        self.told.append((actions, reward))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = connect_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def quiet() -> Console:
    return Console(file=io.StringIO(), width=100)


def _starts(log: Path) -> list[str]:
    return [line.split(" ", 2)[2] for line in log.read_text().splitlines() if " start " in line]


def _envs(count: int, estimator: Any, workers: int = 2) -> tuple[list[Any], RayEvaluator]:
    rng = np.random.default_rng(0)
    dataset = nasframe.ArrayDataset.from_arrays(
        "small", rng.random((8, 16, 16, 1)), rng.integers(0, 2, 8), num_classes=2
    )
    first = nasframe.make_env(estimator=estimator, dataset=dataset, database="memory")
    evaluator = RayEvaluator(estimator, dataset, first.database, workers=workers, num_cpus=0.5)
    envs = [first] + [
        nasframe.make_env(
            search_space=first.search_space,
            state_encoder=first.state_encoder,
            estimator=estimator,
            dataset=dataset,
            database=first.database,
        )
        for _ in range(count - 1)
    ]
    for env in envs:
        env.evaluator = evaluator
    return envs, evaluator


def test_async_search_on_two_workers_evaluates_the_serial_set(
    ray_cluster: None, tmp_path: Path
) -> None:
    # Workers build the dataset by name: a bundled one, whose 20x20 images no chain of
    # two layers exhausts (no evaluation fails, so no episode ends early).
    env = {"dataset": "shifted-digits", "max_steps": 2}
    serial_config, manager, serial = setup(tmp_path / "serial", env=env, episodes=20, steps=0)
    run_search(serial_config, plugin_manager=manager, console=quiet())
    config, manager, plugin = setup(tmp_path / "async", env=env, episodes=20, steps=0, workers=2)
    config = config.with_overrides({"ray": {"num_cpus": 0.5}})
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.episodes == 20
    assert "asynchronous search: 2 worker(s)" in (run.output / "search.log").read_text()
    assert {r.arch_hash for r in plugin.database} == {r.arch_hash for r in serial.database}
    rows = StepLog(run.output / "steps.csv").read()
    assert sum(row.done for row in rows) == 20
    assert run.session_trainings == len(plugin.database)  # each trained once


def test_two_episodes_drawing_one_architecture_at_once_train_it_once(
    ray_cluster: None, tmp_path: Path
) -> None:
    log = tmp_path / "evaluations.log"
    envs, evaluator = _envs(3, SleepyEstimator(log, sleep=0.5))
    # conv k3 then terminal, three times at once; then conv k5 alone
    agent = FixedEpisodes([[1, 7], [1, 7], [1, 7], [2, 7]])
    try:
        loop = AsyncScheduler(envs, evaluator, agent, workers=2)
        loop.run(episodes=4)
    finally:
        evaluator.close()
    starts = _starts(log)
    assert sorted(starts) == sorted(set(starts)) == ["1,1,3,0,0", "1,1,5,0,0"]
    assert evaluator.joined >= 2 and len(agent.told) == 4
    assert [actions for actions, _ in agent.told].count([1, 7]) == 3


def test_worker_killed_mid_evaluation_is_retried_and_the_search_goes_on(
    ray_cluster: None, tmp_path: Path
) -> None:
    log = tmp_path / "evaluations.log"
    envs, evaluator = _envs(2, SleepyEstimator(log, sleep=0.2, crash_on="1,1,5,0,0"))
    agent = FixedEpisodes([[1, 7], [2, 7], [0, 7], [3, 7]])
    try:
        loop = AsyncScheduler(envs, evaluator, agent, workers=2)
        assert loop.run(episodes=4) == 8
        assert evaluator.worker_deaths == 1 and evaluator.retries == 1
        record = evaluator.lookup(NSC.parse("1,1,5,0,0"))
    finally:
        evaluator.close()
    assert record is not None and record.evaluation.status == "ok"
    assert _starts(log).count("1,1,5,0,0") == 2  # killed once, then trained
    assert len(agent.told) == 4


def test_async_ray_search_stopped_and_resumed_loses_no_stored_result(
    ray_cluster: None, tmp_path: Path
) -> None:
    from nasframe_memory import MemoryDB

    database = MemoryDB()
    env = {"dataset": "digits"}
    plugin = BigImages(database, stop_after=6)
    config, manager, _ = setup(tmp_path, plugin, env=env, steps=60, workers=2)
    config = config.with_overrides({"ray": {"num_cpus": 0.5}})
    first = run_search(config, plugin_manager=manager, console=quiet())
    assert first.outcome == "interrupted"
    stored = {record.arch_hash for record in database}
    assert len(stored) == first.session_trainings >= 6
    logged = StepLog(first.output / "steps.csv").read()
    assert {row.arch_hash for row in logged if not row.cache_hit} == stored

    config2, manager2, _ = setup(tmp_path, BigImages(database), env=env, steps=60, workers=2)
    config2 = config2.with_overrides({"ray": {"num_cpus": 0.5}})
    second = run_search(config2, plugin_manager=manager2, console=quiet())
    assert second.outcome == "completed" and second.steps == 60
    assert stored <= {record.arch_hash for record in database}
    assert first.session_trainings + second.session_trainings == len(database)


def test_kept_workers_serve_the_next_search_with_the_same_components(ray_cluster: None) -> None:
    from nasframe_memory import MemoryDB

    from nasframe.distributed import ComponentSpec, stop_kept_workers

    specs = (ComponentSpec("estimator", "proxy"), ComponentSpec("dataset", "digits"))
    first = RayEvaluator(*specs, MemoryDB(), workers=2, num_cpus=0.5, keep_workers=True)
    try:
        assert first.reused == 0
        pids = {info.pid for info in first.worker_info()}
        assert first.evaluate(NSC.parse("1,1,3,0,0")).evaluation.status == "ok"
    finally:
        first.close()
    second = RayEvaluator(*specs, MemoryDB(), workers=2, num_cpus=0.5, keep_workers=True)
    try:
        assert second.reused == 2 and {info.pid for info in second.worker_info()} == pids
        assert second.evaluate(NSC.parse("1,1,5,0,0")).evaluation.status == "ok"
    finally:
        second.close()
    # other resources: other workers (and the kept ones stay for their own kind)
    other = RayEvaluator(*specs, MemoryDB(), workers=1, num_cpus=0.25, keep_workers=True)
    try:
        assert other.reused == 0 and {info.pid for info in other.worker_info()}.isdisjoint(pids)
    finally:
        other.close()
    assert stop_kept_workers() == 3
    assert stop_kept_workers() == 0


def test_lockstep_steps_more_environments_than_workers(ray_cluster: None, tmp_path: Path) -> None:
    config, manager, plugin = setup(
        tmp_path, env={"dataset": "digits"}, steps=24, workers=2, scheduler="lockstep", envs=4
    )
    config = config.with_overrides({"ray": {"num_cpus": 0.5}})
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.env.num_envs == 4
    assert run.evaluator.workers == 2
    assert "asynchronous" not in (run.output / "search.log").read_text()
    assert run.session_trainings == len(plugin.database)
