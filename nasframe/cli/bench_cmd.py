"""``nasframe bench``: build NSC-Bench tables (``bench build``), compare agents (``bench run``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from nasframe.cli.options import config_options, load_from_options

if TYPE_CHECKING:
    from nasframe.bench.compare import Comparison

__all__ = ["bench", "parse_seeds"]


@click.group()
def bench() -> None:
    """NSC-Bench: exhaustive tables of a search space, and agents compared on them."""


def parse_seeds(text: str) -> list[int]:
    """``"0,1"`` -> ``[0, 1]``.

    Raises:
        ConfigError: a seed is not a non-negative integer; the message names ``[bench] seeds``.
    """
    from nasframe.errors import ConfigError

    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ConfigError(
                f"[bench] seeds = {text!r}: {part!r} is not a seed (need integers >= 0, "
                "comma-separated, e.g. 0,1)"
            )
        seeds.append(int(part))
    if not seeds:
        raise ConfigError(f"[bench] seeds = {text!r}: give at least one seed, e.g. 0")
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
        f"{result.rows} of {result.networks * len(result.card['seeds'])} rows stored, "
        f"{result.trained} trained in {result.seconds:.0f} s; table {state}: {plan.output}"
    )


@bench.command("run")
@config_options
@click.option(
    "--table",
    type=click.Path(path_type=Path),
    help="A table folder or file from bench build (default: the shipped NSC-Bench v1).",
)
@click.option(
    "--agents",
    help="Agents to compare, comma-separated (default: every available agent).",
)
@click.option("--seeds", type=int, default=20, show_default=True, help="Runs per agent.")
@click.option(
    "--budget",
    type=int,
    default=300,
    show_default=True,
    help="Trainings (distinct networks) per run.",
)
@click.option("--seconds", type=float, help="Also stop a run after this many simulated seconds.")
@click.option("--epochs", type=int, default=0, help="Fidelity in epochs (0: the table's last).")
@click.option(
    "--table-seed",
    default="random",
    show_default=True,
    help="Which training answers: a seed of the table, mean or random (per network).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs/bench-run"),
    show_default=True,
    help="Folder for the CSV files and the plot.",
)
@click.option(
    "--jobs", type=int, default=1, show_default=True, help="Runs in parallel (processes)."
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def run(
    config_path: Path | None,
    overrides: tuple[str, ...],
    table: Path | None,
    agents: str | None,
    seeds: int,
    budget: int,
    seconds: float | None,
    epochs: int,
    table_seed: str,
    output: Path,
    jobs: int,
    quiet: bool,
) -> None:
    """Compare search agents on table-v1: regret over many seeds, nothing trained.

    Every agent searches the table's space once per seed, until it has trained --budget
    distinct networks (or spent --seconds of simulated training time). Writes
    regret_trainings.csv, regret_seconds.csv, runs.csv, summary.csv and regret.png to
    --output and prints the summary. Agent settings come from --config/--set (e.g.
    --set ppo.learning_rate=0.001). See docs/bench-run.md.
    """
    from nasframe.bench.compare import (
        CompareSettings,
        compare_agents,
        summary_header,
        summary_rows,
        write_results,
    )
    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager()
    config = load_from_options(config_path, overrides, plugin_manager=manager)
    names = [name.strip() for name in (agents or "").split(",") if name.strip()]
    settings = CompareSettings(
        table=table,
        agents=names,
        seeds=seeds,
        budget=budget,
        seconds=seconds,
        epochs=epochs,
        table_seed=table_seed,
        jobs=jobs,
    )
    comparison = compare_agents(
        settings,
        plugin_manager=manager,
        config=config,
        report=None if quiet else (lambda line: click.echo(line, err=True)),
    )
    for name, hint in comparison.skipped.items():
        click.echo(f"skipped {name}: not installed; {hint}", err=True)
    written = write_results(comparison, output)
    _print_summary(comparison, summary_header(comparison), summary_rows(comparison))
    click.echo(f"wrote {', '.join(str(path) for path in written)}", err=True)


def _print_summary(comparison: Comparison, header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    settings = comparison.settings
    title = (
        f"test regret vs the table's best ({comparison.best_test:.4f}); "
        f"{settings.seeds} seeds, budget {settings.budget} trainings"
    )
    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)
