"""``nasframe bench``: build NSC-Bench tables (``bench build``), compare agents (``bench run``,
and across tasks, ``bench transfer``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nasframe.cli.options import config_options, load_from_options

if TYPE_CHECKING:
    from nasframe.bench.compare import CompareSettings, Comparison

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

    With [bench] sample = N, train a sample of N networks instead: random episodes of
    every depth, and the networks that [bench] sample_agents visit (docs/nsc-bench.md).

    Each (network, seed) is stored as soon as it is trained: a stopped build (Ctrl-C,
    kill -9) resumes with the same command and trains only what is missing. The table
    (table.csv.gz, build.json) is written when all are done. See docs/nsc-bench.md.
    """
    from nasframe.bench.build import BuildPlan, build_table
    from nasframe.bench.sampling import SampleSettings
    from nasframe.plugins import get_plugin_manager
    from nasframe.runlock import RunFolderLock, check_folder_path

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
        space=manager.search_spaces().get(env["search_space"]).name,
        depth=config.get("bench", "depth"),
        seeds=parse_seeds(config.get("bench", "seeds")),
        repeat_seeds=parse_seeds(
            config.get("bench", "repeat_seeds"), "repeat_seeds", allow_empty=True
        ),
        repeat_top=config.get("bench", "repeat_top"),
        repeat_pick=config.get("bench", "repeat_pick"),
        sample=SampleSettings(
            size=config.get("bench", "sample"),
            agents=tuple(
                manager.agents().get(name.strip()).base_name
                for name in config.get("bench", "sample_agents").split(",")
                if name.strip()
            ),
            agent_share=config.get("bench", "agent_share"),
            seed=config.get("bench", "sample_seed"),
        ),
        evaluate=env["evaluate"],
        config=config,
        estimator=component("estimator", env["estimator"]),
        dataset=component("dataset", env["dataset"]),
        output=Path(config.get("bench", "output")),
        ray=config.section("ray"),
    )
    check_folder_path(plan.output, "[bench] output")
    # one build per table folder: a second would train the same networks twice
    with RunFolderLock(
        plan.output, hint="wait for it (a stopped build resumes with the same command)"
    ):
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


