"""The results of a final training: ``final.json``, ``final.csv``, ``final.png``, the table.

Everything here is derived from the plan and the rows of ``rows.csv``: per network the
validation and test accuracy as mean and standard deviation over the seeds
(:func:`_summaries`), written as JSON, CSV and a bar plot, and printed as a table.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasframe.bench.table import TableRow
from nasframe.contracts import DatasetHandler, PerformanceEstimator
from nasframe.errors import ConfigError
from nasframe.finalize.plan import FinalPlan, model_path

__all__: list[str] = []


def _card(
    plan: FinalPlan, estimator: PerformanceEstimator, dataset: DatasetHandler
) -> dict[str, Any]:
    return {
        "format": 1,
        "run": str(plan.run),
        "dataset": dataset.identity,
        "estimator": estimator.fingerprint(),
        "estimator_component": {"name": plan.estimator[0], "settings": _plain(plan.estimator[1])},
        "dataset_component": {"name": plan.dataset[0], "settings": _plain(plan.dataset[1])},
        "task": plan.task,
        "seeds": list(plan.seeds),
        "top_k": len(plan.networks),
        "test_split_examples": dataset.num_examples("test"),
    }


def _check_card(path: Path, card: dict[str, Any]) -> None:
    if not path.is_file():
        _write_json(path, {**card, "complete": False, "networks": []})
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable final.json ({exc}); remove it") from None
    for key in ("dataset", "estimator"):
        if previous.get(key) != card[key]:
            raise ConfigError(
                f"{path}: this folder holds results of {key} {previous.get(key)!r}, not "
                f"{card[key]!r}; set [finalize] output (--output) to another folder"
            )


def _mean_std(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _summaries(plan: FinalPlan, rows: Sequence[TableRow], output: Path) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, int], TableRow] = {}
    for row in rows:
        by_key[(row.arch_hash, row.seed)] = row  # the last row of a (network, seed) wins
    summaries = []
    for rank, record in enumerate(plan.networks, start=1):
        mine = [
            by_key[(record.arch_hash, s)] for s in plan.seeds if (record.arch_hash, s) in by_key
        ]
        ok = [row for row in mine if row.ok and row.curve]
        seeds = {}
        for row in mine:
            path = model_path(output, row.arch_hash, row.seed)
            seeds[str(row.seed)] = {
                "status": row.status,
                "validation": row.curve[-1] if row.ok and row.curve else None,
                "test": None if math.isnan(row.test) else row.test,
                "epochs": row.epochs,
                "seconds": round(row.seconds, 2),
                "model": str(path.relative_to(output)) if path.is_file() else None,
                "message": row.message,
            }
        summaries.append(
            {
                "rank": rank,
                "nsc": record.nsc,
                "arch_hash": record.arch_hash,
                "search_accuracy": record.evaluation.accuracy,
                "params": ok[0].params if ok else record.evaluation.params,
                "flops": ok[0].flops if ok else record.evaluation.flops,
                "validation": _mean_std([row.curve[-1] for row in ok]),
                "test": _mean_std([row.test for row in ok if not math.isnan(row.test)]),
                "trained": len(mine),
                "failed": len(mine) - len(ok),
                "seeds": seeds,
            }
        )
    return summaries


def _fmt(stat: dict[str, Any]) -> str:
    """``mean ± std`` over two or more seeds; the mean alone for one; ``-`` for none."""
    if stat["mean"] is None:
        return "-"
    if int(stat.get("n") or 0) < 2:
        return f"{stat['mean']:.4f}"  # one seed has no spread to show
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _seeds_cell(net: dict[str, Any], planned: int) -> str:
    """The seeds of a network that finished ok, of those planned, and why not the others.

    ``3/3``; ``1/3 (1 failed, 1 to train)``; ``0/3 (not trained yet)``.
    """
    trained = int(net["trained"])
    failed = int(net["failed"])
    ok = trained - failed
    missing = max(0, planned - trained)
    planned = max(planned, trained)
    if trained == 0:
        return f"0/{planned} (not trained yet)"
    notes = [f"{failed} failed"] if failed else []
    if missing:
        notes.append(f"{missing} to train")
    return f"{ok}/{planned}" + (f" ({', '.join(notes)})" if notes else "")


def _write_table(path: Path, networks: Sequence[dict[str, Any]]) -> None:
    columns = [
        "rank",
        "nsc",
        "arch_hash",
        "search_accuracy",
        "params",
        "flops",
        "val_mean",
        "val_std",
        "test_mean",
        "test_std",
        "seeds_ok",
        "failed",
    ]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for net in networks:
            writer.writerow(
                [
                    net["rank"],
                    net["nsc"],
                    net["arch_hash"],
                    f"{net['search_accuracy']:.6g}",
                    net["params"],
                    net["flops"],
                    *(
                        "" if net[part][stat] is None else f"{net[part][stat]:.6g}"
                        for part in ("validation", "test")
                        for stat in ("mean", "std")
                    ),
                    net["test"]["n"],
                    net["failed"],
                ]
            )
    tmp.replace(path)


def _rich_table(networks: Sequence[dict[str, Any]], output: Path, planned: int = 0) -> Any:
    """The table ``finalize`` prints; ``planned``: the seeds each network is to train.

    Nothing in it is cut: a cell too wide for a narrow terminal folds onto more lines
    (:func:`_print_table` prints it whole to a file or a pipe).
    """
    from rich.table import Table

    table = Table(title=f"Final training ({output})")
    for name in ("#", "nsc", "search", "validation", "test", "params", "flops", "seeds ok"):
        table.add_column(name, justify="left" if name == "nsc" else "right", overflow="fold")
    for net in networks:
        table.add_row(
            str(net["rank"]),
            net["nsc"] or "head only",
            f"{net['search_accuracy']:.4f}",
            _fmt(net["validation"]),
            _fmt(net["test"]),
            f"{net['params']:,}",
            f"{net['flops']:,}",
            _seeds_cell(net, planned or int(net["trained"])),
        )
    return table


def _print_table(console: Any, table: Any) -> None:
    """Print ``table``: folded to a terminal's width, at its full width anywhere else.

    A console that is no terminal (a file, a pipe, a CI log) is 80 columns to rich,
    too few for the table; there a line longer than 80 is better than a cut NSC.
    """
    from rich.measure import Measurement

    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    kept = console.__dict__.get("_width")  # print(width=) is capped at the console's width
    console.width = natural
    try:
        console.print(table)
    finally:
        console.__dict__["_width"] = kept


def _tick_label(net: dict[str, Any]) -> str:
    """``#1`` over the network's NSC, one layer (row) per line: the whole string."""
    rows = str(net["nsc"]).split(";") if net["nsc"] else ["head only"]
    return "\n".join([f"#{net['rank']}", *rows])


