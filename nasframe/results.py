"""What a search leaves behind: the step log, summary.json, tables, plots, TensorBoard.

A search writes one row per environment step to ``steps.csv`` in its output folder
(:class:`StepLog`, appended and flushed as it goes, so an interrupted run keeps every
step it took). Everything else is derived from that log:

* ``summary.json`` -- the run's counts, best accuracy and best architectures
  (:func:`summarize`);
* a table of the best architectures (NSC, accuracy, parameters) for the terminal
  (:func:`best_table`);
* ``rewards.png`` -- reward per step and the best accuracy so far (:func:`plot_rewards`);
* ``best_architecture.png`` -- the graph of the best network (:func:`plot_architecture`);
* TensorBoard scalars, optionally (:func:`write_tensorboard`).

Plots need matplotlib (``pip install 'nasframe[plot]'``); without it they are skipped
with a message, never a failure of the search.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from nasframe.errors import NasframeError, PluginError
from nasframe.nsc import NSC

__all__ = [
    "StepLog",
    "StepRow",
    "best_architectures",
    "best_table",
    "plot_architecture",
    "plot_rewards",
    "summarize",
    "tensorboard_without_tensorflow",
    "write_tensorboard",
]


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
    "params",
    "status",
    "cache_hit",
    "seconds",
    "terminated",
    "truncated",
]


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
        nsc: the network after the action (compact NSC string).
        arch_hash: its canonical hash.
        reward: the reward the agent received.
        accuracy: the network's validation accuracy.
        params: the network's parameter count.
        status: the evaluation status (``ok``, ``invalid``, ...).
        cache_hit: whether the evaluation came from the database.
        seconds: wall seconds of the step.
        terminated: the episode ended (terminal action, invalid network, ...).
        truncated: the episode hit its step limit.
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

    @property
    def done(self) -> bool:
        """Whether the episode ended with this step."""
        return self.terminated or self.truncated

    @classmethod
    def from_strings(cls, row: dict[str, str]) -> StepRow:
        """Parse a row read back from ``steps.csv``.

        Raises:
            ValueError: a field is missing or malformed.
        """
        values: dict[str, Any] = {}
        for spec in fields(cls):
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
            if reader.fieldnames != _COLUMNS:
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
            self._handle = self.path.open("a", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._handle, fieldnames=_COLUMNS)
            if new:
                self._writer.writeheader()
        self._writer.writerow(row.to_strings())
        self._handle.flush()

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
            "failed": sum(1 for row in rows if row.status not in ("ok", "invalid")),
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
    """A rich ``Table`` of the best networks: rank, NSC, accuracy, parameters, task."""
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
            entry["nsc"] or "(empty: input -> head)",
            f"{entry['accuracy']:.4f}",
            f"{entry['params']:,}",
            entry["task"],
            str(entry["first_step"]),
        )
    return table


def _pyplot() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise PluginError(
            "plots need matplotlib, which is not installed; run: pip install 'nasframe[plot]'"
        ) from None
    matplotlib.use("Agg")  # files only; never open a window or need a display
    import matplotlib.pyplot as plt

    return plt


def plot_rewards(rows: Sequence[StepRow], path: Path) -> Path:
    """Plot reward per step and the best accuracy so far into a PNG file.

    Raises:
        PluginError: matplotlib is not installed (the message gives the pip command).
    """
    plt = _pyplot()
    steps = [row.step for row in rows]
    best: list[float] = []
    so_far = 0.0
    for row in rows:
        if row.status == "ok":
            so_far = max(so_far, row.accuracy)
        best.append(so_far)
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    axis.plot(steps, [row.reward for row in rows], ".", ms=3, alpha=0.5, label="reward per step")
    axis.plot(steps, best, "-", lw=2, color="tab:red", label="best accuracy so far")
    for previous, row in itertools.pairwise(rows):
        if row.task != previous.task:
            axis.axvline(row.step, color="grey", ls="--", lw=1)
            axis.text(row.step, 1.0, f" {row.task}", va="top", fontsize=8)
    axis.set_xlabel("environment step")
    axis.set_ylabel("reward / accuracy")
    axis.set_title("nasframe search")
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path


_TYPE_NAMES = {1: "conv", 2: "maxpool", 3: "avgpool", 4: "identity", 5: "add", 6: "concat"}


def plot_architecture(nsc: NSC | str, path: Path, *, title: str = "") -> Path:
    """Draw the graph of ``nsc`` (input, layers, output) into a PNG file.

    Layers are placed left to right by their depth from the input.

    Raises:
        PluginError: matplotlib is not installed (the message gives the pip command).
    """
    import networkx as nx

    plt = _pyplot()
    network = NSC.parse(nsc) if isinstance(nsc, str) else nsc
    graph = nx.DiGraph(network.graph())
    depth: dict[Any, int] = {}
    for node in nx.topological_sort(graph):
        preds = list(graph.predecessors(node))
        depth[node] = 1 + max((depth[p] for p in preds), default=-1)
    for node in graph.nodes:
        graph.nodes[node]["layer"] = depth[node]
    positions = nx.multipartite_layout(graph, subset_key="layer")
    labels: dict[Any, str] = {}
    for node, data in graph.nodes(data=True):
        if node in ("input", "output"):
            labels[node] = str(node)
        else:
            kind = _TYPE_NAMES.get(int(data["type"]), str(data["type"]))
            kernel = f"\n{data['kernel']}x{data['kernel']}" if data["kernel"] else ""
            labels[node] = f"{node}: {kind}{kernel}"
    width = max(6.0, 1.6 * (max(depth.values()) + 1))
    figure, axis = plt.subplots(figsize=(width, 4), dpi=100)
    nx.draw_networkx(
        graph,
        positions,
        ax=axis,
        labels=labels,
        node_color="#cfe2f3",
        node_size=1800,
        font_size=8,
        arrows=True,
        arrowsize=15,
    )
    axis.set_title(title or f"NSC {network}", fontsize=9)
    axis.axis("off")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path


def tensorboard_without_tensorflow() -> None:
    """Make TensorBoard use its own TensorFlow stub, unless TensorFlow is imported already.

    TensorBoard resolves ``tensorboard.compat.tf`` to TensorFlow when it is installed,
    so importing ``torch.utils.tensorboard`` (which Stable-Baselines3 does at import)
    imports TensorFlow: seconds of start-up and its absl/oneDNN lines in a search that
    never trains with it (issue 17). TensorBoard's documented switch to its stub is the
    module ``tensorboard.compat.notf``; an empty module of that name is registered here.
    Writing event files to local folders works the same with the stub. Call it before
    the first import of TensorBoard; later calls, or calls once TensorFlow is imported
    (it then serves TensorBoard at no extra cost), change nothing.
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault(_NOTF, types.ModuleType(_NOTF))


#: The module whose presence makes TensorBoard use its TensorFlow stub.
_NOTF = "tensorboard.compat.notf"


def write_tensorboard(rows: Sequence[StepRow], logdir: Path) -> Path:
    """Write reward, accuracy and best accuracy so far per step as TensorBoard scalars.

    The folder is rewritten from the whole step log, so a resumed run's scalars stay one
    continuous series.

    Raises:
        PluginError: tensorboard (with torch) is not installed.
    """
    tensorboard_without_tensorflow()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ModuleNotFoundError:
        raise PluginError(
            "TensorBoard scalars need torch and tensorboard, which are not installed; "
            "run: pip install 'nasframe[rl]'"
        ) from None
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("events.out.tfevents.*"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(logdir))
    best = 0.0
    try:
        for row in rows:
            if row.status == "ok":
                best = max(best, row.accuracy)
            writer.add_scalar("search/reward", row.reward, row.step)
            writer.add_scalar("search/accuracy", row.accuracy, row.step)
            writer.add_scalar("search/best_accuracy", best, row.step)
            writer.add_scalar("search/cache_hit", float(row.cache_hit), row.step)
    finally:
        writer.close()
    return logdir
