"""The agent contract and the default agents, on a small Gymnasium environment of our own."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest

import nasframe


class GuessEnv(gymnasium.Env[np.ndarray, int]):
    """Guess the hidden action: reward 1 for the target action, episodes of 4 steps."""

    def __init__(self, n_actions: int = 3, target: int = 1, dict_obs: bool = False) -> None:
        self.action_space = gymnasium.spaces.Discrete(n_actions)
        box = gymnasium.spaces.Box(0.0, 1.0, shape=(n_actions,), dtype=np.float32)
        self.observation_space: Any = gymnasium.spaces.Dict({"x": box}) if dict_obs else box
        self.dict_obs = dict_obs
        self.target = target
        self.actions: list[int] = []
        self.resets = 0
        self._t = 0
        self._last = np.zeros(n_actions, dtype=np.float32)

    def _obs(self) -> Any:
        return {"x": self._last.copy()} if self.dict_obs else self._last.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.resets += 1
        self._t = 0
        self._last = np.zeros(self.action_space.n, dtype=np.float32)
        return self._obs(), {}

    def step(self, action: int) -> Any:
        action = int(action)
        self.actions.append(action)
        self._t += 1
        self._last = np.zeros(self.action_space.n, dtype=np.float32)
        self._last[action] = 1.0
        reward = 1.0 if action == self.target else 0.0
        return self._obs(), reward, False, self._t >= 4, {}


AGENTS = ["random", "rea", "tpe", "reinforce", "qlearning", "ppo", "a2c", "dqn", "recurrent-ppo"]


@pytest.mark.parametrize("name", AGENTS)
def test_agent_learns_exactly_the_steps_asked_and_round_trips(name: str, tmp_path: Path) -> None:
    env = GuessEnv()
    agent = nasframe.make_agent(name, env, seed=3)
    assert isinstance(agent, nasframe.Agent)
    assert agent.name.startswith(name) and agent.name.endswith("-v1")
    taken = agent.learn(10)
    assert taken == 10 == len(env.actions) == agent.num_timesteps
    assert set(env.actions) <= {0, 1, 2}
    checkpoint = agent.save(tmp_path / f"agent{agent.checkpoint_suffix}")
    assert checkpoint.is_file()

    restored = nasframe.make_agent(name, GuessEnv(), seed=3)
    restored.load(checkpoint)
    assert restored.num_timesteps == 10
    assert restored.learn(5) == 5
    assert restored.num_timesteps == 15


@pytest.mark.parametrize("name", AGENTS)
def test_callback_false_stops_after_that_step(name: str) -> None:
    env = GuessEnv()
    agent = nasframe.make_agent(name, env, seed=0)
    calls: list[int] = []

    def callback() -> bool:
        calls.append(len(env.actions))
        return len(calls) < 7

    assert agent.learn(100, callback) == 7
    assert calls == [1, 2, 3, 4, 5, 6, 7]
    assert len(env.actions) == 7


def test_random_agent_resumed_draws_what_an_uninterrupted_one_draws(tmp_path: Path) -> None:
    whole = GuessEnv(n_actions=14)
    nasframe.make_agent("random", whole, seed=1024).learn(30)

    first = GuessEnv(n_actions=14)
    agent = nasframe.make_agent("random", first, seed=1024)
    agent.learn(12)
    agent.save(tmp_path / "agent.json")
    second = GuessEnv(n_actions=14)
    resumed = nasframe.make_agent("random", second, seed=1024)
    resumed.load(tmp_path / "agent.json")
    resumed.learn(18)
    assert first.actions + second.actions == whole.actions
    assert len(set(whole.actions)) > 5  # uniform over 14 actions, not stuck


def test_random_agent_is_seeded() -> None:
    a, b, c = GuessEnv(8), GuessEnv(8), GuessEnv(8)
    nasframe.make_agent("random", a, seed=5).learn(20)
    nasframe.make_agent("random", b, seed=5).learn(20)
    nasframe.make_agent("random", c, seed=6).learn(20)
    assert a.actions == b.actions != c.actions


def test_ppo_learns_the_target_action() -> None:
    # A real learning signal: after training, PPO picks the rewarded action mostly.
    env = GuessEnv(n_actions=3, target=2)
    agent = nasframe.make_agent("ppo", env, seed=0, learning_rate=3e-3)
    agent.learn(1500)
    late = env.actions[-200:]
    assert late.count(2) / len(late) > 0.8


def test_sb3_picks_the_multi_input_policy_for_dict_observations() -> None:
    env = GuessEnv(dict_obs=True)
    agent = nasframe.make_agent("a2c", env, seed=0)
    assert type(agent.model.policy).__name__ == "MultiInputActorCriticPolicy"  # type: ignore[attr-defined]
    assert agent.learn(6) == 6


def test_settings_come_from_the_config_section(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[ppo]\nn_steps = 16\nbatch_size = 8\ngamma = 0.5\n")
    config = nasframe.load_config(ini)
    agent = nasframe.make_agent("ppo", GuessEnv(), seed=0, config=config)
    assert agent.model.n_steps == 16  # type: ignore[attr-defined]
    assert agent.model.gamma == 0.5  # type: ignore[attr-defined]


def test_unknown_agent_lists_the_known_ones() -> None:
    with pytest.raises(nasframe.RegistryError) as info:
        nasframe.make_agent("ppp", GuessEnv())
    message = str(info.value)
    assert "\n" not in message
    assert "unknown agent 'ppp'" in message
    assert "did you mean 'ppo'?" in message
    for name in ("random-v1", "ppo-v1", "a2c-v1", "dqn-v1", "recurrent-ppo-v1"):
        assert name in message


def test_missing_rl_extra_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "stable_baselines3" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(nasframe.PluginError) as info:
        nasframe.make_agent("dqn", GuessEnv())
    assert str(info.value) == (
        "agent 'dqn-v1' needs stable_baselines3, which is not installed; "
        "run: pip install 'nasframe[rl]'"
    )
    # random search needs no extra
    assert nasframe.make_agent("random", GuessEnv()).learn(2) == 2


def test_bad_settings_are_a_config_error() -> None:
    with pytest.raises(nasframe.ConfigError, match=r"net_arch 'x' must be comma-separated"):
        nasframe.make_agent("ppo", GuessEnv(), net_arch="x")
    with pytest.raises(nasframe.ConfigError) as info:
        nasframe.make_agent("ppo", GuessEnv(), no_such_setting=1)
    assert str(info.value) == (
        "[ppo]: PPO rejected the settings: PPO.__init__() got an unexpected keyword "
        "argument 'no_such_setting'"
    )
    with pytest.raises(nasframe.ConfigError, match=r"agent 'random-v1' rejected its settings"):
        nasframe.make_agent("random", GuessEnv(), epsilon=0.1)


def test_random_agent_needs_a_discrete_action_space() -> None:
    env = GuessEnv()
    env.action_space = gymnasium.spaces.Box(0, 1, shape=(2,))  # type: ignore[assignment]
    with pytest.raises(nasframe.ConfigError, match="needs a Discrete action space, got Box"):
        nasframe.make_agent("random", env)


def test_loading_a_bad_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "agent.json"
    bad.write_text("{not json")
    agent = nasframe.make_agent("random", GuessEnv())
    with pytest.raises(nasframe.NasframeError, match="cannot load the random agent's checkpoint"):
        agent.load(bad)
    sb3 = nasframe.make_agent("a2c", GuessEnv())
    with pytest.raises(nasframe.NasframeError, match="agent checkpoint does not exist"):
        sb3.load(tmp_path / "missing.zip")
    (tmp_path / "junk.zip").write_bytes(b"junk")
    with pytest.raises(nasframe.NasframeError, match="cannot load the a2c checkpoint"):
        sb3.load(tmp_path / "junk.zip")


def test_random_agent_drives_a_vector_env() -> None:
    envs = [GuessEnv(n_actions=5) for _ in range(3)]
    vector = gymnasium.vector.SyncVectorEnv([lambda e=e: e for e in envs])  # type: ignore[misc]
    agent = nasframe.make_agent("random", vector, seed=2)
    calls: list[int] = []

    def callback() -> bool:
        calls.append(1)
        return len(calls) < 4

    assert agent.learn(100, callback) == 12  # 4 vector steps of 3 envs, no episode ended
    assert agent.num_timesteps == 12
    assert all(len(env.actions) >= 3 for env in envs)  # next-step autoreset eats a step


def test_sb3_agent_accepts_an_sb3_vec_env() -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    envs = [GuessEnv(), GuessEnv()]
    vec = DummyVecEnv([lambda e=e: e for e in envs])  # type: ignore[misc]
    agent = nasframe.make_agent("a2c", vec, seed=0)
    assert agent.learn(10) == 10  # 5 vector steps of 2 envs
    assert len(envs[0].actions) == len(envs[1].actions) == 5


def test_dqn_checkpoint_keeps_its_replay_buffer(tmp_path: Path) -> None:
    agent = nasframe.make_agent("dqn", GuessEnv(), seed=0)
    agent.learn(30)
    agent.save(tmp_path / "agent.zip")
    assert (tmp_path / "agent.replay.pkl").is_file()
    restored = nasframe.make_agent("dqn", GuessEnv(), seed=0)
    restored.load(tmp_path / "agent.zip")
    # SB3 asks the callback before it stores a step's transition: stopping loses the last
    size = restored.model.replay_buffer.size()  # type: ignore[attr-defined]
    assert size == 29


# -- the black-box baselines: regularized evolution and TPE (ask/tell) ---------------------


def test_rea_mutates_one_action_of_a_tournament_winner() -> None:
    env = GuessEnv(n_actions=6)
    agent: Any = nasframe.make_agent("rea", env, seed=0, population=4, sample=2, length=4)
    assert agent.length == 4
    for actions, reward in (([0, 0, 0, 0], 0.1), ([1, 1, 1, 1], 0.9), ([2, 2, 2, 2], 0.2)):
        agent.tell(actions, reward)
    assert len(agent.ask()) == 4  # still filling the population: random
    agent.tell([3, 3, 3, 3], 0.3)
    parents = [a for a, _ in agent.population]
    for _ in range(50):
        child = agent.ask()
        differences = [
            min(sum(c != p for c, p in zip(child, parent, strict=True)) for parent in parents)
        ]
        assert differences == [1]
        assert all(0 <= a < 6 for a in child)
    # the best member wins every tournament it is drawn into: 2 of 4 members are drawn,
    # so half the children are its mutants (three 1s), the others none
    children = [agent.ask() for _ in range(200)]
    from_best = sum(sum(a == 1 for a in child) == 3 for child in children)
    assert 60 < from_best < 140
    # aging: a fifth result pushes out the oldest member
    agent.tell([5, 5, 5, 5], 0.0)
    assert agent.population[0][0] == [1, 1, 1, 1]


def test_rea_mutates_only_actions_the_episode_took() -> None:
    agent: Any = nasframe.make_agent(
        "rea", GuessEnv(n_actions=3), seed=1, population=2, sample=1, length=5
    )
    agent.tell([2], 0.5)  # an episode that ended after one action
    agent.tell([2], 0.5)
    for _ in range(20):
        child = agent.ask()
        assert len(child) == 5 and child[0] != 2


def test_rea_proposes_its_initial_sequences_first_then_evolves_them() -> None:
    initial = [[1, 1, 1], [2, 2], [0, 1, 2]]
    agent: Any = nasframe.make_agent(
        "rea", GuessEnv(n_actions=3), seed=0, population=3, sample=3, length=3, initial=initial
    )
    asked = [agent.ask() for _ in initial]
    assert asked == initial  # in order, before any random one
    for actions, reward in zip(asked, (0.9, 0.1, 0.2), strict=True):
        agent.tell(actions, reward)
    # the population is full of them: every child is a mutant of the best, [1, 1, 1]
    for _ in range(20):
        child = agent.ask()
        assert sum(c != 1 for c in child) == 1
    restored: Any = nasframe.make_agent("rea", GuessEnv(n_actions=3), seed=0, initial=initial)
    restored.restore(agent.state())
    assert restored.initial_asked == 3  # a resumed run does not propose them again
    with pytest.raises(nasframe.ConfigError, match=r"\[rea\] initial: sequence 1 \(\[0, 5\]\)"):
        nasframe.make_agent("rea", GuessEnv(n_actions=3), initial=[[0], [0, 5]])


def test_ask_tell_agents_learn_from_episodes_in_the_env() -> None:
    for name in ("rea", "tpe", "reinforce", "qlearning"):
        env = GuessEnv(n_actions=4, target=2)
        settings: dict[str, Any] = {
            "reinforce": {"learning_rate": 0.5},
            "qlearning": {"learning_rate": 0.5, "epsilon_episodes": 40},
        }.get(name, {})
        agent: Any = nasframe.make_agent(name, env, seed=0, **settings)
        assert agent.length == 10  # GuessEnv has no max_steps: the default
        agent.learn(400)
        # episodes of 4 steps; the reward an episode is told is its last step's: 1 when
        # the 4th action is 2. The last 25 episodes mostly end with it.
        last = env.actions[3::4][-25:]
        assert last.count(2) / len(last) > 0.5, name


def test_tpe_tell_accepts_a_sequence_it_did_not_propose() -> None:
    agent: Any = nasframe.make_agent("tpe", GuessEnv(n_actions=3), seed=0, length=3)
    proposal = agent.ask()
    agent.tell([0, 1, 2], 0.4)
    agent.tell(proposal[:1], 0.7)  # the proposal's episode ended after one action
    values = sorted(t.value for t in agent.study.trials if t.value is not None)
    assert values == [0.4, 0.7]


def test_rea_and_tpe_resume_with_their_history(tmp_path: Path) -> None:
    for name in ("rea", "tpe"):
        agent: Any = nasframe.make_agent(name, GuessEnv(), seed=4)
        agent.learn(40)
        path = agent.save(tmp_path / f"{name}.json")
        restored: Any = nasframe.make_agent(name, GuessEnv(), seed=4)
        restored.load(path)
        assert restored.num_timesteps == 40
        assert restored.state() == agent.state()
        if name == "rea":
            assert restored.ask() == agent.ask()  # same population, same generator state
        else:
            assert len(restored.study.trials) == 10
        bad = tmp_path / "bad.json"
        bad.write_text('{"agent": "random"}')
        with pytest.raises(nasframe.NasframeError, match=f"cannot load the {name} agent's"):
            restored.load(bad)


def test_rea_and_tpe_settings_are_checked() -> None:
    with pytest.raises(nasframe.ConfigError, match=r"\[rea\] sample = 9: must be between 1"):
        nasframe.make_agent("rea", GuessEnv(), population=4, sample=9)
    with pytest.raises(nasframe.ConfigError, match=r"\[rea\] population = 1: must be at least 2"):
        nasframe.make_agent("rea", GuessEnv(), population=1)
    with pytest.raises(nasframe.ConfigError, match=r"\[tpe\] length = -1: must be an integer"):
        nasframe.make_agent("tpe", GuessEnv(), length=-1)
    vector = gymnasium.vector.SyncVectorEnv([GuessEnv, GuessEnv])
    with pytest.raises(nasframe.ConfigError, match="agent 'rea' runs one episode at a time"):
        nasframe.make_agent("rea", vector)


def test_missing_optuna_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "optuna" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(nasframe.PluginError) as info:
        nasframe.make_agent("tpe", GuessEnv())
    assert str(info.value) == (
        "agent 'tpe-v1' needs optuna, which is not installed; run: pip install 'nasframe[optuna]'"
    )
    assert nasframe.make_agent("rea", GuessEnv()).learn(2) == 2


# -- REINFORCE (ask/tell, NumPy) ------------------------------------------------------------


def test_reinforce_moves_each_position_toward_what_beat_the_baseline() -> None:
    agent: Any = nasframe.make_agent(
        "reinforce", GuessEnv(n_actions=3), seed=0, learning_rate=1.0, baseline_decay=0.5
    )
    assert isinstance(agent, nasframe.AskTellAgent)  # --workers N runs it asynchronously
    assert np.allclose(agent.probabilities(), 1 / 3)  # uniform before any result
    agent.tell([0, 1], 0.2)  # the first result sets the baseline: no gradient
    assert agent.baseline == 0.2 and np.allclose(agent.probabilities(), 1 / 3)
    agent.tell([2, 1], 0.6)  # advantage 0.4 for action 2 at position 0, 1 at position 1
    p = agent.probabilities()
    # logits += 1.0 * 0.4 * (onehot - 1/3): the taken action +0.267, the others -0.133
    expected = np.exp([-0.4 / 3, -0.4 / 3, 0.8 / 3])
    assert np.allclose(p[0], expected / expected.sum())
    assert p[1][1] == p[0][2] and np.allclose(p[2:], 1 / 3)  # untaken positions unchanged
    assert agent.baseline == pytest.approx(0.5 * 0.2 + 0.5 * 0.6)
    agent.tell([2], 0.0)  # below the baseline: action 2 at position 0 falls back
    assert agent.probabilities()[0][2] < p[0][2]
    assert agent.told == 3 and all(0 <= a < 3 for a in agent.ask())


def test_reinforce_settings_are_checked_and_its_state_round_trips(tmp_path: Path) -> None:
    with pytest.raises(nasframe.ConfigError, match=r"\[reinforce\] learning_rate = 0: must be > 0"):
        nasframe.make_agent("reinforce", GuessEnv(), learning_rate=0)
    with pytest.raises(
        nasframe.ConfigError, match=r"\[reinforce\] baseline_decay = 1.0: must be in \[0, 1\)"
    ):
        nasframe.make_agent("reinforce", GuessEnv(), baseline_decay=1.0)
    agent: Any = nasframe.make_agent("reinforce", GuessEnv(), seed=2, length=4)
    agent.learn(40)
    restored: Any = nasframe.make_agent("reinforce", GuessEnv(), seed=2, length=4)
    restored.load(agent.save(tmp_path / "agent.json"))
    assert restored.state() == agent.state() and restored.ask() == agent.ask()
    other: Any = nasframe.make_agent("reinforce", GuessEnv(), seed=2, length=6)
    with pytest.raises(nasframe.NasframeError, match="cannot load the reinforce agent's"):
        other.load(tmp_path / "agent.json")  # its policy has another number of positions


# -- Q-learning (BlockQNN's agent; ask/tell, NumPy) -----------------------------------------


def test_qlearning_backs_the_final_reward_up_layer_by_layer() -> None:
    agent: Any = nasframe.make_agent(
        "qlearning", GuessEnv(n_actions=3), seed=0, learning_rate=0.5, replay=0, q_init=0.0
    )
    assert isinstance(agent, nasframe.AskTellAgent)  # --workers N runs it asynchronously
    agent.tell([2, 1], 0.8)
    # backwards: the last step moves toward the reward (0 + 0.5 * 0.8), then the first
    # toward gamma * the best value of the state after it (0 + 0.5 * 0.4)
    assert agent.values("1:2")[1] == pytest.approx(0.4)
    assert agent.values("0:-")[2] == pytest.approx(0.2)
    assert agent.values("0:-")[[0, 1]].tolist() == [0.0, 0.0]
    agent.tell([2, 0], 0.0)  # a worse second layer: its value stays 0, the best stays
    assert agent.values("1:2").tolist() == pytest.approx([0.0, 0.4, 0.0])
    assert agent.values("0:-")[2] == pytest.approx(0.2 + 0.5 * (0.4 - 0.2))
    assert agent.told == 2 and agent.memory == [([2, 1], 0.8), ([2, 0], 0.0)]


def test_qlearning_layer_states_share_values_that_prefix_states_keep_apart() -> None:
    settings = {"learning_rate": 0.01, "replay": 0, "q_init": 0.0}
    layer: Any = nasframe.make_agent("qlearning", GuessEnv(), seed=0, **settings)
    prefix: Any = nasframe.make_agent("qlearning", GuessEnv(), seed=0, state="prefix", **settings)
    for agent in (layer, prefix):
        agent.tell([0, 1, 2], 1.0)
        agent.tell([1, 1, 2], 1.0)
    assert layer.key([0, 1, 2], 2) == layer.key([1, 1, 2], 2) == "2:1"
    assert layer.values("2:1")[2] == pytest.approx(0.0199)  # two updates of the same entry
    assert prefix.values("0,1")[2] == prefix.values("1,1")[2] == pytest.approx(0.01)


def test_qlearning_explores_then_exploits_on_its_schedule() -> None:
    agents: list[Any] = [
        nasframe.make_agent(
            "qlearning",
            GuessEnv(n_actions=4),
            seed=1,
            epsilon_episodes=10,
            epsilon_end=0.0,
            learning_rate=0.01,
            replay=replay,
        )
        for replay in (100, 0)
    ]
    for agent in agents:
        assert agent.epsilon() == 1.0
        for _ in range(5):
            agent.tell([3, 3], 0.9)
        assert agent.epsilon() == pytest.approx(0.5)
        for _ in range(5):
            agent.tell([0, 1], 0.1)
        assert agent.epsilon() == 0.0
    replayed, plain = agents
    assert all(replayed.ask()[:2] == [3, 3] for _ in range(20))  # greedy: the better one
    # five updates moved 0.5 toward 0.9 by 0.02; replaying the memory moves it much further
    assert plain.values("1:3")[3] == pytest.approx(0.9 - 0.4 * 0.99**5)
    assert replayed.values("1:3")[3] > 0.7


def test_qlearning_settings_are_checked_and_its_state_round_trips(tmp_path: Path) -> None:
    bad = [
        ({"learning_rate": 0}, r"\[qlearning\] learning_rate = 0: must be in \(0, 1\]"),
        ({"gamma": 1.5}, r"\[qlearning\] gamma = 1.5: must be in \[0, 1\]"),
        ({"epsilon_end": 0.5, "epsilon_start": 0.2}, r"epsilon_end = 0.5: must be in \[0, "),
        ({"replay": -1}, r"\[qlearning\] replay = -1: must be an integer >= 0"),
        ({"state": "tree"}, r"\[qlearning\] state = 'tree': must be one of layer, prefix"),
    ]
    for settings, message in bad:
        with pytest.raises(nasframe.ConfigError, match=message):
            nasframe.make_agent("qlearning", GuessEnv(), **settings)
    agent: Any = nasframe.make_agent("qlearning", GuessEnv(), seed=2, length=4)
    agent.learn(40)
    restored: Any = nasframe.make_agent("qlearning", GuessEnv(), seed=2, length=4)
    restored.load(agent.save(tmp_path / "agent.json"))
    assert restored.state() == agent.state() and restored.ask() == agent.ask()
    other: Any = nasframe.make_agent("qlearning", GuessEnv(n_actions=5), seed=2, length=4)
    with pytest.raises(nasframe.NasframeError, match="cannot load the qlearning agent's"):
        other.load(tmp_path / "agent.json")  # its table has another number of actions
