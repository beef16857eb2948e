"""``benchmarks/estimator_throughput.py --smoke`` runs and prints its ratio lines.

Timings are never asserted (the machine is shared); only that the benchmark completes
and reports both comparisons: the steady-state ratios against ``fit`` and a hand-written
loop, and the fixed cost per candidate before and after the trainer's traced Adam.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "estimator_throughput.py"


@pytest.mark.slow
def test_smoke_mode_prints_the_ratio_lines() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert re.search(
        r"overall median ratio estimator/fit \d+\.\d+x .* estimator/loop \d+\.\d+x", out
    )
    rows = re.findall(r"^digits\s+conv(?:\s+-?\d+(?:\.\d+)?){6}$", out, re.M)
    assert len(rows) == 1, out
    number = r"-?\d+\.\d+"
    line = rf"fixed cost per candidate median: {number} s before, {number} s now; ratio {number}x"
    assert re.search(line, out)
