"""A search interrupted (SIGINT, SIGTERM, kill -9) and resumed logs what an uninterrupted
one logs, byte for byte: the interrupted episode is restored by replaying its actions
through the cache, and steps logged after the last checkpoint are walked again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STEPS = 3000  # proxy steps take about a millisecond: time to interrupt mid-run
ARGS = ["--estimator", "proxy", "--seed", "3", "-q", "--set", "run.plots=false"]


def _command(output: Path, every: int) -> list[str]:
    return [
        sys.executable, "-m", "nasframe", "search", "--steps", str(STEPS), "--output",
        str(output), *ARGS, "--set", f"run.checkpoint_every={every}",
    ]  # fmt: skip


def _rows(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_and_resumed_search_logs_the_uninterrupted_steps(
    how: signal.Signals, tmp_path: Path
) -> None:
    every = 100
    whole = tmp_path / "whole"
    subprocess.run(_command(whole, every), check=True, capture_output=True, timeout=600)
    cut = tmp_path / "cut"
    process = subprocess.Popen(
        _command(cut, every), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    # after a checkpoint and mid-way between two, so kill -9 leaves steps beyond it
    while _rows(cut / "steps.csv") < 3 * every // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(how)
    _, err = process.communicate(timeout=300)
    stopped_at = _rows(cut / "steps.csv")
    assert 0 < stopped_at < STEPS, "the run was not interrupted mid-way"
    if how == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 0, err.decode()
        assert b"resume with" in err or b"resume with" in (cut / "search.log").read_bytes()
    subprocess.run(_command(cut, every), check=True, capture_output=True, timeout=600)
    resumed = (cut / "steps.csv").read_bytes().splitlines()
    expected = (whole / "steps.csv").read_bytes().splitlines()
    if how == signal.SIGKILL and resumed != expected:
        # kill -9 between the database's put and the step log's append: that one step's
        # network is stored but its row is not, so on resume it is a cache hit. Only the
        # cache_hit field of that row may differ.
        diff = [i for i, (a, b) in enumerate(zip(resumed, expected, strict=True)) if a != b]
        assert diff == [stopped_at + 1], diff
        cells = [resumed[diff[0]].split(b","), expected[diff[0]].split(b",")]
        hit = -5  # cache_hit, seconds, terminated, truncated, measure: the last five columns
        assert cells[0][:hit] + cells[0][hit + 1 :] == cells[1][:hit] + cells[1][hit + 1 :]
        return
    assert resumed == expected
