"""One writer per output folder (nasframe.RunFolderLock), and output paths that cannot be
created refused in one line before any work starts (issue 32, items 1 and 5)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import nasframe
from nasframe.bench.testing import write_table
from nasframe.cli import main
from nasframe.results import StepLog
from nasframe.runlock import LOCK_FILE, check_file_path, check_folder_path

pytest.importorskip("nasframe_digits")
pytest.importorskip("nasframe_csv")

SEARCH = ["--agent", "random", "--estimator", "proxy", "-q", "--set", "run.plots=false"]

# A child process that takes the lock on a folder, says so, and sleeps.
HOLDER = textwrap.dedent(
    """\
    import sys, time
    from nasframe import RunFolderLock
    lock = RunFolderLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def _command(output: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nasframe", "search", "--output", str(output), *SEARCH, *args]


def _wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _rows(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


@contextmanager
def held_by_child(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """``folder`` locked by another process for the duration of the block."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        child.kill()
        child.wait()


def _one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


# -- two searches into one folder ------------------------------------------------------


@pytest.mark.parametrize("second", [[], ["--force"]], ids=["same-command", "force"])
def test_a_second_search_into_a_busy_folder_is_refused_and_the_first_log_is_intact(
    tmp_path: Path, second: list[str]
) -> None:
    out = tmp_path / "run"
    # far more steps than the test waits for: it is stopped with Ctrl-C (SIGINT) below
    first = subprocess.Popen(
        _command(out, "--steps", "200000", "--seed", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: _rows(out / "steps.csv") >= 20 or first.poll() is not None, "steps")
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
        started = time.monotonic()
        refused = subprocess.run(
            _command(out, "--steps", "200000", "--seed", "1", *second),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.poll() is None, "the first search ended before the second was refused"
        rows_when_refused = _rows(out / "steps.csv")
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    assert refused.returncode != 0
    line = _one_error_line(refused.stdout + refused.stderr)
    assert line.startswith(f"error: {out}: another nasframe process (pid {first.pid}: ")
    assert "nasframe search --output" in line  # the holder's command
    assert line.endswith("is writing this folder; wait for it or choose another --output")
    assert time.monotonic() - started < 60  # at once, not after waiting for the first
    assert first.returncode == 0, err.decode()
    # the first run's files are its own: nothing moved aside, one step log, no repeats
    assert not list(out.glob("replaced-*"))
    state = json.loads((out / "state.json").read_text(encoding="utf-8"))
    assert state["outcome"] == "interrupted"
    rows = StepLog(out / "steps.csv").read()
    assert len(rows) == state["steps"] >= rows_when_refused
    assert [row.step for row in rows] == list(range(1, len(rows) + 1))
    assert not (out / LOCK_FILE).exists()  # released (and removed) at the end


def test_a_search_killed_with_sigkill_does_not_block_its_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen(
        _command(out, "--steps", "200000"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(lambda: _rows(out / "steps.csv") >= 20 or first.poll() is not None, "steps")
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    assert (out / LOCK_FILE).is_file()  # left behind by the killed process
    taken = len(StepLog(out / "steps.csv").read())
    # resume with a budget it has (nearly) spent: the lock left behind does not block
    resumed = subprocess.run(
        _command(out, "--steps", str(taken + 5)), capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    rows = StepLog(out / "steps.csv").read()
    assert [row.step for row in rows] == list(range(1, taken + 6))


# -- the lock itself -------------------------------------------------------------------


def test_a_lock_held_by_another_process_is_refused_at_once_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with held_by_child(folder) as child:
        holder = json.loads((folder / LOCK_FILE).read_text(encoding="utf-8"))
        assert holder["pid"] == child.pid and holder["host"] and holder["command"]
        started = time.monotonic()
        with pytest.raises(nasframe.FolderBusyError) as caught:
            nasframe.RunFolderLock(folder).acquire()
        assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{folder}: another nasframe process (pid {child.pid}: ")
    assert message.endswith("is writing this folder; wait for it or choose another --output")
    assert isinstance(caught.value, nasframe.NasframeError)


def test_a_lock_left_by_a_process_killed_with_sigkill_does_not_block(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    with pytest.raises(nasframe.FolderBusyError):
        nasframe.RunFolderLock(folder).acquire()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert (folder / LOCK_FILE).is_file()  # the file stays; the OS lock went with the process
    with nasframe.RunFolderLock(folder) as lock:
        assert lock.held
        holder = json.loads((folder / LOCK_FILE).read_text(encoding="utf-8"))
        assert holder["pid"] == os.getpid()
    assert not (folder / LOCK_FILE).exists()


def test_the_lock_nests_in_one_process_and_is_released_by_the_outermost(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (tmp_path / "out").mkdir()
    (folder / "kept.txt").write_text("x")
    outer = nasframe.RunFolderLock(folder)
    with outer:
        with nasframe.RunFolderLock(folder) as inner:
            assert inner.held
        assert (folder / LOCK_FILE).is_file()  # still held by the outer one
        # another process is refused while the outer one holds it
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, nasframe\n"
                "try:\n    nasframe.RunFolderLock(sys.argv[1]).acquire()\n"
                "except nasframe.FolderBusyError as e:\n    print(e); sys.exit(3)\n",
                str(folder),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 3, probe.stderr
        assert f"(pid {os.getpid()}: " in probe.stdout
    assert not outer.held and not (folder / LOCK_FILE).exists()
    assert (folder / "kept.txt").is_file()  # a folder with files stays


# The holder forks a worker (as bench run --jobs does), then waits to be killed.
FORKING_HOLDER = textwrap.dedent(
    """\
    import multiprocessing, sys, time
    from nasframe import RunFolderLock
    lock = RunFolderLock(sys.argv[1])
    lock.acquire()
    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))
    worker.start()
    print(worker.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_worker_forked_by_a_killed_holder_does_not_keep_the_folder_locked(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", FORKING_HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    worker = int(holder.stdout.readline())
    try:
        with pytest.raises(nasframe.FolderBusyError):
            nasframe.RunFolderLock(folder).acquire()
        holder.kill()
        holder.wait()
        os.kill(worker, 0)  # the worker lives on
        with nasframe.RunFolderLock(folder) as lock:
            assert lock.held
    finally:
        holder.kill()
        holder.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


def test_a_folder_the_lock_created_and_nothing_was_written_to_is_removed(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "out"
    with nasframe.RunFolderLock(folder):
        assert folder.is_dir()
    assert not folder.exists()


@pytest.mark.parametrize("command", ["bench run", "bench build", "finalize"])
def test_other_commands_take_the_same_lock(tmp_path: Path, command: str) -> None:
    """The lock is taken in each command: a second process is refused before any work."""
    table = write_table(tmp_path / "table", depth=1, seeds=(0,))
    if command == "bench run":
        folder = tmp_path / "compare"
        args = ["bench", "run", "--table", str(table), "--agents", "random", "--seeds", "1"]
        args += ["--budget", "5", "--output", str(folder), "--quiet"]
    elif command == "bench build":
        folder = tmp_path / "built"
        args = ["bench", "build", "--depth", "1", "--seeds", "0", "--output", str(folder)]
        args += ["--set", "env.estimator=proxy"]
    else:
        run = tmp_path / "run"
        code = CliRunner().invoke(main, ["search", "--output", str(run), "--steps", "6", *SEARCH])
        assert code.exit_code == 0, code.output
        folder = run / "final"
        # a proxy search is finalized with a trainer; the lock refuses before any training
        args = ["finalize", str(run), "-q", "--set", "env.estimator=keras"]
    with held_by_child(folder) as child:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        line = _one_error_line(result.output)
        assert line.startswith(f"error: {folder}: another nasframe process (pid {child.pid}: ")
        assert "is writing this folder; wait for it" in line
    if command == "bench run":
        # free again: the comparison runs and writes its files
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert (folder / "summary.csv").is_file() and not (folder / LOCK_FILE).exists()


def test_bench_run_refuses_a_busy_folder_from_another_process(tmp_path: Path) -> None:
    """The CLI, as two processes would run it: the second bench run is refused."""
    table = write_table(tmp_path / "table", depth=1, seeds=(0,))
    folder = tmp_path / "compare"
    with held_by_child(folder) as child:
        command = [sys.executable, "-m", "nasframe", "bench", "run", "--table", str(table)]
        command += ["--agents", "random", "--seeds", "1", "--budget", "5"]
        refused = subprocess.run(
            [*command, "--output", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert refused.returncode == 1
    line = _one_error_line(refused.stdout + refused.stderr)
    assert f"(pid {child.pid}: " in line
    assert not (folder / "summary.csv").exists()


# -- output paths that cannot be created ----------------------------------------------


def test_check_folder_and_file_paths(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    check_folder_path(tmp_path / "new" / "deeper")  # creatable: nothing raised, nothing made
    assert not (tmp_path / "new").exists()
    with pytest.raises(nasframe.NasframeError) as caught:
        check_folder_path(blocker / "out", "--output")
    assert str(caught.value) == (
        f"{blocker / 'out'} (--output): cannot create this folder: {blocker} is a file, "
        "not a folder"
    )
    with pytest.raises(nasframe.NasframeError, match="exists and is not a folder"):
        check_folder_path(blocker)
    check_file_path(tmp_path / "plots" / "h.png")
    with pytest.raises(nasframe.NasframeError, match=f"{blocker} is a file, not a folder"):
        check_file_path(blocker / "sub" / "h.png", "--plot")
    with pytest.raises(nasframe.NasframeError, match="is a folder; give a file name"):
        check_file_path(tmp_path)


def _blocker(tmp_path: Path) -> Path:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    return blocker


def _refused_path(result: object, target: Path, blocker: Path) -> None:
    assert getattr(result, "exit_code", None) == 1, getattr(result, "output", "")
    line = _one_error_line(getattr(result, "output", ""))
    assert line.startswith(f"error: {target}")
    assert f"cannot create this folder: {blocker} is a file, not a folder" in line or (
        f"cannot create its folder: {blocker} is a file, not a folder" in line
    ), line


def test_search_into_an_output_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = _blocker(tmp_path)
    target = blocker / "run"
    result = CliRunner().invoke(main, ["search", "--output", str(target), "--steps", "5", *SEARCH])
    _refused_path(result, target, blocker)


def test_bench_run_into_an_output_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = _blocker(tmp_path)
    table = write_table(tmp_path / "table", depth=1, seeds=(0,))
    target = blocker / "compare"
    args = ["bench", "run", "--table", str(table), "--agents", "random", "--seeds", "1"]
    result = CliRunner().invoke(main, [*args, "--budget", "5", "--output", str(target)])
    _refused_path(result, target, blocker)
    # before the comparison: no run's progress line was printed
    assert "random" not in result.output.replace(str(target), "")


def test_finalize_into_an_output_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = _blocker(tmp_path)
    run = tmp_path / "run"
    done = CliRunner().invoke(main, ["search", "--output", str(run), "--steps", "6", *SEARCH])
    assert done.exit_code == 0, done.output
    target = blocker / "final"
    result = CliRunner().invoke(main, ["finalize", str(run), "--output", str(target), "-q"])
    _refused_path(result, target, blocker)


def test_import_nasgym_into_an_output_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = _blocker(tmp_path)
    ini = tmp_path / "config.ini"
    ini.write_text("[nasenv.default]\nMaxSteps = 10\n", encoding="utf-8")
    target = blocker / "imported"
    result = CliRunner().invoke(
        main, ["import-nasgym", "--config", str(ini), "--output", str(target)]
    )
    _refused_path(result, target, blocker)


def test_bench_stats_plot_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    blocker = _blocker(tmp_path)
    table = write_table(tmp_path / "table", depth=1, seeds=(0,))
    target = blocker / "plots" / "histogram.png"
    result = CliRunner().invoke(main, ["bench", "stats", str(table), "--plot", str(target)])
    _refused_path(result, target, blocker)
    assert "networks" not in result.output  # refused before the statistics were printed
