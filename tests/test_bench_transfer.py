"""``nasframe bench transfer``: leave-one-task-out meta-transfer on synthetic task tables."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from nasframe.bench import compare, transfer
from nasframe.bench.testing import write_table
from nasframe.bench.transfer import TransferSettings, run_transfer, task_tables, write_results
from nasframe.cli import main as cli
from nasframe.config import load_config
from nasframe.errors import ConfigError
from nasframe.plugins import get_plugin_manager

TASKS = ("a", "b", "c")

#: numpy agents only (no torch): the tiny comparison of most tests
LIGHT = ["random", "rea", "reinforce", "meta-reinforce", "best-first", "rea-warm"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # one table per task, each ranking the networks its own way; validation ranks them
    # exactly as test does, so the test regret of an incumbent chosen by validation can
    # only fall
    root = tmp_path_factory.mktemp("transfer") / "tasks"
    for name in TASKS:
        write_table(root / name, depth=2, consistent=True, variant=name)
    return root


def _settings(root: Path, **values: Any) -> TransferSettings:
    defaults: dict[str, Any] = {
        "tables": [root],
        "held_out": ["a"],
        "agents": LIGHT,
        "seeds": 2,
        "budget": 5,
        "meta_episodes": 20,
        "meta_seeds": 2,
        "trial_episodes": 2,
        "table_seed": "mean",
    }
    return TransferSettings(**{**defaults, **values})


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every table query (``("query", task)``) and phase start, in the order they came."""
    from nasframe_table import TableEstimator

    events: list[tuple[str, str]] = []
    evaluate = TableEstimator.evaluate
    meta_train, test_run = transfer._meta_train, transfer._test_run

    def queried(self: Any, *args: Any, **kwargs: Any) -> Any:
        events.append(("query", Path(self.source).parent.name))
        return evaluate(self, *args, **kwargs)

    def meta(state: Any, job: tuple[str, str, int]) -> Any:
        events.append(("meta", job[1]))
        return meta_train(state, job)

    def test(state: Any, run: tuple[str, str, int]) -> Any:
        events.append(("test", run[0]))
        return test_run(state, run)

    monkeypatch.setattr(TableEstimator, "evaluate", queried)
    monkeypatch.setattr(transfer, "_meta_train", meta)
    monkeypatch.setattr(transfer, "_test_run", test)
    yield events


