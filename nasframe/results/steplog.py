"""The step log of a search: ``steps.csv``, one :class:`StepRow` per environment step.

Appended and flushed as the search goes (:class:`StepLog`), so an interrupted run keeps
every step it took; everything else a search leaves behind is derived from it
(:mod:`nasframe.results.summary`, :mod:`nasframe.results.plots`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from nasframe.errors import NasframeError
from nasframe.nsc import network_text

__all__ = ["StepLog", "StepRow"]


_COLUMNS = [
    "step",
    "episode",
    "episode_step",
    "task",
    "action",
    "action_label",
    "nsc",
    "arch_hash",
    "reward",
    "accuracy",
    "train_accuracy",
    "params",
    "status",
    "cache_hit",
    "seconds",
    "terminated",
    "truncated",
    "measure",
]

#: The columns of logs written before ``measure`` (and before ``train_accuracy``) was
#: recorded; still read, and rewritten with the new header when a resumed search
#: appends to them.
_OLDER_COLUMNS = (
    [name for name in _COLUMNS if name != "measure"],
    [name for name in _COLUMNS if name not in ("measure", "train_accuracy")],
)


@dataclass(frozen=True)
class StepRow:
    """One environment step of a search, as logged.

    Attributes:
        step: the step number over the whole run, from 1.
        episode: the episode number, from 1.
        episode_step: the step within its episode, from 1.
        task: the dataset task the step ran on.
        action: the action id.
        action_label: the action's readable label.
        nsc: the network after the action (compact NSC string), terminal row dropped as
            in the experiment database: a terminal step logs the network it ends, and the
            head-only network is ``""``. An older log's ``1,7,0,0,0`` reads as ``""``.
        arch_hash: its canonical hash.
        reward: the reward the agent received.
        accuracy: the network's validation accuracy.
        params: the network's parameter count.
        status: the evaluation status (``ok``, ``invalid``, ...).
        cache_hit: whether the evaluation came from the database.
        seconds: the estimator's seconds for the step's network (0 on a cache hit).
        terminated: the episode ended (terminal action, invalid network, ...).
        truncated: the episode hit its step limit.
        train_accuracy: its accuracy on the estimator's training subset
            (:attr:`nasframe.Evaluation.train_accuracy`); ``None`` when not measured
            (written as an empty cell).
        measure: what ``accuracy`` holds when it is not a validation accuracy
            (:attr:`nasframe.Evaluation.measure`: ``"synflow score"``, ``"cascade 1/2:
            synflow score"``); ``""``: a validation accuracy.
    """

    step: int
    episode: int
    episode_step: int
    task: str
    action: int
    action_label: str
    nsc: str
    arch_hash: str
    reward: float
    accuracy: float
    params: int
    status: str
    cache_hit: bool
    seconds: float
    terminated: bool
    truncated: bool
    train_accuracy: float | None = None
    measure: str = ""

    def __post_init__(self) -> None:
        network = network_text(self.nsc)
        if network != self.nsc:
            object.__setattr__(self, "nsc", network)

    @property
    def done(self) -> bool:
        """Whether the episode ended with this step."""
        return self.terminated or self.truncated

    @property
    def label(self) -> str:
        """What ``accuracy`` is, for display: :attr:`measure`, else ``"accuracy"``."""
        return self.measure or "accuracy"

    @classmethod
    def from_strings(cls, row: dict[str, str]) -> StepRow:
        """Parse a row read back from ``steps.csv``.

        Raises:
            ValueError: a field is missing or malformed.
        """
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if spec.name == "train_accuracy":
                text = row.get(spec.name) or ""
                values[spec.name] = float(text) if text else None
                continue
            if spec.name == "measure":  # absent from older logs: accuracies
                values[spec.name] = row.get(spec.name) or ""
                continue
            text = row[spec.name]
            if spec.type == "int":
                values[spec.name] = int(text)
            elif spec.type == "float":
                values[spec.name] = float(text)
            elif spec.type == "bool":
                values[spec.name] = text == "1"
            else:
                values[spec.name] = text
        return cls(**values)

    def to_strings(self) -> dict[str, str]:
        """The row as ``steps.csv`` writes it (booleans as 0/1)."""
        out: dict[str, str] = {}
        for name in _COLUMNS:
            value = getattr(self, name)
            if value is None:
                out[name] = ""
            else:
                out[name] = str(int(value)) if isinstance(value, bool) else str(value)
        return out


class StepLog:
    """The append-only ``steps.csv`` of a search.

    Args:
        path: the CSV file; created with its header on the first :meth:`append`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def read(self) -> list[StepRow]:
        """Every logged step; a torn last line (a crash mid-write) is ignored.

        Raises:
            NasframeError: the file exists but is not a step log.
        """
        if not self.path.is_file():
            return []
        rows: list[StepRow] = []
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != _COLUMNS and reader.fieldnames not in _OLDER_COLUMNS:
                raise NasframeError(
                    f"{self.path}: not a nasframe step log (columns {reader.fieldnames})"
                )
            lines = list(reader)
        for number, line in enumerate(lines, start=2):
            try:
                rows.append(StepRow.from_strings(line))
            except (ValueError, KeyError, TypeError):
                if number == len(lines) + 1:
                    break  # the last line was cut by a crash; the step is retaken
                raise NasframeError(f"{self.path}: line {number} is corrupt") from None
        return rows

    def append(self, row: StepRow) -> None:
        """Append one step and flush it to the operating system.

        The file stays open between appends (one ``open`` per run, not per step) until
        :meth:`close`.
        """
        if self._handle is None:
            new = not self.path.is_file() or self.path.stat().st_size == 0
            if not new and self._header() in _OLDER_COLUMNS:
                self.truncate(self.read())  # the same rows under the new header
            self._handle = self.path.open("a", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._handle, fieldnames=_COLUMNS)
            if new:
                self._writer.writeheader()
        self._writer.writerow(row.to_strings())
        self._handle.flush()

    def _header(self) -> list[str]:
        with self.path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])

    def close(self) -> None:
        """Close the file :meth:`append` keeps open."""
        if self._handle is not None:
            self._handle.close()
            self._handle = self._writer = None

    def truncate(self, rows: Sequence[StepRow]) -> None:
        """Rewrite the log with exactly ``rows`` (drops a torn last line)."""
        self.close()
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(row.to_strings())
