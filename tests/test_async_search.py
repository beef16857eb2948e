"""The asynchronous search without Ray: ask/tell, the scheduler, the simulated cluster.

The same scheduler runs on Ray in ``tests/test_async_ray.py``; here it runs over the
in-process evaluator (``[run] scheduler = async`` with one worker) and over the
simulated cluster, with the proxy estimator or one that fails a third of the networks
by their hash, and the real ``random`` and ``rea`` agents.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from nasframe_memory import MemoryDB
from rich.console import Console

import nasframe
from nasframe.bench import BenchTable, TableRow
from nasframe.distributed.scheduler import AsyncScheduler
from nasframe.distributed.simulation import (
    SimulatedEvaluator,
    TableTimedEstimator,
    simulate,
)
from nasframe.results import StepLog
from nasframe.search import run_search

ROWS = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "nsc-bench-v1-rows.csv"

#: The hooks these tests see fired (checked by tests/test_hooks_meta.py).
EXERCISED_HOOKS = ("nasframe_evaluation_stored", "nasframe_register_estimators")


class BigImages:
    """A dataset of 300x300 images (no chain of 4 layers runs out of space) and a DB."""

    def __init__(self, database: MemoryDB | None = None, stop_after: int = 0) -> None:
        self.database = database if database is not None else MemoryDB()
        self.stop_after = stop_after
        self.stored = 0

    @nasframe.hookimpl
    def nasframe_register_datasets(self, registry: nasframe.Registry) -> None:
        def big() -> nasframe.ArrayDataset:
            rng = np.random.default_rng(0)
            x, y = rng.random((4, 300, 300, 1)), rng.integers(0, 3, 4)
            return nasframe.ArrayDataset(
                "big", {s: (x, y) for s in ("train", "validation", "test")}
            )

        registry.add("big-v1", big, summary="4 random 300x300 images")

    @nasframe.hookimpl
    def nasframe_register_experiment_dbs(self, registry: nasframe.Registry) -> None:
        registry.add("shared-v1", lambda **_: self.database, summary="one MemoryDB per test")

    @nasframe.hookimpl
    def nasframe_evaluation_stored(self, record: nasframe.Record) -> None:
        self.stored += 1
        if self.stop_after and self.stored == self.stop_after:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-run


class HashFailingEstimator(nasframe.PerformanceEstimator):
    """Scores a network by its hash and fails a third of them (status ``invalid``) by it.

    Deterministic, so a serial and an asynchronous search agree on every result; the
    reported duration (1 to 8 s, also by hash) makes a simulated cluster return results
    out of the order they were asked.
    """

    name = "hash-failing"
    version = "1"

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {})

    def evaluate(
        self, architecture: nasframe.NSC, dataset: Any, *, seed: int | None = None
    ) -> nasframe.Evaluation:
        digest = hashlib.sha256(architecture.canonical_hash.encode()).digest()
        seconds = 1.0 + digest[2] % 8
        if digest[0] % 3 == 0:
            return nasframe.Evaluation.failed("invalid", "fails by its hash", seconds=seconds)
        return nasframe.Evaluation(accuracy=digest[1] / 255, seconds=seconds, epochs=1)


class FailingNetworks(BigImages):
    """:class:`BigImages` plus the estimator ``hash-failing-v1``."""

    @nasframe.hookimpl
    def nasframe_register_estimators(self, registry: nasframe.Registry) -> None:
        registry.add("hash-failing-v1", HashFailingEstimator, summary="fails a third by hash")


def setup(
    tmp_path: Path, plugin: BigImages | None = None, env: dict[str, Any] | None = None, **run: Any
) -> tuple[nasframe.Config, nasframe.PluginManager, BigImages]:
    plugin = plugin or BigImages()
    manager = nasframe.get_plugin_manager(plugins=[("async-test", plugin)])
    values: dict[str, Any] = {"output": tmp_path / "out", "verbosity": 0, "seed": 3}
    values.update(run)
    env = {"estimator": "proxy", "dataset": "big", "database": "shared", "max_steps": 4} | (
        env or {}
    )
    config = nasframe.load_config(None, {"run": values, "env": env}, plugin_manager=manager)
    return config, manager, plugin


def quiet() -> Console:
    return Console(file=io.StringIO(), width=100)


def big_env(**kwargs: Any) -> Any:
    plugin = BigImages()
    manager = nasframe.get_plugin_manager(plugins=[("async-test", plugin)])
    settings = {"estimator": "proxy", "dataset": "big", "database": "memory"} | kwargs
    return nasframe.make_env(plugin_manager=manager, **settings)


# -- ask/tell ---------------------------------------------------------------------------------
def test_random_agent_is_an_ask_tell_agent_and_its_episodes_end_where_the_env_ends() -> None:
    env = big_env(max_steps=4)
    agent = nasframe.make_agent("random", env, seed=0)
    assert isinstance(agent, nasframe.AskTellAgent)
    lengths, told = set(), 0
    for _ in range(40):
        actions = agent.ask()
        env.reset()
        for i, action in enumerate(actions):
            _, _, terminated, truncated, info = env.step(action)
            assert (terminated or truncated) == (i == len(actions) - 1), info
        lengths.add(len(actions))
        agent.tell(actions, 0.5)
        told += len(actions)
    assert len(lengths) > 2 and max(lengths) <= 4
    assert agent.num_timesteps == told  # tell counts the steps


def test_an_agent_without_ask_and_tell_is_not_an_ask_tell_agent() -> None:
    class LearnOnly:
        def ask(self) -> list[int]:
            return [0]

    assert not isinstance(LearnOnly(), nasframe.AskTellAgent)


def test_ask_outside_a_nasframe_env_is_a_one_line_error() -> None:
    env = gymnasium.make("CartPole-v1")
    agent = nasframe.make_agent("random", env, seed=0)
    with pytest.raises(nasframe.ConfigError, match=r"^agent 'random' can only ask .*CartPole"):
        agent.ask()


# -- the search ---------------------------------------------------------------------------------
def test_async_search_evaluates_the_serial_set_of_architectures(tmp_path: Path) -> None:
    serial_config, manager, serial = setup(tmp_path / "serial", episodes=25, steps=0)
    run_search(serial_config, plugin_manager=manager, console=quiet())
    async_config, manager, asynchronous = setup(
        tmp_path / "async", episodes=25, steps=0, scheduler="async"
    )
    run = run_search(async_config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.episodes == 25
    assert {r.arch_hash for r in asynchronous.database} == {r.arch_hash for r in serial.database}
    assert len(asynchronous.database) >= 10
    rows = StepLog(run.output / "steps.csv").read()
    assert sum(row.done for row in rows) == 25 and [r.step for r in rows] == list(
        range(1, len(rows) + 1)
    )
    assert (run.output / "summary.json").is_file()


def test_async_random_search_evaluates_the_serial_set_also_when_evaluations_fail(
    tmp_path: Path,
) -> None:
    # A failed evaluation ends its episode before the actions the agent drew for it run
    # out; the draws of later episodes must not shift because of it.
    env = {"estimator": "hash-failing"}
    serial_config, manager, serial = setup(
        tmp_path / "serial", FailingNetworks(), env=env, episodes=40, steps=0
    )
    run_search(serial_config, plugin_manager=manager, console=quiet())
    async_config, manager, asynchronous = setup(
        tmp_path / "async", FailingNetworks(), env=env, episodes=40, steps=0, scheduler="async"
    )
    run = run_search(async_config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.episodes == 40
    failed = [r for r in serial.database if r.evaluation.status != "ok"]
    rows = StepLog(run.output / "steps.csv").read()
    # failures ended episodes early (before max_steps and without the terminal action)
    assert len(failed) >= 3 and sum(row.done and row.status == "invalid" for row in rows) >= 3
    assert {r.arch_hash for r in asynchronous.database} == {r.arch_hash for r in serial.database}


def test_async_search_keeps_a_step_budget(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, steps=37, scheduler="async")
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.steps == 37
    assert len(StepLog(run.output / "steps.csv").read()) == 37


def test_async_stop_and_resume_loses_no_stored_result(tmp_path: Path) -> None:
    database = MemoryDB()
    plugin = BigImages(database, stop_after=8)
    config, manager, _ = setup(tmp_path, plugin, steps=80, scheduler="async")
    first = run_search(config, plugin_manager=manager, console=quiet())
    assert first.outcome == "interrupted" and first.stop_reason == "SIGINT"
    stored = {record.arch_hash for record in database}
    assert len(stored) == first.session_trainings >= 8
    logged = StepLog(first.output / "steps.csv").read()
    assert {row.arch_hash for row in logged if not row.cache_hit} == stored

    config2, manager2, _ = setup(tmp_path, BigImages(database), steps=80, scheduler="async")
    second = run_search(config2, plugin_manager=manager2, console=quiet())
    assert second.outcome == "completed" and second.steps == 80
    assert stored <= {record.arch_hash for record in database}
    # nothing trained twice: every training of both sessions made a new record
    assert first.session_trainings + second.session_trainings == len(database)
    rows = StepLog(second.output / "steps.csv").read()
    assert [row.step for row in rows] == list(range(1, 81))


def test_rea_search_runs_asynchronously_and_resumes_its_population(tmp_path: Path) -> None:
    def rea_config(episodes: int) -> tuple[nasframe.Config, nasframe.PluginManager]:
        config, manager, _ = setup(
            tmp_path, plugin, episodes=episodes, steps=0, scheduler="async", agent="rea"
        )
        return config.with_overrides({"rea": {"population": 4, "sample": 2}}), manager

    plugin = BigImages()
    config, manager = rea_config(12)
    first = run_search(config, plugin_manager=manager, console=quiet())
    assert first.outcome == "completed" and first.episodes == 12
    assert "asynchronous search" in (first.output / "search.log").read_text()
    saved = json.loads((first.output / "agent.json").read_text())
    # every episode the scheduler told counts its steps in the checkpoint
    assert saved["state"]["told"] == 12 and saved["steps"] == first.steps
    assert len(saved["state"]["population"]) == 4

    config, manager = rea_config(20)  # the budget extended: the population goes on
    second = run_search(config, plugin_manager=manager, console=quiet())
    assert second.outcome == "completed" and second.episodes == 20
    saved = json.loads((second.output / "agent.json").read_text())
    assert saved["state"]["told"] == 20 and saved["steps"] == second.steps
    rows = StepLog(second.output / "steps.csv").read()
    assert sum(row.done for row in rows) == 20


def test_async_needs_an_ask_tell_agent_and_no_meta_rl(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, steps=5, scheduler="async", agent="a2c")
    with pytest.raises(nasframe.ConfigError, match=r"^\[run\] scheduler = async needs an ask/tell"):
        run_search(config, plugin_manager=manager, console=quiet())
    config, manager, _ = setup(tmp_path / "meta", steps=5, scheduler="async", meta_rl=True)
    with pytest.raises(nasframe.ConfigError, match=r"does not work with \[run\] meta_rl"):
        run_search(config, plugin_manager=manager, console=quiet())


def test_unknown_scheduler_is_refused_by_the_config(tmp_path: Path) -> None:
    with pytest.raises(nasframe.ConfigError, match="scheduler"):
        setup(tmp_path, scheduler="fastest")


# -- the scheduler and the simulated cluster -----------------------------------------------------
def _sim_envs(
    count: int, workers: int, estimator: Any = None
) -> tuple[list[Any], SimulatedEvaluator]:
    estimator = estimator if estimator is not None else TableTimedEstimator(ROWS)
    first = big_env(max_steps=4, seed=0)
    evaluator = SimulatedEvaluator(estimator, first.dataset, first.database, workers=workers)
    envs = [first] + [
        nasframe.make_env(
            search_space=first.search_space,
            state_encoder=first.state_encoder,
            estimator=estimator,
            dataset=first.dataset,
            database=first.database,
            max_steps=4,
        )
        for _ in range(count - 1)
    ]
    for env in envs:
        env.evaluator = evaluator
    return envs, evaluator


def test_scheduler_keeps_budgets_and_tells_every_finished_episode() -> None:
    envs, evaluator = _sim_envs(6, workers=3)
    agent = nasframe.make_agent("random", envs[0], seed=1)
    ended: list[int] = []
    loop = AsyncScheduler(
        envs,
        evaluator,
        agent,
        workers=3,
        on_step=lambda slot, action, reward, term, trunc, info: ended.append(int(term or trunc)),
    )
    assert loop.run(steps=25) == 25 == len(ended) == loop.steps
    assert loop.episodes == sum(ended) < loop.asked  # episodes still open were not told
    told = agent.num_timesteps
    taken = loop.run(episodes=7)
    # the second call asked 7 episodes and ran each to its end
    assert loop.episodes - sum(ended[:25]) == 7 == sum(ended[25:])
    assert agent.num_timesteps - told == taken
    assert evaluator.in_flight == 0 and evaluator.now > 0


class Observed:
    """An ask/tell agent's proxy that records every episode asked and told, in order."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.name = agent.name
        self.asked: list[list[int]] = []
        self.told: list[list[int]] = []

    def ask(self) -> list[int]:
        actions = self.agent.ask()
        self.asked.append(list(actions))
        return actions

    def tell(self, actions: list[int], reward: float) -> None:
        self.told.append(list(actions))
        self.agent.tell(actions, reward)


