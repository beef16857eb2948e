"""``nasframe search`` end to end: the cheap and the real estimator, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import nasframe
from nasframe.cli import main
from nasframe.results import StepLog

ROOT = Path(__file__).resolve().parents[1]

# The command's defaults name the digits dataset and the csv database; until those
# plugins are installed there is nothing to run the command on.
pytest.importorskip("nasframe_digits")
pytest.importorskip("nasframe_csv")


def search(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["search", *args])
    return result.exit_code, result.output


def records(path: Path) -> list[nasframe.Record]:
    manager = nasframe.get_plugin_manager()
    database = manager.registry("database").create("csv", path=path)
    try:
        return list(database)
    finally:
        database.close()


@pytest.mark.parametrize("agent", ["random", "ppo", "a2c", "dqn", "recurrent-ppo", "maskable-ppo"])
def test_cheap_estimator_each_agent(tmp_path: Path, agent: str) -> None:
    out = tmp_path / agent
    code, output = search(
        "--agent", agent, "--estimator", "proxy", "--steps", "200", "--output", str(out),
        "--seed", "3", "--set", "run.plots=false",
    )  # fmt: skip
    assert code == 0, output
    assert "completed: 200 steps" in output
    assert "best architecture: " in output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agent"] == f"{agent}-v1" and summary["steps"] == 200
    assert summary["dataset"] == "digits" and summary["estimator"] == "proxy"
    rows = StepLog(out / "steps.csv").read()
    assert len(rows) == 200
    stored = records(out / "experiments.csv")
    assert len(stored) == summary["trainings"] == len({r.arch_hash for r in stored})
    assert summary["best"][0]["accuracy"] == max(r.evaluation.accuracy for r in stored)


@pytest.mark.slow
def test_real_keras_estimator_few_steps(tmp_path: Path) -> None:
    pytest.importorskip("nasframe_keras")
    out = tmp_path / "keras"
    code, output = search(
        "--estimator", "keras", "--dataset", "digits", "--steps", "4", "--output", str(out),
        "--set", "keras.epochs=1", "--set", "digits.resize=8", "--set", "env.max_steps=2",
    )  # fmt: skip
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["estimator"] == "keras"
    stored = records(out / "experiments.csv")
    assert stored and all(r.estimator.startswith("keras") for r in stored)
    ok = [r for r in stored if r.evaluation.ok]
    assert ok and all(r.evaluation.epochs == 1 and r.evaluation.params > 0 for r in ok)
    assert max(r.evaluation.accuracy for r in ok) > 0.1  # trained: better than chance
    assert (out / "rewards.png").is_file() and (out / "best_architecture.png").is_file()


def _wait_for_rows(path: Path, rows: int, process: subprocess.Popen[str], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"search ended early: {process.communicate()}")
        if path.is_file() and len(path.read_text().splitlines()) > rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {rows} steps within {limit} s")


@pytest.mark.slow
def test_sigint_mid_run_leaves_a_consistent_resumable_folder(tmp_path: Path) -> None:
    pytest.importorskip("nasframe_keras")
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "nasframe", "search", "--estimator", "keras", "--steps", "12",
        "--output", str(out), "--set", "keras.epochs=1", "--set", "digits.resize=8",
        "--set", "run.plots=false",
    ]  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    _wait_for_rows(out / "steps.csv", 3, process, limit=300)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "resume with: nasframe search --estimator keras --steps 12" in stdout
    assert "Traceback" not in stderr

    rows = StepLog(out / "steps.csv").read()
    state = json.loads((out / "state.json").read_text())
    assert state["outcome"] == "interrupted" and 3 <= len(rows) < 12
    assert state["steps"] == len(rows)
    first = records(out / "experiments.csv")
    assert len(first) == state["trainings"]  # every training stored, none half-written
    assert len({r.arch_hash for r in first}) == len(first)
    assert (out / "agent.json").is_file()

    again = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and summary["steps"] == 12
    assert summary["resumed_from_step"] == len(rows)
    stored = records(out / "experiments.csv")
    # nothing retrained: the second session trained exactly the networks that were new
    assert summary["trainings"] == len(stored) == len({r.arch_hash for r in stored})
    assert summary["session_trainings"] == len(stored) - len(first)
    assert [r.step for r in StepLog(out / "steps.csv").read()] == list(range(1, 13))


def test_rerun_reuses_every_evaluation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--estimator", "proxy", "--steps", "100", "--output", str(out), "-q"]
    assert search(*args)[0] == 0
    stored = len(records(out / "experiments.csv"))
    code, output = search(*args[:3], "150", *args[4:])  # extend the finished run
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_step"] == 100 and summary["steps"] == 150
    assert summary["trainings"] == len(records(out / "experiments.csv"))
    assert summary["trainings"] - stored == summary["session_trainings"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--agent", "rndom"],
            "error: [run] agent (override value): unknown agent 'rndom'; did you mean "
            "'random'? (available: a2c-v1, dqn-v1, maskable-ppo-v1, ppo-v1, qlearning-v1, "
            "random-v1, rea-v1, recurrent-ppo-v1, reinforce-v1, tpe-v1)",
        ),
        (["--dataset", "mnistt"], "error: [env] dataset (override value): unknown dataset"),
        (["--space", "chainde"], "error: [env] search_space (override value): unknown search"),
        (["--steps", "0"], "error: [run] steps and [run] episodes are both 0: the budget must"),
        (["--steps", "-4"], "error: [run] steps: -4 is below the minimum 0"),
        (["--episodes", "-1"], "error: [run] episodes: -1 is below the minimum 0"),
        (["-q", "-v"], "error: --quiet and --verbose exclude each other; give one"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, output = search("--estimator", "proxy", "--output", str(out), *args)
    assert code == 1
    assert output.startswith(message)
    assert output.count("\n") == 1 and "Traceback" not in output
    assert not out.exists()


def test_other_configuration_refused_then_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = ["--estimator", "proxy", "--steps", "20", "--output", str(out), "-q"]
    assert search(*base)[0] == 0
    code, output = search(*base, "--space", "pointer")
    assert code == 1
    assert output.startswith(f"error: output folder {out} holds a run with a different config")
    assert "[env] search_space: 'chained' there, 'pointer' now" in output
    assert output.count("\n") == 1
    code, output = search(*base, "--space", "pointer", "--force")
    assert code == 0, output
    assert json.loads((out / "summary.json").read_text())["search_space"] == "pointer"
    assert any(p.name.startswith("replaced-") for p in out.iterdir())


def test_shipped_configs_load(tmp_path: Path) -> None:
    pytest.importorskip("nasframe_keras")
    pytest.importorskip("nasframe_metadataset")
    for name in ("quickstart.ini", "experiment1.ini"):
        config = nasframe.load_config(ROOT / "resources" / name)
        nasframe.check_components(config, nasframe.get_plugin_manager())
    quick = nasframe.load_config(ROOT / "resources" / "quickstart.ini")
    assert quick.get("env", "estimator") == "keras" and quick.get("env", "dataset") == "digits"
    meta = nasframe.load_config(ROOT / "resources" / "experiment1.ini")
    assert meta.get("run", "tasks") == "omniglot:8000,vgg_flower:7000,dtd:7000"
    assert meta.get("run", "agent") == "recurrent-ppo" and meta.get("run", "meta_rl") is True


def test_search_help_lists_every_option() -> None:
    result = CliRunner().invoke(main, ["search", "--help"])
    assert result.exit_code == 0
    for option in (
        "--config", "--set", "--agent", "--steps", "--episodes", "--seed", "--output",
        "--dataset", "--estimator", "--space", "--workers", "--ray-address", "--resume",
        "--force", "--quiet", "--verbose",
    ):  # fmt: skip
        assert option in result.output


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["random", "ppo"])
def test_workers_evaluate_on_ray(tmp_path: Path, agent: str) -> None:
    pytest.importorskip("ray")
    pytest.importorskip("nasframe.distributed")
    out = tmp_path / "ray"
    code, output = search(
        "--agent", agent, "--estimator", "proxy", "--workers", "2", "--steps", "40",
        "--output", str(out), "-q", "--set", "run.plots=false",
    )  # fmt: skip
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and 40 <= summary["steps"] <= 41
    rows = StepLog(out / "steps.csv").read()
    assert [r.step for r in rows] == list(range(1, summary["steps"] + 1))
    stored = records(out / "experiments.csv")
    assert summary["trainings"] == len(stored) == len({r.arch_hash for r in stored})


@pytest.mark.slow
def test_killed_run_resumes_with_every_stored_evaluation(tmp_path: Path) -> None:
    pytest.importorskip("nasframe_keras")
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "nasframe", "search", "--estimator", "keras", "--steps", "8",
        "--output", str(out), "--set", "keras.epochs=1", "--set", "digits.resize=8",
        "--set", "run.plots=false", "--set", "run.checkpoint_every=2",
    ]  # fmt: skip
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    _wait_for_rows(out / "steps.csv", 3, process, limit=300)
    process.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
    process.communicate(timeout=60)
    before = records(out / "experiments.csv")
    logged = StepLog(out / "steps.csv").read()
    assert len(logged) >= 3

    again = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcome"] == "completed" and summary["steps"] == 8
    assert summary["resumed_from_step"] == len(logged)
    stored = records(out / "experiments.csv")
    assert {r.arch_hash for r in before} <= {r.arch_hash for r in stored}
    assert len(stored) == len({r.arch_hash for r in stored})  # none trained twice
    assert summary["session_trainings"] == len(stored) - len(before)


def test_quiet_and_verbose(tmp_path: Path) -> None:
    code, output = search(
        "--estimator", "proxy", "--steps", "5", "--output", str(tmp_path / "q"), "-q"
    )
    assert code == 0 and output == ""
    code, output = search(
        "--estimator", "proxy", "--steps", "5", "--output", str(tmp_path / "v"), "-v"
    )
    assert code == 0, output
    assert "step 1 episode 1 task digits action " in output
    assert "Best architectures" in output
    log = (tmp_path / "v" / "search.log").read_text()
    assert "step 5 episode" in log
    assert "step 1 episode" not in (tmp_path / "q" / "search.log").read_text()
