"""Random search: every action id drawn uniformly, as NASGym's random-search baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

import nasframe


class RandomAgent(nasframe.Agent):
    """Draws every action uniformly at random from a ``Discrete`` action space.

    It learns nothing, which makes it the baseline every learner must beat. Its
    checkpoint is the random generator's state, so a resumed search draws exactly the
    actions an uninterrupted one would have drawn.

    Args:
        env: the environment; its action space must be ``gymnasium.spaces.Discrete``.
        seed: seeds the action draws and the first ``reset``.

    Raises:
        ConfigError: the action space is not ``Discrete``.
    """

    checkpoint_suffix = ".json"

    def __init__(self, env: gymnasium.Env[Any, Any], *, seed: int | None = None) -> None:
        super().__init__(env, seed=seed)
        self._vector = isinstance(env, gymnasium.vector.VectorEnv)
        space = env.single_action_space if self._vector else env.action_space  # type: ignore[attr-defined]
        if not isinstance(space, gymnasium.spaces.Discrete):
            raise nasframe.ConfigError(
                f"agent 'random' needs a Discrete action space, got {type(space).__name__}"
            )
        self._n = int(space.n)
        self._start = int(space.start)
        self._rng = np.random.default_rng(seed)
        self._steps = 0
        self._episode_open = False
        self._seeded = False
        self._ended = np.zeros(0, dtype=bool)

    @property
    def num_timesteps(self) -> int:
        """Steps taken over the agent's life, checkpoints included."""
        return self._steps

    def learn(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Take up to ``total_steps`` random actions; see :meth:`nasframe.Agent.learn`.

        On a ``gymnasium.vector.VectorEnv`` each step draws one action per sub-env and
        counts one step per sub-env that stepped (an autoreset is not a step); the vector
        env resets finished episodes itself.
        """
        if self._vector:
            return self._learn_vector(total_steps, callback)
        taken = 0
        while taken < total_steps:
            if not self._episode_open:
                # Seed the environment once, on the very first reset of the agent's life.
                seed = None if self._seeded else self.seed
                self.env.reset(seed=seed)
                self._seeded = True
                self._episode_open = True
            action = self._start + int(self._rng.integers(self._n))
            _, _, terminated, truncated, _ = self.env.step(action)
            taken += 1
            self._steps += 1
            if terminated or truncated:
                self._episode_open = False
            if callback is not None and not callback():
                break
        return taken

    def _learn_vector(self, total_steps: int, callback: nasframe.StepCallback | None) -> int:
        env: Any = self.env
        taken = 0
        if not self._episode_open:
            env.reset(seed=None if self._seeded else self.seed)
            self._seeded = self._episode_open = True
            self._ended = np.zeros(env.num_envs, dtype=bool)
        while taken < total_steps:
            actions = self._start + self._rng.integers(self._n, size=env.num_envs)
            _, _, terminated, truncated, _ = env.step(actions)
            # In Gymnasium's next-step autoreset mode an env whose episode ended in the
            # previous step only resets in this one: that is not a step of the search.
            real = int(env.num_envs - np.count_nonzero(self._ended))
            self._ended = np.logical_or(terminated, truncated)
            taken += real
            self._steps += real
            if callback is not None and not callback():
                break
        return taken

    def play(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Random search learns nothing, so playing is searching: see :meth:`learn`."""
        return self.learn(total_steps, callback)

    def save(self, path: Path) -> Path:
        """Write the generator state and step count as JSON."""
        path = Path(path)
        state = {
            "agent": "random",
            "steps": self._steps,
            "seeded": self._seeded,
            "rng": self._rng.bit_generator.state,
        }
        path.write_text(json.dumps(state), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        """Restore a checkpoint written by :meth:`save`; the next episode starts fresh."""
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("agent") != "random":
                raise ValueError("not a random-agent checkpoint")
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            steps = int(state["steps"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise nasframe.NasframeError(
                f"{path}: cannot load the random agent's checkpoint ({exc})"
            ) from None
        self._rng = rng
        self._steps = steps
        self._seeded = bool(state.get("seeded", True))
        self._episode_open = False
