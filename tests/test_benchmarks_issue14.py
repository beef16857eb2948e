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


_PROXY_CARD: dict[str, object] = {
    "dataset_component": {"name": "digits-v1", "settings": {"resize": 8}},
    "estimator_component": {
        "name": "keras-v1",
        "settings": {"epochs": 2, "filters": 2, "fc_units": 8, "padding": "same"},
    },
}

_NAMES = ("synflow", "naswot", "grad_norm", "snip", "jacob_cov", "params", "flops")


def _scores_file(path: Path, table: Path, *, keep: int | None = None) -> list[TableRow]:
    """A --scores file for the table's rows: synflow ranks exactly as the accuracy."""
    import csv

    from nasframe.bench import BenchTable

    rows = [row for row in BenchTable.load(table) if row.ok][:keep]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["nsc", "arch_hash", "accuracy", *_NAMES])
        for i, row in enumerate(rows):
            values = [row.accuracy() * 10, i, -i, 1.0, 2.0, 100 + i, 200 + i]
            writer.writerow([row.nsc, row.arch_hash, row.accuracy(), *values])
    return rows


def _proxies_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    """Run benchmarks/proxies.py's main in this process: (stdout, the exit message or "")."""
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "proxies.py"
    spec = importlib.util.spec_from_file_location("_bench_proxies", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.main(list(argv))
    except SystemExit as exc:
        return capsys.readouterr().out, str(exc.code)
    return capsys.readouterr().out, ""


def test_proxies_reads_saved_scores_without_tensorflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _table(tmp_path / "table", 1, _PROXY_CARD)
    rows = _scores_file(tmp_path / "scores.csv", table)
    out, error = _proxies_main(
        capsys, str(table), "--from-scores", str(tmp_path / "scores.csv"),
        "--cost-sample", "0", "--bootstrap", "20",
    )  # fmt: skip
    assert not error
    assert f"scores of {len(rows)} networks read from" in out
    synflow = next(line for line in out.splitlines() if line.startswith("  synflow "))
    assert synflow.split()[1] == "1.000"  # Spearman of a score that ranks as the accuracy
    assert "rho learned" in out and "rho params" in out and "strongest proxy synflow" in out
    assert "ratio proxy" not in out  # --cost-sample 0: no timing


def test_proxies_refuses_incomplete_or_broken_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    table = _table(tmp_path / "table", 1, _PROXY_CARD)
    scores = tmp_path / "scores.csv"
    rows = _scores_file(scores, table)
    _scores_file(scores, table, keep=5)
    args = (str(table), "--from-scores", str(scores), "--cost-sample", "0", "--bootstrap", "5")
    assert "no scores of 3 networks" in _proxies_main(capsys, *args)[1]
    out, error = _proxies_main(capsys, *args, "--partial")
    assert not error and "scores of 5 networks read from" in out
    scores.write_text("nsc,arch_hash,accuracy,synflow\n", encoding="utf-8")
    assert "no scores of 8 networks" in _proxies_main(capsys, *args)[1]
    with scores.open("w", newline="", encoding="utf-8") as handle:  # no naswot column
        writer = csv.writer(handle)
        writer.writerow(["nsc", "arch_hash", "accuracy", "synflow"])
        writer.writerows([r.nsc, r.arch_hash, 0.1, 1.0] for r in rows)
    assert "a column is missing" in _proxies_main(capsys, *args)[1]
    error = _proxies_main(capsys, str(table), "--cost-only", "--cost-sample", "0")[1]
    assert "--cost-only needs --cost-sample >= 1" in error


def test_proxies_reads_gzipped_scores_and_appends_only_plain_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    table = _table(tmp_path / "table", 1, _PROXY_CARD)
    _scores_file(tmp_path / "scores.csv", table)
    packed = tmp_path / "scores.csv.gz"
    packed.write_bytes(gzip.compress((tmp_path / "scores.csv").read_bytes()))
    args = (str(table), "--cost-sample", "0", "--bootstrap", "20")
    plain, error = _proxies_main(capsys, *args, "--from-scores", str(tmp_path / "scores.csv"))
    assert not error
    out, error = _proxies_main(capsys, *args, "--from-scores", str(packed))
    assert not error
    assert out.replace(str(packed), "F") == plain.replace(str(tmp_path / "scores.csv"), "F")
    error = _proxies_main(capsys, *args, "--scores", str(packed))[1]
    assert error.startswith(f"error: --scores {packed}: appends plain CSV")


@pytest.mark.parametrize("version", ["v3"])
def test_the_shipped_scores_cover_every_network_of_the_shipped_table(
    version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).parents[1]
    table = root / "nasframe" / "bench" / "data" / f"nsc-bench-{version}"
    scores = root / "benchmarks" / "data" / f"nsc-bench-{version}-proxy-scores.csv.gz"
    out, error = _proxies_main(
        capsys, str(table), "--from-scores", str(scores), "--cost-sample", "0", "--bootstrap", "5"
    )
    assert not error  # without --partial every ok seed-0 row must have its scores
    assert "strongest proxy" in out and "\n  params " in out
