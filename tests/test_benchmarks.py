"""Every benchmark runs in its smoke mode, so none can break unnoticed (issue 17).

The convention (``benchmarks/README.md``): every ``benchmarks/*.py`` that does not start
with ``_`` is a benchmark; ``python -m benchmarks.<name> --smoke`` finishes in seconds
with tiny sizes and prints at least one line whose first word is ``ratio``. A benchmark
whose smoke needs TensorFlow or Ray says so with a module-level ``SMOKE_SLOW = True``
and is marked slow here. Files are discovered, so a new benchmark is covered as soon as
it is added. Nothing about timings is asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "benchmarks"

#: A line of the ratio the benchmark exists to show (its first word is ``ratio``).
RATIO_LINE = re.compile(r"^\s*ratio\b", re.MULTILINE)
#: The marker of a benchmark whose smoke needs TensorFlow or Ray.
SLOW_MARKER = re.compile(r"^SMOKE_SLOW\s*=\s*True\b", re.MULTILINE)
#: The marker of a benchmark whose smoke needs inputs (a table) that a named test makes.
ELSEWHERE = re.compile(r"^SMOKE_TESTED_BY\s*=\s*\"(?P<test>[^\"]+)\"", re.MULTILINE)


def benchmarks() -> list[pytest.param]:  # type: ignore[valid-type]
    found = []
    for path in sorted(FOLDER.glob("*.py")):
        if path.name.startswith("_"):
            continue  # __init__.py and helpers
        text = path.read_text(encoding="utf-8")
        if ELSEWHERE.search(text):
            continue  # checked by test_smoke_tested_elsewhere_is_tested
        slow = bool(SLOW_MARKER.search(text))
        marks = [pytest.mark.slow] if slow else []
        found.append(pytest.param(path.stem, marks=marks, id=path.stem))
    return found


def test_benchmarks_are_found() -> None:
    names = [param.values[0] for param in benchmarks()]
    assert {"db", "env_step", "bench_search_loop"} <= set(names)


@pytest.mark.parametrize("name", benchmarks())
def test_benchmark_smoke(name: str, tmp_path: Path) -> None:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--smoke"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=540,
    )
    tail = (result.stdout + result.stderr)[-3000:]
    assert result.returncode == 0, f"benchmarks/{name}.py --smoke failed:\n{tail}"
    assert RATIO_LINE.search(result.stdout), f"no line starting with 'ratio':\n{tail}"


def test_smoke_tested_elsewhere_is_tested() -> None:
    # A benchmark that names the test running its smoke must really be run there.
    for path in sorted(FOLDER.glob("*.py")):
        match = ELSEWHERE.search(path.read_text(encoding="utf-8"))
        if match:
            test = ROOT / match["test"]
            assert test.is_file(), f"{path.name}: {match['test']} does not exist"
            text = test.read_text(encoding="utf-8")
            assert f"benchmarks.{path.stem}" in text and "--smoke" in text, path.name
