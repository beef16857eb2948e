"""Step recording: every environment step becomes a row of the step log.

A single environment is wrapped in :class:`Recorder`; a ``NASVectorEnv`` has each of its
environments' ``finish_step`` wrapped by :func:`record_vector`. Both hand the step to a
:class:`StepRecorder`, which numbers episodes, counts steps and episodes on the
:class:`~nasframe.search.run.Run`, appends to the :class:`~nasframe.results.StepLog`
and calls back once per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium

from nasframe.results import StepLog, StepRow
from nasframe.search.run import Run

if TYPE_CHECKING:
    from nasframe.env import StepPlan
    from nasframe.evaluation import Outcome

__all__ = ["Recorder", "StepRecorder", "record_vector", "step_row"]


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
        plan: StepPlan,
        outcome: Outcome | None,
        reward: float,
        terminated: bool,
        truncated: bool,
        task: str | None = None,
    ) -> None:
        """Log one step of the environment in ``slot``: its plan and outcome.

        ``plan`` and ``outcome`` are what the environment's ``finish_step`` had (a
        ``NASEnv`` keeps them as ``last_plan`` and ``last_outcome``); ``reward``,
        ``terminated`` and ``truncated`` are what the agent got. ``task`` is the task a
        wrapper says the step ran on (``info["task"]`` of a task schedule); ``None``: the
        evaluator's dataset task.
        """
        episode = self.open.get(slot)
        if episode is None:
            episode = self.open[slot] = [self.next_episode, 0]
            self.next_episode += 1
        episode[1] += 1
        self.run.steps += 1
        if self.ahead and self.ahead[0].action != plan.action:
            # The agent left the logged path: the log ends where it did.
            self.steplog.truncate(self.kept)
            self.ahead = []
        row = step_row(
            plan,
            outcome,
            step=self.run.steps,
            episode=episode[0],
            episode_step=episode[1],
            task=self.task() if task is None else task,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
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
    """Logs every step of a single environment through a :class:`StepRecorder`.

    The environment underneath is a ``NASEnv`` (wrappers such as the task schedule may
    sit between): each step is logged from its ``last_plan`` and ``last_outcome``.
    """

    def __init__(self, env: gymnasium.Env[Any, Any], recorder: StepRecorder) -> None:
        super().__init__(env)
        self.recorder = recorder

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
        obs, reward, terminated, truncated, info = self.env.step(action)
        env = self.env.unwrapped
        plan: StepPlan | None = getattr(env, "last_plan", None)
        if plan is None:
            raise TypeError(
                f"the step log records a NASEnv's steps; {type(env).__name__} has no last_plan"
            )
        outcome: Outcome | None = getattr(env, "last_outcome", None)
        task = info.get("task")
        self.recorder.record(
            0,
            plan,
            outcome,
            float(reward),
            bool(terminated),
            bool(truncated),
            None if task is None else str(task),
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
        finish = env.finish_step
        reset = env.reset
        recorded = [0]  # steps of this env logged so far
        abandon_at: list[int] = []  # after how many logged steps a reset left its episode

        def finish_step(
            plan: Any,
            outcome: Any,
            _finish: Any = finish,
            _slot: int = slot,
            _recorded: list[int] = recorded,
            _abandon_at: list[int] = abandon_at,
        ) -> Any:
            obs, reward, terminated, truncated, info = _finish(plan, outcome)
            recorder.record(_slot, plan, outcome, float(reward), bool(terminated), bool(truncated))
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


def step_row(
    plan: StepPlan,
    outcome: Outcome | None,
    *,
    step: int,
    episode: int,
    episode_step: int,
    task: str,
    reward: float,
    terminated: bool,
    truncated: bool,
) -> StepRow:
    """The step-log row of a step: what ``NASEnv.finish_step`` had, and the counts.

    The network is the step's state with its terminal row dropped (as the database
    stores it); a step that evaluated nothing logs status ``not_evaluated`` (skipped by
    ``evaluate="episode_end"``) or ``out_of_range``, accuracy 0; a cache hit logs 0
    seconds, as its network trained nothing now.
    """
    nsc = plan.transition.state.nsc
    evaluation = outcome.evaluation if outcome is not None else None
    cache_hit = outcome is not None and bool(outcome.cache_hit)
    if evaluation is None:
        status = "not_evaluated" if plan.skipped else "out_of_range"
    else:
        status = str(evaluation.status)
    train = evaluation.train_accuracy if evaluation is not None else None
    return StepRow(
        step=step,
        episode=episode,
        episode_step=episode_step,
        task=task,
        action=int(plan.action),
        action_label=str(plan.transition.action.label),
        nsc=str(nsc.without_terminal()),
        arch_hash=nsc.canonical_hash,
        reward=reward,
        accuracy=float(evaluation.accuracy) if evaluation is not None else 0.0,
        params=int(evaluation.params or 0) if evaluation is not None else 0,
        status=status,
        cache_hit=cache_hit,
        seconds=0.0 if cache_hit or evaluation is None else float(evaluation.seconds),
        terminated=terminated,
        truncated=truncated,
        train_accuracy=None if train is None else float(train),
        measure=str(evaluation.measure or "") if evaluation is not None else "",
    )
