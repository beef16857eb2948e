"""What the step log sums up to: ``summary.json`` and the table of the best architectures."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nasframe.nsc import network_label
from nasframe.results.steplog import StepRow

__all__ = ["best_architectures", "best_table", "summarize", "write_summary"]


def best_architectures(rows: Iterable[StepRow], top: int = 10) -> list[dict[str, Any]]:
    """The ``top`` distinct networks with the highest accuracy (status ``ok`` only).

    The empty network (the input straight into the classifier head) counts like any
    other: an agent reaches it by ending an episode first, and the table must agree with
    the run's best accuracy. Ties keep the network found first.
    """
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row.status != "ok":
            continue
        key = (row.task, row.arch_hash)
        if key not in best:
            best[key] = {
                "nsc": row.nsc,
                "arch_hash": row.arch_hash,
                "task": row.task,
                "accuracy": row.accuracy,
                "params": row.params,
                "first_step": row.step,
                "visits": 0,
            }
        best[key]["visits"] += 1
    ranked = sorted(best.values(), key=lambda b: (-b["accuracy"], b["first_step"]))
    return ranked[:top]


def summarize(rows: Sequence[StepRow], **run_info: Any) -> dict[str, Any]:
    """The content of ``summary.json``: ``run_info`` plus counts and the best networks."""
    evaluated = [row for row in rows if row.status == "ok"]
    episodes = sum(1 for row in rows if row.done)
    summary: dict[str, Any] = dict(run_info)
    summary.update(
        {
            "steps": len(rows),
            "episodes": episodes,
            "cache_hits": sum(1 for row in rows if row.cache_hit),
            "invalid": sum(1 for row in rows if row.status == "invalid"),
            # a step before an episode's end under [env] evaluate = episode_end evaluated
            # nothing: neither failed nor trained
            "not_evaluated": sum(1 for row in rows if row.status == "not_evaluated"),
            "failed": sum(
                1 for row in rows if row.status not in ("ok", "invalid", "not_evaluated")
            ),
            "mean_reward": (sum(row.reward for row in rows) / len(rows)) if rows else 0.0,
            "best_accuracy": max((row.accuracy for row in evaluated), default=0.0),
            "tasks": sorted({row.task for row in rows}),
            "best": best_architectures(rows),
        }
    )
    return summary


def write_summary(path: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary`` as indented JSON (non-finite numbers become ``null``)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    path = Path(path)
    path.write_text(json.dumps(clean(summary), indent=2, default=str) + "\n", encoding="utf-8")
    return path


def best_table(best: Sequence[dict[str, Any]], *, title: str = "Best architectures") -> Any:
    """A rich ``Table`` of the best networks: rank, NSC, accuracy, parameters, task.

    The empty network shows as ``head only`` (:func:`nasframe.nsc.network_label`).
    """
    from rich.table import Table

    table = Table(title=title)
    for column, justify in (
        ("#", "right"),
        ("NSC", "left"),
        ("accuracy", "right"),
        ("params", "right"),
        ("task", "left"),
        ("step", "right"),
    ):
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
        )
    for rank, entry in enumerate(best, start=1):
        table.add_row(
            str(rank),
            network_label(entry["nsc"]),
            f"{entry['accuracy']:.4f}",
            f"{entry['params']:,}",
            entry["task"],
            str(entry["first_step"]),
        )
    return table
