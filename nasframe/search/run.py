"""The :class:`Run` record: one search run's configuration, components and progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasframe.agents import Agent
from nasframe.config import Config

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["Run", "with_trainings"]


@dataclass
class Run:
    """One search run: its configuration, output folder, components and progress.

    Handed to the ``nasframe_run_started`` and ``nasframe_run_finished`` hooks.

    Attributes:
        config: the effective configuration.
        output: the output folder.
        plugin_manager: the plugin manager that built the components.
        env: the environment as the agent sees it (wrappers included; with ``[run]
            workers`` > 1 a vector env, which an SB3 agent adapts to its own API; in an
            asynchronous search the vector env whose environments hold the open
            episodes, while the agent gets the first of them).
        agent: the agent.
        evaluator: the environment's evaluator (``trainings`` and ``hits`` counters).
        budget_steps: the step budget (0 when the budget is in episodes).
        budget_episodes: the episode budget (0 when it is in steps).
        steps: environment steps taken, over all sessions of this run.
        episodes: episodes ended, over all sessions.
        resumed_from: steps already taken when this session started.
        best_accuracy: the best validation accuracy seen so far.
        best_scores: the best value so far of every other measure (a zero-cost score,
            a cascade's low fidelity: :attr:`nasframe.Evaluation.measure`), by measure.
        trainings: networks evaluated by the estimator (cache misses), over all
            sessions; invalid networks included (see :attr:`trained`).
        session_trainings: the same, in this session.
        session_hits: cache hits in this session.
        invalid_untrained: cache misses that came back ``invalid`` (the network cannot
            be built, or a table does not hold it), over all sessions: the estimator
            was asked but trained nothing.
        session_invalid_untrained: the same, in this session.
        outcome: ``running``, then ``completed``, ``interrupted`` or ``failed``.
        stop_reason: why an interrupted run stopped (e.g. ``SIGINT``).
        summary: the content of ``summary.json`` once written.
    """

    config: Config
    output: Path
    plugin_manager: PluginManager
    env: Any = None
    agent: Agent | None = None
    evaluator: Any = None
    budget_steps: int = 0
    budget_episodes: int = 0
    steps: int = 0
    episodes: int = 0
    resumed_from: int = 0
    best_accuracy: float = 0.0
    best_scores: dict[str, float] = field(default_factory=dict)
    trainings: int = 0
    session_trainings: int = 0
    session_hits: int = 0
    invalid_untrained: int = 0
    session_invalid_untrained: int = 0
    outcome: str = "running"
    stop_reason: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    stop_requested: bool = False
    _trainings_before: int = 0
    _trainings_start: int = 0
    _invalid_start: int = 0

    @property
    def finished_budget(self) -> bool:
        """Whether the budget of steps or episodes is spent."""
        if self.budget_episodes:
            return self.episodes >= self.budget_episodes
        return self.steps >= self.budget_steps

    @property
    def trained(self) -> int:
        """Networks actually trained, over all sessions (invalid ones left out)."""
        return max(0, self.trainings - self.invalid_untrained)

    @property
    def session_trained(self) -> int:
        """Networks actually trained in this session (invalid ones left out)."""
        return max(0, self.session_trainings - self.session_invalid_untrained)

    @property
    def remaining_steps(self) -> int:
        """Steps left in a step budget; an upper bound for an episode budget."""
        if self.budget_episodes:
            max_steps = int(self.config.get("env", "max_steps"))
            return max(1, (self.budget_episodes - self.episodes) * max_steps)
        return max(0, self.budget_steps - self.steps)

    def request_stop(self, reason: str) -> None:
        """Stop after the step under way (its evaluation is stored first)."""
        self.stop_requested = True
        self.stop_reason = self.stop_reason or reason

    @property
    def path_of(self) -> Callable[[str], Path]:
        """``run.path_of("summary.json")`` -> the file in the output folder."""
        return lambda name: self.output / name


def with_trainings(run: Run) -> Run:
    """Bring the run's training and cache-hit counters up to date from its evaluator."""
    evaluator = run.evaluator
    if evaluator is not None:
        run.session_trainings = int(evaluator.trainings) - run._trainings_before
        run.session_hits = int(getattr(evaluator, "hits", 0))
    run.trainings = run._trainings_start + run.session_trainings
    run.invalid_untrained = run._invalid_start + run.session_invalid_untrained
    return run
