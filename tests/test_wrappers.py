"""The meta-RL observation wrapper and the task schedule."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import nasframe
from nasframe.env.wrappers import MetaRLObservation, Phase, TaskSchedule, parse_schedule


class TaskEnv(gymnasium.Env[np.ndarray, int]):
    """A 2x3 integer grid observation; the reward is action/10 plus 1 on task 'b'."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, episode_length: int = 3) -> None:
        self.action_space = gymnasium.spaces.Discrete(4)
        self.observation_space = gymnasium.spaces.Box(0, 5, shape=(2, 3), dtype=np.int32)
        self.episode_length = episode_length
        self.task = "a"
        self.reset_tasks: list[str] = []
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        if options and "task" in options:
            if options["task"] not in ("a", "b", "c"):
                raise nasframe.DatasetError(f"unknown task {options['task']!r}")
            self.task = options["task"]
        self.reset_tasks.append(self.task)
        self._t = 0
        return np.full((2, 3), 1, dtype=np.int32), {}

    def step(self, action: int) -> Any:
        self._t += 1
        obs = np.full((2, 3), min(self._t + 1, 5), dtype=np.int32)
        reward = int(action) / 10 + (1.0 if self.task == "b" else 0.0)
        return obs, reward, False, self._t >= self.episode_length, {}


def test_meta_observation_space_and_values() -> None:
    env = MetaRLObservation(TaskEnv())
    space = env.observation_space
    assert isinstance(space, gymnasium.spaces.Box)
    assert space.shape == (6 + 4 + 2,)
    assert space.dtype == np.float32
    assert np.all(space.low[:6] == 0) and np.all(space.high[:6] == 5)
    assert np.all(space.low[6:10] == 0) and np.all(space.high[6:10] == 1)
    assert space.low[10] == -np.inf and space.high[10] == np.inf
    assert space.low[11] == 0
    assert env.layout["previous_action"] == slice(6, 10)

    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs in space
    np.testing.assert_array_equal(obs, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])

    obs, reward, _, _, _ = env.step(2)
    np.testing.assert_allclose(obs, [2, 2, 2, 2, 2, 2, 0, 0, 1, 0, 0.2, 1])
    assert reward == pytest.approx(0.2)
    obs, _, _, _, _ = env.step(3)
    np.testing.assert_allclose(obs, [3, 3, 3, 3, 3, 3, 0, 0, 0, 1, 0.3, 2])
    obs, _, _, truncated, _ = env.step(0)
    assert truncated
    np.testing.assert_allclose(obs[6:], [1, 0, 0, 0, 0.0, 3])
    # a new episode starts from zeros again
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs[6:], np.zeros(6))


@pytest.mark.filterwarnings("ignore:.*(unwrapped version|infinity):UserWarning")
def test_meta_wrapper_passes_gymnasiums_env_checker() -> None:
    check_env(MetaRLObservation(TaskEnv()), skip_render_check=True)


def test_meta_wrapper_flattens_dict_observations() -> None:
    inner = TaskEnv()
    box = inner.observation_space
    inner.observation_space = gymnasium.spaces.Dict({"grid": box})  # type: ignore[assignment]
    original_reset = inner.reset

    def reset(**kwargs: Any) -> Any:
        obs, info = original_reset(**kwargs)
        return {"grid": obs}, info

    inner.reset = reset  # type: ignore[method-assign]
    env = MetaRLObservation(inner)
    obs, _ = env.reset()
    assert obs.shape == (12,)


def test_meta_wrapper_needs_a_discrete_action_space() -> None:
    inner = TaskEnv()
    inner.action_space = gymnasium.spaces.Box(0, 1, shape=(2,))  # type: ignore[assignment]
    with pytest.raises(nasframe.ConfigError) as info:
        MetaRLObservation(inner)
    assert str(info.value) == "the meta-RL wrapper needs a Discrete action space, got Box"


def test_parse_schedule() -> None:
    assert parse_schedule("omniglot:8000, vgg_flower:7000,dtd:7000") == [
        Phase("omniglot", 8000),
        Phase("vgg_flower", 7000),
        Phase("dtd", 7000),
    ]
    for bad in ("omniglot", "omniglot:0", "omniglot:-3", ":5", "a:x"):
        with pytest.raises(nasframe.ConfigError, match=r"must be task:steps with steps >= 1"):
            parse_schedule(bad)
    with pytest.raises(nasframe.ConfigError, match="the schedule is empty"):
        parse_schedule(" , ")


def test_task_schedule_switches_at_episode_starts() -> None:
    inner = TaskEnv(episode_length=3)
    env = TaskSchedule(inner, [Phase("a", 5), Phase("b", 4), Phase("c", 1)])
    seen: list[str] = []
    rewards: list[float] = []
    env.reset(seed=1)
    for _ in range(18):
        _, reward, _, truncated, info = env.step(0)
        seen.append(info["task"])
        rewards.append(float(reward))
        if truncated:
            env.reset()
    # episodes of 3 steps: the switch waits for the episode under way to end
    assert seen == ["a"] * 6 + ["b"] * 3 + ["c"] * 9
    assert rewards[6:9] == [1.0, 1.0, 1.0]
    assert env.switches == 2
    assert inner.reset_tasks[:4] == ["a", "a", "b", "c"]


def test_task_schedule_resumes_mid_schedule() -> None:
    env = TaskSchedule(TaskEnv(), [Phase("a", 5), Phase("b", 4)], start_step=6)
    _, info = env.reset()
    assert info["task"] == "b"
    assert env.task_at(0) == "a" and env.task_at(8) == "b" and env.task_at(100) == "b"


def test_task_schedule_refuses_unknown_tasks() -> None:
    with pytest.raises(nasframe.ConfigError) as info:
        TaskSchedule(TaskEnv(), [Phase("omniglot", 3)], known_tasks=("a", "b"))
    assert str(info.value) == "[run] tasks: unknown task 'omniglot' (the dataset's tasks: a, b)"


def test_recurrent_ppo_runs_on_the_meta_rl_stack() -> None:
    # A smoke of the mechanism only: the real Experiment 1 takes weeks.
    inner = TaskEnv()
    env = MetaRLObservation(TaskSchedule(inner, [Phase("a", 6), Phase("b", 6)]))
    agent = nasframe.make_agent("recurrent-ppo", env, seed=0, n_steps=4, batch_size=4)
    assert agent.learn(15) == 15
    assert "b" in inner.reset_tasks
    assert type(agent.model.policy).__name__ == "RecurrentActorCriticPolicy"  # type: ignore[attr-defined]
