"""A newcomer's mistakes get one clear line, not a traceback or a wrong answer (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nasframe(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasframe", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_workers_that_do_not_fit_the_local_instance_are_refused_at_once(tmp_path: Path) -> None:
    # 4 workers x 1 CPU on a 2-core laptop used to wait 126 s and end in a traceback.
    pytest.importorskip("ray")
    workers = 2 * (os.cpu_count() or 1) + 2
    code = (
        "import nasframe\n"
        "from nasframe.distributed import make_parallel_env\n"
        "try:\n"
        f"    make_parallel_env(workers={workers}, estimator='proxy', dataset='digits')\n"
        "except nasframe.NasframeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"refused: {workers} Ray workers with num_cpus=1 each need ")
    assert "the local Ray instance has" in line and "num_cpus=" in line and "\n" not in line
    result = _nasframe(
        "search", "--workers", str(workers), "--estimator", "proxy", "--steps", "1",
        "--output", "run", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and f"{workers} Ray workers with num_cpus=1" in errors[0]
    assert "Traceback" not in result.stderr


def test_a_name_in_another_case_gets_a_suggestion() -> None:
    from nasframe.errors import closest

    assert closest("PPO", ["ppo", "a2c"]) == "; did you mean 'ppo'?"
    assert closest("Digit", ["digits", "cifar10"]) == "; did you mean 'digits'?"
    assert closest("zzz", ["ppo"]) == ""


def test_an_agent_name_in_capitals_is_answered_with_the_name(tmp_path: Path) -> None:
    result = _nasframe(
        "search", "--agent", "PPO", "--estimator", "proxy", "--steps", "1", "--output", "r",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "unknown agent 'PPO'; did you mean 'ppo'?" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_section_of_a_blocked_plugin_says_it_is_blocked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nasframe

    monkeypatch.setenv("NASFRAME_DISABLE_PLUGINS", "digits")
    with pytest.raises(nasframe.ConfigError) as error:
        nasframe.load_config(overrides={"digits": {"resize": 8}})
    assert "unknown section [digits]; the plugin 'digits' is blocked" in str(error.value)
    # a section whose name is not its plugin's: the blocked plugins are listed
    with pytest.raises(nasframe.ConfigError, match=r"; plugins blocked by .*: digits"):
        nasframe.load_config(overrides={"shifted_digits": {"seed": 1}})


def test_split_fractions_name_their_section() -> None:
    import nasframe

    registry = nasframe.get_plugin_manager().registry("dataset")
    with pytest.raises(nasframe.DatasetError, match=r"^\[digits\] split fractions "):
        registry.create("digits", validation=0.6, test=0.6)


@pytest.mark.parametrize(
    ("backend", "path", "accepted"),
    [("sqlite", "x.csv", ".db or .sqlite or .sqlite3"), ("csv", "x.sqlite", ".csv")],
)
def test_a_database_path_of_another_backend_is_refused(
    backend: str, path: str, accepted: str, tmp_path: Path
) -> None:
    import nasframe

    registry = nasframe.get_plugin_manager().registry("database")
    with pytest.raises(nasframe.DatabaseError) as error:
        registry.create(backend, path=str(tmp_path / path))
    assert "is another kind of database file" in str(error.value)
    assert str(error.value).endswith(f"use a {accepted} file")
    assert not (tmp_path / path).exists()


def test_a_run_that_fails_at_start_logs_why_and_leaves_no_run(tmp_path: Path) -> None:
    bad = ["--set", "digits.validation=0.6", "--set", "digits.test=0.6"]
    args = ["search", "--estimator", "proxy", "--steps", "2", "--output", "r", "-q"]
    result = _nasframe(*args, *bad, cwd=tmp_path)
    assert result.returncode == 1 and "[digits] split fractions" in result.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["search.log"]
    log = (tmp_path / "r" / "search.log").read_text()
    assert "ERROR | the run failed: [digits] split fractions" in log
    result = _nasframe(*args, cwd=tmp_path)  # the corrected run takes the folder over
    assert result.returncode == 0, result.stderr
    assert not list((tmp_path / "r").glob("replaced-*"))


def test_help_shows_whole_summaries() -> None:
    from click.testing import CliRunner

    from nasframe.cli import main

    out = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    flat = " ".join(out.split())
    assert "Train one architecture (an NSC string) and print its evaluation." in flat
    commands = out[out.index("Commands:") :]
    assert "..." not in commands and "(e.g.\n" not in commands


class _Boom:
    """A plugin whose episode observer raises."""

    def __init__(self) -> None:
        import nasframe

        @nasframe.hookimpl
        def nasframe_episode_ended(episode: object) -> None:
            raise ValueError("no room\nin the log")

        self.nasframe_episode_ended = nasframe_episode_ended


def test_an_event_hook_that_raises_is_one_line_naming_plugin_and_hook(tmp_path: Path) -> None:
    import nasframe
    from nasframe.search import run_search

    manager = nasframe.get_plugin_manager(plugins=[("boom", _Boom())])
    config = nasframe.load_config(
        overrides={
            "run": {"steps": 30, "output": str(tmp_path / "r"), "verbosity": 0},
            "env": {"estimator": "proxy"},
        },
        plugin_manager=manager,
    )
    with pytest.raises(nasframe.PluginError) as error:
        run_search(config, plugin_manager=manager)
    assert str(error.value) == (
        "plugin 'boom' failed in nasframe_episode_ended: ValueError: no room in the log "
        "(block it with NASFRAME_DISABLE_PLUGINS=boom)"
    )
    assert isinstance(error.value.__cause__, ValueError)  # --debug shows its traceback


def test_plugins_lists_everything_when_one_plugin_is_broken(sandbox: Any) -> None:
    from click.testing import CliRunner

    from nasframe.cli import main

    typo = sandbox.module(
        "typo_plugin",
        """
        import nasframe

        @nasframe.hookimpl
        def nasframe_register_dataset(registry):
            registry.add("x-v1", dict)
        """,
    )
    boom = sandbox.module(
        "boom_plugin",
        """
        import nasframe

        @nasframe.hookimpl
        def nasframe_register_datasets(registry):
            raise RuntimeError("no data here")
        """,
    )
    sandbox.entry_points(typo=typo)
    result = CliRunner().invoke(main, ["plugins"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "typo failed: plugin 'typo' implements unknown hook" in result.output
    assert "│ typo " in result.output and "failed" in result.output  # listed in the table
    sandbox.entry_points(boom=boom)
    result = CliRunner().invoke(main, ["plugins"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "components not listed: plugin 'boom' failed in nasframe_register_datasets" in (
        result.output
    )
    assert "boom" in result.output and "loaded" in result.output


def test_make_env_with_a_config_without_database_path_speaks_python() -> None:
    import nasframe

    quickstart = ROOT / "resources" / "quickstart.ini"
    with pytest.raises(nasframe.DatabaseError) as error:
        nasframe.make_env(config=str(quickstart), estimator="proxy")
    message = str(error.value)
    assert message.startswith(f"make_env: [database] path of {quickstart} is empty")
    assert "database='memory'" in message and "--set" not in message
    env = nasframe.make_env(config=str(quickstart), estimator="proxy", database="memory")
    assert type(env.unwrapped.database).__name__ == "MemoryDB"


def test_search_says_up_front_what_it_will_do(tmp_path: Path) -> None:
    result = _nasframe(
        "search", "--estimator", "proxy", "--steps", "2", "--output", "r", cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("starting: 2 steps of agent random on digits, every new network ")
    assert "evaluated by proxy-v1, into r" in first and "--estimator proxy" in first


class _Clash:
    """A plugin registering an estimator under the name of a default one."""

    def __init__(self) -> None:
        import nasframe

        @nasframe.hookimpl
        def nasframe_register_estimators(registry: nasframe.Registry) -> None:
            registry.add("proxy-v1", dict, summary="another proxy")

        self.nasframe_register_estimators = nasframe_register_estimators


def test_a_duplicate_component_name_names_both_plugins_not_a_key(tmp_path: Path) -> None:
    # It used to read "[env] search_space (default value): estimator 'proxy-v1' is ...".
    import nasframe
    from nasframe.search import run_search

    manager = nasframe.get_plugin_manager(plugins=[("clash", _Clash())])
    version = manager.statuses["proxy"].version
    expected = (
        f"estimator 'proxy-v1' is registered by both plugin 'clash' and plugin 'proxy' "
        f"(nasframe {version}); block one with NASFRAME_DISABLE_PLUGINS, or pass "
        "replace=True in one to override"
    )
    config = nasframe.load_config(
        overrides={
            "run": {"steps": 2, "output": str(tmp_path / "r"), "verbosity": 0},
            "env": {"estimator": "proxy"},
        },
        plugin_manager=manager,
    )
    with pytest.raises(nasframe.RegistryError) as error:
        run_search(config, plugin_manager=manager)
    assert str(error.value) == expected
    with pytest.raises(nasframe.RegistryError) as error:
        nasframe.make_env(estimator="proxy", database="memory", plugin_manager=manager)
    assert str(error.value) == expected
    assert not (tmp_path / "r").exists()


def _installed_plugin(site: Path, distribution: str, module: str, source: str) -> None:
    """Install plugin ``module`` as distribution ``distribution`` 0.3 into folder ``site``.

    A ``.dist-info`` folder beside the module is what pip leaves; on ``PYTHONPATH`` its
    entry point is found by ``importlib.metadata`` like any installed plugin's.
    """
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{distribution.replace('-', '_')}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[nasframe]\nclash = {module}\n", encoding="utf-8")


def test_search_with_a_duplicate_component_name_is_one_line_naming_both(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _installed_plugin(
        site,
        "nasframe-clash",
        "nasframe_clash_plugin",
        "import nasframe\n\n\n"
        "@nasframe.hookimpl\n"
        "def nasframe_register_search_spaces(registry):\n"
        "    registry.add('chained-v1', dict)\n",
    )
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-m", "nasframe", "search", "--estimator", "proxy", "--steps", "1",
         "--output", "r"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False, env=environment,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        "error: search space 'chained-v1' is registered by both plugin 'clash' "
        "(nasframe-clash 0.3) and plugin 'spaces' (nasframe "
    )
    assert result.stderr.rstrip().endswith(
        "block one with NASFRAME_DISABLE_PLUGINS, or pass replace=True in one to override"
    )
    assert result.stderr.count("\n") == 1 and "[env]" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


class _HeadFirst:
    """An estimator plugin under which the head-only network is the best one."""

    def __init__(self) -> None:
        import dataclasses

        from nasframe_proxy import ProxyEstimator

        import nasframe

        class HeadFirst(ProxyEstimator):
            name = "head-first-v1"

            def evaluate(self, architecture: Any, dataset: Any, *, seed: Any = None) -> Any:
                evaluation = super().evaluate(architecture, dataset, seed=seed)
                if architecture.without_terminal().depth == 0:
                    return dataclasses.replace(evaluation, accuracy=0.99)
                return evaluation

        @nasframe.hookimpl
        def nasframe_register_estimators(registry: nasframe.Registry) -> None:
            registry.add("head-first-v1", HeadFirst, summary="proxy, but head only wins")

        self.nasframe_register_estimators = nasframe_register_estimators


def test_the_head_only_network_is_shown_and_stored_as_what_it_is(tmp_path: Path) -> None:
    # It used to be "1,7,0,0,0" (a terminal row) in steps.csv, summary.json and the table.
    import csv
    import io
    import json

    from click.testing import CliRunner
    from rich.console import Console

    import nasframe
    from nasframe.cli import main
    from nasframe.search import run_search

    manager = nasframe.get_plugin_manager(plugins=[("head-first", _HeadFirst())])
    output = tmp_path / "r"
    config = nasframe.load_config(
        overrides={
            "run": {"steps": 60, "output": str(output), "verbosity": 2, "plots": False},
            "env": {"estimator": "head-first"},
        },
        plugin_manager=manager,
    )
    console = Console(record=True, width=200, file=io.StringIO())
    run = run_search(config, plugin_manager=manager, console=console)
    assert run.outcome == "completed"
    with (output / "steps.csv").open(newline="", encoding="utf-8") as handle:
        steps = list(csv.DictReader(handle))
    head = [s for s in steps if s["episode_step"] == "1" and s["action_label"].startswith("term")]
    assert head, "the random agent of seed 0 ends some episode at once"
    assert {s["nsc"] for s in head} == {""} and float(head[0]["accuracy"]) == 0.99
    assert not [s for s in steps if ",7,0,0,0" in s["nsc"]]  # a terminal step logs its network
    summary = json.loads((output / "summary.json").read_text())
    assert summary["best"][0]["nsc"] == "" and summary["best"][0]["accuracy"] == 0.99
    database = manager.registry("database").create("csv", path=output / "experiments.csv")
    try:
        assert [r.nsc for r in database if r.arch_hash == head[0]["arch_hash"]] == [""]
    finally:
        database.close()
    text = console.export_text()
    assert "best architecture: head only (accuracy 0.9900" in text
    assert "│  1 │ head only " in text  # the results table
    assert "action terminal_k-0_pred1-0_pred2-0 nsc head only accuracy 0.9900" in text
    assert "7,0,0,0" not in text
    shown = CliRunner().invoke(main, ["db", "show", str(output / "experiments.csv"), "-n", "1"])
    assert shown.exit_code == 0 and "head only" in shown.output
