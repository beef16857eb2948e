"""The ``nasframe`` command: version, help everywhere, plugins, config, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import click
import pytest
from click.testing import CliRunner
from conftest import PluginSandbox

import nasframe
from nasframe import ConfigError
from nasframe.cli import SUBCOMMANDS, TF_LOG_LEVEL, main

ROOT = Path(__file__).resolve().parents[1]

#: The hooks this module implements in its test plugins (see test_hooks_meta.py).
EXERCISED_HOOKS = ("nasframe_register_datasets", "nasframe_add_config")

PLUGIN_SOURCE = """
import nasframe


def build(**settings):
    return settings


@nasframe.hookimpl
def nasframe_register_datasets(registry):
    registry.add("blobs-v1", build, summary="blobs", section="blobs")
    registry.add("clouds-v1", build, requires=("nasframe_no_such_module",), extra="ray")


@nasframe.hookimpl
def nasframe_add_config(schema):
    schema.section("blobs", "Gaussian blobs.").add("count", int, 100, "examples", min=10)
"""


def _commands() -> list[list[str]]:
    """Every command path, subcommands of groups included (new subcommands too)."""
    paths: list[list[str]] = []
    context = click.Context(main)

    def walk(group: click.Group, ctx: click.Context, prefix: list[str]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            paths.append([*prefix, name])
            if isinstance(command, click.Group):
                walk(command, click.Context(command, parent=ctx), [*prefix, name])

    walk(main, context, [])
    return paths


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"nasframe, version {nasframe.__version__}\n"


def test_every_subcommand_is_listed_and_has_help() -> None:
    paths = _commands()
    assert {path[0] for path in paths} == set(SUBCOMMANDS)
    assert ["config", "show"] in paths and ["config", "template"] in paths
    top = CliRunner().invoke(main, ["--help"])
    assert top.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in top.output
    for path in paths:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: main {' '.join(path)}" in result.output
        short = CliRunner().invoke(main, [*path, "-h"])
        assert short.output == result.output


def test_unknown_subcommand_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["plugin"])
    assert result.exit_code == 2
    assert "No such command 'plugin'" in result.output


def test_plugins_table(sandbox: PluginSandbox) -> None:
    sandbox.monkeypatch.setenv("COLUMNS", "200")
    sandbox.monkeypatch.setenv("NASFRAME_DISABLE_PLUGINS", "blocked")
    base = sandbox.module("base", PLUGIN_SOURCE.replace("blobs", "dots").replace("clouds", "x"))
    broken = sandbox.module("broken", "raise RuntimeError('bad plugin')")
    sandbox.defaults(base=base)
    sandbox.entry_points(
        blobs=sandbox.module("blobs", PLUGIN_SOURCE),
        broken=broken,
        blocked=sandbox.module("blocked", PLUGIN_SOURCE),
    )
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    rows = [
        [cell.strip() for cell in line.strip("│┃").split("│" if "│" in line else "┃")]
        for line in result.output.splitlines()
        if line.startswith(("│", "┃"))
    ]
    assert rows[0] == ["plugin", "version", "status", "components"]
    assert rows[1:] == [
        ["base", nasframe.__version__, "loaded", "dataset: dots-v1"],
        ["", "", "", "dataset: x-v1 (unavailable)"],
        ["blobs", "", "loaded", "dataset: blobs-v1"],
        ["", "", "", "dataset: clouds-v1 (unavailable)"],
        ["blocked", "", "blocked", "-"],
        ["broken", "", "failed", "-"],
    ]
    assert result.output.splitlines()[-4:] == [
        "blocked blocked: disabled by NASFRAME_DISABLE_PLUGINS",
        f"broken failed: import of {broken} raised RuntimeError: bad plugin",
        "dataset clouds-v1 needs nasframe_no_such_module; run: pip install 'nasframe[ray]'",
        "dataset x-v1 needs nasframe_no_such_module; run: pip install 'nasframe[ray]'",
    ]
    with_hooks = CliRunner().invoke(main, ["plugins", "--hooks"])
    assert "nasframe_add_config" in with_hooks.output
    assert "nasframe_register_datasets" in with_hooks.output


def test_config_show_names_each_source(tmp_path: Path) -> None:
    path = tmp_path / "run.ini"
    path.write_text("[run]\nsteps = 50\nseed = 1\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["config", "show", "--config", str(path), "--set", "run.seed=9"]
    )
    assert result.exit_code == 0, result.output
    assert f"steps = 50  # {path}\n" in result.output
    assert "seed = 9  # override\n" in result.output
    assert "workers = 1  # default\n" in result.output
    assert result.output.startswith("[run]\n")


def test_config_show_checks_component_names(sandbox: PluginSandbox) -> None:
    sandbox.entry_points(blobs=sandbox.module("blobs", PLUGIN_SOURCE))
    ok = CliRunner().invoke(main, ["config", "show", "--set", "env.dataset=blobs"])
    assert ok.exit_code == 0, ok.output
    assert "dataset = blobs  # override" in ok.output
    assert "[blobs]\ncount = 100  # default\n" in ok.output
    bad = CliRunner().invoke(main, ["config", "show", "--set", "env.dataset=blbos"])
    assert bad.exit_code == 1
    assert bad.stderr == (
        "error: [env] dataset (override value): unknown dataset 'blbos'; did you mean "
        "'blobs'? (available: blobs-v1, clouds-v1)\n"
    )
    assert bad.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "run.steps=ten"], "[run] steps: 'ten' is not a valid int (int, >= 0)"),
        (["--set", "run.steps"], "override 'run.steps' must look like section.key=value"),
        (["--set", "rn.steps=1"], "unknown section [rn]; did you mean 'run'?"),
        (["--config", "missing.ini"], "missing.ini: configuration file does not exist"),
    ],
)
def test_user_error_is_one_line_without_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["config", "show", *args])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_debug_shows_the_exception() -> None:
    result = CliRunner().invoke(main, ["--debug", "config", "show", "--set", "run.steps=ten"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "[run] steps: 'ten' is not a valid int (int, >= 0)"


def test_config_template_to_stdout_and_file(sandbox: PluginSandbox, tmp_path: Path) -> None:
    sandbox.entry_points(blobs=sandbox.module("blobs", PLUGIN_SOURCE))
    full = CliRunner().invoke(main, ["config", "template"])
    assert full.exit_code == 0
    assert "[blobs]\n# Gaussian blobs.\n\n# examples\n# type: int, >= 10; default: 100\n" in (
        full.output
    )
    builtin = CliRunner().invoke(main, ["config", "template", "--builtin"])
    assert "[blobs]" not in builtin.output and "[run]" in builtin.output
    target = tmp_path / "config.ini"
    written = CliRunner().invoke(main, ["config", "template", "-o", str(target)])
    assert written.exit_code == 0
    assert written.stderr == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == full.output


def test_hooks_command_prints_the_reference(tmp_path: Path) -> None:
    from nasframe.cli.hooks_cmd import render_reference

    result = CliRunner().invoke(main, ["hooks"])
    assert result.exit_code == 0
    assert result.output == render_reference()
    target = tmp_path / "hooks.md"
    CliRunner().invoke(main, ["hooks", "--output", str(target)])
    assert target.read_text(encoding="utf-8") == result.output


def _console_script() -> str:
    script = Path(sys.executable).with_name("nasframe")
    if not script.exists():
        pytest.skip(f"the console script is not installed beside {sys.executable}")
    return str(script)


def test_console_script_in_a_real_process(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "NASFRAME_DISABLE_PLUGIN_AUTOLOAD": "1", "HOME": str(tmp_path)}
    script = _console_script()
    version = subprocess.run(
        [script, "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert (version.returncode, version.stdout) == (
        0,
        f"nasframe, version {nasframe.__version__}\n",
    )
    bad = subprocess.run(
        [script, "config", "show", "--set", "env.sigma=2"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr == "error: [env] sigma: 2.0 is above the maximum 1\n"
    assert bad.stdout == ""
    debug = subprocess.run(
        [script, "--debug", "config", "show", "--set", "env.sigma=2"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert debug.returncode == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.endswith(
        "nasframe.errors.ConfigError: [env] sigma: 2.0 is above the maximum 1\n"
    )


def test_plugins_command_never_imports_heavy_libraries() -> None:
    # `nasframe plugins` must work without the extras: no TensorFlow, torch or Ray import.
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from nasframe.cli import main\n"
        "result = CliRunner().invoke(main, ['plugins'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = sorted(m for m in ('tensorflow', 'torch', 'ray', 'keras') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "\n", f"imported at startup: {result.stdout}"


@pytest.mark.parametrize("command", [["hooks"], ["config", "template"]])
def test_output_to_a_missing_folder_is_a_user_error(tmp_path: Path, command: list[str]) -> None:
    target = tmp_path / "no" / "such" / "file.txt"
    result = CliRunner().invoke(main, [*command, "-o", str(target)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {target}: cannot write: No such file or directory\n"


@pytest.mark.parametrize("args", [["--help"], ["config", "show"]])
def test_the_command_turns_tensorflow_info_logging_off(args: list[str]) -> None:
    with mock.patch.dict(os.environ):  # restored afterwards: the suite's own value stays
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == TF_LOG_LEVEL == "1"


@pytest.mark.parametrize("preset", ["0", "3"])
def test_a_users_tensorflow_log_level_wins(preset: str) -> None:
    with mock.patch.dict(os.environ, {"TF_CPP_MIN_LOG_LEVEL": preset}):
        result = CliRunner().invoke(main, ["--help"])
        assert result.exit_code == 0, result.output
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == preset


def test_only_the_command_sets_the_tensorflow_log_level() -> None:
    # A fresh process without the variable: importing nasframe (the library, and even the
    # CLI module) leaves the environment alone; running the command sets it, before any
    # TensorFlow import (the command imports none here).
    code = (
        "import os, sys\n"
        "import nasframe, nasframe.cli\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
        "from click.testing import CliRunner\n"
        "assert CliRunner().invoke(nasframe.cli.main, ['--help']).exit_code == 0\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), 'tensorflow' in sys.modules)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "None\n1 False\n"
