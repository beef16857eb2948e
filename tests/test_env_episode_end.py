"""``[env] evaluate = episode_end``: BlockQNN's sparse reward, only an episode's last network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_env import CONV1, CONV3, CONV5, MAX3, P1_UP, TERMINAL, dataset

from nasframe import NSC, ArrayDataset, BenchTable, ConfigError
from nasframe.agents import make_agent
from nasframe.bench.compare import CompareSettings, compare_agents
from nasframe.bench.testing import write_table
from nasframe.cli import main as cli
from nasframe.distributed import NASVectorEnv
from nasframe.distributed.scheduler import AsyncScheduler
from nasframe.env import NOT_EVALUATED, NASEnv, make_env

__all__ = ["dataset"]  # the fixture: the tiny 8x8x1 dataset of test_env.py


def _env(dataset: ArrayDataset, **kwargs: Any) -> NASEnv:
    kwargs.setdefault("estimator", "proxy")
    return make_env(dataset=dataset, evaluate="episode_end", **kwargs)


def test_only_the_last_network_is_evaluated_and_rewarded(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    env.reset(seed=0)
    for action in (CONV3, CONV5):
        _, reward, terminated, truncated, info = env.step(action)
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert info["status"] == "not_evaluated" and info["accuracy"] == 0.0
        assert "end_reason" not in info and env.last_outcome is None
    assert env.evaluator.trainings == 0
    _, reward, terminated, _, info = env.step(TERMINAL)
    assert terminated and info["end_reason"] == "terminal" and info["status"] == "ok"
    assert env.evaluator.trainings == 1 and reward == info["accuracy"] > 0
    # the same network, rewarded densely, earns the same reward at its last step
    dense = make_env(dataset=dataset, estimator="proxy")
    dense.reset(seed=0)
    rewards = [dense.step(a)[1] for a in (CONV3, CONV5, TERMINAL)]
    assert rewards[-1] == reward and dense.evaluator.trainings == 2
    assert env.last_episode is not None and env.last_episode.rewards == (0.0, 0.0, reward)
    assert env.last_episode.trainings == 1 and env.last_episode.best_accuracy == reward


def test_max_steps_and_a_full_state_end_with_an_evaluation(dataset: ArrayDataset) -> None:
    env = _env(dataset, max_steps=3)
    env.reset(seed=0)
    results = [env.step(CONV1) for _ in range(3)]
    assert [r[4]["status"] for r in results] == ["not_evaluated", "not_evaluated", "ok"]
    assert results[-1][3] and results[-1][4]["end_reason"] == "max_steps"
    assert float(results[-1][1]) > 0 and env.evaluator.trainings == 1
    env = _env(dataset, max_steps=50)
    env.reset(seed=0)
    results = [env.step(CONV1) for _ in range(10)]
    assert results[-1][2] and results[-1][4]["end_reason"] == "full"
    assert sum(r[4]["status"] not in NOT_EVALUATED for r in results) == 1


def test_a_network_the_validity_rule_refuses_ends_the_episode_at_once(
    dataset: ArrayDataset,
) -> None:
    env = _env(dataset, invalid_reward=-0.25)
    env.reset(seed=0)
    assert env.step(MAX3)[4]["status"] == "not_evaluated"  # 8x8 -> 2x2
    _, reward, terminated, _, info = env.step(MAX3)  # 3x3 pool on 2x2: invalid
    assert terminated and reward == -0.25 and info["end_reason"] == "failed"
    assert info["status"] == "invalid" and "needs an input of at least 3x3" in info["message"]


def test_a_pointer_out_of_range_still_ends_the_episode_unevaluated(dataset: ArrayDataset) -> None:
    env = _env(dataset, search_space="pointer")
    env.reset(seed=0)
    env.step(CONV3)
    _, reward, terminated, _, info = env.step(P1_UP)
    assert terminated and reward == 0.0 and info["status"] == "out_of_range"
    assert info["end_reason"] == "out_of_range" and env.evaluator.trainings == 0


def test_a_bad_setting_is_a_one_line_error(dataset: ArrayDataset) -> None:
    with pytest.raises(ConfigError, match=r"\[env\] evaluate: 'sometimes' is not one of every_"):
        make_env(dataset=dataset, estimator="proxy", evaluate="sometimes")
    env = make_env(dataset=dataset, estimator="proxy")
    with pytest.raises(ConfigError, match=r"env setting evaluate is 'sometimes'; valid: every_"):
        NASEnv(
            env.search_space, env.state_encoder, env.estimator, env.dataset, env.database,
            evaluate="sometimes",
        )  # fmt: skip


def test_a_deferred_step_before_the_end_needs_no_outcome(dataset: ArrayDataset) -> None:
    # the pipelined vector env's path: defer_step now, finish_step later
    env = _env(dataset)
    env.reset(seed=0)
    first = env.begin_step(CONV3)
    assert first.nsc is None and first.skipped
    _, terminated, truncated, _ = env.defer_step(first)
    assert not (terminated or truncated)
    last = env.begin_step(TERMINAL)
    assert last.nsc is not None and not last.skipped
    _, terminated, _, _ = env.defer_step(last)
    assert terminated
    assert env.finish_step(first, None)[1] == 0.0
    outcome = env.evaluator.evaluate(last.nsc)
    _, reward, terminated, _, info = env.finish_step(last, outcome)
    assert terminated and reward == info["accuracy"] > 0 and env.deferred_steps == 0


def test_the_lockstep_vector_env_rewards_only_the_episodes_ends(dataset: ArrayDataset) -> None:
    vec = NASVectorEnv([_env(dataset, max_steps=3) for _ in range(2)])
    vec.reset(seed=0)
    ends = 0
    for step in range(12):
        _, rewards, terminated, truncated, _ = vec.step(np.array([CONV3, step % 7]))
        done = terminated | truncated
        assert not rewards[~done].any()  # a step before an episode's end earns 0
        ends += int(done.sum())
    assert ends >= 4 and 0 < vec.evaluator.trainings + vec.evaluator.hits <= ends
    vec.close()


def test_the_asynchronous_scheduler_trains_one_network_per_episode(dataset: ArrayDataset) -> None:
    envs = [_env(dataset, max_steps=4) for _ in range(3)]
    evaluator = envs[0].evaluator
    for env in envs:
        env.evaluator = evaluator
    agent = make_agent("random", envs[0], seed=3)
    ended: list[dict[str, Any]] = []
    loop = AsyncScheduler(
        envs,
        evaluator,
        agent,
        workers=2,
        on_step=lambda slot, action, reward, term, trunc, info: (
            ended.append(info) if term or trunc else None
        ),
    )
    loop.run(episodes=12)
    assert loop.episodes == 12 == len(ended)
    # every episode evaluated its last network only: at most one training each
    evaluated = [info for info in ended if info["status"] not in NOT_EVALUATED]
    assert evaluator.trainings <= len(evaluated) <= 12
    assert evaluator.trainings + evaluator.hits == len(evaluated)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(tmp_path_factory.mktemp("bench") / "t", depth=2, consistent=True)


def test_bench_run_at_episode_ends_trains_complete_networks_only(table: Path) -> None:
    def run(evaluate: str) -> Any:
        settings = CompareSettings(
            table=table, agents=["random"], seeds=2, budget=6, table_seed="mean", evaluate=evaluate
        )
        return compare_agents(settings)

    dense, sparse = run("every_step"), run("episode_end")
    bench = BenchTable.load(table)
    depth = {row.arch_hash: len(NSC.parse(row.nsc)) for row in bench}
    for comparison in (dense, sparse):
        assert all(len(trace.hashes) == 6 for trace in comparison.traces)
        for curve in comparison.summaries[0].regret:
            assert np.all(np.diff(curve) <= 1e-12)
    # every step of a depth-2 episode trains a prefix, so dense runs train 1-layer networks
    # that end no episode; at episode ends a 1-layer network is trained only when an
    # episode ended with it (terminal action)
    assert any(depth[h] == 1 for t in dense.traces for h in t.hashes)
    assert sparse.traces[0].steps > dense.traces[0].steps  # more steps per training
    with pytest.raises(ConfigError, match=r"bench run: evaluate = 'never': must be one of"):
        run("never")


def test_the_cli_takes_the_protocol_from_the_configuration(table: Path, tmp_path: Path) -> None:
    args = ["bench", "run", "--table", str(table), "--agents", "random", "--seeds", "2"]
    args += ["--budget", "5", "--output", str(tmp_path), "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--set", "env.evaluate=episode_end"])
    assert result.exit_code == 0, result.output
    assert "evaluated at episode ends" in " ".join(result.output.split())
    result = CliRunner().invoke(cli, [*args, "--set", "env.evaluate=often"])
    assert result.exit_code != 0 and "[env] evaluate: 'often' is not one of" in result.output


def test_a_search_at_episode_ends_logs_unevaluated_steps_as_such(tmp_path: Path) -> None:
    import json

    from nasframe.results import StepLog

    out = tmp_path / "run"
    sets = ["env.estimator=proxy", "env.evaluate=episode_end", "run.steps=60"]
    sets += [f"run.output={out}", "run.verbosity=0", "run.plots=false"]
    result = CliRunner().invoke(cli, ["search", *(a for s in sets for a in ("--set", s))])
    assert result.exit_code == 0, result.output
    rows = StepLog(out / "steps.csv").read()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    skipped = [row for row in rows if row.status == "not_evaluated"]
    assert skipped and all(row.reward == 0.0 and not row.done for row in skipped)
    assert all(row.done for row in rows if row.status not in NOT_EVALUATED)
    assert summary["not_evaluated"] == len(skipped)
    assert summary["failed"] == sum(r.status not in ("ok", "invalid", *NOT_EVALUATED) for r in rows)
    # one evaluation per episode at most: the trainings are the episodes' last networks
    assert 0 < summary["trainings"] <= summary["episodes"]


@pytest.mark.parametrize("space", ["chained", "pointer"])
def test_gymnasium_check_env_passes_at_episode_ends(dataset: ArrayDataset, space: str) -> None:
    import warnings

    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker warns of what it finds
        check_env(_env(dataset, search_space=space), skip_render_check=True)
