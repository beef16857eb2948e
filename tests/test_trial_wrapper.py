"""The trial wrapper: K NAS episodes joined into one Gymnasium episode (RL²'s trial)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import nasframe
from nasframe.env.wrappers import MetaRLObservation, Phase, TaskSchedule, TrialWrapper

# chained space on digits: ids 0-6 add a layer, 7 is the terminal action
CONV, POOL, TERMINAL = 1, 3, 7
TRIAL_KEYS = (
    "trial_episode",
    "inner_terminated",
    "inner_truncated",
    "inner_final_observation",
    "inner_reset_info",
)


def nas_env(max_steps: int = 3) -> nasframe.NASEnv:
    return nasframe.make_env(estimator="proxy", dataset="digits", seed=0, max_steps=max_steps)


class Resets(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Counts the resets that reach the env below, with their seeds and options."""

    def __init__(self, env: gymnasium.Env[Any, Any]) -> None:
        super().__init__(env)
        self.calls: list[tuple[int | None, dict[str, Any] | None]] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.calls.append((seed, options))
        return self.env.reset(seed=seed, options=options)


class Steps(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Records every step's action, reward and flags (a step log of the env below)."""

    def __init__(self, env: gymnasium.Env[Any, Any]) -> None:
        super().__init__(env)
        self.log: list[tuple[int, float, bool, bool, dict[str, Any]]] = []

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.log.append((int(action), float(reward), terminated, truncated, info))
        return obs, reward, terminated, truncated, info


class TaskEnv(gymnasium.Env[np.ndarray, int]):
    """Episodes of 2 steps; the reward is action/10 plus 1 on task 'b'."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self) -> None:
        self.action_space = gymnasium.spaces.Discrete(3)
        self.observation_space = gymnasium.spaces.Box(0, 5, shape=(2,), dtype=np.float32)
        self.task = "a"
        self.reset_tasks: list[str] = []
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = options["task"]
        self.reset_tasks.append(self.task)
        self._t = 0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: int) -> Any:
        self._t += 1
        reward = int(action) / 10 + (1.0 if self.task == "b" else 0.0)
        return np.full(2, self._t, dtype=np.float32), reward, False, self._t >= 2, {}


def run_trial(env: gymnasium.Env[Any, Any], actions: list[int], seed: int | None) -> list[Any]:
    """Steps until the Gymnasium episode ends; the transitions, the reset first."""
    obs, info = env.reset(seed=seed)
    out: list[Any] = [(obs, info)]
    for action in actions:
        step = env.step(action)
        out.append(step)
        if step[2] or step[3]:
            return out
    raise AssertionError("the trial did not end within the actions given")


@pytest.mark.parametrize("bad", [0, -2, 1.5, "3", True, None])
def test_bad_episode_counts_are_one_line_config_errors(bad: Any) -> None:
    with pytest.raises(nasframe.ConfigError) as info:
        TrialWrapper(TaskEnv(), episodes=bad)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("trial episodes must be an integer >= 1")
    assert message.endswith(f"got {bad!r}")


def test_numpy_integers_are_accepted() -> None:
    assert TrialWrapper(TaskEnv(), episodes=np.int64(2)).episodes == 2


@pytest.mark.parametrize("inside", ["meta", "schedule"])
def test_the_wrong_order_is_refused(inside: str) -> None:
    env: gymnasium.Env[Any, Any] = TaskEnv()
    env = MetaRLObservation(env) if inside == "meta" else TaskSchedule(env, [Phase("a", 4)])
    with pytest.raises(nasframe.ConfigError, match="the trial wrapper must be inside"):
        TrialWrapper(Resets(env), episodes=2)


@pytest.mark.parametrize(("last", "ends"), [(TERMINAL, "terminated"), (CONV, "truncated")])
def test_the_episode_ends_after_exactly_k_nas_episodes(last: int, ends: str) -> None:
    counter = Resets(nas_env(max_steps=3))
    env = TrialWrapper(counter, episodes=3)
    # terminated by the terminal action, truncated after 3 layers, then the last one
    script = [CONV, TERMINAL, CONV, POOL, CONV, CONV, POOL, last]
    steps = run_trial(env, script, seed=None)[1:]
    assert len(steps) == len(script)
    assert len(counter.calls) == env.inner_resets == 3
    flags = [(s[2], s[3]) for s in steps]
    assert flags[:-1] == [(False, False)] * (len(script) - 1)
    assert flags[-1] == ((True, False) if ends == "terminated" else (False, True))
    infos = [s[4] for s in steps]
    assert [i["trial_episode"] for i in infos] == [1, 1, 2, 2, 2, 3, 3, 3]
    ended = [i["inner_terminated"] or i["inner_truncated"] for i in infos]
    assert [n for n, e in enumerate(ended) if e] == [1, 4, 7]
    assert infos[1]["inner_terminated"] and infos[4]["inner_truncated"]
    assert infos[7][f"inner_{ends}"]
    # a second trial starts with the next reset
    _, info = env.reset()
    assert info["trial_episode"] == 1 and env.episode == 1 and len(counter.calls) == 4


def test_a_trial_is_k_plain_episodes_with_the_same_seeds() -> None:
    rng = np.random.default_rng(3)
    actions = [int(a) for a in rng.integers(0, 8, size=200)]
    k, seed = 4, 11
    counter = Resets(nas_env())
    trial = run_trial(TrialWrapper(counter, episodes=k), actions, seed=seed)
    assert [call[0] for call in counter.calls] == [seed + i for i in range(k)]

    plain = nas_env()  # a fresh env with the same components and its own cache
    expected_obs: list[np.ndarray] = []
    expected_steps: list[tuple[float, dict[str, Any]]] = []
    finals: list[np.ndarray] = []
    position = 0
    for episode in range(k):
        obs, _ = plain.reset(seed=seed + episode)
        expected_obs.append(obs)
        while True:
            obs, reward, terminated, truncated, info = plain.step(actions[position])
            position += 1
            expected_steps.append((float(reward), info))
            if terminated or truncated:
                finals.append(obs)
                break
            expected_obs.append(obs)
    last_flags = (terminated, truncated)

    steps = trial[1:]
    assert len(steps) == len(expected_steps) == position
    assert [float(s[1]) for s in steps] == [reward for reward, _ in expected_steps]
    # the observations the agent sees: each episode's first one, then the steps' ones
    seen = [trial[0][0]] + [s[0] for s in steps[:-1]]
    assert len(seen) == len(expected_obs)
    for got, want in zip(seen, expected_obs, strict=True):
        np.testing.assert_array_equal(got, want)
    boundaries = [s[4] for s in steps if "inner_final_observation" in s[4]]
    assert len(boundaries) == k - 1
    for info, final in zip(boundaries, finals, strict=False):
        np.testing.assert_array_equal(info["inner_final_observation"], final)
    np.testing.assert_array_equal(steps[-1][0], finals[-1])
    assert (steps[-1][2], steps[-1][3]) == last_flags
    # the inner step's info is kept (but the action mask is the next episode's)
    for (_, _, _, _, info), (_, want) in zip(steps, expected_steps, strict=True):
        inner = {key: value for key, value in info.items() if key not in TRIAL_KEYS}
        if "inner_reset_info" in info:
            np.testing.assert_array_equal(
                inner.pop("action_mask"), info["inner_reset_info"]["action_mask"]
            )
            want = {key: value for key, value in want.items() if key != "action_mask"}
        assert inner.keys() == want.keys()
        for key, value in want.items():
            np.testing.assert_array_equal(inner[key], value)


def test_without_a_seed_the_inner_resets_get_none_and_options_reach_the_first_only() -> None:
    counter = Resets(TaskEnv())
    env = TrialWrapper(counter, episodes=3)
    env.reset(options={"task": "b"})
    for _ in range(6):
        env.step(0)
    assert counter.calls == [(None, {"task": "b"}), (None, None), (None, None)]


def test_episodes_1_changes_only_the_info() -> None:
    env = TrialWrapper(TaskEnv(), episodes=1)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(1)
    assert not (terminated or truncated)
    _, _, _, truncated, info = env.step(1)
    assert truncated and info["inner_truncated"] and "inner_reset_info" not in info


@pytest.mark.filterwarnings("ignore:.*(unwrapped version|infinity):UserWarning")
@pytest.mark.parametrize("meta", [False, True])
def test_gymnasiums_env_checker_passes(meta: bool) -> None:
    env: gymnasium.Env[Any, Any] = TrialWrapper(nas_env(), episodes=3)
    if meta:
        env = MetaRLObservation(env)
    check_env(env, skip_render_check=True)


def test_the_meta_rl_observation_carries_across_the_nas_episodes() -> None:
    env = MetaRLObservation(TrialWrapper(TaskEnv(), episodes=2))
    layout = env.layout
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[2:], [0, 0, 0, 0, 0])
    obs, *_ = env.step(1)
    np.testing.assert_allclose(obs, [1, 1, 0, 1, 0, 0.1, 1])
    # the first episode ends: the second one's first observation, step 0, but the last
    # action and reward of the first episode are kept
    obs, reward, terminated, truncated, info = env.step(2)
    assert not (terminated or truncated) and info["inner_truncated"]
    np.testing.assert_allclose(obs[layout["observation"]], [0, 0])
    np.testing.assert_allclose(obs[layout["previous_action"]], [0, 0, 1])
    assert obs[layout["previous_reward"]][0] == pytest.approx(0.2) == reward
    assert obs[layout["step"]][0] == 0
    obs, *_ = env.step(0)
    np.testing.assert_allclose(obs[2:], [1, 0, 0, 0, 1])
    # the trial's last step ends the episode and counts on; a new trial clears all
    obs, _, _, truncated, _ = env.step(1)
    assert truncated and obs[layout["step"]][0] == 2
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs[2:], [0, 0, 0, 0, 0])


def test_the_task_schedule_outside_switches_tasks_between_trials_only() -> None:
    inner = TaskEnv()
    env = MetaRLObservation(
        TaskSchedule(TrialWrapper(inner, episodes=3), [Phase("a", 2), Phase("b", 10)])
    )
    env.reset(seed=0)
    tasks = []
    for _ in range(12):
        _, _, terminated, truncated, info = env.step(0)
        tasks.append(info["task"])
        if terminated or truncated:
            env.reset()
    # trials of 3 episodes x 2 steps: the switch after 2 steps waits for the trial's end
    assert tasks == ["a"] * 6 + ["b"] * 6
    assert inner.reset_tasks == ["a", "a", "a", "b", "b", "b", "b"]


def test_recurrent_ppo_keeps_its_memory_across_the_joined_episodes() -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    n_steps, k = 24, 3
    log = Steps(TrialWrapper(nas_env(max_steps=3), episodes=k))
    agent = nasframe.make_agent(
        "recurrent-ppo",
        MetaRLObservation(log),
        seed=0,
        n_steps=n_steps,
        batch_size=n_steps,
        n_epochs=1,
        lstm_hidden_size=8,
        net_arch="8",
    )
    model: Any = agent.model  # type: ignore[attr-defined]

    class Rollout(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            buffer = self.model.rollout_buffer
            self.starts = buffer.episode_starts[:, 0].copy()
            self.hidden = buffer.hidden_states_pi[:, :, 0].copy()  # (steps, layers, units)

    rollout = Rollout()
    model.learn(total_timesteps=n_steps, callback=rollout)
    assert len(log.log) == n_steps
    outer_done = [terminated or truncated for _, _, terminated, truncated, _ in log.log]
    inner_done = [i["inner_terminated"] or i["inner_truncated"] for *_, i in log.log]
    # episode_starts[t]: the observation of step t is the first of a Gymnasium episode
    expected = [True, *outer_done[:-1]]
    np.testing.assert_array_equal(rollout.starts.astype(bool), expected)
    boundaries = [t + 1 for t in range(n_steps - 1) if inner_done[t] and not outer_done[t]]
    assert boundaries, "the rollout crossed no NAS episode boundary inside a trial"
    for t in boundaries:
        assert rollout.starts[t] == 0
        # the LSTM state carried into the new NAS episode is not the zero state
        assert np.abs(rollout.hidden[t]).max() > 0

    # the same through predict(): the state after an inner boundary is carried
    env = MetaRLObservation(TrialWrapper(nas_env(max_steps=3), episodes=k))
    obs, _ = env.reset(seed=1)
    state, start = None, np.ones(1, dtype=bool)
    for _ in range(40):
        action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
        obs, _, terminated, truncated, info = env.step(int(action))
        start = np.array([terminated or truncated])
        if (info["inner_terminated"] or info["inner_truncated"]) and not start[0]:
            carried = model.predict(obs, state=state, episode_start=start)[1]
            zeroed = model.predict(obs, state=state, episode_start=np.ones(1, bool))[1]
            assert np.abs(state[0]).max() > 0
            assert not np.allclose(carried[0], zeroed[0])
            break
    else:
        raise AssertionError("no NAS episode boundary inside a trial in 40 steps")


def test_make_agent_accepts_a_wrapped_env_and_learns() -> None:
    env = MetaRLObservation(TrialWrapper(nas_env(), episodes=2))
    agent = nasframe.make_agent("recurrent-ppo", env, seed=0, n_steps=8, batch_size=8, n_epochs=1)
    assert agent.learn(20) == 20
    ppo = nasframe.make_agent(
        "ppo", TrialWrapper(nas_env(), episodes=2), seed=0, n_steps=8, batch_size=8, n_epochs=1
    )
    assert ppo.learn(16) == 16


@pytest.mark.parametrize("name", ["random", "rea", "tpe", "reinforce", "qlearning"])
def test_episodic_agents_propose_one_network_per_nas_episode(name: str) -> None:
    # A black-box agent's unit is one NAS episode: over a trial it plays the same
    # proposals, with the same results, as over the plain env.
    runs = []
    for k in (1, 3):
        log = Steps(nas_env(max_steps=4))
        counter = Resets(log)
        agent = nasframe.make_agent(name, TrialWrapper(counter, episodes=k), seed=5)
        assert agent.learn(60) == 60
        runs.append(([(a, r) for a, r, *_ in log.log], len(counter.calls)))
    (plain, plain_resets), (trial, trial_resets) = runs
    assert trial == plain
    assert plain_resets > 3 and trial_resets == plain_resets  # resets by agent or trial
