"""``nasframe play SOURCE``: run a saved agent for N episodes without learning."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from nasframe.cli.options import config_options

__all__ = ["agent_file_of", "play"]

#: The checkpoint names a search leaves in its output folder, by agent kind.
_CHECKPOINTS = ("agent.zip", "agent.json")

#: The step budget of a task given with --task: the episode budget ends the run first.
_OPEN_ENDED = 1_000_000_000


def agent_file_of(run: Path) -> Path:
    """The saved agent in a search's output folder.

    Raises:
        NasframeError: the folder holds no saved agent.
    """
    from nasframe.errors import NasframeError

    for name in _CHECKPOINTS:
        if (run / name).is_file():
            return run / name
    raise NasframeError(
        f"{run}: no saved agent ({' or '.join(_CHECKPOINTS)}); give a search's output folder "
        "or the agent file itself"
    )


@click.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@config_options
@click.option("--agent", help="The saved agent's kind, e.g. ppo (an agent file). [run] agent")
@click.option(
    "--episodes", type=int, help="Episodes to play (a run folder: default 10). [run] episodes"
)
@click.option("--steps", type=int, help="A budget in steps instead of episodes. [run] steps")
@click.option("--dataset", help="Dataset handler to play on, e.g. metadataset. [env] dataset")
@click.option("--task", help="The task to play on (an unseen one, e.g. aircraft).")
@click.option("--seed", type=int, help="Seed of the environment and the action draws. [run] seed")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder (a run folder: default SOURCE/play or SOURCE/play-TASK). [run] output",
)
@click.option("--workers", type=int, help="Parallel evaluation workers (Ray). [run] workers")
@click.option(
    "--resume/--force",
    "resume",
    default=None,
    help="Resume the play run in the output folder (default), or start it over.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def play(
    source: Path,
    config_path: Path | None,
    overrides: tuple[str, ...],
    agent: str | None,
    episodes: int | None,
    steps: int | None,
    dataset: str | None,
    task: str | None,
    seed: int | None,
    output: Path | None,
    workers: int | None,
    resume: bool | None,
    quiet: bool,
) -> None:
    """Run the saved agent SOURCE for N episodes without learning.

    SOURCE is a search's output folder (its configuration and agent are used; --config
    adds what the run does not fix) or a saved agent file (with --config, e.g.
    resources/experiment2.ini, giving the agent, budget, output and environment). The
    policy's weights never change; every step is logged and the results written as a
    search writes them (steps.csv, summary.json, plots, the experiment database). With
    --dataset/--task it plays on another dataset or an unseen task: the meta-RL
    evaluation. See docs/play.md.
    """
    from nasframe.config import load_config, parse_override
    from nasframe.errors import ConfigError
    from nasframe.finalize import load_run_config
    from nasframe.plugins import get_plugin_manager
    from nasframe.search import run_search

    if steps is not None and episodes is not None:
        raise ConfigError("--steps and --episodes exclude each other; give one budget")
    folder = source if source.is_dir() else None
    agent_file = agent_file_of(source) if folder else source
    run: dict[str, Any] = {"play": str(agent_file)}
    if folder is not None:
        # A search's folder: its training schedule and budget are not the play run's.
        run.update(tasks="", output=folder / (f"play-{task}" if task else "play"))
        run.update(episodes=10, steps=0)
    if output is not None:
        run["output"] = output
    if steps is not None:
        run.update(steps=steps, episodes=0)
    elif episodes is not None:
        run.update(episodes=episodes, steps=0)
    if task:
        run["tasks"] = f"{task}:{_OPEN_ENDED}"
    for key, value in (("agent", agent), ("seed", seed), ("workers", workers)):
        if value is not None:
            run[key] = value
    if resume is not None:
        run["resume"] = resume
    if quiet:
        run["verbosity"] = 0
    merged: dict[str, dict[str, Any]] = {"run": run}
    if dataset:
        merged["env"] = {"dataset": dataset}
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    manager = get_plugin_manager()
    if folder is not None:
        config = load_run_config(folder, config_path, merged, plugin_manager=manager)
    else:
        config = load_config(config_path, merged, plugin_manager=manager)
    if "play" in sys.argv[1:]:
        command = shlex.join(["nasframe", *sys.argv[1:]])
    else:  # called from Python: the source and the folder say it all
        where = str(config.get("run", "output"))
        command = shlex.join(["nasframe", "play", str(source), "--output", where])
    try:
        outcome = run_search(
            config, plugin_manager=manager, force=resume is False, resume_command=command
        )
    except KeyboardInterrupt:
        click.echo("aborted; the same command resumes the play run", err=True)
        sys.exit(130)
    if outcome.outcome not in ("completed", "interrupted"):
        sys.exit(1)
