"""NASEnv and make_env: semantics, caching, composition, errors and the env checkers."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from nasframe_memory import MemoryDB
from nasframe_proxy import ProxyEstimator
from nasframe_spaces import ChainedSearchSpace, OneHotEncoder, PointerSearchSpace

import nasframe
from nasframe import (
    ArrayDataset,
    ConfigError,
    DatasetError,
    Evaluation,
    RegistryError,
    SearchSpaceError,
    Status,
)
from nasframe.env import Episode, NASEnv, make_env
from nasframe.evaluation import Evaluator

MODES = ("absolute", "chained", "pointer")
ENCODERS = ("onehot", "matrix")

# action ids of the chain space (see test_spaces.py)
CONV1, CONV3, CONV5, MAX2, MAX3, AVG2, AVG3, TERMINAL = range(8)
# pointer moves of the multibranch space
P1_UP, P1_DOWN, P2_UP, P2_DOWN = 10, 11, 12, 13


@pytest.fixture
def dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays("tiny", rng.random((60, 8, 8, 1)), rng.integers(0, 4, 60))


def _env(dataset: ArrayDataset, **kwargs: Any) -> NASEnv:
    kwargs.setdefault("estimator", "proxy")
    return make_env(dataset=dataset, **kwargs)


class Recorder:
    """A plugin that records the events it observes."""

    def __init__(self) -> None:
        self.episodes: list[Episode] = []
        self.records: list[nasframe.Record] = []

    @nasframe.hookimpl
    def nasframe_episode_ended(self, episode: Episode) -> None:
        self.episodes.append(episode)

    @nasframe.hookimpl
    def nasframe_evaluation_stored(self, record: nasframe.Record) -> None:
        self.records.append(record)


# -- composition ---------------------------------------------------------------------------
def test_make_env_defaults_to_memory_without_config(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    assert isinstance(env.database, MemoryDB)
    assert isinstance(env.search_space, ChainedSearchSpace)
    assert isinstance(env.state_encoder, OneHotEncoder)
    assert env.action_space.n == 8 and env.observation_space.shape == (10, 25)
    assert env.max_steps == 10 and env.reward_name == "accuracy"


def test_make_env_with_instances(dataset: ArrayDataset) -> None:
    space = PointerSearchSpace()
    db = MemoryDB()
    env = make_env(
        search_space=space,
        state_encoder=OneHotEncoder(space),
        estimator=ProxyEstimator(filters=8),
        dataset=dataset,
        database=db,
        max_steps=3,
    )
    assert env.search_space is space and env.database is db and env.max_steps == 3
    env.reset(seed=0)
    env.step(CONV3)
    assert len(db) == 1


def test_make_env_reads_a_config_file(dataset: ArrayDataset, tmp_path: Path) -> None:
    path = tmp_path / "run.ini"
    path.write_text(
        "[env]\nsearch_space = chained\nstate_encoder = matrix\nestimator = proxy\n"
        "database = memory\nmax_steps = 4\nreward = blockqnn\nmu = 1\n"
        "[search_space]\nfile = nasenv\n[state_encoder]\nflatten = yes\n"
        "[proxy]\nfilters = 16\n",
        encoding="utf-8",
    )
    env = make_env(dataset=dataset, config=path, max_steps=5)
    assert env.action_space.n == 10  # the nasenv file in chained mode
    assert env.observation_space.shape == (50,)
    assert env.max_steps == 5  # keyword settings win over the file
    assert env.reward_name == "blockqnn" and env.mu == 1.0
    assert isinstance(env.estimator, ProxyEstimator) and env.estimator.filters == 16


def test_gymnasium_make(dataset: ArrayDataset) -> None:
    env = gymnasium.make(
        "nasframe/NASGym-v0", estimator="proxy", dataset=dataset, search_space="pointer"
    )
    obs, info = env.reset(seed=3)
    assert obs.shape == (10, 36) and info["nsc"] == ""
    obs, reward, *_, info = env.step(CONV3)
    assert info["nsc"] == "1,1,3,0,0" and 0 < reward <= 1
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"max_step": 3},
            ConfigError,
            "unknown env setting 'max_step' (valid: evaluate, invalid_r",
        ),
        ({"max_steps": 0}, ConfigError, "[env] max_steps: 0 is below the minimum 1"),
        ({"reward": "fast"}, ConfigError, "[env] reward: 'fast' is not one of accuracy, blockqnn"),
        ({"sigma": 2}, ConfigError, "[env] sigma: 2.0 is above the maximum 1"),
        ({"search_space": "chaind"}, RegistryError, "unknown search space 'chaind'; did you mean"),
        ({"estimator": "nope"}, RegistryError, "unknown estimator 'nope'"),
        ({"render_mode": "rgb_array"}, ConfigError, "render_mode 'rgb_array' is not supported"),
    ],
)
def test_make_env_bad_settings(
    dataset: ArrayDataset, kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error) as info:
        _env(dataset, **kwargs)
    assert str(info.value).startswith(message), str(info.value)


def test_nasenv_rejects_bad_settings(dataset: ArrayDataset) -> None:
    space = ChainedSearchSpace()
    parts = (space, OneHotEncoder(space), ProxyEstimator(), dataset, MemoryDB())
    with pytest.raises(ConfigError, match="max_steps must be an integer >= 1, got 0"):
        NASEnv(*parts, max_steps=0)
    with pytest.raises(ConfigError, match="reward is 'acc'; valid: accuracy, blockqnn"):
        NASEnv(*parts, reward="acc")
    with pytest.raises(ConfigError, match="mu must be >= 0, got -1"):
        NASEnv(*parts, mu=-1)


# -- episodes ------------------------------------------------------------------------------
def test_chained_episode_and_terminal_is_a_cache_hit(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    obs, info = env.reset(seed=0)
    assert info["step"] == 0 and obs[:, 0].all()  # every row is padding: type slot 0
    _, r1, term, trunc, info = env.step(CONV3)
    assert (term, trunc, env.last_cache_hit, info["status"]) == (False, False, False, "ok")
    assert "cache_hit" not in info  # it depends on the cache's history: env.last_cache_hit
    assert info["nsc"] == "1,1,3,0,0" and info["action_label"] == "convolution_k-3_pred1-L_pred2-0"
    assert info["accuracy"] == r1 and info["added"] == (1, 1, 3, 0, 0)
    _, r2, term, _, info = env.step(CONV3)
    trainings = env.evaluator.trainings
    _, r3, term, trunc, info = env.step(TERMINAL)
    # the terminal row is not part of the hash: the network it ends is never retrained
    assert env.evaluator.trainings == trainings
    assert env.last_cache_hit and r3 == r2 and term and not trunc
    assert info["end_reason"] == "terminal" and info["nsc"].endswith("3,7,0,0,0")


def test_same_network_in_a_new_episode_is_a_cache_hit(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    env.reset(seed=0)
    first = env.step(CONV5)
    first_hit = env.last_cache_hit
    env.reset()
    assert env.last_outcome is None
    second = env.step(CONV5)
    assert not first_hit and env.last_cache_hit
    assert first[1] == second[1]
    assert first[4].keys() == second[4].keys()  # info is equal, hit or not
    assert all(np.array_equal(first[4][k], second[4][k]) for k in first[4])
    assert env.evaluator.trainings == 1 and env.evaluator.hits == 1


def test_full_state_terminates(dataset: ArrayDataset) -> None:
    env = _env(dataset, max_steps=50)
    env.reset(seed=0)
    for step in range(1, 11):
        _, _, terminated, truncated, info = env.step(CONV1)
        assert terminated == (step == 10) and not truncated
    assert info["end_reason"] == "full" and info["nsc"].count(";") == 9


def test_invalid_architecture_terminates_with_the_penalty(dataset: ArrayDataset) -> None:
    env = _env(dataset, invalid_reward=-0.25)
    env.reset(seed=0)
    env.step(MAX3)  # 8x8 -> 2x2
    _, reward, terminated, _, info = env.step(MAX3)  # 3x3 pool on 2x2: spatial size ran out
    assert terminated and reward == -0.25
    assert info["status"] == "invalid" and "needs an input of at least 3x3" in info["message"]
    assert info["end_reason"] == "failed"


def test_step_limit_truncates(dataset: ArrayDataset) -> None:
    env = _env(dataset, max_steps=3)
    env.reset(seed=0)
    results = [env.step(CONV1) for _ in range(3)]
    assert [(r[2], r[3]) for r in results] == [(False, False), (False, False), (False, True)]
    assert results[-1][4]["end_reason"] == "max_steps"
    with pytest.raises(gymnasium.error.ResetNeeded, match="call reset"):
        env.step(CONV1)


def test_pointer_moves_are_discounted_and_out_of_range_ends(dataset: ArrayDataset) -> None:
    env = _env(dataset, search_space="pointer", sigma=0.5)
    env.reset(seed=0)
    env.step(CONV3)
    _, r_layer, *_ = env.step(CONV3)
    _, r_move, terminated, _, info = env.step(P1_DOWN)
    assert not terminated and info["pointers"] == (-1, 0) and env.last_cache_hit
    assert r_move == pytest.approx(0.5 * r_layer)
    _, reward, terminated, _, info = env.step(P1_UP)
    assert info["pointers"] == (0, 0)
    _, reward, terminated, _, info = env.step(P1_UP)
    assert terminated and reward == 0.0 and info["status"] == "out_of_range"
    assert info["end_reason"] == "out_of_range" and not env.last_cache_hit
    assert env.last_outcome is None  # nothing was evaluated


def test_blockqnn_reward(dataset: ArrayDataset) -> None:
    env = _env(dataset, reward="blockqnn", mu=0.5, rho=0.5)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(CONV3)
    # density: edges input->1, 1->output over nodes input, 1, output
    expected = info["accuracy"] - (0.5 * math.log(info["flops"]) + 0.5 * math.log(2 / 3)) / 100
    assert info["density"] == pytest.approx(2 / 3)
    assert reward == pytest.approx(expected)


def test_bad_action_leaves_the_state_unchanged(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    env.reset(seed=0)
    env.step(CONV1)
    for bad in (8, -1, 2.5, "x"):
        with pytest.raises(SearchSpaceError, match=r"valid actions are 0 \.\. 7"):
            env.step(bad)
    _, _, _, _, info = env.step(CONV1)
    assert info["step"] == 2 and info["nsc"] == "1,1,1,0,0;2,1,1,1,0"


def test_begin_and_finish_step_equal_step(dataset: ArrayDataset) -> None:
    a, b = _env(dataset), _env(dataset)
    a.reset(seed=1)
    b.reset(seed=1)
    for action in (CONV3, AVG2, CONV1, TERMINAL):
        plan = b.begin_step(action)
        assert plan.nsc is not None and plan.nsc == b.state.nsc
        outcome = b.evaluator.evaluate_many([plan.nsc])[0]
        got, want = b.finish_step(plan, outcome), a.step(action)
        assert (got[0] == want[0]).all() and got[1:4] == want[1:4]
        assert _stable(got[4]) == _stable(want[4])


def test_step_halves_refuse_misuse(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    env.reset(seed=0)
    plan = env.begin_step(CONV1)
    with pytest.raises(RuntimeError, match="begin_step called twice"):
        env.begin_step(CONV1)
    with pytest.raises(RuntimeError, match=r"needs an outcome exactly when plan\.nsc is set"):
        env.finish_step(plan, None)
    outcome = env.evaluator.evaluate(plan.nsc)
    env.finish_step(plan, outcome)
    with pytest.raises(RuntimeError, match="not this env's pending plan"):
        env.finish_step(plan, outcome)


def test_evaluator_is_replaceable(dataset: ArrayDataset) -> None:
    class Counting(Evaluator):
        calls = 0

        def evaluate(self, nsc: nasframe.NSC) -> Any:
            Counting.calls += 1
            return super().evaluate(nsc)

    env = _env(dataset)
    old = env.evaluator
    env.evaluator = Counting(old.estimator, old.dataset, old.database)
    env.reset(seed=0)
    env.step(CONV1)
    env.step(TERMINAL)
    assert Counting.calls == 2


def test_failing_estimator_ends_the_episode(dataset: ArrayDataset) -> None:
    class Exploding(ProxyEstimator):
        def evaluate(self, architecture: Any, dataset: Any, *, seed: Any = None) -> Evaluation:
            if architecture.depth >= 2:
                raise MemoryError("simulated")
            return super().evaluate(architecture, dataset, seed=seed)

    env = _env(dataset, estimator=Exploding())
    env.reset(seed=0)
    env.step(CONV1)
    _, reward, terminated, _, info = env.step(CONV1)
    assert terminated and reward == 0.0 and info["status"] == str(Status.ERROR)
    assert "MemoryError: simulated" in info["message"]


def test_hooks_fire(dataset: ArrayDataset) -> None:
    recorder = Recorder()
    manager = nasframe.get_plugin_manager(plugins=[("recorder", recorder)])
    env = _env(dataset, plugin_manager=manager, max_steps=4)
    assert env.last_episode is None
    env.reset(seed=0)
    env.step(CONV3)
    env.step(CONV3)
    env.step(TERMINAL)
    assert len(recorder.records) == 2  # two trainings; the terminal step was a cache hit
    (episode,) = recorder.episodes
    assert episode.actions == (CONV3, CONV3, TERMINAL) and episode.reason == "terminal"
    assert episode.terminated and episode.steps == 3 and episode.trainings == 2
    assert episode.best_accuracy == max(episode.accuracies) > 0
    assert episode.total_reward == pytest.approx(sum(episode.rewards))
    assert str(episode.nsc) == "1,1,3,0,0;2,1,3,1,0;3,7,0,0,0"
    assert env.last_episode is episode


def test_reset_options(dataset: ArrayDataset) -> None:
    env = _env(dataset)
    _, info = env.reset(options={"task": "tiny"})
    assert info["dataset"] == dataset.identity
    with pytest.raises(DatasetError, match="unknown task 'other' of dataset 'tiny'"):
        env.reset(options={"task": "other"})
    with pytest.raises(ConfigError, match="unknown reset option\\(s\\) 'speed'; valid: task"):
        env.reset(options={"speed": 2})


def test_render_ansi(dataset: ArrayDataset, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(dataset, search_space="pointer", render_mode="ansi")
    env.reset(seed=0)
    env.step(CONV3)
    env.step(P2_DOWN)
    env.step(7)  # add(L, L - 1)
    text = env.render()
    assert text is not None
    assert "  1  convolution      3  input" in text
    assert "  2  add              -  1, input" in text
    assert "pointer offsets: pred1 +0, pred2 -1" in text
    human = _env(dataset, render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    assert "idx  type" in capsys.readouterr().out


# -- determinism and the checkers -------------------------------------------------------------
def _stable(info: dict[str, Any]) -> dict[str, Any]:
    # "seconds" is a wall-clock measurement of the estimator: equal seeds cannot fix it;
    # the action mask is an array, compared as a list
    stable = {key: value for key, value in info.items() if key != "seconds"}
    if "action_mask" in stable:
        stable["action_mask"] = stable["action_mask"].tolist()
    return stable


def _trajectory(env: NASEnv, seed: int, steps: int) -> list[Any]:
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    out: list[Any] = [obs.tolist(), _stable(info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((obs.tolist(), reward, terminated, truncated, _stable(info)))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs.tolist(), _stable(info)))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_seeded_determinism(dataset: ArrayDataset, mode: str) -> None:
    first = _trajectory(_env(dataset, search_space=mode), 7, 60)
    second = _trajectory(_env(dataset, search_space=mode), 7, 60)
    assert first == second
    assert first != _trajectory(_env(dataset, search_space=mode), 8, 60)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("mode", MODES)
def test_gymnasium_check_env(dataset: ArrayDataset, mode: str, encoder: str) -> None:
    # A fresh env, cache empty: the checker's second identical first step is a cache hit,
    # which info does not show (it is env.last_cache_hit), so the two infos are equal.
    env = _env(dataset, search_space=mode, state_encoder=encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("mode", MODES)
def test_gymnasium_check_env_through_make(dataset: ArrayDataset, mode: str, encoder: str) -> None:
    env = gymnasium.make(
        "nasframe/NASGym-v0",
        search_space=mode,
        state_encoder=encoder,
        estimator="proxy",
        dataset=dataset,
        render_mode="ansi",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_gymnasium_check_env_on_the_registered_id_with_its_defaults() -> None:
    # What a user's first check looks like: the bundled digits, the default space.
    env = gymnasium.make("nasframe/NASGym-v0", estimator="proxy")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.evaluator.hits > 0  # the checker did hit the cache


def test_out_of_range_plan_needs_no_evaluation(dataset: ArrayDataset) -> None:
    env = _env(dataset, search_space="pointer")
    env.reset(seed=0)
    plan = env.begin_step(P1_UP)
    assert plan.nsc is None and plan.transition.out_of_bounds
    _, reward, terminated, truncated, info = env.finish_step(plan, None)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["status"] == "out_of_range" and info["action_label"] == "predshift_p-1_op-U"
    assert env.evaluator.trainings == 0 and env.evaluator.hits == 0


@pytest.mark.parametrize("retry", [False, True])
def test_retry_transient_results(dataset: ArrayDataset, retry: bool) -> None:
    from nasframe.evaluation import make_record

    db = MemoryDB()
    stored = Evaluation.failed(Status.OUT_OF_MEMORY, "OOM while training")
    db.put(
        make_record(
            nasframe.NSC.parse("1,1,3,0,0"),
            stored,
            estimator=ProxyEstimator(),
            dataset=dataset,
            seed=None,
        )
    )
    env = _env(dataset, database=db, retry_transient=retry)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(CONV3)
    if retry:
        assert info["status"] == "ok" and not env.last_cache_hit and reward > 0
        assert not terminated and env.evaluator.trainings == 1
    else:
        assert info["status"] == "out_of_memory" and env.last_cache_hit and terminated
        assert info["message"] == "OOM while training" and reward == 0.0
