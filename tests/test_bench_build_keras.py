"""``nasframe bench build`` with the real keras-v1 estimator, killed with SIGKILL and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasframe.bench import BenchTable, read_rows
from nasframe.bench.table import ROWS_FILE

pytestmark = pytest.mark.slow

#: Depth 1 of the chained space (8 networks) on the native 8x8 digits, one short epoch.
ARGS = [
    "bench",
    "build",
    "--depth",
    "1",
    "--seeds",
    "0",
    "--set",
    "env.dataset=digits",
    "--set",
    "digits.resize=8",
    "--set",
    "keras.epochs=2",
    "--set",
    "keras.batch_size=256",
    "--set",
    "keras.filters=4",
    "--set",
    "keras.fc_units=16",
]


def _command(output: Path) -> list[str]:
    return [sys.executable, "-m", "nasframe", *ARGS, "--output", str(output)]


def test_a_killed_build_loses_only_what_was_in_flight(tmp_path: Path) -> None:
    output = tmp_path / "table"
    rows_path = output / ROWS_FILE
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        _command(output),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if rows_path.exists() and len(rows_path.read_bytes().splitlines()) >= 3:
                break
            time.sleep(0.2)
        assert process.poll() is None, "the build ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stored = read_rows(rows_path, drop_partial=True)
    assert 2 <= len(stored) < 8
    before = {(row.arch_hash, row.seed): row for row in stored}

    result = subprocess.run(
        _command(output), env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{8 - len(stored)} to train" in result.stderr
    assert "table complete: 8 rows" in result.stderr
    table = BenchTable.load(output)
    assert len(table) == 8 and len(table.rows) == 8
    for row in table.rows:
        assert row.status == "ok" and len(row.curve) == 2 and 0 <= row.test <= 1
        if (row.arch_hash, row.seed) in before:
            assert row == before[(row.arch_hash, row.seed)]  # kept, not retrained