@bench.command("run")
@config_options
@click.option(
    "--table",
    type=click.Path(path_type=Path),
    help="A table folder or file from bench build (default: the shipped NSC-Bench v3).",
)
@click.option(
    "--surrogate",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A surrogate folder from bench fit: search its space with surrogate-v1 instead "
    "of a table (docs/surrogate.md).",
)
@click.option(
    "--agents",
    help="Agents to compare, comma-separated (default: every available agent).",
)
@click.option("--seeds", type=int, default=20, show_default=True, help="Runs per agent.")
@click.option(
    "--first-seed",
    type=int,
    default=0,
    show_default=True,
    help="The first run's seed: seeds --first-seed .. --first-seed + --seeds - 1.",
)
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
    "--depth",
    type=int,
    default=0,
    help="The deepest network (0: the table's depth); --depth 3 on v3 is the depth-3 benchmark.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs/bench-run"),
    show_default=True,
    help="Folder for the stored runs, the CSV files and the plot (resumed if it holds "
    "this comparison).",
)
@click.option(
    "--step-factor",
    type=int,
    default=10,
    show_default=True,
    help="Stop a run after this many environment steps per training of the budget.",
)
@click.option(
    "--jobs", type=int, default=1, show_default=True, help="Runs in parallel (processes)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Start over: the results in --output (of this comparison or another) are moved "
    "into replaced-<time>/ there.",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def run(
    config_path: Path | None,
    overrides: tuple[str, ...],
    table: Path | None,
    surrogate: Path | None,
    agents: str | None,
    seeds: int,
    first_seed: int,
    budget: int,
    seconds: float | None,
    epochs: int,
    table_seed: str,
    depth: int,
    output: Path,
    step_factor: int,
    jobs: int,
    force: bool,
    quiet: bool,
) -> None:
    """Compare search agents on table-v1: regret over many seeds, nothing trained.

    Every agent searches the table's space once per seed, until it has trained --budget
    distinct networks (or spent --seconds of simulated training time). Each finished run
    is stored in --output (runs.jsonl) at once: a stopped comparison (Ctrl-C, kill -9)
    resumes with the same command and runs only the missing runs. Then writes
    regret_trainings.csv, regret_seconds.csv, runs.csv, summary.csv, settings.json and
    regret.png there and prints the summary. Agent settings come from --config/--set
    (e.g. --set ppo.learning_rate=0.001), and so does when a network is evaluated: every
    step (default) or only at an episode's end (--set env.evaluate=episode_end); other
    [env] settings are refused (the table decides them). See docs/bench-run.md.
    """
    from nasframe.bench.compare import (
        CompareSettings,
        ComparisonInterrupted,
        compare_agents,
        summary_header,
        summary_rows,
        write_results,
    )
    from nasframe.plugins import get_plugin_manager
    from nasframe.runlock import RunFolderLock, check_folder_path

    check_folder_path(output, "--output")
    manager = get_plugin_manager()
    config = load_from_options(config_path, overrides, plugin_manager=manager)
    names = [name.strip() for name in (agents or "").split(",") if name.strip()]
    if surrogate is not None and table is not None:
        from nasframe.errors import ConfigError

        raise ConfigError("bench run: give --table or --surrogate, not both")
    settings = CompareSettings(
        table=table,
        surrogate=surrogate,
        agents=names,
        seeds=seeds,
        first_seed=first_seed,
        budget=budget,
        seconds=seconds,
        epochs=epochs,
        table_seed=table_seed,
        depth=depth,
        step_factor=step_factor,
        jobs=jobs,
        evaluate=config.get("env", "evaluate"),
    )
    command = _resume_command(output)
    # one comparison per folder, from its first run to its last file
    with RunFolderLock(output, hint="wait for it or choose another --output"), _sigterm_stops():
        try:
            comparison = compare_agents(
                settings,
                plugin_manager=manager,
                config=config,
                report=None if quiet else (lambda line: click.echo(line, err=True)),
                output=output,
                force=force,
                warn=lambda line: click.echo(line, err=True),
            )
        except ComparisonInterrupted as stopped:
            click.echo(
                f"stopped: {stopped.stored} of {stopped.total} runs stored in {output}; "
                f"run the same command to resume: {command}",
                err=True,
            )
            sys.exit(130)
        for name, hint in comparison.skipped.items():
            click.echo(f"skipped {name}: not installed; {hint}", err=True)
        try:
            written = write_results(comparison, output)
        except KeyboardInterrupt:
            click.echo(
                f"stopped while writing the results; all {len(comparison.traces)} runs are "
                f"stored in {output}; run the same command to write them: {command}",
                err=True,
            )
            sys.exit(130)
    _print_summary(comparison, summary_header(comparison), summary_rows(comparison))
    click.echo(f"wrote {', '.join(str(path) for path in written)}", err=True)


def _resume_command(output: Path, command: str = "run") -> str:
    """The command line that resumes this comparison: the one typed, when it can be known."""
    import shlex

    argv = sys.argv[1:]
    if "bench" in argv and command in argv:
        return shlex.join(["nasframe", *argv])
    # called from Python (tests, notebooks): the folder is what the user must keep
    return f"nasframe bench {command} ... --output {shlex.quote(str(output))}"


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM stops the comparison as Ctrl-C does (finished runs kept, workers ended)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _seed_range(settings: CompareSettings) -> str:
    if not settings.first_seed:
        return f"{settings.seeds} seeds"
    last = settings.first_seed + settings.seeds - 1
    return f"{settings.seeds} seeds ({settings.first_seed}-{last})"


def _print_summary(comparison: Comparison, header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    settings = comparison.settings
    title = (
        f"test regret vs the table's best ({comparison.best_test:.4f}); "
        f"{_seed_range(settings)}, budget {settings.budget} trainings, evaluated "
        f"{'at every step' if settings.evaluate == 'every_step' else 'at episode ends'}"
    )
    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)


@bench.command("transfer")
@config_options
@click.option(
    "--tables",
    required=True,
    help="The tasks' tables, comma-separated: one table folder per task (named by its "
    "folder), or a folder holding one such folder per task.",
)
@click.option(
    "--held-out",
    help="The tasks held out, comma-separated, each in turn (default: every task).",
)
@click.option(
    "--agents",
    help="Agents, comma-separated: agents from scratch, meta-<agent> (meta-trained), "
    "best-first, rea-warm (default: every available agent, meta-reinforce, meta-ppo, "
    "meta-recurrent-ppo and both baselines).",
)
@click.option(
    "--seeds", type=int, default=100, show_default=True, help="Test runs per agent and task."
)
@click.option(
    "--first-seed",
    type=int,
    default=20,
    show_default=True,
    help="The first test seed: seeds --first-seed .. --first-seed + --seeds - 1 (20: "
    "none that an agent's settings were tuned on).",
)
@click.option(
    "--budget",
    type=int,
    default=50,
    show_default=True,
    help="Trainings (distinct networks) per test run on the held-out task.",
)
@click.option(
    "--meta-episodes",
    type=int,
    default=1000,
    show_default=True,
    help="NAS episodes of each meta-training, spread evenly over the other tasks.",
)
@click.option(
    "--meta-seeds",
    type=int,
    default=5,
    show_default=True,
    help="Meta-trained policies per agent and held-out task (test seed s uses s mod this).",
)
@click.option(
    "--trial-episodes",
    type=int,
    default=10,
    show_default=True,
    help="NAS episodes per trial of meta-recurrent-ppo (its memory spans a trial).",
)
@click.option(
    "--transfer-top",
    type=int,
    default=4,
    show_default=True,
    help="Best networks taken from each other task by best-first and rea-warm.",
)
@click.option("--epochs", type=int, default=0, help="Fidelity in epochs (0: each table's last).")
@click.option(
    "--table-seed",
    default="random",
    show_default=True,
    help="Which training answers: a seed of the tables, mean or random (per network).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs/bench-transfer"),
    show_default=True,
    help="Folder for the policies, the stored runs, the CSV files and the plots (resumed if "
    "it holds this comparison).",
)
@click.option(
    "--step-factor",
    type=int,
    default=10,
    show_default=True,
    help="Stop a test run after this many environment steps per training of the budget.",
)
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="Meta-trainings and runs in parallel (processes).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Start over: the results in --output are moved into replaced-<time>/ there.",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def transfer(
    config_path: Path | None,
    overrides: tuple[str, ...],
    tables: str,
    held_out: str | None,
    agents: str | None,
    seeds: int,
    first_seed: int,
    budget: int,
    meta_episodes: int,
    meta_seeds: int,
    trial_episodes: int,
    transfer_top: int,
    epochs: int,
    table_seed: str,
    output: Path,
    step_factor: int,
    jobs: int,
    force: bool,
    quiet: bool,
) -> None:
    """Leave one task out: meta-train on the other tasks' tables, test on the held-out one.

    For each held-out task, every meta-<agent> learns for --meta-episodes NAS episodes
    on the other tasks' tables (--meta-seeds policies), then every agent searches the
    held-out table for --budget trainings per seed: from scratch, from its meta-trained
    policy, or (best-first, rea-warm) from the other tasks' best networks. Prints regret
    after 5, 10, 25 and 50 trainings with 95 % intervals, trainings to the top 1 % and
    Holm-adjusted tests against random search and of each meta-trained agent against
    itself from scratch; writes summary.csv, regret_trainings.csv, runs.csv, meta.csv,
    settings.json and regret_<task>.png to --output, where every policy and run is
    stored as it finishes (a stopped transfer resumes with the same command). Agent
    settings come from --config/--set. See docs/bench-transfer.md.
    """
    from nasframe.bench.compare import ComparisonInterrupted
    from nasframe.bench.transfer import (
        TransferSettings,
        run_transfer,
        summary_header,
        summary_rows,
        write_results,
    )
    from nasframe.plugins import get_plugin_manager
    from nasframe.runlock import RunFolderLock, check_folder_path

    check_folder_path(output, "--output")
    manager = get_plugin_manager()
    config = load_from_options(config_path, overrides, plugin_manager=manager)

    def listed(text: str | None) -> list[str]:
        return [part.strip() for part in (text or "").split(",") if part.strip()]

    settings = TransferSettings(
        tables=[Path(part) for part in listed(tables)],
        held_out=listed(held_out),
        agents=listed(agents),
        seeds=seeds,
        first_seed=first_seed,
        budget=budget,
        meta_episodes=meta_episodes,
        meta_seeds=meta_seeds,
        trial_episodes=trial_episodes,
        transfer_top=transfer_top,
        epochs=epochs,
        table_seed=table_seed,
        step_factor=step_factor,
        evaluate=config.get("env", "evaluate"),
        jobs=jobs,
    )
    command = _resume_command(output, "transfer")
    with RunFolderLock(output, hint="wait for it or choose another --output"), _sigterm_stops():
        try:
            result = run_transfer(
                settings,
                plugin_manager=manager,
                config=config,
                report=None if quiet else (lambda line: click.echo(line, err=True)),
                output=output,
                force=force,
                warn=lambda line: click.echo(line, err=True),
            )
        except ComparisonInterrupted as stopped:
            click.echo(
                f"stopped: {stopped.stored} of {stopped.total} runs stored in {output} (and "
                f"the policies meta-trained so far); run the same command to resume: {command}",
                err=True,
            )
            sys.exit(130)
        for name, hint in result.skipped.items():
            click.echo(f"skipped {name}: not installed; {hint}", err=True)
        try:
            written = write_results(result, output)
        except KeyboardInterrupt:
            click.echo(
                f"stopped while writing the results; all runs are stored in {output}; run "
                f"the same command to write them: {command}",
                err=True,
            )
            sys.exit(130)
    _print_transfer(result, summary_header(result), summary_rows(result))
    click.echo(f"wrote {', '.join(str(path) for path in written)}", err=True)


