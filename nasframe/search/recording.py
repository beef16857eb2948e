"""Step recording: every environment step becomes a row of the step log.

A single environment is wrapped in :class:`Recorder`; a ``NASVectorEnv`` has each of its
environments' ``finish_step`` wrapped by :func:`record_vector`. Both hand the step to a
:class:`StepRecorder`, which numbers episodes, counts steps and episodes on the
:class:`~nasframe.search.run.Run`, appends to the :class:`~nasframe.results.StepLog`
and calls back once per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium

from nasframe.results import StepLog, StepRow
from nasframe.search.run import Run

__all__ = ["Recorder", "StepRecorder", "record_vector"]


class StepRecorder:
    """Turns the steps of one or more environments into step-log rows and counters.

    Each environment is a *slot*; a slot's episode gets the next episode number at its
    first step, so episodes of parallel environments are numbered in the order they
    start.
    """

    def __init__(
        self, run: Run, steplog: StepLog, next_episode: int, on_step: Callable[[StepRow], None]
    ) -> None:
        self.run = run
        self.steplog = steplog
        self.next_episode = next_episode
        self.on_step = on_step
        self.open: dict[int, list[int]] = {}  # slot -> [episode, steps in it]
        self.kept: list[StepRow] = []  # logged rows up to the agent's checkpoint
        self.ahead: list[StepRow] = []  # logged rows beyond it, walked again
        self.replay: tuple[int, list[int]] | None = None  # the open episode to restore

    def resume(self, previous: list[StepRow], position: int) -> None:
        """Continue a logged run from the agent's checkpoint, ``position`` steps in.

        The episode open at that step is restored at the environment's next reset by
        replaying its logged actions through the cache (:meth:`take_replay`; nothing is
        trained), so the agent continues it as an uninterrupted run would. Logged steps
        beyond the checkpoint (a killed process logs steps after its last checkpoint) are
        walked again: while the agent takes the logged actions, their rows are kept as
        logged rather than appended again; at the first other action the log is cut there.
        """
        position = max(0, min(position, len(previous)))
        self.kept, self.ahead = list(previous[:position]), list(previous[position:])
        self.run.steps = position
        self.run.episodes = sum(1 for row in self.kept if row.done)
        self.open.clear()
        self.replay = None
        if self.kept:
            self.next_episode = self.kept[-1].episode + 1
            if not self.kept[-1].done:
                episode = self.kept[-1].episode
                actions = [row.action for row in self.kept if row.episode == episode]
                self.replay = (episode, actions)

    def take_replay(self) -> tuple[int, list[int]] | None:
        """The open episode to restore (its number and actions), once; then ``None``."""
        replay, self.replay = self.replay, None
        return replay

    def task(self) -> str:
        """The dataset task under way (the evaluator's dataset)."""
        dataset = getattr(self.run.evaluator, "dataset", None)
        return str(getattr(dataset, "task", "") or "")

    def abandon(self, slot: int) -> None:
        """The slot's episode under way was left unfinished (a reset)."""
        self.open.pop(slot, None)

    def record(
        self,
        slot: int,
        action: int,
        label: str,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
        seconds: float,
        cache_hit: bool = False,
    ) -> None:
        """Log one step of the environment in ``slot``.

        ``cache_hit`` comes from the environment (``NASEnv.last_cache_hit``), not from
        ``info``, which leaves out what depends on the cache's history.
        """
        episode = self.open.get(slot)
        if episode is None:
            episode = self.open[slot] = [self.next_episode, 0]
            self.next_episode += 1
        episode[1] += 1
        self.run.steps += 1
        if self.ahead and self.ahead[0].action != action:
            # The agent left the logged path: the log ends where it did.
            self.steplog.truncate(self.kept)
            self.ahead = []
        if "task" not in info:
            info = dict(info, task=self.task())
        row = _row_from_info(
            info,
            step=self.run.steps,
            episode=episode[0],
            episode_step=episode[1],
            action=action,
            label=label,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            seconds=seconds,
            cache_hit=cache_hit,
        )
        if self.ahead:
            row = self.ahead.pop(0)  # walked again through the cache: the logged row stands
        else:
            self.steplog.append(row)
            if not row.cache_hit and row.status == "invalid":
                # asked of the estimator (a training counted by the evaluator), trained nothing
                self.run.session_invalid_untrained += 1
        self.kept.append(row)
        if row.done:
            self.run.episodes += 1
            del self.open[slot]
        self.on_step(row)


class Recorder(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Logs every step of a single environment through a :class:`StepRecorder`."""

    def __init__(self, env: gymnasium.Env[Any, Any], recorder: StepRecorder) -> None:
        super().__init__(env)
        self.recorder = recorder
        self._labels = _action_labels(env)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self.recorder.abandon(0)
        obs, info = self.env.reset(seed=seed, options=options)
        replay = self.recorder.take_replay()
        if replay is not None:  # a resumed run: restore the interrupted episode
            episode, actions = replay
            for action in actions:
                obs, _, _, _, info = self.env.step(action)
            self.recorder.open[0] = [episode, len(actions)]
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        start = time.perf_counter()
        obs, reward, terminated, truncated, info = self.env.step(action)
        hit = _cache_hit(self.env, info)
        action_id = int(action)
        self.recorder.record(
            0,
            action_id,
            self._labels.get(action_id, str(action_id)),
            float(reward),
            bool(terminated),
            bool(truncated),
            info,
            0.0 if hit else float(info.get("seconds", time.perf_counter() - start)),
            hit,
        )
        return obs, reward, terminated, truncated, info


def record_vector(vector_env: Any, recorder: StepRecorder) -> None:
    """Log the steps of every environment of a ``NASVectorEnv``.

    Its batched step (and its Stable-Baselines3 view) drive each environment through
    ``begin_step``/``finish_step`` rather than ``step``, so the recording wraps each
    environment's ``finish_step`` -- the one place every step result passes. A pipelined
    vector env finishes a step only once its evaluation is in, so an env may be reset
    while steps of its last episode are still pending (``NASEnv.deferred_steps``); the
    episode under way is then left off after those steps are logged, not before.
    """
    for slot, env in enumerate(vector_env.envs):
        labels = _action_labels(env)
        finish = env.finish_step
        reset = env.reset
        recorded = [0]  # steps of this env logged so far
        abandon_at: list[int] = []  # after how many logged steps a reset left its episode

        def finish_step(
            plan: Any,
            outcome: Any,
            _finish: Any = finish,
            _slot: int = slot,
            _labels: Any = labels,
            _recorded: list[int] = recorded,
            _abandon_at: list[int] = abandon_at,
        ) -> Any:
            obs, reward, terminated, truncated, info = _finish(plan, outcome)
            action = int(plan.action)
            hit = outcome is not None and bool(outcome.cache_hit)
            recorder.record(
                _slot,
                action,
                _labels.get(action, str(action)),
                float(reward),
                bool(terminated),
                bool(truncated),
                info,
                0.0 if hit else float(info.get("seconds", 0.0)),
                hit,
            )
            _recorded[0] += 1
            while _abandon_at and _abandon_at[0] <= _recorded[0]:
                _abandon_at.pop(0)
                recorder.abandon(_slot)
            return obs, reward, terminated, truncated, info

        def reset_env(
            *args: Any,
            _reset: Any = reset,
            _slot: int = slot,
            _env: Any = env,
            _recorded: list[int] = recorded,
            _abandon_at: list[int] = abandon_at,
            **kwargs: Any,
        ) -> Any:
            waiting = int(getattr(_env, "deferred_steps", 0))
            if waiting:
                _abandon_at.append(_recorded[0] + waiting)
            else:
                recorder.abandon(_slot)
            return _reset(*args, **kwargs)

        env.finish_step = finish_step
        env.reset = reset_env


def _cache_hit(env: gymnasium.Env[Any, Any], info: dict[str, Any]) -> bool:
    """The last step's cache hit: ``NASEnv.last_cache_hit``, else ``info["cache_hit"]``."""
    hit = getattr(env.unwrapped, "last_cache_hit", None)
    if hit is None:  # another environment may report it in info
        hit = info.get("cache_hit", False)
    return bool(hit)


def _action_labels(env: gymnasium.Env[Any, Any]) -> dict[int, str]:
    space = getattr(env.unwrapped, "search_space", None)
    if space is None or not hasattr(space, "actions"):
        return {}
    return {int(a.id): str(a.label) for a in space.actions()}


def _first(info: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in info and info[name] is not None:
            return info[name]
    return default


def _row_from_info(info: dict[str, Any], **known: Any) -> StepRow:
    """A step-log row from the environment's ``info`` (names per ``nasframe.env``)."""
    evaluation = info.get("evaluation")
    params = _first(info, "params", default=getattr(evaluation, "params", 0))
    status = _first(info, "status", default=getattr(evaluation, "status", "ok"))
    accuracy = _first(info, "accuracy", default=getattr(evaluation, "accuracy", 0.0))
    train = _first(info, "train_accuracy", default=getattr(evaluation, "train_accuracy", None))
    measure = _first(info, "measure", default=getattr(evaluation, "measure", ""))
    label = _first(info, "action_label", default=known.pop("label"))
    if not isinstance(label, str):
        label = getattr(label, "label", str(label))
    known.pop("label", None)
    return StepRow(
        task=str(_first(info, "task", "dataset", default="")),
        action_label=label,
        nsc=str(_first(info, "nsc", default="")),
        arch_hash=str(_first(info, "arch_hash", "canonical_hash", "hash", default="")),
        accuracy=float(accuracy),
        train_accuracy=None if train is None else float(train),
        measure=str(measure or ""),
        params=int(params or 0),
        status=str(status),
        **known,
    )
