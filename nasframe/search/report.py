"""The end of a run: ``summary.json``, plots, TensorBoard, the best table, the last lines.

:func:`write_results` writes what ``[run] plots``, ``tensorboard`` and ``top`` ask for
from the step log; :func:`report_end` prints and logs the outcome and, for an
interrupted run, the command that resumes it.
"""

from __future__ import annotations

import logging
from typing import Any

from nasframe.errors import PluginError
from nasframe.nsc import network_label
from nasframe.results import (
    StepRow,
    best_architectures,
    best_phrase,
    best_table,
    plot_architecture,
    plot_rewards,
    summarize,
    write_summary,
    write_tensorboard,
)
from nasframe.search.identity import digest, identity_of
from nasframe.search.output import utc_now
from nasframe.search.run import Run

__all__ = ["report_end", "trained_phrase", "write_results"]

# The search's one logger name, whichever module of the package logs (search.log shows it).
log = logging.getLogger("nasframe.search")


def write_results(run: Run, rows: list[StepRow], console: Any, verbosity: int) -> None:
    """Write the summary, plots and TensorBoard logs from the step log; show the best."""
    config = run.config
    top = int(config.get("run", "top"))
    summary = summarize(
        rows,
        outcome=run.outcome,
        stop_reason=run.stop_reason,
        agent=run.agent.name if run.agent is not None else str(config.get("run", "agent")),
        search_space=config.get("env", "search_space"),
        estimator=config.get("env", "estimator"),
        dataset=config.get("env", "dataset"),
        database=config.get("env", "database"),
        seed=config.get("run", "seed"),
        budget_steps=run.budget_steps,
        budget_episodes=run.budget_episodes,
        resumed_from_step=run.resumed_from,
        trainings=run.trainings,
        session_trainings=run.session_trainings,
        trained=run.trained,
        session_trained=run.session_trained,
        invalid_untrained=run.invalid_untrained,
        session_invalid_untrained=run.session_invalid_untrained,
        session_cache_hits=run.session_hits,
        finished=utc_now(),
        identity=digest(identity_of(config)),
    )
    summary["best"] = best_architectures(rows, top=top)
    run.summary = summary
    write_summary(run.output / "summary.json", summary)
    if bool(config.get("run", "plots")) and rows:
        try:
            plot_rewards(rows, run.output / "rewards.png")
            if summary["best"]:
                best = summary["best"][0]
                plot_architecture(
                    best["nsc"],
                    run.output / "best_architecture.png",
                    title=f"best: {network_label(best['nsc'])}  (accuracy {best['accuracy']:.4f})",
                )
        except PluginError as exc:
            log.warning("plots skipped: %s", exc)
            if verbosity >= 1:
                console.print(f"[yellow]plots skipped:[/] {exc}")
    if bool(config.get("run", "tensorboard")) and rows:
        write_tensorboard(rows, run.output / "tensorboard")
    if verbosity >= 1 and summary["best"]:
        console.print(best_table(summary["best"], title=f"Best architectures ({run.output})"))


def trained_phrase(trained: int, invalid: int) -> str:
    """``"12 networks trained, 3 invalid (not trained)"``; no invalid part when none.

    An invalid network (it cannot be built, or a table does not hold it) is a cache miss
    the estimator answered without training anything: it is counted apart.
    """
    phrase = f"{trained} network{'' if trained == 1 else 's'} trained"
    return phrase + (f", {invalid} invalid (not trained)" if invalid else "")


def report_end(run: Run, console: Any, verbosity: int, resume_command: str) -> None:
    """Log and print the outcome; for an interrupted run, how to resume it."""
    summary = run.summary
    best = summary.get("best") or []
    line = (
        f"{run.outcome}: {run.steps} steps, {run.episodes} episodes, "
        f"{trained_phrase(run.session_trained, run.session_invalid_untrained)} and "
        f"{run.session_hits} cache hits this session; "
        f"{best_phrase(run.best_accuracy, run.best_scores)}"
    )
    log.info(line)
    if verbosity >= 1 or run.outcome == "interrupted":
        console.print(line, highlight=False, soft_wrap=True)
        if best:
            top = best[0]
            console.print(
                f"best architecture: {network_label(top['nsc'])} "
                f"({top.get('measure') or 'accuracy'} {top['accuracy']:.4f}, "
                f"{top['params']:,} params)",
                highlight=False,
                soft_wrap=True,
            )
        console.print(f"results in {run.output}", highlight=False, soft_wrap=True)
    if run.outcome == "interrupted":
        command = resume_command or f"nasframe search --output {run.output}"
        message = f"stopped ({run.stop_reason}); resume with: {command}"
        log.info(message)
        console.print(message, highlight=False, soft_wrap=True)
