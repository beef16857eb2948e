"""``nasframe bench``: build NSC-Bench tables (``bench build``)."""

from __future__ import annotations

from pathlib import Path

import click

from nasframe.cli.options import config_options, load_from_options

__all__ = ["bench", "parse_seeds"]


@click.group()
def bench() -> None:
    """NSC-Bench: exhaustive tables of a search space, and agents compared on them."""


def parse_seeds(text: str, key: str = "seeds", *, allow_empty: bool = False) -> list[int]:
    """``"0,1"`` -> ``[0, 1]``.

    Raises:
        ConfigError: a seed is not a non-negative integer; the message names
            ``[bench] <key>``.
    """
    from nasframe.errors import ConfigError

    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ConfigError(
                f"[bench] {key} = {text!r}: {part!r} is not a seed (need integers >= 0, "
                "comma-separated, e.g. 0,1)"
            )
        seeds.append(int(part))
    if not seeds and not allow_empty:
        raise ConfigError(f"[bench] {key} = {text!r}: give at least one seed, e.g. 0")
    return seeds


@bench.command("build")
@config_options
@click.option("--depth", type=int, help="Deepest network, in layers. [bench] depth")
@click.option("--seeds", help="Training seeds, comma-separated, e.g. 0,1. [bench] seeds")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    help="The table folder (resumed if it exists). [bench] output",
)
@click.option("--workers", type=int, help="Parallel trainings (>1 uses Ray). [run] workers")
@click.option("--ray-address", help="Address of a Ray cluster. [run] ray_address")
@click.option("--limit", type=int, help="Train at most this many networks in this run.")
def build(
    config_path: Path | None,
    overrides: tuple[str, ...],
    depth: int | None,
    seeds: str | None,
    output: Path | None,
    workers: int | None,
    ray_address: str | None,
    limit: int | None,
) -> None:
    """Train every network of [env] search_space up to a depth, once per seed.

    Each (network, seed) is stored as soon as it is trained: a stopped build (Ctrl-C,
    kill -9) resumes with the same command and trains only what is missing. The table
    (table.csv.gz, build.json) is written when all are done. See docs/nsc-bench.md.
    """
    from nasframe.bench.build import BuildPlan, build_table
    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager()
    config = load_from_options(
        config_path,
        overrides,
        extra={
            "bench": {"depth": depth, "seeds": seeds, "output": output},
            "run": {"workers": workers, "ray_address": ray_address},
        },
        plugin_manager=manager,
    )
    env = config.section("env")

    def component(kind: str, name: str) -> tuple[str, dict[str, object]]:
        info = manager.registry(kind).get(name)
        return info.name, config.component_settings(info)

    plan = BuildPlan(
        space=manager.registry("search_space").get(env["search_space"]).name,
        depth=config.get("bench", "depth"),
        seeds=parse_seeds(config.get("bench", "seeds")),
        repeat_seeds=parse_seeds(
            config.get("bench", "repeat_seeds"), "repeat_seeds", allow_empty=True
        ),
        repeat_top=config.get("bench", "repeat_top"),
        estimator=component("estimator", env["estimator"]),
        dataset=component("dataset", env["dataset"]),
        output=Path(config.get("bench", "output")),
    )
    result = build_table(
        plan,
        workers=config.get("run", "workers"),
        ray_address=config.get("run", "ray_address") or None,
        plugin_manager=manager,
        report=lambda line: click.echo(line, err=True),
        limit=limit,
    )
    state = "complete" if result.complete else "incomplete (run the same command to resume)"
    click.echo(
        f"{result.rows} rows stored for {result.networks} networks, {result.trained} trained "
        f"in {result.seconds:.0f} s; table {state}: {plan.output}"
    )


@bench.command("stats")
@click.argument("table", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the accuracy histogram as a PNG here (extra: plot).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every statistic as JSON here.",
)
def stats(table: Path, plot: Path | None, json_path: Path | None) -> None:
    """The statistics of a table (folder or file): what its benchmark card reports.

    Spread (best vs head only, top 1 % vs median), seed noise of the top 10 %, how
    fast the ranking settles (rank correlation of each epoch count with the last),
    and the accuracy histogram.
    """
    import json

    from nasframe.bench.stats import plot_histogram, table_statistics
    from nasframe.bench.table import BenchTable
    from nasframe.cli.options import write_text

    loaded = BenchTable.load(table)
    figures = table_statistics(loaded)
    click.echo(_format_stats(figures))
    if json_path is not None:
        write_text(json_path, json.dumps(figures, indent=2) + "\n")
    if plot is not None:
        plot_histogram(loaded, plot)
        click.echo(f"wrote {plot}", err=True)


def _format_stats(figures: dict[str, object]) -> str:
    lines = [
        f"networks {figures['networks']}, rows {figures['rows']}, seeds {figures['seeds']}, "
        f"epochs {figures['epochs']}, status {figures['status']}"
    ]
    best = figures.get("best")
    if isinstance(best, dict):
        lines.append(
            f"best {best['nsc'] or 'head only'}: validation {best['validation']:.4f}, "
            f"test {best['test']:.4f}"
        )
    head = figures.get("head_only")
    if isinstance(head, dict):
        lines.append(
            f"head only: validation {head['validation']:.4f}; best - head only = "
            f"{figures['best_minus_head_only']:.4f}"
        )
    quantiles = figures.get("quantiles")
    if isinstance(quantiles, dict):
        lines.append(
            "top 1 % {top_1_percent:.4f}, top 10 % {top_10_percent:.4f}, median "
            "{median:.4f}".format(**quantiles)
            + f"; top 1 % - median = {figures['top1_minus_median']:.4f}"
        )
    if "top10_seed_std" in figures:
        lines.append(f"seed-to-seed std of the top 10 %: {figures['top10_seed_std']:.4f}")
    if "seed_spearman" in figures:
        lines.append(f"seed 0 vs seed 1 Spearman: {figures['seed_spearman']:.3f}")
    fidelity = figures.get("epoch_rank_correlation_with_last")
    if isinstance(fidelity, dict) and fidelity:
        cells = ", ".join(
            f"{epochs}: {values['spearman']:.3f}/{values['kendall']:.3f}"
            for epochs, values in fidelity.items()
        )
        lines.append(f"rank correlation with the last epoch (Spearman/Kendall) {cells}")
    criteria = figures.get("criteria")
    if isinstance(criteria, dict):
        for name, met in criteria.items():
            lines.append(f"criterion {name}: {'met' if met else 'NOT met'}")
    histogram = figures.get("histogram")
    if isinstance(histogram, list):
        lines.append(
            "histogram: "
            + " ".join(f"[{b['from']:.1f},{b['to']:.1f}):{b['count']}" for b in histogram)
        )
    return "\n".join(lines)