def _figure(networks: Sequence[dict[str, Any]]) -> Any:
    """The figure of ``final.png``: validation and test bars per network, named by NSC.

    Error bars only where two or more seeds give a spread; a network with no finished
    seed gets no bar but a note. The legend is outside the axes (to their right), so it
    never covers a bar; the layout makes room for the NSC labels.
    """
    from nasframe.results.plots import _pyplot

    plt = _pyplot()
    width = 0.38
    lines = max(len(_tick_label(net).splitlines()) for net in networks)
    fig, ax = plt.subplots(
        figsize=(max(5.0, 1.6 * len(networks) + 2.0), 3.0 + 0.16 * lines),
        layout="constrained",
    )
    spread = any(
        int(net[part]["n"] or 0) > 1 for net in networks for part in ("validation", "test")
    )
    for shift, part, colour in (
        (-width / 2, "validation", "#8da0cb"),
        (width / 2, "test", "#fc8d62"),
    ):
        xs = [i + shift for i in range(len(networks))]
        means = [math.nan if net[part]["mean"] is None else net[part]["mean"] for net in networks]
        ax.bar(xs, means, width, label=part, color=colour)
        spread_at = [i for i, net in enumerate(networks) if int(net[part]["n"] or 0) > 1]
        if spread_at:
            ax.errorbar(
                [xs[i] for i in spread_at],
                [means[i] for i in spread_at],
                yerr=[networks[i][part]["std"] for i in spread_at],
                fmt="none",
                ecolor="black",
                capsize=3,
                lw=1,
            )
    for i, net in enumerate(networks):
        if net["validation"]["mean"] is None and net["test"]["mean"] is None:
            ax.text(i, 0.02, "no seed\nfinished", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(networks)), [_tick_label(net) for net in networks], fontsize=8)
    ax.set_xlim(-0.6, len(networks) - 0.4)
    ax.set_xlabel("network: rank, then its NSC one layer per line", fontsize=8)
    ax.set_ylabel("accuracy (mean ± std over seeds)" if spread else "accuracy")
    ax.set_ylim(0, 1)
    fig.legend(loc="outside right upper")
    ax.set_title("final training: the run's best networks")
    return fig


def _plot(path: Path, networks: Sequence[dict[str, Any]]) -> None:
    from nasframe.results.plots import _pyplot

    plt = _pyplot()
    fig = _figure(networks)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, int | float | str | bool) or value is None else str(value)
        for key, value in sorted(settings.items())
    }
