"""``nasframe search``: run or resume an architecture search."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from nasframe.cli.options import config_options, load_from_options

__all__ = ["search"]


@click.command()
@config_options
@click.option("--agent", help="Search agent: random, rea, tpe, reinforce, ppo, ... [run] agent")
@click.option("--steps", type=int, help="Budget in environment steps. [run] steps")
@click.option("--episodes", type=int, help="Budget in episodes instead of steps. [run] episodes")
@click.option("--seed", type=int, help="Seed of agent, environment and estimator. [run] seed")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder (database, log, agent, results). [run] output",
)
@click.option("--dataset", help="Dataset handler, e.g. digits. [env] dataset")
@click.option("--estimator", help="Performance estimator, e.g. keras or proxy. [env] estimator")
@click.option("--space", help="Search space, e.g. chained. [env] search_space")
@click.option(
    "--workers", type=int, help="Parallel evaluation workers (>1 uses Ray). [run] workers"
)
@click.option("--ray-address", help="Address of a Ray cluster. [run] ray_address")
@click.option(
    "--resume/--force",
    "resume",
    default=None,
    help="Resume the run in the output folder (default), or start over in it, moving "
    "the old run aside. [run] resume",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table. [run] verbosity=0")
@click.option("-v", "--verbose", is_flag=True, help="Log every step. [run] verbosity=2")
def search(
    config_path: Path | None,
    overrides: tuple[str, ...],
    agent: str | None,
    steps: int | None,
    episodes: int | None,
    seed: int | None,
    output: Path | None,
    dataset: str | None,
    estimator: str | None,
    space: str | None,
    workers: int | None,
    ray_address: str | None,
    resume: bool | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Search for architectures with an agent, for a budget of steps or episodes.

    Ctrl-C (or SIGTERM) stops after the evaluation under way is stored; running the
    same command again resumes, reusing every stored evaluation.
    """
    from nasframe.errors import ConfigError
    from nasframe.plugins import get_plugin_manager
    from nasframe.search import run_search

    if quiet and verbose:
        raise ConfigError("--quiet and --verbose exclude each other; give one")
    run: dict[str, Any] = {
        "agent": agent,
        "seed": seed,
        "output": output,
        "workers": workers,
        "ray_address": ray_address,
    }
    # One budget at a time: a step budget on the command line clears the episode budget
    # of the file, and the other way round.
    if steps is not None:
        run.update(steps=steps, episodes=0)
    if episodes is not None:
        run.update(episodes=episodes, steps=0 if steps is None else steps)
    if resume is not None:
        run["resume"] = resume
    if quiet or verbose:
        run["verbosity"] = 0 if quiet else 2
    env = {"dataset": dataset, "estimator": estimator, "search_space": space}
    manager = get_plugin_manager()
    config = load_from_options(
        config_path, overrides, extra={"run": run, "env": env}, plugin_manager=manager
    )
    command = _resume_command(config_path, Path(config.get("run", "output")))
    try:
        outcome = run_search(
            config, plugin_manager=manager, force=resume is False, resume_command=command
        )
    except KeyboardInterrupt:
        # A second Ctrl-C, or one before the run could catch signals: stored evaluations
        # are safe in the database, the agent is as of its last checkpoint.
        click.echo(f"aborted; resume with: {command}", err=True)
        sys.exit(130)
    if outcome.outcome not in ("completed", "interrupted"):
        sys.exit(1)


def _resume_command(config_path: Path | None, output: Path) -> str:
    """The command line that resumes this run: the one typed, when it can be known."""
    argv = sys.argv[1:]
    if "search" in argv:
        return shlex.join(["nasframe", *argv])
    # Called from Python (tests, notebooks): the configuration and folder say it all.
    parts = ["nasframe", "search"]
    if config_path is not None:
        parts += ["--config", str(config_path)]
    return shlex.join([*parts, "--output", str(output)])