def _phases(events: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [event for event in events if event[0] != "query"]


def _queries(events: list[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """The tasks queried in each phase (a meta-training or test run of a held-out task)."""
    phase: tuple[str, str] | None = None
    seen: dict[tuple[str, str], set[str]] = {}
    for kind, task in events:
        if kind == "query":
            assert phase is not None, "a table was queried before any phase began"
            seen.setdefault(phase, set()).add(task)
        else:
            phase = (kind, task)
    return seen


def _check_held_out_never_seen(events: list[tuple[str, str]], held_out: list[str]) -> None:
    """Each meta-training queries only the other tasks; each test run only its task."""
    seen = _queries(events)
    for task in held_out:
        assert seen[("meta", task)] == set(TASKS) - {task}  # the others, never the held-out
        assert seen[("test", task)] == {task}
    # and the whole meta-training phase comes before the first test run
    kinds = [kind for kind, _ in events if kind != "query"]
    assert kinds == sorted(kinds)  # "meta" < "test"


def test_a_tiny_transfer_runs_in_seconds_and_regret_never_increases(
    tables: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_transfer(_settings(tables), output=out)
    assert [s.agent for s in result.summaries] == LIGHT
    assert {s.task for s in result.summaries} == {"a"}
    best = max(result.task("a").tests.values())
    for summary in result.summaries:
        assert summary.regret.shape == (2, 5)
        for curve in (*summary.regret, *summary.val_regret):
            assert np.all(np.diff(curve) <= 1e-12)  # never increases with trainings
            assert np.all(curve >= -1e-12)
        assert all(reach is None or 1 <= reach <= 5 for reach in summary.top1)
    for task, trace in result.traces:
        assert task == "a" and len(trace.hashes) == 5 == len(set(trace.hashes))
        regret = best - result.task("a").tests[trace.hashes[0]]
        assert regret >= 0
    by_agent = {s.agent: s for s in result.summaries}
    assert by_agent["random"].p_value is None
    assert all(s.p_holm is not None for s in result.summaries if s.agent != "random")
    # the meta-trained agent is tested against itself from scratch, nothing else is
    assert by_agent["meta-reinforce"].p_scratch is not None
    assert by_agent["meta-reinforce"].p_scratch_holm == pytest.approx(
        by_agent["meta-reinforce"].p_scratch
    )
    assert all(s.p_scratch is None for s in result.summaries if s.agent != "meta-reinforce")

    # the transfer list: every other task's best, then every second best, ...
    firsts = [max(result.task(name).vals, key=result.task(name).vals.__getitem__) for name in "bc"]
    listed = result.transfer_lists["a"]
    assert listed[:2] == firsts and len(listed) == len(set(listed)) <= 2 * 4
    for name in ("best-first", "rea-warm"):
        first = next(t for _, t in result.traces if t.agent == name)
        # the first episode builds the best network of b: its prefix, then it (depth 2)
        assert listed[0] in first.hashes[:2], name

    # one meta-trained policy per meta seed, its episodes spread over b and c only
    assert [(m.agent, m.task, m.meta_seed) for m in result.meta] == [
        ("meta-reinforce", "a", 0),
        ("meta-reinforce", "a", 1),
    ]
    for record in result.meta:
        assert record.episodes == {"b": 10, "c": 10}
        folder = out / "policies" / "a" / f"meta-reinforce-{record.meta_seed}"
        assert (folder / "policy.json").is_file() and (folder / "meta.json").is_file()

    written = {path.name for path in write_results(result, out)}
    assert written == {
        "summary.csv",
        "regret_trainings.csv",
        "runs.csv",
        "meta.csv",
        "settings.json",
        "regret_a.png",
    }
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["agent"] for row in rows] == LIGHT
    assert {"regret@5", "regret@5_ci95", "p_vs_random", "p_scratch_holm", "beats_scratch"} <= set(
        rows[0]
    )
    assert float(rows[0]["regret@5"]) == pytest.approx(by_agent["random"].mean_at(5), abs=1e-4)
    with (out / "regret_trainings.csv").open() as handle:
        curves = list(csv.DictReader(handle))
    assert len(curves) == len(LIGHT) * 5
    assert all(0 <= float(r["regret_low"]) <= float(r["regret_high"]) for r in curves)
    stored = (out / "runs.jsonl").read_text().splitlines()
    assert len(stored) == len(LIGHT) * 2 and json.loads(stored[0])["task"] == "a"
    card = json.loads((out / "settings.json").read_text())
    assert set(card["tables"]) == set(TASKS) and card["settings"]["budget"] == 5
    # "in seconds": the CPU of every run, with a wide margin
    assert sum(trace.cpu for _, trace in result.traces) < 30


def test_meta_training_never_queries_the_held_out_table(
    tables: Path, spy: list[tuple[str, str]]
) -> None:
    held_out = ["a", "c"]
    settings = _settings(
        tables, held_out=held_out, agents=["random", "meta-reinforce", "meta-qlearning"]
    )
    result = run_transfer(settings)
    assert [s.task for s in result.summaries] == ["a"] * 3 + ["c"] * 3
    _check_held_out_never_seen(spy, held_out)


def test_tasks_of_other_datasets_and_input_shapes(
    tmp_path: Path, spy: list[tuple[str, str]]
) -> None:
    # as the digit-task tables will be: one dataset identity and input shape per task
    for name in ("base", "small", "noisy"):
        write_table(
            tmp_path / name,
            depth=2,
            dataset="digit-tasks",
            dataset_settings={"task": name},
            variant=name,
            consistent=True,
        )
    settings = _settings(
        tmp_path, held_out=["noisy"], agents=["random", "meta-reinforce", "rea-warm"]
    )
    result = run_transfer(settings)
    shapes = {task.name: task.context.dataset.input_shape for task in result.tasks}
    assert shapes == {"base": (20, 20, 1), "small": (24, 24, 1), "noisy": (20, 20, 1)}
    assert [m.episodes for m in result.meta] == [{"base": 10, "small": 10}] * 2
    for _, trace in result.traces:
        assert len(trace.hashes) == 5
    held = {"base", "small", "noisy"}
    meta = {task for (kind, task) in _phases(spy) if kind == "meta"}
    assert meta == {"noisy"}
    for (kind, held_out), queried in _queries(spy).items():
        assert queried == ({held_out} if kind == "test" else held - {held_out})


def test_sb3_meta_agents_and_recurrent_ppo_over_the_trial_wrapper(
    tables: Path, spy: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "net_arch": "8"}
    manager = get_plugin_manager()
    config = load_config(
        None,
        {"ppo": tiny, "recurrent_ppo": {**tiny, "lstm_hidden_size": 8}},
        plugin_manager=manager,
    )
    played: dict[str, bool] = {}
    drive = compare.drive

    def noted(agent: Any, recorder: Any, *args: Any, play: bool = False, **kw: Any) -> Any:
        played[recorder.trace.agent] = play
        return drive(agent, recorder, *args, play=play, **kw)

    monkeypatch.setattr(compare, "drive", noted)
    agents = ["random", "ppo", "meta-ppo", "recurrent-ppo", "meta-recurrent-ppo"]
    settings = _settings(tables, agents=agents, meta_episodes=12, meta_seeds=1, trial_episodes=3)
    result = run_transfer(settings, plugin_manager=manager, config=config)
    _check_held_out_never_seen(spy, ["a"])
    # RL²: the meta-trained recurrent policy is frozen in the test phase (it adapts
    # through its memory); meta-trained PPO keeps learning from its meta-trained weights
    assert played == {
        "random": False,
        "ppo": False,
        "meta-ppo": False,
        "recurrent-ppo": False,
        "meta-recurrent-ppo": True,
    }
    for record in result.meta:
        assert sum(record.episodes.values()) == 12 and set(record.episodes) == {"b", "c"}
    by_agent = {s.agent: s for s in result.summaries}
    for name in ("meta-ppo", "meta-recurrent-ppo"):
        assert by_agent[name].p_scratch is not None
        assert by_agent[name].regret.shape == (2, 5)
        assert np.all(np.diff(by_agent[name].regret, axis=1) <= 1e-12)


def test_a_stopped_transfer_resumes_with_only_what_is_missing(
    tables: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settings = _settings(tables)
    whole = run_transfer(settings, output=out)
    # a kill: the meta-trained agent's runs and policies are lost, the last line torn
    lines = (out / "runs.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if '"agent":"meta-reinforce"' not in line]
    (out / "runs.jsonl").write_text("".join(kept[:-1]) + kept[-1][:20])
    shutil.rmtree(out / "policies")
    progress: list[str] = []
    resumed = run_transfer(settings, output=out, report=progress.append)
    assert resumed.resumed == len(kept) - 1
    stored = len(kept) - 1
    assert progress[0] == f"resuming: {stored} of 12 runs stored in {out}; running the other 3"
    assert sum(line.startswith("meta ") for line in progress) == 2  # retrained
    for before, after in zip(whole.summaries, resumed.summaries, strict=True):
        assert before.agent == after.agent
        assert np.array_equal(before.regret, after.regret)  # the same results
    # everything stored: nothing runs, nothing is meta-trained
    monkeypatch.setattr(transfer, "_meta_train", lambda *a: pytest.fail("meta-trained again"))
    again = run_transfer(settings, output=out)
    assert again.resumed == 12
    # another comparison is refused, --force moves the earlier one aside
    other = _settings(tables, budget=6)
    with pytest.raises(ConfigError, match=r"settings.budget: 5 there, 6 now"):
        run_transfer(other, output=out)
    monkeypatch.undo()
    run_transfer(other, output=out, force=True, warn=lambda line: None)
    moved = next(out.glob("replaced-*"))
    assert (moved / "runs.jsonl").is_file() and (moved / "policies").is_dir()


def test_the_command_prints_a_table_per_held_out_task(tables: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["bench", "transfer", "--tables", str(tables), "--held-out", "b", "--seeds", "2"]
    args += ["--budget", "5", "--meta-episodes", "10", "--meta-seeds", "1"]
    args += ["--agents", "random,meta-reinforce,reinforce,best-first", "--output", str(out)]
    args += ["--jobs", "2"]  # forked workers: the policies and the runs come back
    result = CliRunner().invoke(cli, [*args, "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "held-out b: test regret vs its best" in result.output
    for name in ("meta-reinforce", "best-first", "regret@5", "p_scratch_holm", "±"):
        assert name in result.output
    assert (out / "regret_b.png").is_file() and (out / "summary.csv").is_file()


@pytest.fixture(scope="module")
def odd_tables(tmp_path_factory: pytest.TempPathFactory, tables: Path) -> Path:
    root = tmp_path_factory.mktemp("odd")
    write_table(root / "shallow", depth=1, variant="shallow")
    shutil.copytree(tables / "a", root / "copy-of-a")
    shutil.copytree(tables / "a", root / "elsewhere" / "a")
    (root / "empty").mkdir()
    return root


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tables": ["missing"]}, "--tables: no such table folder: missing"),
        ({"tables": ["{odd}/empty"]}, "holds no table (table.csv.gz or rows.csv)"),
        ({"tables": ["{tables}/a"]}, "--tables: 1 table given; leave-one-task-out needs"),
        ({"held_out": ["d"]}, "--held-out: no task 'd' among the tables (a, b, c)"),
        (
            {"tables": ["{tables}", "{odd}/shallow"]},
            "every task's table must have the same space and depth",
        ),
        ({"tables": ["{tables}", "{odd}/copy-of-a"]}, "tasks 'a' and 'copy-of-a' are the same"),
        ({"tables": ["{tables}", "{odd}/elsewhere/a"]}, "--tables: two tables are named 'a'"),
        ({"budget": 0}, "bench transfer: --budget 0: must be an integer >= 1"),
        ({"seeds": 0}, "--seeds 0: must be an integer >= 1"),
        ({"meta_episodes": 0}, "--meta-episodes 0: must be an integer >= 1"),
        ({"trial_episodes": 0}, "--trial-episodes 0: must be an integer >= 1"),
        ({"agents": ["meta-rea"]}, "'meta-rea': only a learner can be meta-trained"),
        ({"agents": ["nobody"]}, "--agents: 'nobody'"),
    ],
)
def test_bad_input_is_one_line_naming_it(
    tables: Path, odd_tables: Path, change: dict[str, Any], message: str
) -> None:
    if "tables" in change:
        change = {
            "tables": [Path(t.format(tables=tables, odd=odd_tables)) for t in change["tables"]]
        }
    with pytest.raises(ConfigError) as raised:
        run_transfer(_settings(tables, **change))
    text = str(raised.value)
    assert message in text and "\n" not in text


def test_the_command_says_a_bad_table_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "transfer", "--tables", str(tmp_path / "none")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"error: --tables: no such table folder: {tmp_path / 'none'} "
        "(shipped task sets: digit-tasks)"
    ]


def test_the_shipped_task_set_is_found_by_name_and_its_tables_are_whole() -> None:
    from nasframe.bench import BenchTable
    from nasframe.bench.transfer import task_tables

    found = dict(task_tables(["digit-tasks"]))
    assert set(found) == {"base", "small", "clutter", "rotated", "noisy", "salt"}
    for name, folder in found.items():
        table = BenchTable.load(folder)  # the checksum of its build card holds
        assert len(table) == 400 and table.build["complete"], name
        assert f"task={name}," in table.build["dataset"]


def test_task_tables_expands_a_folder_of_tables(tables: Path) -> None:
    assert [name for name, _ in task_tables([tables])] == list(TASKS)
    assert [name for name, _ in task_tables([tables / "c", tables / "a"])] == ["c", "a"]
