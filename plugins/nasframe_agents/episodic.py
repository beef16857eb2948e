"""The common body of black-box agents: one episode = one candidate action sequence.

A black-box optimizer (regularized evolution, TPE) does not learn from steps: it proposes
the actions of a whole episode (:meth:`EpisodicAgent.ask`) and is told the reward of the
architecture that episode built (:meth:`EpisodicAgent.tell`, the last step's reward).
:meth:`EpisodicAgent.learn` plays those proposals in an environment one step at a time,
so the agent also fits the step-wise :class:`nasframe.Agent` contract (budgets, Ctrl-C,
checkpoints) -- and a scheduler may call ``ask``/``tell`` directly to run episodes
asynchronously (the ``AskTellAgent`` protocol of ``docs/search.md``).

A subclass implements :meth:`EpisodicAgent.update` (what the optimizer does with a
result); :meth:`EpisodicAgent.tell` counts the episode's steps and calls it, so
``num_timesteps`` (and the checkpoint's step count) is the same whether the episodes were
played by :meth:`~EpisodicAgent.learn` or run by the asynchronous scheduler.
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

import nasframe

__all__ = ["EpisodicAgent"]


class EpisodicAgent(nasframe.Agent):
    """A ``nasframe.Agent`` whose policy is ask (an episode's actions) and tell (its reward).

    Args:
        env: the environment; its action space must be ``Discrete``; a vector env is
            refused.
        seed: seeds the proposals and the first ``reset``.
        length: actions per proposal; 0: the env's ``max_steps`` (10 if it has none). An
            episode that runs longer continues with uniformly random actions.

    Raises:
        ConfigError: the action space is not ``Discrete``, the env is a vector env, or
            ``length`` is negative.
    """

    checkpoint_suffix = ".json"
    #: The base name of the agent in messages and checkpoints.
    kind = "episodic"

    def __init__(
        self, env: gymnasium.Env[Any, Any], *, seed: int | None = None, length: int = 0
    ) -> None:
        super().__init__(env, seed=seed)
        if isinstance(env, gymnasium.vector.VectorEnv):
            raise nasframe.ConfigError(
                f"agent {self.kind!r} runs one episode at a time (it cannot drive a vector "
                "env): with [run] workers > 1 use scheduler = auto or async, not lockstep"
            )
        space = env.action_space
        if not isinstance(space, gymnasium.spaces.Discrete):
            raise nasframe.ConfigError(
                f"agent {self.kind!r} needs a Discrete action space, got {type(space).__name__}"
            )
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise nasframe.ConfigError(
                f"[{self.kind}] length = {length!r}: must be an integer >= 0 (0: max_steps)"
            )
        self.n_actions = int(space.n)
        self.start = int(space.start)
        self.length = length or int(getattr(env.unwrapped, "max_steps", 0) or 10)
        self.rng = np.random.default_rng(seed)
        self._steps = 0
        self._seeded = False
        self._plan: list[int] = []
        self._taken: list[int] = []
        self._open = False
        # False after a NAS episode that a trial wrapper followed with the next one itself
        self._reset_due = True

    # -- ask / tell: the optimizer -------------------------------------------------------------
    @abc.abstractmethod
    def ask(self) -> list[int]:
        """The actions of one whole episode, applied in order from ``env.reset()``."""

    def tell(self, actions: list[int], reward: float) -> None:
        """The reward of the architecture an episode built (its last step's reward).

        Counts the episode's steps (it ran outside :meth:`learn`) and passes the result
        to :meth:`update`.

        Args:
            actions: the actions the episode took (a prefix of an :meth:`ask` answer
                when the episode ended early, longer when it ran past it).
            reward: the last step's reward.
        """
        self._steps += len(actions)
        self.update(actions, reward)

    @abc.abstractmethod
    def update(self, actions: list[int], reward: float) -> None:
        """What the optimizer learns from one episode's result (see :meth:`tell`)."""

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """The optimizer's state as JSON-able values, for :meth:`save`."""

    @abc.abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""

    def random_actions(self, n: int) -> list[int]:
        """``n`` uniformly random action ids."""
        return [self.start + int(a) for a in self.rng.integers(self.n_actions, size=n)]

    # -- nasframe.Agent --------------------------------------------------------------------------
    @property
    def num_timesteps(self) -> int:
        """Steps taken over the agent's life, checkpoints included."""
        return self._steps

    def learn(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Play proposals for up to ``total_steps`` steps; see :meth:`nasframe.Agent.learn`.

        At the end of every episode the agent is told its last reward and asks for the
        next proposal. A call that stops inside an episode continues it on the next call.
        Over a ``nasframe.env.wrappers.TrialWrapper`` every NAS episode of a trial is one
        proposal (``info["inner_terminated"]``/``["inner_truncated"]`` end it), and the
        env is reset only when the trial ends.
        """
        taken = 0
        while taken < total_steps:
            if not self._open:
                if self._reset_due:
                    self.env.reset(seed=None if self._seeded else self.seed)
                self._seeded = self._open = True
                self._plan = [int(a) for a in self.ask()]
                self._taken = []
            position = len(self._taken)
            if position < len(self._plan):
                action = self._plan[position]
            else:
                action = self.random_actions(1)[0]
            _, reward, terminated, truncated, info = self.env.step(action)
            self._taken.append(action)
            taken += 1
            self._steps += 1
            ended_inner = bool(info.get("inner_terminated") or info.get("inner_truncated"))
            if terminated or truncated or ended_inner:
                self._open = False
                self._reset_due = bool(terminated or truncated)
                self.update(list(self._taken), float(reward))  # its steps are counted
            if callback is not None and not callback():
                break
        return taken

    def save(self, path: Path) -> Path:
        """Write the optimizer's state, the generator state and the step count as JSON."""
        path = Path(path)
        state = {
            "agent": self.kind,
            "steps": self._steps,
            "seeded": self._seeded,
            "rng": self.rng.bit_generator.state,
            "state": self.state(),
        }
        path.write_text(json.dumps(state), encoding="utf-8")
        return path

    def load(self, path: Path) -> None:
        """Restore a checkpoint written by :meth:`save`; the next episode starts fresh."""
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("agent") != self.kind:
                raise ValueError(f"not a {self.kind} checkpoint")
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            steps = int(state["steps"])
            self.restore(state["state"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise nasframe.NasframeError(
                f"{path}: cannot load the {self.kind} agent's checkpoint ({exc})"
            ) from None
        self.rng = rng
        self._steps = steps
        self._seeded = bool(state.get("seeded", True))
        self._open = False
        self._reset_due = True