def _print_transfer(result: Any, header: list[str], rows: list[list[str]]) -> None:
    """One table per held-out task; each figure with its 95 % half-width (``±``)."""
    from rich.console import Console
    from rich.table import Table

    settings = result.settings
    keep = [i for i, name in enumerate(header) if name not in ("task", "p_vs_random")]
    keep = [i for i in keep if header[i] != "p_vs_scratch" and not header[i].endswith("_ci95")]
    console = Console(width=200)
    for task in result.held_out:
        best = result.task(task).best_test
        table = Table(
            title=f"held-out {task}: test regret vs its best ({best:.4f}); {settings.seeds} "
            f"seeds, budget {settings.budget} trainings, meta-trained for "
            f"{settings.meta_episodes} episodes on the other tasks"
        )
        for i in keep:
            table.add_column(header[i], justify="left" if header[i] == "agent" else "right")
        for row in rows:
            if row[0] != task:
                continue
            cells = []
            for i in keep:
                ci = f"{header[i]}_ci95"
                cell = row[i]
                if ci in header:
                    cell = f"{cell}±{row[header.index(ci)]}"
                cells.append(cell)
            table.add_row(*cells)
        console.print(table)


@bench.command("fit")
@click.argument("table")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The folder of the surrogates: one sub-folder per model family.",
)
@click.option(
    "--family",
    "families",
    default="hgb,lightgbm",
    show_default=True,
    help="Model families, comma-separated (hgb: scikit-learn; lightgbm).",
)
@click.option(
    "--train-fraction",
    type=float,
    default=0.8,
    show_default=True,
    help="Fraction of the networks the models are fitted on; the rest is held out.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Split and model seed.")
