"""Do the tasks of ``digit-tasks-v1`` differ where transfer matters? A probe before the build.

Building one NSC-Bench table per task takes hours; this measures first, on a seeded
sample of the chained space (the head-only network, the best networks of NSC-Bench v3
up to the probe's depth, and random networks), each trained on every task by
``keras-v1`` with NSC-Bench v3's settings (6 epochs, the corrected trainer, seed 0). It
prints each task's head-only and best network, the task-by-task Spearman matrix
(``scipy.stats``) of the sample's accuracies, and for each task where the other tasks'
best networks rank in it: the multi-task tables need tasks whose best networks differ
(issue 29: for at least half of the tasks the others' best lies outside the task's top
1 %; a sample can only say whether it lies outside the sample's top few).

    python -m benchmarks.task_probe                       # 40 networks x 6 tasks
    python -m benchmarks.task_probe --tasks base,small --networks 12
    python -m benchmarks.task_probe --smoke               # seconds: 3 networks, 1 epoch

Each worker process gets one thread (as ``bench build``'s Ray workers do). ``--csv``
writes one row per network and task.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

SMOKE_SLOW = True

#: NSC-Bench v3's [keras] settings (resources/nsc-bench-v3.ini)
KERAS = {"epochs": 6, "padding": "same", "filters": 16, "fc_units": 128, "patience": 0}


def sample(depth: int, count: int, top: int, seed: int) -> list[str]:
    """The head-only network, v3's ``top`` best up to ``depth``, then random networks."""
    import numpy as np

    from nasframe import NSC, BenchTable, get_plugin_manager
    from nasframe.bench.networks import enumerate_networks

    space = get_plugin_manager().registry("search_space").create("chained")
    networks = [str(nsc) for nsc in enumerate_networks(space, depth) if len(nsc)]
    out = [str(NSC())]
    if top:
        table = BenchTable.load(BenchTable.shipped())
        means = table.mean_accuracies()
        shallow = [h for h, rows in table.by_hash.items() if 0 < rows[0].depth <= depth]
        shallow.sort(key=lambda h: -means[h])
        out += [table.by_hash[h][0].nsc for h in shallow[:top]]
    rng = np.random.default_rng(seed)
    for i in rng.permutation(len(networks)):
        if len(out) >= count:
            break
        if networks[i] not in out:
            out.append(networks[i])
    return out


def _one_thread() -> None:
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


_DATA: dict[str, Any] = {}


def train(job: tuple[str, str, bool]) -> dict[str, Any]:
    """Train one network on one task (in a worker process)."""
    task, nsc, smoke = job
    from nasframe_digits import DigitTaskDataset
    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.settings import KerasSettings

    from nasframe import NSC

    if task not in _DATA:
        placements = {"placements": 1, "eval_placements": 1} if smoke else {}
        _DATA[task] = DigitTaskDataset(task=task, **placements)
    values: dict[str, Any] = dict(KERAS)
    if smoke:
        values["epochs"] = 1
    estimator = KerasEstimator(KerasSettings.from_mapping(values))
    evaluation = estimator.measure(NSC.parse(nsc), _DATA[task], seed=0).evaluation
    estimator.close()
    return {
        "task": task,
        "nsc": nsc,
        "accuracy": evaluation.accuracy if evaluation.ok else 0.0,
        "train_accuracy": evaluation.train_accuracy,
        "status": evaluation.status,
        "seconds": evaluation.seconds,
    }


def report(rows: list[dict[str, Any]], tasks: list[str]) -> list[str]:
    """The printed report: best networks, the Spearman matrix, cross-task ranks."""
    from scipy import stats  # type: ignore[import-untyped]

    acc = {(row["task"], row["nsc"]): row["accuracy"] for row in rows}
    networks = list(dict.fromkeys(row["nsc"] for row in rows))
    lines = ["task             head-only  best   best network"]
    best: dict[str, str] = {}
    for task in tasks:
        ranked = sorted(networks, key=lambda n: -acc[task, n])
        best[task] = ranked[0]
        head = acc.get((task, ""), float("nan"))
        lines.append(
            f"{task:<16} {head:>9.3f} {acc[task, ranked[0]]:>6.3f}   {ranked[0] or '(head)'}"
        )
    lines.append("")
    lines.append("Spearman of the sample's accuracies, task by task:")
    lines.append(" " * 16 + "".join(f"{t[:8]:>9}" for t in tasks))
    for a in tasks:
        cells = []
        for b in tasks:
            rho = stats.spearmanr([acc[a, n] for n in networks], [acc[b, n] for n in networks])
            cells.append(f"{rho.statistic:>9.2f}")
        lines.append(f"{a:<16}" + "".join(cells))
    lines.append("")
    lines.append("rank, in each task, of the other tasks' best networks (1 = its own best):")
    outside = 0
    for task in tasks:
        ranked = sorted(networks, key=lambda n: -acc[task, n])
        others = sorted({ranked.index(best[o]) + 1 for o in tasks if o != task and best[o]})
        lines.append(f"{task:<16} {', '.join(map(str, others)) or '-'} of {len(networks)}")
        outside += bool(others) and min(others) > 1
    lines.append(
        f"ratio of tasks whose best network is none of the other tasks' bests: "
        f"{outside} of {len(tasks)} (target: at least half)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="", help="comma-separated (default: every task)")
    parser.add_argument("--networks", type=int, default=40, help="networks in the sample")
    parser.add_argument("--top", type=int, default=8, help="v3's best networks among them")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--csv", type=Path, help="write one row per network and task here")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    from nasframe_digits import TASKS

    tasks = [t for t in args.tasks.split(",") if t] or list(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        sys.exit(f"error: --tasks: unknown task {unknown[0]!r}; the tasks are {', '.join(TASKS)}")
    if args.smoke:
        tasks, args.networks, args.top, args.depth, args.jobs = tasks[:2], 3, 1, 1, 1
    networks = sample(args.depth, args.networks, args.top, args.seed)
    print(f"task probe: {len(networks)} networks x {len(tasks)} tasks, {args.jobs} process(es)")
    jobs = [(task, nsc, args.smoke) for nsc in networks for task in tasks]
    _one_thread()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(args.jobs, initializer=_one_thread) as pool:
        for k, row in enumerate(pool.map(train, jobs), 1):
            rows.append(row)
            print(
                f"[{k}/{len(jobs)}] {row['task']:<15} {row['nsc'] or '(head)':<40} "
                f"{row['accuracy']:.3f} (train {row['train_accuracy']:.3f})",
                flush=True,
            )
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print("\n".join(report(rows, tasks)))


if __name__ == "__main__":
    main()
