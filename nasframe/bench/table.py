"""The NSC-Bench table format: one row per (network, seed), a JSON build card beside it.

A table is a folder (or the two files of one)::

    table.csv.gz   one row per trained (network, seed): see TableRow
    build.json     what was built: space, depth, dataset, estimator, seeds, epochs,
                   the number of rows, build seconds, the table's sha256

While ``nasframe bench build`` runs, rows are appended to ``rows.csv`` in the same
format (one fsync'ed line per row); the build compresses it into ``table.csv.gz`` when
every network is done. :class:`BenchTable` reads either.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.contracts import Status
from nasframe.errors import ConfigError, NasframeError

__all__ = [
    "BUILD_FILE",
    "ROWS_FILE",
    "SHIPPED_TABLE",
    "SHIPPED_TASK_SETS",
    "TABLE_FILE",
    "BenchTable",
    "RowWriter",
    "TableRow",
    "read_rows",
    "resume_rows",
    "sha256_of",
    "write_rows",
]

TABLE_FILE = "table.csv.gz"
ROWS_FILE = "rows.csv"
BUILD_FILE = "build.json"

#: The folder of the shipped tables (package data), one sub-folder per table.
SHIPPED_FOLDER = Path(__file__).resolve().parent / "data"

#: The tables that ship with nasframe, by name; the first is the default. v1 and v2,
#: built by keras-v1's first trainer, were withdrawn (docs/nsc-bench.md, "Why v1 and v2
#: were withdrawn"); their build configurations stay in resources/, their tables in git.
SHIPPED_NAMES = ("nsc-bench-v3",)

#: The folder of the default shipped table.
SHIPPED_TABLE = SHIPPED_FOLDER / SHIPPED_NAMES[0]

#: The task sets that ship with nasframe (one table per task, for ``bench transfer``):
#: ``digit-tasks`` is ``digit-tasks-v1``'s six tasks (docs/tasks.md).
SHIPPED_TASK_SETS = ("digit-tasks",)

#: The fixed columns, in order; ``val_1 .. val_E`` follow ``epochs``, then ``test``.
_HEAD = (
    "arch_hash",
    "nsc",
    "depth",
    "seed",
    "status",
    "params",
    "flops",
    "seconds",
    "train_seconds",
    "epochs",
)


@dataclass(frozen=True)
class TableRow:
    """One trained (network, seed) of a table.

    Attributes:
        arch_hash: the canonical graph hash of the network.
        nsc: the network in NSC string form (``""``: head only).
        depth: the number of layers.
        seed: the training seed.
        status: how the training ended (``ok``, ``invalid``, ...).
        params: parameters of the built model.
        flops: FLOPs of one forward pass of one example.
        seconds: wall seconds of the whole evaluation (build, trace, train, validate, test).
        train_seconds: wall seconds of the training passes alone.
        epochs: epochs trained.
        curve: the validation accuracy after each epoch (``curve[e - 1]`` after ``e``).
        test: the test accuracy after the last epoch (NaN when there is none).
        message: why the status is not ``ok``.
        train: the training accuracy after the last epoch, measured as the validation
            accuracy is (inference mode) on a fixed training subset
            (:attr:`nasframe.Evaluation.train_accuracy`); NaN when not measured (tables
            built before it was recorded).
    """

    arch_hash: str
    nsc: str
    depth: int
    seed: int
    status: str
    params: int = 0
    flops: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    epochs: int = 0
    curve: tuple[float, ...] = ()
    test: float = math.nan
    message: str = ""
    train: float = math.nan

    @property
    def ok(self) -> bool:
        return self.status == Status.OK.value

    def accuracy(self, epochs: int | None = None) -> float:
        """The validation accuracy after ``epochs`` epochs (default: the last); 0 if failed."""
        if not self.ok or not self.curve:
            return 0.0
        if epochs is None or epochs >= len(self.curve):
            return self.curve[-1]
        return self.curve[max(1, epochs) - 1]

    def to_cells(self, max_epochs: int, *, train: bool = True) -> list[str]:
        """The row's cells in :func:`header` order (``train=False``: a table without it)."""
        curve = [f"{value:.6g}" for value in self.curve]
        curve += [""] * (max_epochs - len(curve))
        test = "" if math.isnan(self.test) else f"{self.test:.6g}"
        trained = ["" if math.isnan(self.train) else f"{self.train:.6g}"] if train else []
        return [
            self.arch_hash,
            self.nsc,
            str(self.depth),
            str(self.seed),
            self.status,
            str(self.params),
            str(self.flops),
            f"{self.seconds:.4f}",
            f"{self.train_seconds:.4f}",
            str(self.epochs),
            *curve,
            test,
            *trained,
            self.message,
        ]