@click.option(
    "--tabulate",
    is_flag=True,
    help="Also write each surrogate's answer for every network of the space as a table "
    "(<family>/table; enumerable spaces only) for bench run --table.",
)
@click.option(
    "--plot",
    is_flag=True,
    help="Also draw each surrogate's predicted against measured held-out accuracy "
    "(<family>/held_out.png; extra: plot).",
)
def fit(
    table: str,
    output: Path,
    families: str,
    train_fraction: float,
    seed: int,
    tabulate: bool,
    plot: bool,
) -> None:
    """Fit surrogate models of accuracy and cost on TABLE (a folder, a file or a shipped name).

    Prints each family's held-out R², Spearman and Kendall (all networks and the top
    10 %) beside the seed-to-seed noise of the networks trained twice, and saves each
    surrogate (surrogate.json, models.pkl.gz, held_out.csv). See docs/surrogate.md.
    """
    from nasframe.bench.surrogate import fit_surrogate
    from nasframe.bench.surrogate import tabulate as write_table
    from nasframe.bench.table import BenchTable
    from nasframe.errors import ConfigError

    path = Path(table)
    if not path.exists():
        if table not in BenchTable.shipped_names():
            raise ConfigError(
                f"table {table!r}: no such file or folder, and not a shipped table "
                f"({', '.join(BenchTable.shipped_names())})"
            )
        path = BenchTable.shipped(table)
    bench_table = BenchTable.load(path)
    names = [name.strip() for name in families.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"--family {families!r}: name at least one model family")
    header = [
        "model",
        "R2",
        "Spearman",
        "Kendall",
        "top10_Kendall",
        "test_Kendall",
        "seconds_R2",
        "fit_s",
    ]
    lines: list[list[str]] = []
    noise: dict[str, Any] = {}

    def cells(figures: dict[str, Any], *keys: str) -> list[str]:
        return [f"{figures[key]:.3f}" for key in keys]

    for name in names:
        surrogate = fit_surrogate(
            bench_table, family=name, train_fraction=train_fraction, seed=seed
        )
        folder = surrogate.save(output / name)
        if tabulate:
            write_table(surrogate, folder / "table")
        if plot:
            from nasframe.bench.stats import plot_held_out

            accuracy = surrogate.card["held_out"]["accuracy"]
            plot_held_out(
                surrogate.held_out,
                folder / "held_out.png",
                title=f"{name}: {len(surrogate.held_out['measured'])} held-out networks, "
                f"Kendall {accuracy['kendall']:.3f}",
            )
        figures = surrogate.card["held_out"]
        lines.append(
            [
                name,
                *cells(figures["accuracy"], "r2", "spearman", "kendall", "top_kendall"),
                f"{figures['test']['kendall']:.3f}",
                f"{figures['seconds']['r2']:.3f}",
                f"{surrogate.card['fit_seconds']:.1f}",
            ]
        )
        noise = surrogate.card.get("seed_noise") or {}
        if noise:
            own = surrogate.card["surrogate_vs_second_seed"]
            lines.append(
                [f"{name} vs seed {noise['seeds'][1]}", *cells(own, "r2", "spearman", "kendall")]
            )
    if noise:
        pair = f"seed {noise['seeds'][0]} vs {noise['seeds'][1]}"
        lines.append([pair, *cells(noise, "r2", "spearman", "kendall")])
    split = f"{train_fraction:.0%} of {len(bench_table)} networks fitted, the rest held out"
    click.echo(f"surrogates of {bench_table.source} ({split}; last-epoch accuracy):")
    widths = [max(len(row[i]) for row in [header, *lines] if i < len(row)) for i in range(8)]
    for row in [header, *lines]:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    if noise:
        click.echo(
            f"the seed rows: {noise['networks']} held-out networks trained twice; a surrogate "
            "cannot rank them better than one seed ranks the other"
        )
    click.echo(f"saved: {', '.join(str(output / name) for name in names)}")


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
    from nasframe.runlock import check_file_path

    # before the table is read and its statistics computed
    if plot is not None:
        check_file_path(plot, "--plot")
    if json_path is not None:
        check_file_path(json_path, "--json")
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
    if "validation_test_spearman" in figures:
        lines.append(f"validation vs test Spearman: {figures['validation_test_spearman']:.3f}")
    train = figures.get("train_accuracy")
    if isinstance(train, dict):
        lines.append(
            f"training accuracy: median {train['median']:.4f}; {train['below_0.2']} of "
            f"{train['networks']} networks below 0.2 (they cannot fit their own training data: "
            "a network too weak to learn, or a broken measurement)"
        )
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
