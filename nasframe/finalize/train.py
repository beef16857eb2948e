"""Training a plan: every (network, seed) trained, tested once, saved; resumable.

:func:`finalize` trains what ``rows.csv`` does not hold yet -- in this process or on Ray
actors (``workers`` > 1) -- appending one row per training, then writes the results
(:mod:`nasframe.finalize.report`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.bench.table import RowWriter, TableRow, resume_rows
from nasframe.contracts import DatasetHandler, PerformanceEstimator
from nasframe.distributed.components import ComponentSpec
from nasframe.distributed.rows import PoolSettings, RowPool, measure_row, measure_rows
from nasframe.errors import ConfigError, NasframeError
from nasframe.finalize.plan import CARD, PLOT, ROWS, TABLE, FinalPlan, model_path
from nasframe.finalize.report import (
    _card,
    _check_card,
    _plot,
    _print_table,
    _rich_table,
    _summaries,
    _write_json,
    _write_table,
)
from nasframe.nsc import NSC

__all__ = ["FinalResult", "finalize", "train_one"]

log = logging.getLogger("nasframe.finalize")


@dataclass
class FinalResult:
    """How a finalization ended.

    Attributes:
        rows: (network, seed) rows stored, including those of earlier runs.
        trained: rows trained by this call.
        complete: whether every (network, seed) is stored.
        seconds: wall seconds of this call.
        card: the content of ``final.json``.
    """

    rows: int
    trained: int
    complete: bool
    seconds: float
    card: dict[str, Any] = field(default_factory=dict)


def train_one(
    estimator: PerformanceEstimator,
    dataset: DatasetHandler,
    nsc: NSC,
    seed: int,
    save_to: Path,
) -> TableRow:
    """Train ``nsc`` with ``seed``, test it, save it; the row. Never raises."""
    return measure_row(estimator, dataset, nsc, seed, save_to=save_to)


def finalize(
    plan: FinalPlan,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    plugin_manager: Any = None,
    console: Any = None,
    progress: bool = True,
    limit: int | None = None,
) -> FinalResult:
    """Train (or resume training) every (network, seed) of ``plan``; write the results.

    Args:
        plan: what to train (:func:`plan_finalize`).
        workers: parallel trainings; more than 1 runs them on Ray actors.
        ray_address: an existing Ray cluster (default: a new local instance).
        plugin_manager: the plugin manager (default: a fresh one).
        console: a ``rich.console.Console`` for the progress bar and the table.
        progress: show the progress bar and the table.
        limit: train at most this many (network, seed) in this call.

    Raises:
        ConfigError: the estimator cannot measure test accuracy, the dataset has no test
            split, or the output folder holds results of other components.
    """
    from rich.console import Console

    started = time.perf_counter()
    console = console or Console()
    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    # the composition's path: a setting naming a component ([keras] builder) is built
    estimator = ComponentSpec("estimator", *plan.estimator).build(plugin_manager)
    dataset = ComponentSpec("dataset", *plan.dataset).build(plugin_manager)
    if plan.task:
        dataset.select_task(plan.task)
    if type(estimator).measure is PerformanceEstimator.measure:
        raise ConfigError(
            f"[env] estimator: {estimator.name!r} cannot finalize: it does not implement "
            "PerformanceEstimator.measure (test accuracy, saved models); use keras"
        )
    if dataset.num_examples("test") == 0:
        section = plugin_manager.datasets().get(plan.dataset[0]).section
        hint = f" (e.g. --set {section}.test=0.2)" if section else ""
        raise ConfigError(
            f"[env] dataset: {dataset.identity!r} has an empty test split; give its test "
            f"fraction a value above 0{hint} to finalize"
        )
    card = _card(plan, estimator, dataset)
    output = plan.output
    output.mkdir(parents=True, exist_ok=True)
    _check_card(output / CARD, card)
    rows_path = output / ROWS
    done = resume_rows(rows_path)
    finished = {
        (row.arch_hash, row.seed)
        for row in done
        if not row.ok or model_path(output, row.arch_hash, row.seed).is_file()
    }
    jobs = [
        (NSC.parse(record.nsc), seed)
        for seed in plan.seeds
        for record in plan.networks
        if (record.arch_hash, seed) not in finished
    ]
    if limit is not None:
        jobs = jobs[: max(0, limit)]
    log.info(
        "%d networks x %d seeds: %d stored, %d to train with %d worker(s)",
        len(plan.networks),
        len(plan.seeds),
        len(finished),
        len(jobs),
        workers,
    )
    pool_settings = PoolSettings.from_section(plan.ray)

    def make_pool() -> RowPool:
        return RowPool(
            ComponentSpec("estimator", *plan.estimator),
            ComponentSpec("dataset", *plan.dataset),
            task=plan.task,
            workers=workers,
            settings=pool_settings,
            ray_address=ray_address,
            what="finalize",
        )

    epochs = int(getattr(getattr(estimator, "settings", None), "epochs", 0) or 0)
    max_epochs = max([epochs, *(len(row.curve) for row in done)])
    trained = 0
    bar = _Progress(console, len(jobs), enabled=progress)
    try:
        with RowWriter(rows_path, max_epochs) as writer, bar:
            for row in measure_rows(
                [(nsc, seed, model_path(output, nsc.canonical_hash, seed)) for nsc, seed in jobs],
                estimator=estimator,
                dataset=dataset,
                pool=make_pool if workers > 1 else None,
            ):
                writer.write(row)
                trained += 1
                bar.advance(row)
    finally:
        estimator.close()
    rows = [row for row in resume_rows(rows_path) if row.seed in plan.seeds]
    wanted = {(record.arch_hash, seed) for record in plan.networks for seed in plan.seeds}
    have = {(row.arch_hash, row.seed) for row in rows} & wanted
    card["complete"] = wanted <= have
    card["networks"] = _summaries(plan, rows, output)
    card["seconds"] = round(time.perf_counter() - started, 1)
    _write_json(output / CARD, card)
    _write_table(output / TABLE, card["networks"])
    if card["networks"]:
        try:
            _plot(output / PLOT, card["networks"])
        except NasframeError as exc:
            log.warning("final.png skipped: %s", exc)
    if progress:
        _print_table(console, _rich_table(card["networks"], output, len(plan.seeds)))
    return FinalResult(
        rows=len(have),
        trained=trained,
        complete=bool(card["complete"]),
        seconds=time.perf_counter() - started,
        card=card,
    )


class _Progress:
    """A rich progress bar over the (network, seed) trainings."""

    def __init__(self, console: Any, total: int, *, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled or total == 0:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]finalize"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TextColumn("trainings {task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._bar.add_task("finalize", total=total, detail="")

    def advance(self, row: TableRow) -> None:
        if self._bar is not None:
            test = "-" if math.isnan(row.test) else f"{row.test:.3f}"
            detail = f"last: {row.nsc} seed {row.seed} {row.status} test {test}"
            self._bar.update(self._task, advance=1, detail=detail)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
