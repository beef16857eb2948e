"""``qlearning-v1``: tabular Q-learning with epsilon-greedy and experience replay.

This is the search algorithm of BlockQNN (Zhong et al. 2018) and MetaQNN (Baker et al.
2017), the papers NSC comes from: the agent builds a network layer by layer, each
action chooses the next layer, and only the finished network is rewarded (its accuracy;
the intermediate rewards are 0). One Q-value per (state, action), learned with the
one-step Q-learning update from the end of the episode backwards::

    Q(s_T-1, a_T-1) += alpha * (R - Q(s_T-1, a_T-1))
    Q(s_t, a_t)     += alpha * (gamma * max_a Q(s_t+1, a) - Q(s_t, a_t))    (t < T-1)

Every result is stored, and after it ``replay`` stored episodes drawn at random are
learned again (MetaQNN's experience replay), so the values spread without new
trainings. Actions are epsilon-greedy (ties broken at random); epsilon falls linearly
from ``epsilon_start`` to ``epsilon_end`` over the first ``epsilon_episodes`` results --
the papers' schedule spends thousands of networks at epsilon 1, which a budget of a few
hundred trainings cannot, so the length of the decay is a setting.

The state is BlockQNN's (``state = layer``): the position in the episode and the
previous action, i.e. the current layer; a Q-value is then shared by every network that
reaches the same layer at the same depth. ``state = prefix`` keys the table by every
action so far (one state per partial network, no sharing). Q-values start at
``q_init`` (MetaQNN's 0.5). The agent is ask/tell (one episode per proposal), so it
also runs asynchronously over ``--workers N``; plain NumPy.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

import nasframe
from nasframe_agents.episodic import EpisodicAgent

__all__ = ["QLearning"]

#: How a state is keyed: the current layer (BlockQNN) or the whole partial network.
STATES = ("layer", "prefix")


class QLearning(EpisodicAgent):
    """BlockQNN's tabular Q-learning: epsilon-greedy, layer by layer, experience replay.

    Args:
        env: the environment (``Discrete`` actions, not a vector env).
        seed: seeds every draw.
        learning_rate: the Q-learning step size alpha, in (0, 1] (BlockQNN: 0.01).
        gamma: the discount, in [0, 1] (1: the final reward counts fully at every step).
        epsilon_start: the exploration rate of the first proposal, in [0, 1].
        epsilon_end: the rate after ``epsilon_episodes`` results, in [0, epsilon_start].
        epsilon_episodes: results over which epsilon falls linearly (0: ``epsilon_end``
            from the start).
        replay: stored episodes learned again after each result (0: none).
        q_init: every Q-value before it is first updated.
        state: ``layer`` (position and previous action) or ``prefix`` (every action so
            far).
        length: actions per proposal (0: the env's ``max_steps``).

    Raises:
        ConfigError: a setting is out of range; the message names ``[qlearning]`` and
            the key.
    """

    kind = "qlearning"

    def __init__(
        self,
        env: gymnasium.Env[Any, Any],
        *,
        seed: int | None = None,
        learning_rate: float = 0.1,
        gamma: float = 1.0,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.3,
        epsilon_episodes: int = 300,
        replay: int = 100,
        q_init: float = 0.5,
        state: str = "layer",
        length: int = 0,
    ) -> None:
        super().__init__(env, seed=seed, length=length)
        if not 0 < learning_rate <= 1:
            raise nasframe.ConfigError(
                f"[qlearning] learning_rate = {learning_rate!r}: must be in (0, 1]"
            )
        if not 0 <= gamma <= 1:
            raise nasframe.ConfigError(f"[qlearning] gamma = {gamma!r}: must be in [0, 1]")
        if not 0 <= epsilon_start <= 1:
            raise nasframe.ConfigError(
                f"[qlearning] epsilon_start = {epsilon_start!r}: must be in [0, 1]"
            )
        if not 0 <= epsilon_end <= epsilon_start:
            raise nasframe.ConfigError(
                f"[qlearning] epsilon_end = {epsilon_end!r}: must be in [0, epsilon_start "
                f"({epsilon_start!r})]"
            )
        for key, value in (("epsilon_episodes", epsilon_episodes), ("replay", replay)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise nasframe.ConfigError(
                    f"[qlearning] {key} = {value!r}: must be an integer >= 0"
                )
        if state not in STATES:
            raise nasframe.ConfigError(
                f"[qlearning] state = {state!r}: must be one of {', '.join(STATES)}"
            )
        self.learning_rate = float(learning_rate)
        self.gamma = float(gamma)
        self.epsilon_start = float(epsilon_start)
        self.epsilon_end = float(epsilon_end)
        self.epsilon_episodes = int(epsilon_episodes)
        self.replay = int(replay)
        self.q_init = float(q_init)
        self.state_kind = state
        #: Q-values by state key, one entry per action
        self.q: dict[str, np.ndarray] = {}
        #: every result told: (actions, reward), oldest first
        self.memory: list[tuple[list[int], float]] = []
        self.told = 0

    # -- the table ----------------------------------------------------------------------------
    def key(self, actions: list[int], position: int) -> str:
        """The state before action ``position`` of an episode that took ``actions``."""
        if self.state_kind == "prefix":
            return ",".join(str(a) for a in actions[:position])
        previous = actions[position - 1] if position else "-"
        return f"{position}:{previous}"

    def values(self, key: str) -> np.ndarray:
        """The Q-values of a state (``q_init`` for a state never updated); not a copy."""
        row = self.q.get(key)
        if row is None:
            row = self.q[key] = np.full(self.n_actions, self.q_init)
        return row

    def epsilon(self) -> float:
        """The exploration rate of the next proposal."""
        if self.told >= self.epsilon_episodes:
            return self.epsilon_end
        left = 1 - self.told / self.epsilon_episodes
        return self.epsilon_end + (self.epsilon_start - self.epsilon_end) * left

    # -- ask / tell -----------------------------------------------------------------------------
    def ask(self) -> list[int]:
        """An epsilon-greedy episode: each action random with probability epsilon, else the
        best of its state (a random one among ties)."""
        epsilon = self.epsilon()
        actions: list[int] = []
        for position in range(self.length):
            if self.rng.random() < epsilon:
                choice = int(self.rng.integers(self.n_actions))
            else:
                row = self.q.get(self.key(actions, position))
                if row is None:  # never updated: every action at q_init
                    choice = int(self.rng.integers(self.n_actions))
                else:
                    best = np.flatnonzero(row == row.max())
                    choice = int(best[self.rng.integers(len(best))])
            actions.append(self.start + choice)
        return actions

    def update(self, actions: list[int], reward: float) -> None:
        """Learn the episode, store it, then learn ``replay`` stored episodes again."""
        episode = ([int(a) for a in actions], float(reward))
        self.learn_episode(*episode)
        self.memory.append(episode)
        if self.replay:
            for index in self.rng.integers(len(self.memory), size=self.replay):
                self.learn_episode(*self.memory[int(index)])
        self.told += 1

    def learn_episode(self, actions: list[int], reward: float) -> None:
        """One Q-learning update per step of an episode, from its last step backwards."""
        alpha = self.learning_rate
        for position in range(len(actions) - 1, -1, -1):
            if position == len(actions) - 1:
                target = reward
            else:
                target = self.gamma * float(self.values(self.key(actions, position + 1)).max())
            row = self.values(self.key(actions, position))
            action = actions[position] - self.start
            row[action] += alpha * (target - row[action])

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The Q-table, the stored episodes and the number of results told."""
        return {
            "q": {key: row.tolist() for key, row in self.q.items()},
            "memory": [[actions, reward] for actions, reward in self.memory],
            "told": self.told,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        table = {key: np.asarray(row, dtype=float) for key, row in state["q"].items()}
        for key, row in table.items():
            if row.shape != (self.n_actions,):
                raise ValueError(
                    f"Q-values of state {key!r} for {row.size} actions, expected {self.n_actions}"
                )
        self.q = table
        self.memory = [([int(a) for a in actions], float(r)) for actions, r in state["memory"]]
        self.told = int(state["told"])
