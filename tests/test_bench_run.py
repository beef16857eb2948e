"""``nasframe bench run``: agents compared on table-v1, regret curves and their statistics."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nasframe
from nasframe.bench import compare
from nasframe.bench.compare import (
    CompareSettings,
    compare_agents,
    holm,
    regret_curve,
    summary_header,
    summary_rows,
    write_results,
)
from nasframe.bench.testing import write_table
from nasframe.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # validation ranks networks exactly as test does: the test regret of an incumbent
    # chosen by validation can only fall
    return write_table(tmp_path_factory.mktemp("bench") / "t", depth=2, consistent=True)


def test_regret_curve_follows_the_incumbent_by_validation() -> None:
    score = {"a": 0.5, "b": 0.8, "c": 0.6, "d": 0.9}
    # b is seen as best (0.7) and stays incumbent while c (0.6 seen) and a tie (0.7) come
    curve = regret_curve(["a", "b", "c", "a", "d"], [0.4, 0.7, 0.6, 0.7, 0.95], score, 0.9)
    assert np.allclose(curve, [0.4, 0.1, 0.1, 0.1, 0.0])
    # an incumbent with a better validation but a worse test accuracy raises the regret
    assert np.allclose(regret_curve(["b", "c"], [0.5, 0.6], score, 0.9), [0.1, 0.3])


def test_two_seeds_run_in_seconds_and_regret_never_increases(table: Path, tmp_path: Path) -> None:
    settings = CompareSettings(
        table=table, agents=["random", "rea", "tpe"], seeds=2, budget=25, table_seed="mean"
    )
    comparison = compare_agents(settings)
    assert [s.agent for s in comparison.summaries] == ["random", "rea", "tpe"]
    bench = nasframe.BenchTable.load(table)
    assert comparison.best_test == pytest.approx(max(bench.mean_tests().values()))
    for summary in comparison.summaries:
        assert summary.regret.shape == (2, 25)
        for curve in (*summary.regret, *summary.val_regret):
            assert np.all(np.diff(curve) <= 1e-12)  # never increases with trainings
            assert np.all(curve >= -1e-12)
        for reach in summary.top1:
            assert reach is None or 1 <= reach <= 25
    for trace in comparison.traces:
        assert len(trace.hashes) == 25 == len(set(trace.hashes))  # distinct trainings
        assert trace.steps >= 25
    # "in seconds": the CPU of all six runs, agent imports included, with a wide margin
    assert sum(trace.cpu for trace in comparison.traces) < 30
    random, *others = comparison.summaries
    assert random.p_value is None
    assert all(0.0 <= s.p_value <= 1.0 for s in others if s.p_value is not None)

    written = write_results(comparison, tmp_path / "out")
    names = {path.name for path in written}
    assert {"regret_trainings.csv", "regret_seconds.csv", "runs.csv", "summary.csv"} <= names
    with (tmp_path / "out" / "regret_trainings.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["agent"] == "rea"]
    assert [int(row["trainings"]) for row in rows] == list(range(1, 26))
    means = [float(row["regret_mean"]) for row in rows]
    assert means == pytest.approx(list(comparison.summaries[1].regret.mean(axis=0)), abs=1e-6)
    assert all(
        float(r["regret_low"]) <= float(r["regret_mean"]) <= float(r["regret_high"]) for r in rows
    )


def test_validation_regret_never_increases_where_test_regret_may(tmp_path: Path) -> None:
    # a table whose test accuracy does not follow validation: the test regret of the
    # incumbent may rise, the validation regret with seed-mean answers never does
    loose = write_table(tmp_path / "t", depth=2)
    settings = CompareSettings(
        table=loose, agents=["random", "rea"], seeds=2, budget=30, table_seed="mean"
    )
    comparison = compare_agents(settings)
    for summary in comparison.summaries:
        for curve in summary.val_regret:
            assert np.all(np.diff(curve) <= 1e-12)
            assert curve[-1] >= -1e-12


def test_memoized_steps_give_what_the_plain_env_gives(
    table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = CompareSettings(table=table, agents=["random", "rea"], seeds=2, budget=20)
    memoized = compare_agents(settings)
    monkeypatch.setattr(compare, "_memoize", lambda space, encoder: None)
    monkeypatch.setattr(compare, "_table_env", lambda base, masks: base)
    plain = compare_agents(settings)
    assert [(t.agent, t.seed, t.hashes, t.rewards, t.steps) for t in memoized.traces] == [
        (t.agent, t.seed, t.hashes, t.rewards, t.steps) for t in plain.traces
    ]


def test_the_step_cap_stops_a_run_and_the_summary_says_so(table: Path) -> None:
    # one step per training of the budget: a random search revisits some networks, so
    # it stops at the cap before it has spent its budget
    settings = CompareSettings(table=table, agents=["random"], seeds=2, budget=40, step_factor=1)
    comparison = compare_agents(settings)
    (summary,) = comparison.summaries
    for i, trace in enumerate(comparison.traces):
        assert trace.steps == 40 and len(trace.hashes) < 40
        assert summary.trainings[i] == len(trace.hashes)
        tail = summary.regret[i, len(trace.hashes) - 1 :]
        assert np.all(tail == tail[0])  # the curve keeps its last incumbent
    header, (row,) = summary_header(comparison), summary_rows(comparison)
    assert row[header.index("budget_spent")] == "0/2"
    with pytest.raises(nasframe.ConfigError, match=r"bench run: step_factor = 0: must be >= 1"):
        compare_agents(CompareSettings(table=table, agents=["random"], step_factor=0))


def test_a_time_budget_stops_each_run_at_its_simulated_seconds(table: Path) -> None:
    settings = CompareSettings(
        table=table, agents=["random"], seeds=2, budget=50, seconds=40.0, table_seed="0"
    )
    comparison = compare_agents(settings)
    for trace in comparison.traces:
        assert sum(trace.seconds[:-1]) < 40.0 <= sum(trace.seconds)
        assert len(trace.hashes) < 50
    assert comparison.seconds_grid[-1] == pytest.approx(40.0)
    values = comparison.seconds_regret["random"]
    assert values.shape == (2, len(comparison.seconds_grid))


def test_parallel_runs_give_the_serial_results(table: Path) -> None:
    settings = CompareSettings(table=table, agents=["random", "rea"], seeds=2, budget=12)
    serial = compare_agents(settings)
    settings.jobs = 2
    parallel = compare_agents(settings)
    assert [(t.agent, t.seed, t.hashes, t.rewards) for t in parallel.traces] == [
        (t.agent, t.seed, t.hashes, t.rewards) for t in serial.traces
    ]


def test_first_seed_runs_the_later_seeds_of_a_longer_comparison(
    table: Path, tmp_path: Path
) -> None:
    # held-out seeds: seeds 2 and 3 alone give what they gave as part of seeds 0-3
    whole = compare_agents(
        CompareSettings(table=table, agents=["random", "rea"], seeds=4, budget=12)
    )
    later = compare_agents(
        CompareSettings(table=table, agents=["random", "rea"], seeds=2, budget=12, first_seed=2)
    )
    assert [(t.agent, t.seed) for t in later.traces] == [
        ("random", 2),
        ("random", 3),
        ("rea", 2),
        ("rea", 3),
    ]
    kept = [(t.agent, t.seed, t.hashes) for t in whole.traces if t.seed >= 2]
    assert [(t.agent, t.seed, t.hashes) for t in later.traces] == kept
    for mine, theirs in zip(later.summaries, whole.summaries, strict=True):
        assert mine.top1 == theirs.top1[2:]
    write_results(later, tmp_path)
    with (tmp_path / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["seed"] for row in rows] == ["2", "3", "2", "3"]
    expected = ["" if reach is None else str(reach) for s in later.summaries for reach in s.top1]
    assert [row["top1_at"] for row in rows] == expected


def test_holm_adjusts_for_every_agent_tested() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, never below a smaller one's
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.9]) == [1.0, 1.0] and holm([0.2]) == [0.2] and holm([]) == []


def test_beats_random_is_decided_on_the_holm_adjusted_p_value(table: Path) -> None:
    agents = ["random", "rea", "tpe", "reinforce", "qlearning"]
    comparison = compare_agents(CompareSettings(table=table, agents=agents, seeds=4, budget=8))
    tested = comparison.summaries[1:]
    raw = [s.p_value for s in tested]
    assert all(p is not None for p in raw) and comparison.summaries[0].p_holm is None
    assert [s.p_holm for s in tested] == pytest.approx(holm(raw))  # type: ignore[arg-type]
    for s in tested:
        assert s.p_holm is not None and s.p_value is not None and s.p_holm >= s.p_value
        assert s.beats_random == (s.p_holm < 0.05)
    header = summary_header(comparison)
    assert header[-3:] == ["p_vs_random", "p_holm", "beats_random"]
    rows = summary_rows(comparison)
    assert [row[-2] for row in rows[1:]] == [f"{s.p_holm:.3g}" for s in tested]


def test_cli_prints_the_table_and_writes_the_results(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["bench", "run", "--table", str(table), "--agents", "random,rea", "--seeds", "2"]
    result = CliRunner().invoke(
        cli, [*args, "--budget", "50", "--output", str(out), "--quiet"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "test regret vs the table's best" in result.output
    for name in ("random", "rea", "budget_spent", "top1_median", "regret@50", "beats_random"):
        assert name in result.output
    with (out / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [row["agent"] for row in summary] == ["random", "rea"]
    assert summary[1]["beats_random"] in ("yes", "no")
    assert float(summary[0]["regret@50"]) >= 0
    # the budget is a checkpoint (50): one column, not two
    assert len(result.output.split("regret@50")) == 2


def test_the_results_say_what_was_compared_on_which_table(table: Path, tmp_path: Path) -> None:
    import json

    settings = CompareSettings(table=table, agents=["random"], seeds=2, budget=5)
    comparison = compare_agents(settings)
    written = write_results(comparison, tmp_path / "out")
    assert tmp_path / "out" / "settings.json" in written
    saved = json.loads((tmp_path / "out" / "settings.json").read_text(encoding="utf-8"))
    assert saved["nasframe"] == nasframe.__version__
    assert saved["settings"]["table"] == str(table) and saved["settings"]["budget"] == 5
    assert saved["settings"]["agents"] == ["random"]
    assert saved["settings"]["evaluate"] == "every_step"
    card = json.loads((table / "build.json").read_text(encoding="utf-8"))
    assert saved["table"]["sha256"] == card["sha256"]
    assert saved["table"]["source"].endswith("table.csv.gz")
    assert saved["best_test"] == comparison.best_test
    # the settings read back give the same comparison
    again = compare_agents(CompareSettings(**{**saved["settings"], "table": Path(table)}))
    assert np.array_equal(again.summaries[0].regret, comparison.summaries[0].regret)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "rae"], "unknown agent 'rae'; did you mean 'rea'?"),
        (["--budget", "0"], "bench run: seeds (2) and budget (0) must be >= 1"),
        (["--table-seed", "7"], "[table] seed = '7': "),
        (["--epochs", "9"], "[table] epochs = 9: "),
        (["--jobs", "0"], "bench run: jobs = 0: must be >= 1"),
        (["--step-factor", "0"], "bench run: step_factor = 0: must be >= 1"),
        (["--first-seed", "-1"], "bench run: first_seed = -1: must be >= 0"),
    ],
)
def test_bad_input_is_one_line(table: Path, tmp_path: Path, args: list[str], message: str) -> None:
    base = ["bench", "run", "--table", str(table), "--seeds", "2", "--output", str(tmp_path)]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_a_table_without_its_build_card_is_refused(table: Path, tmp_path: Path) -> None:
    (tmp_path / "table.csv.gz").write_bytes((table / "table.csv.gz").read_bytes())
    with pytest.raises(nasframe.ConfigError, match=r"needs a table built by nasframe bench build"):
        compare_agents(CompareSettings(table=tmp_path, agents=["random"], seeds=1, budget=5))


def test_rl_agents_run_on_the_table(table: Path) -> None:
    comparison = compare_agents(
        CompareSettings(table=table, agents=["a2c"], seeds=1, budget=15, step_factor=4)
    )
    (summary,) = comparison.summaries
    assert summary.runs == 1 and 1 <= len(comparison.traces[0].hashes) <= 15
    assert not math.isnan(summary.mean_at(15))


def test_table_query_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.table_query", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "ratio proxy / table: query" in result.stdout


def test_a_maximum_depth_runs_the_shallower_benchmark(tmp_path: Path) -> None:
    deep = write_table(tmp_path / "deep", depth=3, seeds=(0,), consistent=True)
    settings = CompareSettings(table=deep, agents=["random"], seeds=2, budget=20, depth=2)
    comparison = compare_agents(settings)
    shallow = [r for r in nasframe.BenchTable.load(deep).rows if r.depth <= 2]
    assert comparison.best_test == pytest.approx(max(r.test for r in shallow))
    assert comparison.best_test < max(r.test for r in nasframe.BenchTable.load(deep).rows)


# -- a comparison keeps what it has done (issue 32, items 2 and 3) ----------------------

# `nasframe bench run` whose runs of the seeds named in argv[1] ("1,2") sleep argv[2]
# seconds after they finish, each writing its process id into the folder argv[3]: a
# comparison that is under way when the test stops it.
SLOW_BENCH_RUN = """\
import os, sys, time
from pathlib import Path
from nasframe.bench import compare
from nasframe.cli import main

