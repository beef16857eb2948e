"""Pictures of a search: ``rewards.png``, ``best_architecture.png`` and TensorBoard scalars.

Plots need matplotlib (``pip install 'nasframe[plot]'``); without it they raise a
:class:`~nasframe.errors.PluginError` the search turns into a message, never a failure.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasframe.errors import PluginError
from nasframe.nsc import NSC
from nasframe.results.steplog import StepRow

__all__ = [
    "best_so_far",
    "plot_architecture",
    "plot_rewards",
    "rewards_figure",
    "tensorboard_without_tensorflow",
    "write_tensorboard",
]


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


def best_so_far(rows: Sequence[StepRow], measure: str = "") -> list[float]:
    """The best ``ok`` value of ``measure`` up to and including each step (0 before the
    first); ``measure`` ``""`` (the default): the validation accuracy."""
    best: list[float] = []
    so_far = 0.0
    for row in rows:
        if row.status == "ok" and row.measure == measure:
            so_far = max(so_far, row.accuracy)
        best.append(so_far)
    return best


def _measures(rows: Sequence[StepRow]) -> list[str]:
    """The measures of the ``ok`` rows, the validation accuracy (``""``) first."""
    present = {row.measure for row in rows if row.status == "ok"}
    return sorted(present, key=lambda name: (name != "", name)) or [""]


def rewards_figure(rows: Sequence[StepRow]) -> Any:
    """The figure of ``rewards.png`` (close it with ``matplotlib.pyplot.close``).

    The best accuracy so far is a step function (``drawstyle="steps-post"``: it holds
    until the step that beats it), drawn thin and under the rewards; each step's reward
    is a marker on top of it, so a reward equal to the best so far stays visible. The
    legend is below the axes, where it covers no point. A value that is not a validation
    accuracy (a zero-cost score, a cascade's low fidelity) gets its own best-so-far
    curve, named by its measure, and is never drawn as the best accuracy.

    Raises:
        PluginError: matplotlib is not installed (the message gives the pip command).
    """
    plt = _pyplot()
    steps = [row.step for row in rows]
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100, layout="constrained")
    measures = _measures(rows)
    styles = itertools.cycle(["--", ":", "-."])
    for measure in measures:
        axis.plot(
            steps,
            best_so_far(rows, measure),
            drawstyle="steps-post",
            lw=1.5,
            ls="-" if not measure else next(styles),
            color="tab:red" if not measure else "tab:orange",
            zorder=2,
            label=f"best {measure or 'accuracy'} so far",
        )
    axis.plot(
        steps,
        [row.reward for row in rows],
        "o",
        ms=4,
        mfc="none",
        mew=1.0,
        color="tab:blue",
        zorder=3,
        label="reward per step",
    )
    switches = [row for previous, row in itertools.pairwise(rows) if row.task != previous.task]
    if switches:  # room above the curves for the task names
        low, high = axis.get_ylim()
        axis.set_ylim(low, high + 0.1 * (high - low))
    for row in switches:
        axis.axvline(row.step, color="grey", ls="--", lw=1)
        # at the top of the axes whatever the rewards' range
        axis.text(
            row.step,
            0.98,
            f" {row.task}",
            va="top",
            fontsize=8,
            transform=axis.get_xaxis_transform(),
        )
    axis.set_xlabel("environment step")
    axis.set_ylabel("reward / " + " / ".join(m or "accuracy" for m in measures))
    axis.set_title("nasframe search")
    figure.legend(loc="outside lower center", ncols=min(len(measures) + 1, 3))
    axis.grid(alpha=0.3)
    return figure


def plot_rewards(rows: Sequence[StepRow], path: Path) -> Path:
    """Plot reward per step and the best accuracy so far (steps) into a PNG file.

    Raises:
        PluginError: matplotlib is not installed (the message gives the pip command).
    """
    plt = _pyplot()
    figure = rewards_figure(rows)
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
    continuous series. A value that is not a validation accuracy is written under
    ``search/score`` (its measure is in ``steps.csv``), never as ``search/accuracy``.

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
            if row.status == "ok" and not row.measure:
                best = max(best, row.accuracy)
            writer.add_scalar("search/reward", row.reward, row.step)
            if row.measure:
                writer.add_scalar("search/score", row.accuracy, row.step)
            else:
                writer.add_scalar("search/accuracy", row.accuracy, row.step)
            writer.add_scalar("search/best_accuracy", best, row.step)
            writer.add_scalar("search/cache_hit", float(row.cache_hit), row.step)
    finally:
        writer.close()
    return logdir