def header(max_epochs: int, *, train: bool = True) -> list[str]:
    """The CSV header of a table whose curves have ``max_epochs`` points.

    ``train=False``: the layout of tables built before the training accuracy was
    recorded (no ``train`` column), which are still read and resumed.
    """
    values = [*(f"val_{e}" for e in range(1, max_epochs + 1)), "test"]
    return [*_HEAD, *values, *(["train"] if train else []), "message"]


def _row_from(cells: dict[str, str], where: str) -> TableRow:
    try:
        if None in cells:  # csv.DictReader's key for cells beyond the header
            raise ValueError(f"{len(cells) - 1 + len(cells[None])} cells, more than the columns")  # type: ignore[index]
        epochs = sorted(int(name[4:]) for name in cells if name.startswith("val_"))
        curve = tuple(float(cells[f"val_{e}"]) for e in epochs if cells[f"val_{e}"] != "")
        return TableRow(
            arch_hash=cells["arch_hash"],
            nsc=cells["nsc"],
            depth=int(cells["depth"]),
            seed=int(cells["seed"]),
            status=cells["status"],
            params=int(cells["params"]),
            flops=int(cells["flops"]),
            seconds=float(cells["seconds"]),
            train_seconds=float(cells["train_seconds"]),
            epochs=int(cells["epochs"]),
            curve=curve,
            test=float(cells["test"]) if cells.get("test") else math.nan,
            message=cells.get("message") or "",
            train=float(cells["train"]) if cells.get("train") else math.nan,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not a row of an NSC-Bench table ({exc})") from None


def read_rows(path: Path, *, drop_partial: bool = False) -> list[TableRow]:
    """The rows of a table file (``.csv`` or ``.csv.gz``).

    Args:
        path: the file.
        drop_partial: ignore a last line without its newline (what a build killed in
            the middle of a write leaves) instead of refusing the file.

    Raises:
        ConfigError: the file is missing or is not a table; the message names it.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such table file") from None
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise ConfigError(f"{path}: cannot read the table: {exc}") from None
    if drop_partial and text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return []
    if "arch_hash" not in reader.fieldnames:
        raise ConfigError(f"{path}: not an NSC-Bench table (no arch_hash column)")
    return [_row_from(cells, f"{path} line {n}") for n, cells in enumerate(reader, start=2)]


def write_rows(path: Path, rows: Iterable[TableRow], max_epochs: int) -> None:
    """Write a whole table file; gzip-compressed (deterministically) when it ends in .gz."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header(max_epochs))
    for row in rows:
        writer.writerow(row.to_cells(max_epochs))
    data = buffer.getvalue().encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class BenchTable:
    """A table in memory: rows by canonical hash, and the build card.

    Args:
        rows: every row.
        build: the build card (``build.json``).
        source: where it was read from, for messages.
    """

    rows: Sequence[TableRow]
    build: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.by_hash: dict[str, list[TableRow]] = {}
        for row in self.rows:
            self.by_hash.setdefault(row.arch_hash, []).append(row)
        for rows in self.by_hash.values():
            rows.sort(key=lambda row: row.seed)

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> BenchTable:
        """Read a table folder (or its ``table.csv.gz`` / ``rows.csv``).

        Raises:
            ConfigError: no table there, or its checksum does not match its build card.
        """
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        card_path = folder / BUILD_FILE
        build: dict[str, Any] = {}
        if card_path.exists():
            try:
                build = json.loads(card_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{card_path}: not a readable build card: {exc}") from None
        if path.is_dir():
            table = folder / TABLE_FILE
            path = table if table.exists() else folder / ROWS_FILE
            if not path.exists():
                raise ConfigError(f"{folder}: no {TABLE_FILE} or {ROWS_FILE} there")
        expected = build.get("sha256") if path.name == TABLE_FILE else None
        if verify and expected and sha256_of(path) != expected:
            raise ConfigError(
                f"{path}: checksum does not match {card_path} (the table was changed or "
                "is damaged); rebuild it or restore it"
            )
        return cls(read_rows(path, drop_partial=True), build, str(path))

    @staticmethod
    def shipped_names() -> tuple[str, ...]:
        """The names of the tables that ship with nasframe; the first is the default."""
        return SHIPPED_NAMES

    @staticmethod
    def shipped(name: str | None = None) -> Path:
        """The folder of a table that ships with nasframe: ``name`` or the default (v3).

        Args:
            name: one of :data:`SHIPPED_NAMES` (``nsc-bench-v3``); ``None``: the
                default, NSC-Bench v3.

        Raises:
            ConfigError: ``name`` is not a shipped table.
        """
        if name is None:
            return SHIPPED_TABLE
        if name not in SHIPPED_NAMES:
            raise ConfigError(
                f"{name!r} is not a shipped table; shipped: {', '.join(SHIPPED_NAMES)}"
            )
        return SHIPPED_FOLDER / name

    @classmethod
    def from_records(cls, records: Iterable[Any], source: str) -> BenchTable:
        """A table of the records of an experiment database (one epoch count each).

        Every :class:`~nasframe.Record` becomes a row whose curve is its one validation
        accuracy (at the epochs it trained) and which has no test accuracy; a record
        without a seed counts as seed 0. The build card names the records' dataset, or
        ``None`` when they hold several.

        Args:
            records: the records, e.g. an :class:`~nasframe.ExperimentDB`.
            source: where they come from, for messages.
        """
        rows: list[TableRow] = []
        datasets: set[str] = set()
        seen: set[tuple[str, int]] = set()
        for record in records:
            evaluation = record.evaluation
            seed = int(record.seed) if record.seed is not None else 0
            if (record.arch_hash, seed) in seen:
                continue  # one row per (network, seed): the first record stored wins
            seen.add((record.arch_hash, seed))
            datasets.add(record.dataset)
            rows.append(
                TableRow(
                    arch_hash=record.arch_hash,
                    nsc=record.nsc,
                    depth=len(record.nsc.split(";")) if record.nsc else 0,
                    seed=seed,
                    status=str(evaluation.status),
                    params=evaluation.params,
                    flops=evaluation.flops,
                    seconds=evaluation.seconds,
                    train_seconds=evaluation.seconds,
                    epochs=evaluation.epochs,
                    curve=(float(evaluation.accuracy),),
                    message=evaluation.message,
                )
            )
        build = {"dataset": datasets.pop() if len(datasets) == 1 else None, "space": None}
        return cls(rows, build, source)

    @property
    def hashes(self) -> list[str]:
        return list(self.by_hash)

    @property
    def max_epochs(self) -> int:
        return max((len(row.curve) for row in self.rows), default=0)

    def seeds(self) -> list[int]:
        return sorted({row.seed for row in self.rows})

    def lookup(self, arch_hash: str) -> list[TableRow]:
        """The rows of a network (one per seed), or ``[]``."""
        return self.by_hash.get(arch_hash, [])

    def best(self, *, epochs: int | None = None) -> TableRow | None:
        """The row of the network with the highest seed-mean validation accuracy."""
        means = self.mean_accuracies(epochs=epochs)
        if not means:
            return None
        top = max(means, key=lambda h: means[h])
        return self.by_hash[top][0]

    def mean_accuracies(self, *, epochs: int | None = None) -> dict[str, float]:
        """Seed-mean validation accuracy of every network (failed trainings count 0)."""
        return {
            h: sum(row.accuracy(epochs) for row in rows) / len(rows)
            for h, rows in self.by_hash.items()
        }

    def mean_trains(self) -> dict[str, float]:
        """Seed-mean training accuracy of every network that has one (NaN: none recorded)."""
        out = {}
        for h, rows in self.by_hash.items():
            values = [r.train for r in rows if r.ok and not math.isnan(r.train)]
            out[h] = sum(values) / len(values) if values else math.nan
        return out

    def mean_tests(self) -> dict[str, float]:
        """Seed-mean test accuracy of every network (failed or untested count 0)."""
        out = {}
        for h, rows in self.by_hash.items():
            values = [0.0 if (math.isnan(r.test) or not r.ok) else r.test for r in rows]
            out[h] = sum(values) / len(values)
        return out

    def __iter__(self) -> Iterator[TableRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.by_hash)


class RowWriter:
    """Appends rows to a ``rows.csv``: one flushed, fsync'ed line each.

    What ``bench build`` and ``finalize`` store as they go: a ``kill -9`` loses at most the
    row being written, which :func:`resume_rows` then cuts off. The header waits for the
    first row of a new file (its curve may be longer than ``max_epochs``); an existing
    file's own layout wins (its width, and whether it has the ``train`` column), so the
    rows of a resumed run line up.
    """

    def __init__(self, path: Path, max_epochs: int) -> None:
        self.path = path
        self.max_epochs = max_epochs
        self._train = True

    def __enter__(self) -> RowWriter:
        self._new = not self.path.exists() or self.path.stat().st_size == 0
        if not self._new:
            with self.path.open(encoding="utf-8") as handle:
                columns = handle.readline().strip().split(",")
            self.max_epochs = sum(name.startswith("val_") for name in columns)
            self._train = "train" in columns
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        return self

    def write(self, row: TableRow) -> None:
        if self._new:
            # The header waits for the first row: its curve may be longer than the hint.
            self.max_epochs = max(self.max_epochs, len(row.curve))
            self._csv.writerow(header(self.max_epochs))
            self._new = False
        elif len(row.curve) > self.max_epochs:
            raise NasframeError(
                f"{self.path}: a curve of {len(row.curve)} epochs does not fit the table's "
                f"{self.max_epochs} columns"
            )
        self._csv.writerow(row.to_cells(self.max_epochs, train=self._train))
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


def resume_rows(path: Path) -> list[TableRow]:
    """The rows stored so far; a half-written last line (from ``kill -9``) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
    return read_rows(path, drop_partial=True)
