"""The smoke modes of benchmarks/proxies.py and benchmarks/cascade.py complete and print."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nasframe
from nasframe.bench.networks import enumerate_networks
from nasframe.bench.table import ROWS_FILE, TableRow, write_rows


def _table(folder: Path, depth: int, build: dict[str, object]) -> Path:
    """A small table in the real format; its curves are seeded random test data."""
    space = nasframe.get_plugin_manager().registry("search_space").create("chained-v1")
    rng = np.random.default_rng(0)
    rows = []
    for nsc in enumerate_networks(space, depth):
        curve = tuple(float(v) for v in np.sort(rng.random(2)))
        rows.append(
            TableRow(
                nsc.canonical_hash, str(nsc), nsc.depth, 0, "ok",
                params=10, flops=20, seconds=2.0, train_seconds=1.0, epochs=2, curve=curve,
            )
        )  # fmt: skip
    folder.mkdir()
    write_rows(folder / ROWS_FILE, rows, 2)
    (folder / "build.json").write_text(json.dumps(build), encoding="utf-8")
    return folder


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_cascade_smoke_prints_its_ratio_line(tmp_path: Path) -> None:
    table = _table(tmp_path / "table", 2, {})
    out = _run("benchmarks.cascade", str(table), "--smoke", "--warmup", "2")
    assert "ratio full trainings without / with cascade:" in out


def test_cascade_refuses_a_table_that_is_too_small(tmp_path: Path) -> None:
    table = _table(tmp_path / "table", 0, {})
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cascade", str(table)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "1 ok rows of seed 0; need 10" in result.stderr


@pytest.mark.slow
def test_proxies_smoke_prints_correlations_costs_and_the_ratio_line(tmp_path: Path) -> None:
    build = {
        "dataset_component": {"name": "digits-v1", "settings": {"resize": 8}},
        "estimator_component": {
            "name": "keras-v1",
            "settings": {"epochs": 2, "filters": 2, "fc_units": 8, "padding": "same"},
        },
    }
    table = _table(tmp_path / "table", 1, build)
    out = _run("benchmarks.proxies", str(table), "--smoke", "--batch-size", "8")
    for name in ("synflow", "naswot", "grad_norm", "snip", "jacob_cov", "params", "flops"):
        assert f"\n  {name} " in out
    assert "ratio proxy / full training:" in out
