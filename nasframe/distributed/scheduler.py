"""The asynchronous scheduler: episodes of an ask/tell agent, no worker waiting for another.

:class:`AsyncScheduler` keeps the evaluation back end full. It holds several episodes
open at once, each on an environment of its own (all sharing one evaluator): an episode
is asked of the agent as a whole (:meth:`nasframe.AskTellAgent.ask`), its actions are
applied one by one, and every step that needs an evaluation is *submitted*
(:meth:`nasframe.evaluation.Evaluator.submit`). As soon as any evaluation returns, its
step is finished and recorded, and that episode goes on -- or, if it ended, the agent is
told its reward and a new episode is asked. New episodes are opened while fewer
evaluations than ``workers`` are queued or running, up to ``capacity`` open at once, so
a cache hit (answered by the driver, without a worker) or an architecture another
episode is already training never leaves a worker idle for long.

Lockstep is the other policy on the same back end: :class:`~nasframe.distributed.NASVectorEnv`
submits one step of every environment and waits for all of them.

The scheduler needs only the evaluator's ``submit``, ``wait``, ``settle`` and
``in_flight``, so the same code drives a :class:`~nasframe.distributed.RayEvaluator`, the
in-process :class:`~nasframe.evaluation.Evaluator` (everything at once, in order) and the
simulated cluster of :mod:`nasframe.distributed.simulation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from nasframe.errors import ConfigError, NasframeError
from nasframe.evaluation import Outcome

__all__ = ["AsyncScheduler", "StepHandler"]

#: Called for every finished step: ``(slot, action, reward, terminated, truncated, info)``.
StepHandler = Callable[[int, int, float, bool, bool, dict[str, Any]], None]


@dataclass
class _Episode:
    actions: list[int]
    applied: list[int] = field(default_factory=list)
    reward: float = 0.0


class AsyncScheduler:
    """Runs an ask/tell agent's episodes on several environments over one evaluator.

    Args:
        envs: the environments (``NASEnv``, or anything with ``reset``, ``begin_step``
            and ``finish_step``); one open episode each, so ``len(envs)`` is the most
            episodes open at once.
        evaluator: the evaluator they share (``submit``, ``wait``, ``settle``,
            ``in_flight``).
        agent: an :class:`~nasframe.AskTellAgent`.
        workers: evaluations to keep queued or running; new episodes are opened while
            fewer are (default: the number of environments).
        on_step: called after every step, in order of completion.
        poll: seconds between checks of ``should_stop`` while every evaluation runs.

    Attributes:
        steps: steps finished.
        episodes: episodes ended (told to the agent).
        asked: episodes asked of the agent.

    Raises:
        ConfigError: no environments, or ``workers`` < 1.
    """

    def __init__(
        self,
        envs: Sequence[Any],
        evaluator: Any,
        agent: Any,
        *,
        workers: int | None = None,
        on_step: StepHandler | None = None,
        poll: float = 0.5,
    ) -> None:
        if not envs:
            raise ConfigError("the asynchronous scheduler needs at least one environment")
        self.envs = list(envs)
        self.evaluator = evaluator
        self.agent = agent
        self.workers = len(self.envs) if workers is None else workers
        if self.workers < 1:
            raise ConfigError(f"workers={workers!r} is not valid; need an integer >= 1")
        self.on_step = on_step
        self.poll = poll
        self.steps = 0
        self.episodes = 0
        self.asked = 0
        self._open: dict[int, _Episode] = {}
        self._pending: dict[Future[Outcome], tuple[int, Any]] = {}
        self._dispatched = 0
        self._max_steps: int | None = None
        self._max_episodes: int | None = None
        self._stopping = False
        self._should_stop: Callable[[], bool] | None = None

    def run(
        self,
        *,
        steps: int | None = None,
        episodes: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Run until ``steps`` steps or ``episodes`` episodes, or ``should_stop()``.

        At most ``steps`` steps are started in this call (episodes still open then are
        left unfinished, as a serial search's last one may be) and at most ``episodes``
        episodes are asked, each run to its end. ``should_stop`` is asked after every
        step; once it says ``True`` no new step starts, and the evaluations under way
        are waited for, stored and recorded.

        Returns:
            The steps finished in this call.
        """
        before = self.steps
        self._max_steps = None if steps is None else self._dispatched + steps
        self._max_episodes = None if episodes is None else self.asked + episodes
        self._should_stop = should_stop
        self._stopping = False
        while True:
            self._fill()
            if not self._pending:
                break
            done = self.evaluator.wait(list(self._pending), timeout=self.poll)
            for future in sorted(done, key=lambda f: self._pending[f][0]):
                slot, plan = self._pending.pop(future)
                outcome = future.result()
                self.evaluator.settle(outcome)
                if not self._finish_step(slot, plan, outcome):
                    self._advance(slot)
        self._open.clear()  # episodes left unfinished are not told
        return self.steps - before

    # -- internals ------------------------------------------------------------------------
    def _may_start_step(self) -> bool:
        return not self._stopping and (
            self._max_steps is None or self._dispatched < self._max_steps
        )

    def _fill(self) -> None:
        """Open episodes on free environments while the back end has room."""
        opened = True
        while opened:
            opened = False
            for slot in range(len(self.envs)):
                if slot in self._open:
                    continue
                if not self._may_start_step() or self.evaluator.in_flight >= self.workers:
                    return
                if self._max_episodes is not None and self.asked >= self._max_episodes:
                    return
                actions = [int(action) for action in self.agent.ask()]
                if not actions:
                    raise NasframeError(
                        f"agent {getattr(self.agent, 'name', '') or type(self.agent).__name__!r}"
                        " asked an empty episode; ask() must give at least one action"
                    )
                self._open[slot] = _Episode(actions)
                self.asked += 1
                self.envs[slot].reset()
                self._advance(slot)
                opened = True

    def _advance(self, slot: int) -> None:
        """Apply the episode's next actions until one waits for an evaluation or it ends."""
        env, episode = self.envs[slot], self._open[slot]
        while True:
            if len(episode.applied) >= len(episode.actions):
                self._end(slot)  # the agent's episode ran out before the env's
                return
            if not self._may_start_step():
                return  # left open: finished by a later run() or dropped at the end
            action = episode.actions[len(episode.applied)]
            plan = env.begin_step(action)
            episode.applied.append(int(plan.action))
            self._dispatched += 1
            if plan.nsc is None:  # nothing to evaluate (a pointer out of range)
                if self._finish_step(slot, plan, None):
                    return
                continue
            self._pending[self.evaluator.submit(plan.nsc)] = (slot, plan)
            return

    def _finish_step(self, slot: int, plan: Any, outcome: Outcome | None) -> bool:
        """Finish one step; return whether its episode ended."""
        _, reward, terminated, truncated, info = self.envs[slot].finish_step(plan, outcome)
        self.steps += 1
        self._open[slot].reward = float(reward)
        if self.on_step is not None:
            self.on_step(slot, int(plan.action), float(reward), terminated, truncated, info)
        if not self._stopping and self._should_stop is not None and self._should_stop():
            self._stopping = True
        if terminated or truncated:
            self._end(slot)
            return True
        return False

    def _end(self, slot: int) -> None:
        episode = self._open.pop(slot)
        self.episodes += 1
        self.agent.tell(list(episode.applied), episode.reward)
