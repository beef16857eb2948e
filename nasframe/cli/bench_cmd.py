"""``nasframe bench``: build NSC-Bench tables (``bench build``)."""

from __future__ import annotations

from pathlib import Path

import click

from nasframe.cli.options import config_options, load_from_options

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
