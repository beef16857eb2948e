"""``nasframe finalize RUN``: retrain a run's best networks and measure them on the test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nasframe.cli.options import config_options

__all__ = ["finalize"]


@click.command()
@click.argument("run", type=click.Path(path_type=Path, file_okay=False))
@config_options
@click.option("--top-k", type=int, help="How many of the best networks. [finalize] top_k")
@click.option("--seeds", help="Training seeds, comma-separated, e.g. 0,1,2. [finalize] seeds")
@click.option("--epochs", type=int, help="Training epochs. [finalize] epochs")
@click.option("--builder", help="Network builder, e.g. blockqnn-v1. [finalize] builder")
@click.option("--augmentation", help="Training augmentation, e.g. shift. [finalize] augmentation")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    help="The results folder (default RUN/final). [finalize] output",
)
@click.option("--task", help="The dataset task to train on (meta-dataset), e.g. aircraft.")
@click.option("--workers", type=int, help="Parallel trainings (>1 uses Ray). [run] workers")
@click.option("--ray-address", help="Address of a Ray cluster. [run] ray_address")
@click.option("--limit", type=int, help="Train at most this many (network, seed) now.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def finalize(
    run: Path,
    config_path: Path | None,
    overrides: tuple[str, ...],
    top_k: int | None,
    seeds: str | None,
    epochs: int | None,
    builder: str | None,
    augmentation: str | None,
    output: Path | None,
    task: str | None,
    workers: int | None,
    ray_address: str | None,
    limit: int | None,
    quiet: bool,
) -> None:
    """Retrain the best networks of the search in RUN, once per seed, and test them.

    Reads the run's configuration (run.json) and experiment database, takes the
    [finalize] top_k best networks, trains each with the [finalize] settings (--config
    FILE or --set finalize.KEY=VALUE), and reports validation and test accuracy as mean
    ± std over the seeds. Writes final.json, final.csv, final.png, rows.csv and
    models/*.keras into RUN/final. Stopped (Ctrl-C, kill -9), the same command trains
    only what is missing. See docs/finalize.md.
    """
    from nasframe.config import parse_override
    from nasframe.finalize import finalize as run_finalize
    from nasframe.finalize import load_run_config, plan_finalize
    from nasframe.plugins import get_plugin_manager
    from nasframe.runlock import RunFolderLock, check_folder_path

    manager = get_plugin_manager()
    extra: dict[str, dict[str, Any]] = {
        "finalize": {
            "top_k": top_k,
            "seeds": seeds,
            "epochs": epochs,
            "builder": builder,
            "augmentation": augmentation,
            "output": output,
        },
        "run": {"workers": workers, "ray_address": ray_address},
    }
    merged: dict[str, dict[str, Any]] = {
        section: {key: value for key, value in values.items() if value is not None}
        for section, values in extra.items()
    }
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    config = load_run_config(run, config_path, merged, plugin_manager=manager)
    # before the run's database is read or anything trained
    check_folder_path(config.get("finalize", "output") or run / "final", "[finalize] output")
    plan = plan_finalize(run, config, plugin_manager=manager, task=task)
    # one finalize per results folder: a second would train the same (network, seed)
    with RunFolderLock(
        plan.output,
        hint="wait for it (a stopped finalize resumes with the same command) or choose "
        "another --output",
    ):
        result = run_finalize(
            plan,
            workers=int(config.get("run", "workers")),
            ray_address=str(config.get("run", "ray_address")) or None,
            plugin_manager=manager,
            progress=not quiet,
            limit=limit,
        )
    total = len(plan.networks) * len(plan.seeds)
    state = "complete" if result.complete else "incomplete (run the same command to resume)"
    click.echo(
        f"{result.rows} of {total} trainings stored, {result.trained} trained in "
        f"{result.seconds:.0f} s; {state}: {plan.output / 'final.json'}"
    )
