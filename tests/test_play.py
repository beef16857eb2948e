"""nasframe play: a saved agent runs episodes without learning; results as a search's."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

import nasframe
from nasframe.cli import main
from nasframe.results import StepLog
from nasframe.search import run_search


def quiet() -> Console:
    return Console(file=io.StringIO(), width=100)


def search(tmp_path: Path, agent: str, steps: int, **sections: dict[str, Any]) -> Path:
    """A finished search with the cheap proxy estimator; its output folder."""
    output = tmp_path / f"search-{agent}"
    values: dict[str, dict[str, Any]] = {
        "run": {"agent": agent, "steps": steps, "output": output, "verbosity": 0, "plots": False},
        "env": {"estimator": "proxy", "dataset": "digits", "max_steps": 4},
    }
    values.update(sections)
    manager = nasframe.get_plugin_manager()
    config = nasframe.load_config(None, values, plugin_manager=manager)
    assert run_search(config, plugin_manager=manager, console=quiet()).outcome == "completed"
    return output


def play_config(source: Path, agent_file: Path, output: Path, episodes: int) -> Any:
    from nasframe.finalize import load_run_config

    return load_run_config(
        source,
        None,
        {"run": {"play": str(agent_file), "output": output, "episodes": episodes, "steps": 0}},
        plugin_manager=nasframe.get_plugin_manager(),
    )


def test_random_agent_plays_episodes_and_writes_a_searchs_results(tmp_path: Path) -> None:
    source = search(tmp_path, "random", 12)
    saved = (source / "agent.json").read_bytes()
    result = CliRunner().invoke(main, ["play", str(source), "--episodes", "5", "-q"])
    assert result.exit_code == 0, result.output
    played = source / "play"
    rows = StepLog(played / "steps.csv").read()
    assert sum(row.done for row in rows) == 5
    summary = json.loads((played / "summary.json").read_text())
    assert summary["episodes"] == 5 and summary["outcome"] == "completed"
    assert summary["best"], "the best architectures are listed as a search lists them"
    assert (played / "experiments.csv").is_file()
    stored = json.loads((played / "run.json").read_text())
    assert stored["identity"]["run"]["play"] == str(source / "agent.json")
    # the saved agent is read, never written back, and the play run saves none
    assert (source / "agent.json").read_bytes() == saved
    assert not (played / "agent.json").exists()


@pytest.mark.slow
def test_ppo_agent_plays_without_changing_its_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    ppo = {"n_steps": 8, "batch_size": 8, "n_epochs": 1}
    source = search(tmp_path, "ppo", 16, ppo=ppo)
    agent_file = source / "agent.zip"
    saved = agent_file.read_bytes()
    config = play_config(source, agent_file, tmp_path / "played", episodes=4)
    run = run_search(config, plugin_manager=nasframe.get_plugin_manager(), console=quiet())
    assert run.outcome == "completed" and run.episodes == 4
    assert run.steps >= 4
    played: Any = run.agent
    # A fresh agent loaded from the same file holds exactly the weights the player ends with.
    from nasframe_agents.sb3 import SB3Agent

    fresh = SB3Agent("ppo", run.env, seed=0, **ppo)
    fresh.load(agent_file)
    after = played.model.policy.state_dict()
    before = fresh.model.policy.state_dict()
    assert after.keys() == before.keys()
    for name in before:
        assert torch.equal(after[name], before[name]), name
    # no learning step ran: the step counter is the saved one
    assert played.num_timesteps == fresh.num_timesteps == 16
    assert agent_file.read_bytes() == saved
    assert len(StepLog(run.output / "steps.csv").read()) == run.steps


def test_play_refuses_a_missing_agent_file(tmp_path: Path) -> None:
    source = search(tmp_path, "random", 4)
    config = play_config(source, tmp_path / "nope.json", tmp_path / "played", episodes=1)
    with pytest.raises(nasframe.ConfigError, match=r"\[run\] play: .*nope.json: no such"):
        run_search(config, plugin_manager=nasframe.get_plugin_manager(), console=quiet())


def test_play_cli_errors_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["play", str(empty)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {empty}: no saved agent (agent.zip or agent.json); give a search's output "
        "folder or the agent file itself"
    ]
    (empty / "agent.json").write_text("{}")
    result = CliRunner().invoke(main, ["play", str(empty)])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"error: {empty}: not a search's output folder (it has no run.json)"
    )


def test_plays_start_line_suggests_only_options_play_accepts(tmp_path: Path) -> None:
    import re

    import click

    from nasframe.cli.play_cmd import play
    from nasframe.cli.search_cmd import search as search_command

    def accepted(command: click.Command) -> set[str]:
        return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}

    source = search(tmp_path, "random", 4)
    lines = {}
    for budget in (["--episodes", "1"], ["--steps", "2"]):
        result = CliRunner().invoke(main, ["play", str(source), *budget, "--force"])
        assert result.exit_code == 0, result.output
        lines[budget[0]] = first = result.output.splitlines()[0]
        assert first.startswith("starting: "), result.output
        suggested = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", first))
        assert suggested and suggested <= accepted(play), first
    assert "--episodes N shortens it" in lines["--episodes"]
    assert "--steps N shortens it" in lines["--steps"]
    assert "--estimator" not in lines["--episodes"] and "--estimator" not in accepted(play)
    # a search's own line keeps its hint, every option of it one `search` accepts
    result = CliRunner().invoke(
        main, ["search", "--estimator", "proxy", "--steps", "2", "--output", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    suggested = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", first))
    assert "--estimator" in suggested and suggested <= accepted(search_command), first
