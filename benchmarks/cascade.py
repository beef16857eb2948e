"""The cascade on NSC-Bench: full trainings and simulated seconds to reach the top 1%.

Run: ``python -m benchmarks.cascade TABLE [--seed 0] [--low 1] [--fraction 0.25]
[--warmup 10] [--repeats 50] [--smoke]``

Random search over the table's networks (seed ``--seed`` rows; a seeded random order per
repeat), run twice side by side on the same orders:

* **without the cascade** every network is trained fully (the table's last epoch);
* **with** ``cascade-v1``: a ``--low``-epoch fidelity first, the full training only for
  the top ``--fraction`` of what the low fidelity has seen (after ``--warmup``).

Both fidelities are answered by the table (``table-v1`` with its ``epochs`` setting
when that estimator is registered; until then by :class:`TableLookup` below, the same
lookup). A search stops when a network of the top 1% (by final validation accuracy) has
been *fully* trained -- the same final regret for both. Printed: the mean full
trainings and simulated seconds (the table's build and training seconds, the training
part scaled to the epochs trained) of each, the searches that never got there (the
cascade may cut a top network early), and the ratio line (target: >= 3x fewer full
trainings). ``--smoke``: 3 repeats.

Not measured here: an RL agent (see the report of issue 14).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from typing import Any

import numpy as np

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, PerformanceEstimator, Status
from nasframe.bench import BenchTable


class TableLookup(PerformanceEstimator):
    """The table's accuracy after ``epochs`` epochs, and the seconds that training took.

    Seconds: the row's build/validation overhead (``seconds - train_seconds``) plus its
    training seconds scaled to ``epochs`` of the table's epochs. A network missing from
    the table is ``error``.
    """

    name = "table-lookup-v1"

    def __init__(self, table: BenchTable, epochs: int, seed: int) -> None:
        self.table, self.epochs, self.seed = table, epochs, seed

    def fingerprint(self) -> str:
        settings = {"table": self.table.source, "epochs": self.epochs, "seed": self.seed}
        return nasframe.fingerprint_of("table-lookup", "1", settings)

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler | Any, *, seed: int | None = None
    ) -> Evaluation:
        rows = [r for r in self.table.lookup(architecture.canonical_hash) if r.seed == self.seed]
        if not rows or not rows[0].ok:
            return Evaluation.failed(Status.ERROR, f"{architecture} is not in the table")
        row = rows[0]
        share = min(self.epochs, row.epochs) / max(row.epochs, 1)
        seconds = (row.seconds - row.train_seconds) + row.train_seconds * share
        return Evaluation(
            status=Status.OK,
            accuracy=row.accuracy(self.epochs),
            params=row.params,
            flops=row.flops,
            seconds=seconds,
            epochs=min(self.epochs, row.epochs),
        )


class _Data:
    """What the lookups need of a dataset: its identity (the cache key)."""

    identity = "nsc-bench"
    task = "nsc-bench"


def _fidelity(table: BenchTable, epochs: int, seed: int) -> PerformanceEstimator:
    # table-v1 (issue 13) answers the same lookups; swap it in here once it is on main
    return TableLookup(table, epochs, seed)


def _search(
    order: list[NSC], final: dict[str, float], target: float, estimator: Any, full: int
) -> tuple[int, float, bool]:
    """Full trainings and seconds until a top network is fully trained (and whether it was)."""
    trainings, seconds = 0, 0.0
    for nsc in order:
        evaluation = estimator.evaluate(nsc, _Data())
        seconds += evaluation.seconds
        if evaluation.epochs == full:
            trainings += 1
            if final[nsc.canonical_hash] >= target:
                return trainings, seconds, True
    return trainings, seconds, False


def main(argv: list[str] | None = None) -> None:
    """Run both searches over the same seeded orders and print the ratio line."""
    from nasframe_cascade import CascadeEstimator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table")
    parser.add_argument("--seed", type=int, default=0, help="the table seed whose rows are used")
    parser.add_argument("--low", type=int, default=1, help="epochs of the low fidelity")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="3 repeats")
    args = parser.parse_args(argv)
    repeats = 3 if args.smoke else args.repeats
    try:
        table = BenchTable.load(args.table)
    except nasframe.NasframeError as exc:
        sys.exit(f"error: {exc}")
    rows = [r for r in table if r.seed == args.seed and r.ok]
    if len(rows) < 10:
        sys.exit(f"error: {table.source}: {len(rows)} ok rows of seed {args.seed}; need 10")
    full = table.max_epochs
    final = {r.arch_hash: r.accuracy() for r in rows}
    target = float(np.quantile(list(final.values()), 0.99))
    nets = [NSC.parse(r.nsc) for r in rows]
    plain: list[tuple[int, float, bool]] = []
    cascaded: list[tuple[int, float, bool]] = []
    for repeat in range(repeats):
        order = [nets[i] for i in np.random.default_rng(repeat).permutation(len(nets))]
        plain.append(_search(order, final, target, _fidelity(table, full, args.seed), full))
        cascade = CascadeEstimator(
            fraction=args.fraction,
            warmup=args.warmup,
            estimators=[_fidelity(table, args.low, args.seed), _fidelity(table, full, args.seed)],
        )
        cascaded.append(_search(order, final, target, cascade, full))
    print(
        f"cascade benchmark: {len(rows)} networks of {table.source}, random search, "
        f"{repeats} seeded orders; top 1% = final validation accuracy >= {target:.4f}"
    )

    def summary(label: str, runs: list[tuple[int, float, bool]]) -> float:
        done = [r for r in runs if r[2]]
        trainings = statistics.mean(r[0] for r in runs)
        seconds = statistics.mean(r[1] for r in runs)
        print(
            f"  {label:<44} full trainings {trainings:7.1f}   simulated {seconds:9.0f} s   "
            f"reached top 1% in {len(done)}/{len(runs)}"
        )
        return trainings

    without = summary(f"without cascade ({full} epochs each)", plain)
    label = f"cascade {args.low} -> {full} epochs (top {args.fraction:g}, warm-up {args.warmup})"
    with_cascade = summary(label, cascaded)
    ratio = without / with_cascade if with_cascade else math.inf
    print(f"  ratio full trainings without / with cascade: {ratio:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
