"""Pipelined on-policy learners: rewards pending until the rollout ends (issue 15).

``[run] scheduler = pipelined`` steps a Stable-Baselines3 on-policy learner's vector env
without waiting for the evaluations (``NASEnv.defer_step``, ``StepPipeline``); the true
rewards are added into the rollout buffer at the rollout's end. The strongest check:
with one seed it learns exactly what lockstep learns -- the same steps, rewards and
policy parameters -- with the in-process evaluator and with a simulated cluster whose
results come back out of order.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nasframe_memory import MemoryDB
from rich.console import Console

import nasframe
from nasframe.distributed.simulation import SimulatedEvaluator, simulate
from nasframe.distributed.vector_env import NASVectorEnv, StepPipeline, make_parallel_env
from nasframe.results import StepLog
from nasframe.search import run_search

pytest.importorskip("stable_baselines3")

#: The hooks these tests see fired (checked by tests/test_hooks_meta.py).
EXERCISED_HOOKS = ("nasframe_evaluation_stored", "nasframe_register_estimators")

PPO = {"n_steps": 8, "batch_size": 8, "n_epochs": 2}


def _digest(nsc: nasframe.NSC) -> bytes:
    return hashlib.sha256(nsc.without_terminal().canonical_hash.encode()).digest()


class TimedProxy(nasframe.PerformanceEstimator):
    """The proxy's scores and validity, with a duration of 1 to 8 s by hash.

    On a simulated cluster the durations make results come back out of the order asked;
    ``fail_every`` > 0 also fails (status ``error``, which the validity rule cannot
    foresee) the valid networks whose hash says so.
    """

    name = "timed-proxy"
    version = "1"

    def __init__(self, fail_every: int = 0) -> None:
        from nasframe_proxy import ProxyEstimator

        self.proxy = ProxyEstimator()
        self.fail_every = fail_every

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {"fail": self.fail_every})

    def why_invalid(self, architecture: nasframe.NSC, dataset: Any) -> str | None:
        return self.proxy.why_invalid(architecture, dataset)

    def evaluate(
        self, architecture: nasframe.NSC, dataset: Any, *, seed: int | None = None
    ) -> nasframe.Evaluation:
        digest = _digest(architecture)
        evaluation = self.proxy.evaluate(architecture, dataset, seed=seed)
        seconds = 1.0 + digest[2] % 8
        if evaluation.status == "ok" and self.fail_every and digest[0] % self.fail_every == 0:
            return nasframe.Evaluation.failed("error", "fails by its hash", seconds=seconds)
        return nasframe.Evaluation(
            accuracy=evaluation.accuracy,
            status=evaluation.status,
            message=evaluation.message,
            params=evaluation.params,
            flops=evaluation.flops,
            seconds=seconds,
            epochs=1,
        )


class Plugin:
    """``timed-proxy-v1``, a shared database and an optional Ctrl-C after N stored."""

    def __init__(self, database: MemoryDB | None = None, stop_after: int = 0) -> None:
        self.database = database if database is not None else MemoryDB()
        self.stop_after = stop_after
        self.stored = 0

    @nasframe.hookimpl
    def nasframe_register_estimators(self, registry: nasframe.Registry) -> None:
        registry.add("timed-proxy-v1", TimedProxy, summary="proxy with durations by hash")
        registry.add(
            "failing-proxy-v1", lambda: TimedProxy(fail_every=4), summary="fails a quarter"
        )

    @nasframe.hookimpl
    def nasframe_register_experiment_dbs(self, registry: nasframe.Registry) -> None:
        registry.add("shared-v1", lambda **_: self.database, summary="one MemoryDB per test")

    @nasframe.hookimpl
    def nasframe_evaluation_stored(self, record: nasframe.Record) -> None:
        self.stored += 1
        if self.stop_after and self.stored == self.stop_after:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-run


def quiet() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def learn(
    *, pipelined: bool, simulated: bool, agent: str = "ppo", steps: int = 48
) -> tuple[list[tuple[Any, ...]], list[Any], list[bool]]:
    """Learn ``steps`` steps over 3 envs; the finished steps, the parameters, pending flags."""
    manager = nasframe.get_plugin_manager(plugins=[("pipelined-test", Plugin())])
    section = agent.replace("-", "_")
    config = nasframe.load_config(None, {section: PPO}, plugin_manager=manager)
    vector = make_parallel_env(
        workers=1,
        num_envs=3,
        estimator="timed-proxy",
        dataset="digits",
        database="memory",
        seed=0,
        max_steps=5,
        config=config,
        plugin_manager=manager,
    )
    if simulated:  # results come back out of the order asked, after the step returned
        first = vector.envs[0]
        evaluator = SimulatedEvaluator(first.estimator, first.dataset, first.database, workers=2)
        vector = NASVectorEnv(vector.envs, evaluator)
    if pipelined:
        vector.enable_pipeline()
    finished: list[tuple[Any, ...]] = []
    for slot, env in enumerate(vector.envs):

        def finish_step(plan: Any, outcome: Any, _finish: Any = env.finish_step, _slot: int = slot):
            result = _finish(plan, outcome)
            _, reward, terminated, truncated, info = result
            finished.append((_slot, plan.action, reward, terminated, truncated, info["status"]))
            return result

        env.finish_step = finish_step
    model = nasframe.make_agent(agent, vector, seed=0, config=config, plugin_manager=manager)
    pending: list[bool] = []
    if pipelined:
        adapter = model.model.get_env()
        submit = adapter._submit

        def watched() -> Any:
            result = submit()
            pending.extend(not step.finished for step in adapter.last_pending)
            return result

        adapter._submit = watched
    assert model.learn(steps) == steps
    parameters = [p.detach().clone() for p in model.model.policy.parameters()]
    model.close()
    vector.close()
    return finished, parameters, pending


@pytest.mark.parametrize(
    ("agent", "simulated"),
    [("ppo", False), ("ppo", True), ("maskable-ppo", True)],
    ids=["ppo-in-process", "ppo-simulated", "maskable-ppo-simulated"],
)
def test_pipelined_learner_learns_exactly_what_lockstep_learns(agent: str, simulated: bool) -> None:
    lockstep, lockstep_params, _ = learn(pipelined=False, simulated=simulated, agent=agent)
    pipelined, pipelined_params, pending = learn(pipelined=True, simulated=simulated, agent=agent)
    assert pipelined == lockstep  # the same steps, rewards, ends and statuses, in order
    assert len(lockstep) == 48
    if agent == "ppo":  # (MaskablePPO never picks a layer the validity rule refuses)
        assert any(row[5] == "invalid" and (row[3] or row[4]) for row in lockstep)
    assert all(bool((a == b).all()) for a, b in zip(lockstep_params, pipelined_params, strict=True))
    if simulated:  # the rewards really were pending when SB3 got the step
        assert sum(pending) > len(pending) // 2


def test_a_step_is_finished_only_once_it_and_every_step_before_it_are_in() -> None:
    env = nasframe.make_env(estimator=TimedProxy(), dataset="digits", max_steps=3, seed=0)
    envs = [env] + [
        nasframe.make_env(
            search_space=env.search_space,
            state_encoder=env.state_encoder,
            estimator=env.estimator,
            dataset=env.dataset,
            database=env.database,
            max_steps=3,
        )
        for _ in range(2)
    ]
    evaluator = SimulatedEvaluator(env.estimator, env.dataset, env.database, workers=3)
    for each in envs:
        each.evaluator = evaluator
        each.reset(seed=0)
    pipeline = StepPipeline(envs, evaluator)
    first = pipeline.submit([1, 2, 3], [True, True, True])
    second = pipeline.submit([4, 5, 6], [True, False, True])
    assert second[1] is None and pipeline.pending == 5
    steps = [result[4] for result in first + second if result is not None]
    assert not any(step.finished for step in steps)
    assert all(result[3]["reward_pending"] for result in first if result is not None)
    assert "accuracy" not in first[0][3] and "reward" not in first[0][3]  # type: ignore[index]
    with pytest.raises(RuntimeError, match="still pending"):
        _ = steps[0].reward
    assert env.deferred_steps == 2
    pipeline.finish_all()
    assert pipeline.pending == 0 and env.deferred_steps == 0
    assert [step.slot for step in steps] == [0, 1, 2, 0, 2]
    for step in steps:  # the true rewards: the proxy's accuracy (or 0 for a failure)
        _, reward, _, _, info = step.result  # type: ignore[misc]
        assert info["status"] in ("ok", "invalid") and "reward_pending" not in info
        assert step.reward == reward == (info["accuracy"] if info["status"] == "ok" else 0.0)


def setup(tmp_path: Path, plugin: Plugin | None = None, **run: Any) -> tuple[Any, Any, Plugin]:
    plugin = plugin or Plugin()
    manager = nasframe.get_plugin_manager(plugins=[("pipelined-test", plugin)])
    values: dict[str, Any] = {"output": tmp_path / "out", "verbosity": 0, "seed": 3}
    values.update({"agent": "ppo", "scheduler": "pipelined", "envs": 3} | run)
    env = {"estimator": "timed-proxy", "dataset": "digits", "database": "shared", "max_steps": 5}
    config = nasframe.load_config(
        None, {"run": values, "env": env, "ppo": PPO}, plugin_manager=manager
    )
    return config, manager, plugin


def test_pending_rewards_never_reach_the_step_log(tmp_path: Path) -> None:
    config, manager, plugin = setup(tmp_path, steps=42)  # 14 steps of the 3 envs
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.steps == 42
    assert "pipelined search" in (run.output / "search.log").read_text()
    rows = StepLog(run.output / "steps.csv").read()
    assert [row.step for row in rows] == list(range(1, 43))
    by_hash = {record.arch_hash: record.evaluation for record in plugin.database}
    for row in rows:  # every reward is the true one of the stored evaluation
        evaluation = by_hash[row.arch_hash]
        assert row.status == evaluation.status
        assert row.reward == (evaluation.accuracy if evaluation.status == "ok" else 0.0)
    assert run.best_accuracy == max(row.accuracy for row in rows if row.status == "ok")
    assert run.episodes == sum(row.done for row in rows) > 0


def test_pipelined_search_with_one_env_logs_the_serial_search(tmp_path: Path) -> None:
    serial, manager, _ = setup(tmp_path / "serial", steps=30, scheduler="auto", envs=0)
    run_search(serial, plugin_manager=manager, console=quiet())
    pipelined, manager, _ = setup(tmp_path / "pipelined", steps=30, envs=1)
    run_search(pipelined, plugin_manager=manager, console=quiet())

    def steps(folder: Path) -> list[tuple[Any, ...]]:
        rows = StepLog(folder / "out" / "steps.csv").read()
        return [(r.step, r.episode, r.action, r.reward, r.done, r.nsc, r.cache_hit) for r in rows]

    assert steps(tmp_path / "pipelined") == steps(tmp_path / "serial")


def test_a_bad_scheduler_value_is_one_line_naming_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(nasframe.ConfigError) as error:
        setup(tmp_path, scheduler="pipeline")
    message = str(error.value)
    assert "\n" not in message and "scheduler" in message and "'pipeline'" in message
    assert "pipelined" in message  # the valid values, the closest one among them


@pytest.mark.parametrize("agent", ["dqn", "random"])
def test_pipelined_refuses_a_learner_that_is_not_on_policy(tmp_path: Path, agent: str) -> None:
    config, manager, _ = setup(tmp_path, steps=5, agent=agent)
    with pytest.raises(nasframe.ConfigError) as error:
        run_search(config, plugin_manager=manager, console=quiet())
    message = str(error.value)
    assert message.startswith("[run] scheduler = pipelined needs an on-policy learner")
    assert f"agent '{agent}-v1'" in message or f"agent '{agent}'" in message
    assert "\n" not in message and not (tmp_path / "out" / "steps.csv").exists()


def test_a_pipelined_vector_env_refuses_dqn_from_python() -> None:
    vector = make_parallel_env(workers=1, num_envs=2, estimator="proxy", dataset="digits")
    vector.enable_pipeline()
    with pytest.raises(nasframe.ConfigError, match=r"^\[run\] scheduler = pipelined needs an on"):
        nasframe.make_agent("dqn", vector, seed=0)
    vector.close()


def test_pipelined_and_meta_rl_do_not_mix(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, steps=5, meta_rl=True)
    with pytest.raises(nasframe.ConfigError, match=r"pipelined does not work with \[run\] meta_rl"):
        run_search(config, plugin_manager=manager, console=quiet())


def test_a_failed_evaluation_is_logged_true_and_only_foreseen_ones_end_episodes(
    tmp_path: Path,
) -> None:
    config, manager, _ = setup(tmp_path, steps=60)
    config = config.with_overrides({"env": {"estimator": "failing-proxy"}})
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.steps == 60  # 20 steps of the 3 envs
    rows = StepLog(run.output / "steps.csv").read()
    errors = [row for row in rows if row.status == "error"]
    invalid = [row for row in rows if row.status == "invalid"]
    assert errors and invalid
    # every failure earns invalid_reward (0) and is logged with its status
    assert all(row.reward == 0.0 for row in errors + invalid)
    # the validity rule foresees invalid networks: they end their episode, as in lockstep
    assert all(row.done for row in invalid)
    # a failure no one could foresee is known only after the agent moved on: it does not
    # end a pipelined episode (it would in lockstep), unless the step ended it anyway
    assert any(not row.done for row in errors)


def test_pipelined_stop_and_resume_loses_no_stored_result(tmp_path: Path) -> None:
    database = MemoryDB()
    config, manager, _ = setup(tmp_path, Plugin(database, stop_after=10), steps=60)
    first = run_search(config, plugin_manager=manager, console=quiet())
    assert first.outcome == "interrupted" and first.stop_reason == "SIGINT"
    stored = {record.arch_hash for record in database}
    logged = StepLog(first.output / "steps.csv").read()
    assert len(stored) == first.session_trainings >= 10
    assert {row.arch_hash for row in logged if not row.cache_hit} == stored
    assert len(logged) == first.steps

    config, manager, _ = setup(tmp_path, Plugin(database), steps=60)
    second = run_search(config, plugin_manager=manager, console=quiet())
    assert second.outcome == "completed" and second.steps >= 60
    rows = StepLog(second.output / "steps.csv").read()
    assert [row.step for row in rows] == list(range(1, len(rows) + 1))
    assert first.session_trainings + second.session_trainings == len(database)


def test_simulated_pipelined_ppo_keeps_the_workers_busier_than_lockstep() -> None:
    estimator = TimedProxy()
    lockstep = simulate("lockstep", 4, trainings=40, estimator=estimator, agent="ppo")
    pipelined = simulate("pipelined", 4, trainings=40, estimator=estimator)
    assert pipelined.trainings >= 40 and lockstep.trainings >= 40
    assert pipelined.utilization > lockstep.utilization
    assert 0 < pipelined.steady_utilization <= 1.0 + 1e-9
    assert np.isfinite(pipelined.per_hour) and pipelined.agent == "ppo"
    with pytest.raises(nasframe.ConfigError, match=r"agent='random' cannot learn pipelined"):
        simulate("pipelined", 2, trainings=4, estimator=estimator, agent="random")


def test_a_deferred_step_is_the_step_with_its_reward_later() -> None:
    stepped = nasframe.make_env(estimator="proxy", dataset="digits", max_steps=4, seed=0)
    deferred = nasframe.make_env(estimator="proxy", dataset="digits", max_steps=4, seed=0)
    plans, ends = [], []
    for episode in range(3):
        stepped.reset(seed=episode)
        deferred.reset(seed=episode)
        for action in (1, 5, 3, 2):  # the chained space has actions 0 .. 7
            want = stepped.step(action)
            plan = deferred.begin_step(action)
            obs, terminated, truncated, info = deferred.defer_step(plan)
            assert (obs == want[0]).all() and (terminated, truncated) == want[2:4]
            assert info["nsc"] == want[4]["nsc"] and info["reward_pending"]
            plans.append((plan, want))
            ends.append(terminated or truncated)
            if terminated or truncated:
                break
    assert deferred.deferred_steps == len(plans) and stepped.last_episode is not None
    assert deferred.last_episode is None  # an episode ends with its last step's outcome
    with pytest.raises(RuntimeError, match="not this env's pending plan"):
        deferred.finish_step(plans[1][0], None)  # the oldest deferred step comes first
    for plan, want in plans:  # finished in order, after the env has moved on
        got = deferred.finish_step(plan, deferred.evaluator.evaluate(plan.nsc))
        assert (got[0] == want[0]).all() and got[1:4] == want[1:4]
        assert {k: v for k, v in got[4].items() if k != "action_mask"} == {
            k: v for k, v in want[4].items() if k != "action_mask"
        }
    assert deferred.last_episode == stepped.last_episode and sum(ends) == 3
    with pytest.raises(RuntimeError, match="defer_step got a plan that is not"):
        deferred.defer_step(plans[0][0])
