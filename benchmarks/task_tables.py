"""Do the finished digit-task tables differ where transfer matters? (issue 29, item 1)

Reads one NSC-Bench table per task (``nasframe bench build --config
resources/digit-tasks.ini``, shipped under ``nasframe/bench/data/digit-tasks/``) and
prints the issue's criteria on them, measured on the seed-mean validation accuracy of the
last epoch:

* each task's head-only and best network, and the gap (target: at least 0.20);
* the task-by-task Spearman matrix (``scipy.stats``) over all networks, and over each
  row task's top 10 % (row ``a``, column ``b``: how ``b`` ranks ``a``'s best tenth);
* for each task, where the other tasks' best network ranks in it -- the one with the
  highest mean accuracy over the other tasks, which is what "train the other tasks'
  best network first" trains first -- and each other task's own best; target: for at
  least half of the tasks the other tasks' best lies outside the task's top 1 %;
* each table's build time and size (from its build card).

    python -m benchmarks.task_tables                        # the shipped tables
    python -m benchmarks.task_tables --plot docs/img/digit-tasks-spearman.png
    python -m benchmarks.task_tables --tables runs/tasks    # tables built elsewhere
    python -m benchmarks.task_tables --smoke                # two shipped tables, no plot
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasframe.bench import BenchTable

#: where ``resources/digit-tasks.ini``'s tables ship
SHIPPED = Path(__file__).resolve().parents[1] / "nasframe" / "bench" / "data" / "digit-tasks"
#: the tasks in the card's order; others follow in name order
ORDER = ("base", "small", "clutter", "rotated", "noisy", "salt")


def accuracies(table: BenchTable) -> dict[str, float]:
    """``{nsc: seed-mean validation accuracy}`` of a table (failures count 0)."""
    means = table.mean_accuracies()
    return {table.by_hash[h][0].nsc: value for h, value in means.items()}


def ordered(names: list[str]) -> list[str]:
    known = [n for n in ORDER if n in names]
    return known + sorted(n for n in names if n not in ORDER)


def ranks(accuracies: dict[str, float]) -> dict[str, int]:
    """1 = best; ties share the better rank."""
    values = sorted(accuracies.values(), reverse=True)
    first: dict[float, int] = {}
    for position, value in enumerate(values, 1):
        first.setdefault(value, position)
    return {nsc: first[value] for nsc, value in accuracies.items()}


def report(loaded: dict[str, BenchTable], folders: dict[str, Path]) -> list[list[float]]:
    """Print the criteria; return the all-networks Spearman matrix (task order)."""
    from scipy.stats import spearmanr  # type: ignore[import-untyped]  # scikit-learn needs scipy

    tables = {task: accuracies(table) for task, table in loaded.items()}
    tasks = ordered(list(tables))
    common = sorted(set.intersection(*(set(t) for t in tables.values())))
    count = len(common)
    top1 = max(1, round(0.01 * (count - 1)))  # the head-only network is not a candidate
    print(f"{len(tasks)} tasks, {count} networks in every table, top 1 % = best {top1}")
    print("\ntask       head   best    gap    best network")
    best = {}
    for task in tasks:
        acc = tables[task]
        best[task] = max(common, key=lambda nsc: acc[nsc])
        head = acc.get("", float("nan"))
        gap = acc[best[task]] - head
        print(f"{task:10} {head:.3f}  {acc[best[task]]:.4f} {gap:6.3f}  {best[task]}")
    wide = sum(tables[t][best[t]] - tables[t].get("", 0.0) >= 0.2 for t in tasks)
    print(f"criterion: gap >= 0.20 in {wide} of {len(tasks)} tasks")

    def matrix(rows: dict[str, list[str]]) -> list[list[float]]:
        return [
            [
                float(
                    spearmanr(
                        [tables[a][n] for n in rows[a]], [tables[b][n] for n in rows[a]]
                    ).statistic
                )
                for b in tasks
            ]
            for a in tasks
        ]

    everything = matrix({t: common for t in tasks})
    tenth = max(2, count // 10)
    top = matrix({t: sorted(common, key=lambda n: -tables[t][n])[:tenth] for t in tasks})
    for title, values in (("all networks", everything), (f"each row task's top {tenth}", top)):
        print(f"\nSpearman, {title}:")
        print("           " + " ".join(f"{t:>8}" for t in tasks))
        for task, row in zip(tasks, values, strict=True):
            print(f"{task:10} " + " ".join(f"{v:8.2f}" for v in row))

    print("\nthe other tasks' best network in each task (rank 1 = best):")
    outside = 0
    for task in tasks:
        others = [t for t in tasks if t != task]
        position = ranks({n: tables[task][n] for n in common})
        pooled = max(common, key=lambda n: sum(tables[t][n] for t in others))
        each = ", ".join(f"{t} {position[best[t]]}" for t in others)
        below = tables[task][best[task]] - tables[task][pooled]
        outside += position[pooled] > top1
        print(
            f"{task:10} rank {position[pooled]:3} ({below:.4f} below the best): {pooled}; "
            f"each other task's best: {each}"
        )
    print(
        f"ratio others-best-outside-top-1%: {outside}/{len(tasks)} tasks "
        f"(target: at least {(len(tasks) + 1) // 2})"
    )

    print("\nbuild time and size:")
    for task in tasks:
        card = loaded[task].build
        table = folders[task] / "table.csv.gz"
        size = f"{table.stat().st_size / 1000:.1f} kB" if table.exists() else "not finished"
        seconds = card.get("build_seconds")
        took = f"{seconds / 60:.1f} min" if isinstance(seconds, int | float) else "?"
        print(f"{task:10} {took:>9}  {card.get('rows', '?')!s:>4} rows  {size}")
    return everything


def plot(tasks: list[str], values: list[list[float]], path: Path) -> None:
    """The all-networks Spearman matrix as a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.2, 4.4))
    image = axes.imshow(values, vmin=0.5, vmax=1.0, cmap="viridis")
    axes.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right")
    axes.set_yticks(range(len(tasks)), tasks)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            axes.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                color="w" if value < 0.8 else "k",
                fontsize=8,
            )
    figure.colorbar(image, ax=axes, label="Spearman")
    axes.set_title("digit-tasks-v1: Spearman of validation accuracy")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", default=str(SHIPPED), help="folder of task tables, or comma-separated folders"
    )
    parser.add_argument("--plot", type=Path, help="write the Spearman heat map here")
    parser.add_argument("--smoke", action="store_true", help="two shipped tables, no plot")
    args = parser.parse_args(argv)
    from nasframe import ConfigError
    from nasframe.bench import BenchTable
    from nasframe.bench.transfer import task_tables

    try:
        found = task_tables(args.tables.split(","))
        if args.smoke:
            found = found[:2]
        folders = dict(found)
        tables = {name: BenchTable.load(folder) for name, folder in found}
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    values = report(tables, folders)
    if args.plot and not args.smoke:
        plot(ordered(list(tables)), values, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