class Watched(SimulatedEvaluator):
    """A simulated cluster that records how many workers are busy at each wait."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[int] = []

    def wait(self, pending: Any, timeout: float | None = None) -> set[Any]:
        self.waits.append(len(self._running))
        return super().wait(pending, timeout)


def _told_before_asked(observed: Observed) -> bool:
    """Whether some episode was told before an episode asked earlier (asynchrony)."""
    order: list[int] = []
    for actions in observed.told:  # an episode that ended early took a prefix
        order.append(
            next(
                i
                for i, asked in enumerate(observed.asked)
                if i not in order and asked[: len(actions)] == actions
            )
        )
    return order != sorted(order)


def test_async_random_search_on_a_cluster_evaluates_the_serial_set_despite_failures() -> None:
    # The results come back out of order (durations 1-8 s on 3 workers) and a third of
    # them fail: the episodes asked are still those of the serial search.
    serial_env = big_env(max_steps=4, estimator=HashFailingEstimator())

    def episodes_left() -> bool:
        return serial_env.last_episode is None or serial_env.last_episode.number < 30

    nasframe.make_agent("random", serial_env, seed=5).learn(10**6, episodes_left)

    envs, evaluator = _sim_envs(6, workers=3, estimator=HashFailingEstimator())
    agent = Observed(nasframe.make_agent("random", envs[0], seed=5))
    AsyncScheduler(envs, evaluator, agent, workers=3, poll=0.0).run(episodes=30)
    assert _told_before_asked(agent) and evaluator.busy_seconds > 2 * evaluator.now
    failed = [r for r in evaluator.database if r.evaluation.status == "invalid"]
    assert len(failed) >= 3
    assert {r.arch_hash for r in evaluator.database} == {r.arch_hash for r in serial_env.database}


def test_rea_runs_asynchronously_on_several_workers() -> None:
    # rea-v1 through the scheduler on 3 simulated workers: a new architecture is
    # dispatched whenever one returns, so the workers stay full and the tells come back
    # in the order the evaluations end, not the order they were asked.
    envs, _ = _sim_envs(6, workers=3, estimator=HashFailingEstimator())
    first = envs[0]
    evaluator = Watched(first.evaluator.estimator, first.dataset, first.database, workers=3)
    for env in envs:
        env.evaluator = evaluator
    rea: Any = nasframe.make_agent("rea", first, seed=2, population=6, sample=3)
    agent = Observed(rea)
    loop = AsyncScheduler(envs, evaluator, agent, workers=3, poll=0.0)
    steps = loop.run(episodes=40)
    assert loop.episodes == len(agent.told) == 40 and steps == rea.num_timesteps > 40
    assert rea.told == 40 and len(rea.population) == 6
    assert max(evaluator.waits) == 3 and _told_before_asked(agent)
    # the workers are kept full: nearly every time the scheduler waits, all three are
    # busy (fewer only while every open episode waits for a network already training)
    busy = [count for count in evaluator.waits if count]
    assert sum(count == 3 for count in busy) >= 0.8 * len(busy)
    assert evaluator.utilization() > 0.9
    # after the population filled, proposals are mutants of told episodes
    assert len({tuple(actions) for actions in agent.asked[6:]}) > 10
    assert isinstance(rea, nasframe.AskTellAgent)  # what --workers N checks to run it so


class Scripted:
    """An ask/tell agent that asks the given episodes in turn and records what it is told."""

    def __init__(self, episodes: list[list[int]]) -> None:
        self.episodes = list(episodes)
        self.told: list[list[int]] = []

    def ask(self) -> list[int]:
        return self.episodes.pop(0)

    def tell(self, actions: list[int], reward: float) -> None:
        self.told.append(actions)


def test_episodes_drawing_one_architecture_at_once_train_it_once_on_the_cluster() -> None:
    # Three episodes open at once build conv k3 (then the terminal action) on two
    # workers: one training, the others wait for its record; the fourth trains conv k5.
    envs, evaluator = _sim_envs(4, workers=2)
    agent = Scripted([[1, 7], [1, 7], [1, 7], [2, 7]])
    assert AsyncScheduler(envs, evaluator, agent, workers=2, poll=0.0).run(episodes=4) == 8
    assert evaluator.trainings == len(evaluator.database) == 2 and evaluator.joined == 2
    assert sorted(r.nsc for r in evaluator.database) == ["1,1,3,0,0", "1,1,5,0,0"]
    assert agent.told.count([1, 7]) == 3 and len(agent.told) == 4


def test_simulated_workers_train_an_architecture_once_and_queue_the_rest() -> None:
    envs, evaluator = _sim_envs(1, workers=2)
    a, b, c = (nasframe.NSC.parse(s) for s in ("1,1,3,0,0", "1,2,2,0,0", "1,1,5,0,0"))
    futures = [evaluator.submit(nsc) for nsc in (a, a, b, c)]
    assert evaluator.trainings == 3 and evaluator.joined == 1 and evaluator.in_flight == 3
    done = evaluator.wait(futures)
    assert done and evaluator.now > 0
    outcomes = evaluator.evaluate_many([a, b, c])
    assert all(future.done() for future in futures) and evaluator.in_flight == 0
    assert futures[0].result().record == futures[1].result().record
    assert [o.cache_hit for o in outcomes] == [True, True, True]
    assert [futures[0].result().cache_hit, futures[1].result().cache_hit] == [False, True]
    # three trainings on two workers: the third waited for a free one
    seconds = sorted(
        TableTimedEstimator(ROWS).evaluate(n, envs[0].dataset).seconds for n in (a, b, c)
    )
    assert evaluator.busy_seconds == pytest.approx(sum(seconds))
    assert evaluator.now >= seconds[0] + min(seconds[1:]) - 1e-9


def test_simulation_async_keeps_workers_busier_than_lockstep() -> None:
    estimator = TableTimedEstimator(ROWS)
    lockstep = simulate("lockstep", 8, trainings=80, estimator=estimator)
    asynchronous = simulate("async", 8, trainings=80, estimator=estimator)
    assert lockstep.trainings >= 80 and asynchronous.trainings >= 80
    assert asynchronous.utilization > lockstep.utilization
    assert asynchronous.per_hour > lockstep.per_hour
    assert 0 < lockstep.utilization <= 1 and 0 < asynchronous.utilization <= 1


def test_simulation_settings_are_checked(tmp_path: Path) -> None:
    estimator = TableTimedEstimator(ROWS)
    with pytest.raises(nasframe.ConfigError, match=r"scheduler='fifo' is not known"):
        simulate("fifo", 2, trainings=5, estimator=estimator)
    with pytest.raises(nasframe.ConfigError, match=r"workers=0 is not valid"):
        simulate("async", 0, trainings=5, estimator=estimator)
    with pytest.raises(nasframe.ConfigError, match=r"no row of the table records a duration"):
        TableTimedEstimator(BenchTable([TableRow("abc", "", 0, 0, "ok")], source="t.csv"))
    with pytest.raises(nasframe.ConfigError, match=r"scale=0 is not valid"):
        TableTimedEstimator(ROWS, scale=0)


def test_benchmark_smoke_prints_the_ratio_line() -> None:
    script = ROWS.parent.parent / "async_scaling.py"
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio: at 4 workers async utilization" in result.stdout
