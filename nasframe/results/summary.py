"""What the step log sums up to: ``summary.json`` and the table of the best architectures."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nasframe.nsc import network_label
from nasframe.results.steplog import StepRow

__all__ = [
    "best_architectures",
    "best_phrase",
    "best_scores",
    "best_table",
    "summarize",
    "write_summary",
]


def best_scores(rows: Iterable[StepRow]) -> dict[str, float]:
    """The best ``ok`` value of every measure that is not a validation accuracy.

    Keyed by :attr:`StepRow.measure` (``"synflow score"``, ``"cascade 1/2: synflow
    score"``); a zero-cost score or a cascade's low-fidelity answer is summarised here,
    never as the run's best accuracy.
    """
    best: dict[str, float] = {}
    for row in rows:
        if row.status == "ok" and row.measure:
            best[row.measure] = max(best.get(row.measure, row.accuracy), row.accuracy)
    return best


def best_phrase(accuracy: float, scores: dict[str, float], *, digits: int = 4) -> str:
    """``best accuracy 0.9694``, with the best of every other measure after it.

    A run that measured no accuracy at all (a zero-cost search: ``accuracy`` 0 and only
    scores) says so instead of reporting an accuracy of 0.
    """
    others = "; ".join(f"best {name} {value:.{digits}f}" for name, value in sorted(scores.items()))
    if scores and accuracy == 0.0:
        return f"{others} (no accuracy measured)"
    phrase = f"best accuracy {accuracy:.{digits}f}"
    return f"{phrase}; {others}" if others else phrase


def best_architectures(rows: Iterable[StepRow], top: int = 10) -> list[dict[str, Any]]:
    """The ``top`` distinct networks with the highest accuracy (status ``ok`` only).

    The empty network (the input straight into the classifier head) counts like any
    other: an agent reaches it by ending an episode first, and the table must agree with
    the run's best accuracy. Ties keep the network found first. Networks whose value is
    not a validation accuracy (``measure``: a zero-cost score, a cascade's low fidelity)
    rank after every network with an accuracy, by their value; each entry's ``measure``
    says which it is.
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
                "measure": row.measure,
                "params": row.params,
                "first_step": row.step,
                "visits": 0,
            }
        best[key]["visits"] += 1
    ranked = sorted(
        best.values(), key=lambda b: (b["measure"] != "", -b["accuracy"], b["first_step"])
    )
    return ranked[:top]


def summarize(rows: Sequence[StepRow], **run_info: Any) -> dict[str, Any]:
    """The content of ``summary.json``: ``run_info`` plus counts and the best networks.

    ``best_accuracy`` is the best validation accuracy (0 when none was measured);
    ``best_scores`` the best value of every other measure (:func:`best_scores`).
    """
    evaluated = [row for row in rows if row.status == "ok" and not row.measure]
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
            "best_scores": best_scores(rows),
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

    The empty network shows as ``head only`` (:func:`nasframe.nsc.network_label`). When
    an entry's value is not a validation accuracy the column is ``value`` and a
    ``measure`` column names what each value is.
    """
    from rich.table import Table

    measured = any(entry.get("measure") for entry in best)
    columns = [("#", "right"), ("NSC", "left"), ("value" if measured else "accuracy", "right")]
    if measured:
        columns.append(("measure", "left"))
    columns += [("params", "right"), ("task", "left"), ("step", "right")]
    table = Table(title=title)
    for column, justify in columns:
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
        )
    for rank, entry in enumerate(best, start=1):
        cells = [str(rank), network_label(entry["nsc"]), f"{entry['accuracy']:.4f}"]
        if measured:
            cells.append(entry.get("measure") or "accuracy")
        cells += [f"{entry['params']:,}", entry["task"], str(entry["first_step"])]
        table.add_row(*cells)
    return table
