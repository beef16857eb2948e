"""The smoke modes of benchmarks/proxies.py and benchmarks/cascade.py complete and print."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

import nasframe
from nasframe.bench.networks import enumerate_networks
from nasframe.bench.table import ROWS_FILE, TableRow, write_rows


def _table(folder: Path, depth: int, build: Mapping[str, object]) -> Path:
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


#: What benchmarks/cascade.py needs of a table's build card: its space, depth and dataset.
_CARD: dict[str, object] = {
    "space": "chained-v1",
    "depth": 2,
    "dataset_component": {"name": "digits-v1", "settings": {"resize": 8}},
}


def _fails(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode != 0
    return result.stderr


def test_cascade_smoke_prints_both_searches_per_agent_and_the_ratio_lines(tmp_path: Path) -> None:
    table = _table(tmp_path / "table", 2, _CARD)
    out = _run("benchmarks.cascade", str(table), "--smoke", "--low", "1", "--warmup", "2")
    for search in ("random-order", "random", "ppo"):
        assert f"\n  {search}:\n" in out
        assert f"ratio full trainings without / with cascade, {search}: " in out
    assert out.count("2 epochs each") == 3 and out.count("cascade 1 -> 2 epochs") == 3
    assert "top 1% in" in out and "final regret" in out


def test_cascade_refuses_a_table_that_is_too_small(tmp_path: Path) -> None:
    table = _table(tmp_path / "table", 0, _CARD)
    assert "1 ok rows of seed 0; need 10" in _fails("benchmarks.cascade", str(table))


def test_cascade_refuses_bad_settings_and_a_card_without_space(tmp_path: Path) -> None:
    table = _table(tmp_path / "table", 2, _CARD)
    assert "--low 2: the table records 1 to 2 epochs" in _fails(
        "benchmarks.cascade", str(table), "--low", "2", "--smoke"
    )
    assert "--fraction must be in (0, 1]" in _fails(
        "benchmarks.cascade", str(table), "--fraction", "0", "--smoke"
    )
    assert "agent" in _fails("benchmarks.cascade", str(table), "--agents", "nope", "--smoke")
    bare = _table(tmp_path / "bare", 2, {})
    assert "build.json lacks space, dataset_component, depth" in _fails(
        "benchmarks.cascade", str(bare), "--smoke"
    )
    assert "no such table" in _fails("benchmarks.cascade", str(tmp_path / "missing"))


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
