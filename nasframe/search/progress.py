"""The progress bar of a search run (rich): steps or episodes, best accuracy, cache hits, ETA."""

from __future__ import annotations

from typing import Any

from nasframe.search.run import Run

__all__ = ["ProgressBar"]


class ProgressBar:
    """The rich progress bar: steps, episodes, best accuracy, cache hits, ETA."""

    def __init__(self, run: Run, console: Any, *, enabled: bool) -> None:
        self.run = run
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        unit = "episodes" if run.budget_episodes else "steps"
        self._progress = Progress(
            TextColumn("[bold]search"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        total = run.budget_episodes or run.budget_steps
        self._task = self._progress.add_task(
            "search", total=total, completed=self._completed(), detail=self._detail()
        )

    def _completed(self) -> int:
        return self.run.episodes if self.run.budget_episodes else self.run.steps

    def _detail(self) -> str:
        run = self.run
        other = f"ep {run.episodes}" if not run.budget_episodes else f"step {run.steps}"
        invalid = run.session_invalid_untrained
        return f"{other} {_best(run)} hits {run.session_hits} trained {run.session_trained}" + (
            f" invalid {invalid}" if invalid else ""
        )

    def update(self) -> None:
        """Show the run's counters as they are now."""
        if self._progress is not None:
            self._progress.update(self._task, completed=self._completed(), detail=self._detail())

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _best(run: Run) -> str:
    """``best 0.912`` (an accuracy), or ``best score 0.570`` when only scores were seen."""
    if run.best_scores and run.best_accuracy == 0.0:
        return f"best score {max(run.best_scores.values()):.3f}"
    return f"best {run.best_accuracy:.3f}"
