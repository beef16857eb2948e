"""Gymnasium wrappers for meta-reinforcement learning (RL², the L2RL-NAS setup).

* :class:`MetaRLObservation` adds what a recurrent learner needs to adapt within a
  task: the previous action (one-hot), the previous reward and the step within the
  episode, appended to the flattened observation -- the input of NASGym's ``meta_lstm``
  network, now a wrapper any agent can use.
* :class:`TaskSchedule` switches the dataset task on a schedule of steps (the paper's
  Experiment 1 runs omniglot, then vgg_flower, then dtd with one policy carried over),
  through the environment's ``reset(options={"task": ...})``.
* :class:`TrialWrapper` joins K NAS episodes into one Gymnasium episode (RL²'s *trial*),
  so that a recurrent learner, whose memory the learning library clears at every
  episode start, keeps it across the K episodes of one task.

All are plain ``gymnasium.Wrapper`` subclasses and work on any environment with a
``Discrete`` action space (the schedule needs an environment that understands the
``task`` reset option). Stacked, the trial wrapper goes innermost::

    MetaRLObservation(TaskSchedule(TrialWrapper(env, episodes=K), phases))

so that the meta-RL observation carries the last action and reward across the NAS
episodes of a trial, and the task changes only between trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from nasframe.errors import ConfigError

__all__ = ["MetaRLObservation", "Phase", "TaskSchedule", "TrialWrapper", "parse_schedule"]


class MetaRLObservation(gymnasium.Wrapper[np.ndarray, Any, Any, Any]):
    """Appends the previous action, previous reward and episode step to the observation.

    The observation becomes one ``float32`` vector::

        [ flattened observation | one-hot previous action (n) | previous reward | step ]

    At the start of an episode the previous action is all zeros, the previous reward 0
    and the step 0; after the k-th step of an episode the step entry is k.

    Over a :class:`TrialWrapper` (``MetaRLObservation(TrialWrapper(env, episodes=K))``)
    one episode is a trial of K NAS episodes: at the first observation of each NAS
    episode after the first the step entry is 0 again -- the sign that a new NAS episode
    started -- while the previous action and reward are those of the last step of the
    episode before (RL²: the last episode's reward is an input). Only a ``reset`` (a new
    trial) clears them.

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
        """Step the inner environment and append this action, its reward and the step.

        A step after which a :class:`TrialWrapper` inside started the trial's next NAS
        episode (``info["inner_terminated"]`` or ``["inner_truncated"]`` with the outer
        episode going on) returns that episode's first observation with step 0.
        """
        obs, reward, terminated, truncated, info = self.env.step(action)
        ended_inner = bool(info.get("inner_terminated") or info.get("inner_truncated"))
        self._step = 0 if ended_inner and not (terminated or truncated) else self._step + 1
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


class TrialWrapper(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Joins ``episodes`` NAS episodes into one Gymnasium episode: RL²'s *trial*.

    Stable-Baselines3 (and sb3-contrib's ``RecurrentPPO``) clears a recurrent policy's
    memory at every episode start; over this wrapper an episode start is a trial start,
    so the memory spans the K NAS episodes of one task. When an inner episode ends
    (terminated or truncated) and fewer than ``episodes`` of the trial have run, the
    wrapper resets the inner environment itself and returns the new episode's first
    observation with ``terminated=False, truncated=False``; after the K-th inner episode
    the Gymnasium episode ends as that episode did (terminated, or truncated). Rewards
    pass through unchanged.

    ``info`` of every step is the inner step's ``info`` plus ``trial_episode`` (1..K, the
    NAS episode the step belongs to), ``inner_terminated`` and ``inner_truncated`` (the
    inner step's flags). On a step that started the next NAS episode it also holds
    ``inner_final_observation`` (the ended episode's last observation) and
    ``inner_reset_info`` (the new episode's reset ``info``), and ``action_mask`` (when
    the inner env gives one) is the new episode's, the mask of the next action. The
    ``reset`` ``info`` has ``trial_episode`` 1.

    Seeds: ``reset(seed=s)`` resets the trial's first NAS episode with seed ``s`` and
    the i-th (i = 1..K) with ``s + i - 1``, so a seeded trial is K seeded plain episodes;
    without a seed the inner resets get none. ``options`` (such as ``{"task": name}``)
    go to the first inner reset only: a trial is one task.

    **Order.** Put this wrapper innermost, directly over the NAS environment::

        env = MetaRLObservation(TaskSchedule(TrialWrapper(nas_env, episodes=K), phases))

    The meta-RL wrapper outside then sees one long episode and keeps the previous
    action and reward across the NAS episodes, resetting only its step counter at each
    new NAS episode (see :class:`MetaRLObservation`); the task schedule outside switches
    tasks only between trials. The other order is refused: a :class:`MetaRLObservation`
    inside would clear the last action and reward at every NAS episode start, and a
    :class:`TaskSchedule` inside could switch the task within a trial.

    Args:
        env: the environment whose episodes are joined (a :class:`~nasframe.NASEnv`, or
            any Gymnasium environment).
        episodes: K, the NAS episodes per trial; 1 changes nothing but ``info``.

    Attributes:
        episodes: K.
        episode: the trial's NAS episode under way (1..K; 0 before the first reset).
        inner_resets: how many times the inner environment was reset (by ``reset`` and
            at the boundaries within trials).

    Raises:
        ConfigError: ``episodes`` is not an integer >= 1, or a meta-RL wrapper or task
            schedule is inside.
    """

    def __init__(self, env: gymnasium.Env[Any, Any], episodes: int = 1) -> None:
        super().__init__(env)
        if (
            isinstance(episodes, bool)
            or not isinstance(episodes, int | np.integer)
            or int(episodes) < 1
        ):
            raise ConfigError(
                f"trial episodes must be an integer >= 1 (the NAS episodes joined into one "
                f"Gymnasium episode), got {episodes!r}"
            )
        layer: Any = env
        while isinstance(layer, gymnasium.Wrapper):
            if isinstance(layer, MetaRLObservation | TaskSchedule):
                raise ConfigError(
                    f"the trial wrapper must be inside {type(layer).__name__}, not over it: "
                    "write MetaRLObservation(TaskSchedule(TrialWrapper(env, episodes=K), "
                    "phases)) (docs/meta-rl.md)"
                )
            layer = layer.env
        self.episodes = int(episodes)
        self.episode = 0
        self.inner_resets = 0
        self._seed: int | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start a trial: reset the inner environment for its first NAS episode."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._seed = None if seed is None else int(seed)
        self.episode = 1
        self.inner_resets += 1
        info = dict(info)
        info["trial_episode"] = 1
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner environment; start the trial's next NAS episode when one ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["trial_episode"] = self.episode
        info["inner_terminated"] = bool(terminated)
        info["inner_truncated"] = bool(truncated)
        if not (terminated or truncated) or self.episode >= self.episodes:
            return obs, reward, terminated, truncated, info
        seed = None if self._seed is None else self._seed + self.episode
        info["inner_final_observation"] = obs
        obs, reset_info = self.env.reset(seed=seed)
        self.episode += 1
        self.inner_resets += 1
        info["inner_reset_info"] = reset_info
        if "action_mask" in reset_info:
            info["action_mask"] = reset_info["action_mask"]
        return obs, reward, False, False, info
