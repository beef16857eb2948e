"""Gymnasium wrappers for meta-reinforcement learning (RL², the L2RL-NAS setup).

* :class:`MetaRLObservation` adds what a recurrent learner needs to adapt within a
  task: the previous action (one-hot), the previous reward and the step within the
  episode, appended to the flattened observation -- the input of NASGym's ``meta_lstm``
  network, now a wrapper any agent can use.
* :class:`TaskSchedule` switches the dataset task on a schedule of steps (the paper's
  Experiment 1 runs omniglot, then vgg_flower, then dtd with one policy carried over),
  through the environment's ``reset(options={"task": ...})``.

Both are plain ``gymnasium.Wrapper`` subclasses and work on any environment with a
``Discrete`` action space (the schedule needs an environment that understands the
``task`` reset option).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from nasframe.errors import ConfigError

__all__ = ["MetaRLObservation", "Phase", "TaskSchedule", "parse_schedule"]


class MetaRLObservation(gymnasium.Wrapper[np.ndarray, Any, Any, Any]):
    """Appends the previous action, previous reward and episode step to the observation.

    The observation becomes one ``float32`` vector::

        [ flattened observation | one-hot previous action (n) | previous reward | step ]

    At the start of an episode the previous action is all zeros, the previous reward 0
    and the step 0; after the k-th step of an episode the step entry is k.

    Args:
        env: an environment with a ``Discrete`` action space and an observation space
            :func:`gymnasium.spaces.flatten_space` can flatten.

    Attributes:
        layout: the slice of each part in the observation vector.

    Raises:
        ConfigError: the action space is not ``Discrete``.
    """

    def __init__(self, env: gymnasium.Env[Any, Any]) -> None:
        super().__init__(env)
        action_space = env.action_space
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise ConfigError(
                "the meta-RL wrapper needs a Discrete action space, got "
                f"{type(action_space).__name__}"
            )
        self._n = int(action_space.n)
        self._start = int(action_space.start)
        self._inner = env.observation_space
        flat = gymnasium.spaces.flatten_space(env.observation_space)
        if not isinstance(flat, gymnasium.spaces.Box):
            raise ConfigError(
                "the meta-RL wrapper cannot flatten the observation space "
                f"{env.observation_space} into a vector"
            )
        size = int(np.prod(flat.shape))
        low = np.concatenate(
            [flat.low.reshape(-1).astype(np.float32), np.zeros(self._n), [-np.inf, 0.0]]
        ).astype(np.float32)
        high = np.concatenate(
            [flat.high.reshape(-1).astype(np.float32), np.ones(self._n), [np.inf, np.inf]]
        ).astype(np.float32)
        self.observation_space = gymnasium.spaces.Box(low, high, dtype=np.float32)
        self.layout = {
            "observation": slice(0, size),
            "previous_action": slice(size, size + self._n),
            "previous_reward": slice(size + self._n, size + self._n + 1),
            "step": slice(size + self._n + 1, size + self._n + 2),
        }
        self._step = 0

    def _compose(self, obs: Any, action: int | None, reward: float) -> np.ndarray:
        flat = np.asarray(gymnasium.spaces.flatten(self._inner, obs), dtype=np.float32)
        one_hot = np.zeros(self._n, dtype=np.float32)
        if action is not None:
            one_hot[action - self._start] = 1.0
        extras = np.array([reward, self._step], dtype=np.float32)
        return np.concatenate([flat.reshape(-1), one_hot, extras])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner environment; previous action, reward and step start at zero."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._step = 0
        return self._compose(obs, None, 0.0), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner environment and append this action, its reward and the step."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._step += 1
        composed = self._compose(obs, int(action), float(reward))
        return composed, reward, terminated, truncated, info


@dataclass(frozen=True)
class Phase:
    """One phase of a task schedule: ``steps`` environment steps on ``task``."""

    task: str
    steps: int


def parse_schedule(text: str) -> list[Phase]:
    """Parse ``"omniglot:8000,vgg_flower:7000,dtd:7000"`` into phases.

    Raises:
        ConfigError: an entry is not ``task:steps`` with a positive integer.
    """
    phases: list[Phase] = []
    for entry in (part.strip() for part in str(text).split(",")):
        if not entry:
            continue
        task, sep, steps = entry.rpartition(":")
        try:
            count = int(steps)
        except ValueError:
            count = 0
        if not sep or not task.strip() or count < 1:
            raise ConfigError(
                f"[run] tasks: {entry!r} must be task:steps with steps >= 1, "
                "e.g. omniglot:8000,vgg_flower:7000"
            )
        phases.append(Phase(task.strip(), count))
    if not phases:
        raise ConfigError("[run] tasks: the schedule is empty; write task:steps,task:steps")
    return phases


class TaskSchedule(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Switches the dataset task after each phase's steps, at the next episode start.

    The task changes only between episodes (an architecture is evaluated on one task),
    by passing ``options={"task": task}`` to the inner ``reset``. After the last phase the
    last task stays. ``info["task"]`` of every step names the task it ran on.

    Args:
        env: an environment whose ``reset`` accepts the ``task`` option.
        phases: the schedule, e.g. from :func:`parse_schedule`.
        start_step: steps already taken (a resumed search continues its schedule).
        known_tasks: the tasks the environment knows; if given, unknown schedule tasks
            are refused up front.

    Raises:
        ConfigError: the schedule is empty or names a task not in ``known_tasks``.
    """

    def __init__(
        self,
        env: gymnasium.Env[Any, Any],
        phases: Sequence[Phase],
        *,
        start_step: int = 0,
        known_tasks: Sequence[str] | None = None,
    ) -> None:
        super().__init__(env)
        if not phases:
            raise ConfigError("[run] tasks: the schedule is empty; write task:steps,task:steps")
        if known_tasks is not None:
            for phase in phases:
                if phase.task not in known_tasks:
                    raise ConfigError(
                        f"[run] tasks: unknown task {phase.task!r} "
                        f"(the dataset's tasks: {', '.join(known_tasks)})"
                    )
        self.phases = list(phases)
        self.steps = start_step
        self.task: str | None = None
        self.switches = 0

    def task_at(self, step: int) -> str:
        """The task the schedule assigns to the episode starting after ``step`` steps."""
        bound = 0
        for phase in self.phases:
            bound += phase.steps
            if step < bound:
                return phase.task
        return self.phases[-1].task

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset, switching to the scheduled task when it differs from the current one."""
        wanted = self.task_at(self.steps)
        options = dict(options or {})
        if wanted != self.task:
            options["task"] = wanted
            if self.task is not None:
                self.switches += 1
            self.task = wanted
        obs, info = self.env.reset(seed=seed, options=options or None)
        info = dict(info)
        info["task"] = self.task
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner environment and count the step for the schedule."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        info = dict(info)
        info.setdefault("task", self.task)
        return obs, reward, terminated, truncated, info
