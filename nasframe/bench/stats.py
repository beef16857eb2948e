"""The statistics of an NSC-Bench table: what its benchmark card reports.

:func:`table_statistics` checks the criteria a benchmark table must meet to separate
architectures (issue 13):

* the best network is at least 20 accuracy points above the head-only network;
* the seed-to-seed standard deviation of the top 10 % is smaller than the gap between
  the top 1 % and the median;

and reports how fast the ranking settles: the rank correlation (Spearman, Kendall;
``scipy.stats``) of every epoch count's validation accuracy with the last epoch's.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from nasframe.bench.table import BenchTable

__all__ = ["histogram", "plot_histogram", "table_statistics"]


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=float), q)) if values else math.nan


def table_statistics(table: BenchTable) -> dict[str, Any]:
    """Every figure of the benchmark card, as plain JSON-able values.

    Accuracies are validation accuracies after the last epoch, averaged over seeds;
    failed trainings count as 0 (what an agent would be rewarded).
    """
    from scipy import stats  # type: ignore[import-untyped]  # scikit-learn depends on scipy

    means = table.mean_accuracies()
    tests = table.mean_tests()
    hashes = list(means)
    values = [means[h] for h in hashes]
    ranked = sorted(hashes, key=lambda h: means[h], reverse=True)
    out: dict[str, Any] = {
        "networks": len(hashes),
        "rows": len(table.rows),
        "seeds": table.seeds(),
        "epochs": table.max_epochs,
        "status": _count(row.status for row in table.rows),
    }
    if not hashes:
        return out
    head = [h for h in hashes if table.by_hash[h][0].depth == 0]
    best = ranked[0]
    out["best"] = {
        "nsc": table.by_hash[best][0].nsc,
        "validation": means[best],
        "test": tests[best],
    }
    out["best_test"] = max(tests.values())
    if head:
        out["head_only"] = {"validation": means[head[0]], "test": tests[head[0]]}
        out["best_minus_head_only"] = means[best] - means[head[0]]
    top1 = _quantile(values, 0.99)
    median = _quantile(values, 0.5)
    out["quantiles"] = {
        "top_1_percent": top1,
        "top_10_percent": _quantile(values, 0.9),
        "median": median,
    }
    out["top1_minus_median"] = top1 - median
    seeds = table.seeds()
    if len(seeds) >= 2:
        top10 = ranked[: max(1, math.ceil(len(ranked) * 0.1))]
        spreads = []
        for h in top10:
            rows = [row for row in table.by_hash[h] if row.seed in seeds]
            if len(rows) >= 2:
                spreads.append(statistics.stdev(row.accuracy() for row in rows))
        out["top10_seed_std"] = float(np.mean(spreads)) if spreads else math.nan
        paired = [h for h in hashes if len(table.by_hash[h]) >= 2]
        if len(paired) > 2:
            first = [table.by_hash[h][0].accuracy() for h in paired]
            second = [table.by_hash[h][1].accuracy() for h in paired]
            out["seed_spearman"] = float(stats.spearmanr(first, second).statistic)
    criteria = {}
    if "best_minus_head_only" in out:
        criteria["best_20_points_above_head_only"] = out["best_minus_head_only"] >= 0.20
    if "top10_seed_std" in out:
        criteria["top10_seed_std_below_top1_median_gap"] = (
            out["top10_seed_std"] < out["top1_minus_median"]
        )
    out["criteria"] = criteria
    fidelity = {}
    for epochs in range(1, table.max_epochs):
        at = table.mean_accuracies(epochs=epochs)
        x = [at[h] for h in hashes]
        fidelity[str(epochs)] = {
            "spearman": float(stats.spearmanr(x, values).statistic),
            "kendall": float(stats.kendalltau(x, values).statistic),
        }
    out["epoch_rank_correlation_with_last"] = fidelity
    if len(hashes) > 2:
        out["validation_test_spearman"] = float(
            stats.spearmanr(values, [tests[h] for h in hashes]).statistic
        )
    ok_rows = [row for row in table.rows if row.ok]
    if ok_rows:
        seconds = [row.seconds for row in ok_rows]
        out["seconds_per_training"] = {
            "median": float(statistics.median(seconds)),
            "mean": float(statistics.fmean(seconds)),
            "max": float(max(seconds)),
            "sum": float(sum(row.seconds for row in table.rows)),
        }
    trains = table.mean_trains()
    measured = [h for h in hashes if not math.isnan(trains[h])]
    if measured:
        # a network that cannot fit its own training data in inference mode shows a
        # broken measurement (the unsettled batch-norm statistics of keras-v1's first
        # trainer), not a bad architecture
        out["train_accuracy"] = {
            "networks": len(measured),
            "below_0.2": sum(trains[h] < 0.2 for h in measured),
            "median": _quantile([trains[h] for h in measured], 0.5),
        }
    out["histogram"] = histogram(values)
    return out


def histogram(values: list[float], bins: int = 10) -> list[dict[str, float]]:
    """Counts of accuracies in ``bins`` equal bins over [0, 1]."""
    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins, range=(0.0, 1.0))
    return [
        {"from": float(edges[i]), "to": float(edges[i + 1]), "count": int(counts[i])}
        for i in range(bins)
    ]


def plot_histogram(table: BenchTable, path: Path, *, title: str = "") -> Path:
    """Write the histogram of the seed-mean final validation accuracy as a PNG.

    Raises:
        PluginError: matplotlib is not installed (extra ``plot``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from nasframe.errors import PluginError

        raise PluginError(
            "the histogram needs matplotlib; run: pip install 'nasframe[plot]'"
        ) from None
    values = list(table.mean_accuracies().values())
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.hist(values, bins=40, range=(0.0, 1.0), color="#4c72b0")
    head = [rows[0] for rows in table.by_hash.values() if rows[0].depth == 0]
    if head:
        axes.axvline(
            table.mean_accuracies()[head[0].arch_hash], color="#c44e52", ls="--", label="head only"
        )
        axes.legend()
    axes.set_xlabel("validation accuracy (last epoch, mean over seeds)")
    axes.set_ylabel("networks")
    axes.set_title(title or f"NSC-Bench: {len(values)} networks")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_held_out(held_out: dict[str, list[Any]], path: Path, *, title: str = "") -> Path:
    """Write predicted against measured accuracy of a surrogate's held-out networks (PNG).

    ``held_out`` is :attr:`nasframe.Surrogate.held_out` (``measured`` and ``predicted``
    lists, as ``bench fit`` saves them in ``held_out.csv``).

    Raises:
        PluginError: matplotlib is not installed (extra ``plot``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from nasframe.errors import PluginError

        raise PluginError("the plot needs matplotlib; run: pip install 'nasframe[plot]'") from None
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.scatter(held_out["measured"], held_out["predicted"], s=4, alpha=0.4, color="#4c72b0")
    axes.plot([0, 1], [0, 1], color="#c44e52", lw=1, ls="--")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("measured validation accuracy (last epoch)")
    axes.set_ylabel("predicted")
    axes.set_title(title or f"held-out networks: {len(held_out['measured'])}", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))