slow_seeds = {int(s) for s in sys.argv[1].split(",") if s}
pause, pids = float(sys.argv[2]), Path(sys.argv[3])
original = compare._run_one

def slow(context, name, seed):
    (pids / f"{os.getpid()}").touch()
    trace = original(context, name, seed)
    if seed in slow_seeds:
        time.sleep(pause)
    return trace

compare._run_one = slow
sys.argv = ["nasframe", *sys.argv[4:]]
main()
"""


def _stored_lines(folder: Path) -> list[str]:
    path = folder / compare.RUNS_FILE
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _slow_bench_run(
    tmp_path: Path, slow_seeds: str, pause: float, args: list[str]
) -> tuple[subprocess.Popen[str], Path]:
    pids = tmp_path / "pids"
    pids.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_BENCH_RUN, slow_seeds, str(pause), str(pids), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, pids


def _wait_for_runs(process: subprocess.Popen[str], folder: Path, count: int) -> None:
    import time

    deadline = time.monotonic() + 120
    while len(_stored_lines(folder)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the runs were not stored in time"
        time.sleep(0.05)


def _run_args(table: Path, out: Path, *extra: str) -> list[str]:
    args = ["bench", "run", "--table", str(table), "--agents", "random,rea", "--seeds", "2"]
    return [*args, "--budget", "12", "--table-seed", "random", "--output", str(out), *extra]


def test_a_comparison_killed_with_sigkill_resumes_to_the_uninterrupted_summary(
    table: Path, tmp_path: Path
) -> None:
    import signal

    whole = tmp_path / "whole"
    result = CliRunner().invoke(cli, _run_args(table, whole, "--quiet"), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    killed = tmp_path / "killed"
    # seed 1's runs hang after they finish: killed while random seed 1 waits, one run stored
    process, _ = _slow_bench_run(tmp_path, "1", 600, _run_args(table, killed))
    try:
        _wait_for_runs(process, killed, 1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    assert len(_stored_lines(killed)) == 1
    assert not (killed / "summary.csv").exists()
    # a kill while a run was being written leaves a torn last line: it is dropped
    with (killed / compare.RUNS_FILE).open("a", encoding="utf-8") as handle:
        handle.write('{"agent": "random", "seed": 1, "hashes": ["ab')
    resumed = CliRunner().invoke(cli, _run_args(table, killed), catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 1 of 4 runs stored in" in resumed.stderr
    # only the three missing runs ran, numbered after the stored one
    ran = [line for line in resumed.stderr.splitlines() if line.startswith("run ")]
    assert [line.split(":")[0] for line in ran] == ["run 2 of 4", "run 3 of 4", "run 4 of 4"]
    assert (killed / "summary.csv").read_text() == (whole / "summary.csv").read_text()
    assert (killed / "runs.csv").read_text().count("\n") == 5
    assert len(_stored_lines(killed)) == 4
    for name in ("regret_trainings.csv", "regret_seconds.csv"):
        assert (killed / name).read_text() == (whole / name).read_text()


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_stops_the_workers_at_once_and_keeps_the_finished_runs(
    table: Path, tmp_path: Path, jobs: int
) -> None:
    import os
    import signal
    import time

    out = tmp_path / "out"
    args = _run_args(table, out, "--jobs", str(jobs))
    # seed 1's runs take ten minutes longer: the comparison is under way for a long time
    process, pids = _slow_bench_run(tmp_path, "1", 600, args)
    try:
        _wait_for_runs(process, out, 1)
        stored = len(_stored_lines(out))
        time.sleep(0.5)  # the runs of seed 1 are under way
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert took < 10, took
    lines = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    kept = len(_stored_lines(out))
    assert kept >= stored
    assert lines == [
        f"stopped: {kept} of 4 runs stored in {out}; run the same command to resume: "
        f"nasframe {' '.join(args)}"
    ], stderr
    assert "Traceback" not in stderr, stderr
    # every worker process has ended
    workers = [int(path.name) for path in pids.iterdir() if int(path.name) != process.pid]
    assert len(workers) == (2 if jobs == 2 else 0)
    for pid in workers:
        deadline = time.monotonic() + 5
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"worker {pid} still runs"
            time.sleep(0.05)
    # the stored runs are those the same command does not run again
    resumed = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming: {kept} of 4 runs stored in {out}" in resumed.stderr
    assert len(_stored_lines(out)) == 4


def test_stored_runs_read_back_as_the_runs_they_were(table: Path, tmp_path: Path) -> None:
    settings = CompareSettings(table=table, agents=["random", "tpe"], seeds=2, budget=10)
    first = compare_agents(settings, output=tmp_path)
    assert first.resumed == 0 and len(_stored_lines(tmp_path)) == 4
    assert compare.read_runs(tmp_path / compare.RUNS_FILE) == first.traces
    lines: list[str] = []
    again = compare_agents(settings, output=tmp_path, report=lines.append)
    assert again.resumed == 4 and again.traces == first.traces
    assert lines == [f"all 4 runs are stored in {tmp_path}: nothing to run"]
    for mine, theirs in zip(again.summaries, first.summaries, strict=True):
        assert np.array_equal(mine.regret, theirs.regret) and mine.top1 == theirs.top1
    # force starts over even in the same comparison: the stored runs are moved aside
    warnings: list[str] = []
    fresh = compare_agents(settings, output=tmp_path, force=True, warn=warnings.append)
    (moved,) = tmp_path.glob("replaced-*")
    assert warnings == [f"bench run: moved the earlier comparison's files to {moved} (--force)"]
    assert fresh.resumed == 0  # run again: the same runs, in their own wall seconds
    assert [(t.hashes, t.rewards) for t in fresh.traces] == [
        (t.hashes, t.rewards) for t in first.traces
    ]
    assert len(_stored_lines(moved)) == 4 and len(_stored_lines(tmp_path)) == 4
    # a damaged line that is not the last is named, with its line number
    path = tmp_path / compare.RUNS_FILE
    text = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join([text[0], "{not json", *text[1:]]), encoding="utf-8")
    with pytest.raises(nasframe.NasframeError, match=rf"{compare.RUNS_FILE} line 2: not a stored"):
        compare_agents(settings, output=tmp_path)


def test_another_comparison_in_the_folder_is_refused_unless_force(
    table: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    big = _run_args(table, out, "--quiet")
    big[big.index("--seeds") + 1] = "3"
    result = CliRunner().invoke(cli, big, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = (out / "summary.csv").read_text()
    small = _run_args(table, out, "--quiet")  # 2 seeds: the 6-run summary must stay
    result = CliRunner().invoke(cli, small)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line == (
        f"error: bench run: {out} holds the results of another comparison (settings.seeds: "
        "3 there, 2 now); pass --force to start over (its files are moved into "
        "replaced-<time>/ there) or choose another --output"
    )
    assert (out / "summary.csv").read_text() == summary
    # an agent's setting is part of the comparison too
    result = CliRunner().invoke(cli, [*big, "--set", "rea.population=7"])
    assert result.exit_code == 1
    assert "agent_settings.rea.settings.population: 20 there, 7 now" in result.output
    # --jobs changes no result: the same comparison, resumed
    result = CliRunner().invoke(cli, [*big, "--jobs", "2"])
    assert result.exit_code == 0 and (out / "summary.csv").read_text() == summary
    result = CliRunner().invoke(cli, [*small, "--force"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (moved,) = out.glob("replaced-*")
    assert f"moved the earlier comparison's files to {moved} (--force)" in result.stderr
    assert (moved / "summary.csv").read_text() == summary
    assert len(_stored_lines(moved)) == 6 and len(_stored_lines(out)) == 4
    with (out / "summary.csv").open() as handle:
        assert [row["runs"] for row in csv.DictReader(handle)] == ["2", "2"]


def test_a_bad_agent_setting_is_one_line_before_any_run(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = _run_args(table, out, "--set", "rea.sample=30")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()  # no run of random before it
    assert line == "error: [rea] sample = 30: must be between 1 and population (20)"
    assert not out.exists()


def test_settings_json_records_every_agent_setting(table: Path, tmp_path: Path) -> None:
    import json

    texts = []
    for population in (20, 6):
        out = tmp_path / f"population-{population}"
        args = _run_args(table, out, "--quiet", "--set", f"rea.population={population}")
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        texts.append((out / "settings.json").read_text(encoding="utf-8"))
        saved = json.loads(texts[-1])
        assert saved["agent_settings"] == {
            "random": {"component": "random-v1", "settings": {}},
            "rea": {
                "component": "rea-v1",
                "settings": {"population": population, "sample": 5, "length": 0},
            },
        }
    # the two comparisons give different results: their settings say how they differ
    summaries = [(tmp_path / f"population-{p}" / "summary.csv").read_text() for p in (20, 6)]
    assert summaries[0] != summaries[1] and texts[0] != texts[1]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "env.dataset=cifar10",
            "[env] dataset = 'cifar10' (--set): bench run does not use this setting (it uses "
            "the table's dataset, digits-v1); remove the --set",
        ),
        (
            "env.max_steps=5",
            "[env] max_steps = 5 (--set): bench run does not use this setting (episodes end "
            "at the table's depth, 2 (--depth)); remove the --set",
        ),
        ("env.search_space=blockqnn", "[env] search_space = 'blockqnn' (--set): bench run"),
        ("env.estimator=proxy", "[env] estimator = 'proxy' (--set): bench run does not use"),
        ("env.reward=blockqnn", "[env] reward = 'blockqnn' (--set): bench run does not use"),
        ("table.seed=0", "(it uses --table-seed, 'random'); remove the --set"),
    ],
)
def test_env_settings_bench_run_does_not_use_are_refused(
    table: Path, tmp_path: Path, setting: str, message: str
) -> None:
    args = _run_args(table, tmp_path / "out", "--set", setting)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and message in line, line


def test_env_settings_from_a_file_are_named_by_the_file_and_equal_ones_pass(
    table: Path, tmp_path: Path
) -> None:
    ini = tmp_path / "bench.ini"
    ini.write_text("[env]\ndataset = digits\nmax_steps = 2\nsearch_space = cifar\n")
    args = _run_args(table, tmp_path / "out", "--quiet", "--config", str(ini))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {ini}: [env] search_space = 'cifar': bench run does not")
    assert line.endswith("; remove it from the file")
    # what the table uses anyway (its dataset, its depth, the protocol) is accepted
    ini.write_text("[env]\ndataset = digits\nmax_steps = 2\nevaluate = episode_end\n")
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_a_budget_beyond_the_table_and_an_incomplete_table_are_warned(tmp_path: Path) -> None:
    import json

    small = write_table(tmp_path / "small", depth=1, seeds=(0,))  # 8 networks
    args = ["bench", "run", "--table", str(small), "--agents", "random", "--seeds", "2"]
    result = CliRunner().invoke(cli, [*args, "--budget", "10", "--output", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert (
        "warning: budget 10 is larger than the table's 8 networks: no run can spend it (each "
        "stops at the step cap of 100 steps)"
    ) in result.stderr.splitlines()
    assert "incomplete" not in result.stderr
    card = small / "build.json"
    build = json.loads(card.read_text(encoding="utf-8"))
    card.write_text(json.dumps({**build, "complete": False}), encoding="utf-8")
    args += ["--budget", "5", "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert line == (
        f"warning: the table {small / 'table.csv.gz'} is incomplete (its build.json says "
        "complete = false): regret is measured against the best of its 8 networks, not of "
        "the whole space"
    )
    # a build still running: rows.csv and no table.csv.gz
    from nasframe.bench.table import read_rows, write_rows

    rows = read_rows(small / "table.csv.gz")
    (small / "table.csv.gz").unlink()
    write_rows(small / "rows.csv", rows, 3)
    result = CliRunner().invoke(cli, [*args, "--output", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "rows.csv: its build has not written table.csv.gz yet" in result.stderr


def test_the_regret_plot_keeps_bands_at_zero_and_coinciding_curves_apart(table: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    settings = CompareSettings(table=table, agents=["random", "rea"], seeds=2, budget=15)
    figure = compare.regret_figure(compare_agents(settings))
    left = figure.axes[0]
    for band in left.collections:
        for path in band.get_paths():
            assert path.vertices[:, 1].min() >= 0.0  # regret is never negative
    lines = left.get_lines()
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines}) == len(lines)
    plt.close(figure)
