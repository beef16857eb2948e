"""``reinforce-v1``: REINFORCE over an episode's actions, the NAS-Bench-201 RL baseline.

The policy is one categorical distribution per position of the episode (softmax of a
row of logits, as NAS-Bench-201's REINFORCE keeps one distribution per edge of its cell):
an episode's actions are drawn position by position, independently. When a result is
told, every position the episode took moves its logits along the policy gradient
(Williams 1992) with a moving-average baseline::

    advantage = reward - baseline
    logits[i] += learning_rate * advantage * (onehot(action_i) - softmax(logits[i]))
    baseline = decay * baseline + (1 - decay) * reward

(the first result sets the baseline). Positions after an episode's end get no update.
The agent is ask/tell, so it runs asynchronously over ``--workers N`` like ``rea-v1``
and ``tpe-v1``; a result told late (asynchronous search) updates the policy as it is
now, as an asynchronous REINFORCE does. Plain NumPy: no deep-learning framework.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

import nasframe
from nasframe_agents.episodic import EpisodicAgent

__all__ = ["Reinforce"]


class Reinforce(EpisodicAgent):
    """REINFORCE with a factorized policy (one softmax per position) and a baseline.

    Args:
        env: the environment (``Discrete`` actions, not a vector env).
        seed: seeds every draw.
        learning_rate: the step size of the logits' gradient ascent (> 0).
        baseline_decay: the moving average's weight of the old baseline, in [0, 1).
        length: positions of the policy, actions per proposal (0: the env's
            ``max_steps``).

    Raises:
        ConfigError: a setting is out of range; the message names ``[reinforce]`` and
            the key.
    """

    kind = "reinforce"

    def __init__(
        self,
        env: gymnasium.Env[Any, Any],
        *,
        seed: int | None = None,
        learning_rate: float = 0.05,
        baseline_decay: float = 0.9,
        length: int = 0,
    ) -> None:
        super().__init__(env, seed=seed, length=length)
        if not learning_rate > 0:
            raise nasframe.ConfigError(
                f"[reinforce] learning_rate = {learning_rate!r}: must be > 0"
            )
        if not 0 <= baseline_decay < 1:
            raise nasframe.ConfigError(
                f"[reinforce] baseline_decay = {baseline_decay!r}: must be in [0, 1)"
            )
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.logits = np.zeros((self.length, self.n_actions))
        self.baseline: float | None = None
        self.told = 0

    def probabilities(self) -> np.ndarray:
        """The policy: one row of action probabilities per position."""
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        weights = np.exp(shifted)
        return weights / weights.sum(axis=1, keepdims=True)

    def ask(self) -> list[int]:
        """One action per position, drawn from that position's distribution."""
        probabilities = self.probabilities()
        return [self.start + int(self.rng.choice(self.n_actions, p=row)) for row in probabilities]

    def update(self, actions: list[int], reward: float) -> None:
        """A policy-gradient step for the positions the episode took, then the baseline."""
        reward = float(reward)
        baseline = reward if self.baseline is None else self.baseline
        advantage = reward - baseline
        taken = [int(a) - self.start for a in actions[: self.length]]
        if advantage and taken:
            probabilities = self.probabilities()
            for position, action in enumerate(taken):
                gradient = -probabilities[position]
                gradient[action] += 1.0
                self.logits[position] += self.learning_rate * advantage * gradient
        self.baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * reward
        self.told += 1

    def state(self) -> dict[str, Any]:
        """The logits, the baseline and the number of results told."""
        return {"logits": self.logits.tolist(), "baseline": self.baseline, "told": self.told}

    def restore(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        logits = np.asarray(state["logits"], dtype=float)
        if logits.shape != self.logits.shape:
            raise ValueError(f"logits of shape {logits.shape}, expected {self.logits.shape}")
        baseline = state["baseline"]
        self.logits = logits
        self.baseline = None if baseline is None else float(baseline)
        self.told = int(state["told"])
