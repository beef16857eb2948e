"""nasframe finalize: the best networks retrained over seeds, tested once, saved; resumable."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from nasframe_memory import MemoryDB
from rich.console import Console

import nasframe
from nasframe.bench import read_rows
from nasframe.cli import main
from nasframe.finalize import (
    check_trainer,
    final_settings,
    finalize,
    load_run_config,
    model_path,
    plan_finalize,
    top_networks,
)
from nasframe.search import identity_of, run_search


def quiet() -> Console:
    return Console(file=io.StringIO(), width=100)


class SpyDigits(nasframe.ArrayDataset):
    """scikit-learn's 8x8 digits, recording every read of the test split."""

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
        labels = digits.target
        parts = nasframe.split_indices(len(labels), validation=0.2, test=0.2, seed=0)
        super().__init__(
            "spy", {split: (images[i], labels[i]) for split, i in parts.items()}, num_classes=10
        )
        self.test_reads: list[str] = []

    def arrays(self, split: Any) -> tuple[np.ndarray, np.ndarray]:
        if split == "test":
            self.test_reads.append("arrays")
        return super().arrays(split)

    def num_examples(self, split: Any) -> int:
        if split == "test":
            self.test_reads.append("num_examples")
        return super().num_examples(split)

    def tf_dataset(self, split: Any, **options: Any) -> Any:
        if split == "test":
            self.test_reads.append("tf_dataset")
        return super().tf_dataset(split, **options)


class SpyPlugin:
    def __init__(self) -> None:
        self.data = SpyDigits()

    @nasframe.hookimpl
    def nasframe_register_datasets(self, registry: nasframe.Registry) -> None:
        registry.add("spy-v1", lambda: self.data, summary="digits that record test reads")


TINY_KERAS = {"epochs": 1, "filters": 4, "fc_units": 16, "batch_size": 64}


def proxy_search(tmp_path: Path, steps: int = 12, **sections: dict[str, Any]) -> Path:
    """A finished search with the cheap proxy estimator on the digits (no training)."""
    output = tmp_path / "run"
    manager = nasframe.get_plugin_manager()
    config = nasframe.load_config(
        None,
        {
            "run": {"steps": steps, "output": output, "verbosity": 0, "plots": False},
            "env": {"estimator": "proxy", "dataset": "digits", "max_steps": 3},
            **sections,
        },
        plugin_manager=manager,
    )
    assert run_search(config, plugin_manager=manager, console=quiet()).outcome == "completed"
    return output


@pytest.mark.slow
def test_a_search_never_reads_the_test_split_and_finalize_reports_it(tmp_path: Path) -> None:
    import keras
    import nasframe_keras.builder  # noqa: F401 -- registers the layers saved models use

    plugin = SpyPlugin()
    manager = nasframe.get_plugin_manager(plugins=[("spy", plugin)])
    run_dir = tmp_path / "run"
    config = nasframe.load_config(
        None,
        {
            "run": {"steps": 6, "output": run_dir, "verbosity": 0, "plots": False},
            "env": {"estimator": "keras", "dataset": "spy", "max_steps": 2},
            "keras": TINY_KERAS,
        },
        plugin_manager=manager,
    )
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.session_trainings >= 2
    assert plugin.data.test_reads == [], "a whole search read the test split"

    changes = {"top_k": 2, "seeds": "0,1", "epochs": 2, "augmentation": "shift"}
    config = load_run_config(run_dir, None, {"finalize": changes}, plugin_manager=manager)
    plan = plan_finalize(run_dir, config, plugin_manager=manager)
    assert plan.estimator[1]["epochs"] == 2 and plan.estimator[1]["augmentation"] == "shift"
    assert [r.evaluation.accuracy for r in plan.networks] == sorted(
        (r.evaluation.accuracy for r in plan.networks), reverse=True
    )
    result = finalize(plan, plugin_manager=manager, console=quiet())
    assert result.complete and result.trained == result.rows == 4
    assert plugin.data.test_reads, "finalize measured no test accuracy"

    test_x, test_y = plugin.data.arrays("test")
    val_x, val_y = plugin.data.arrays("validation")
    rows = read_rows(plan.output / "rows.csv")
    assert len(rows) == 4
    for row in rows:
        assert row.ok and row.epochs == 2 and len(row.curve) == 2
        model = keras.models.load_model(model_path(plan.output, row.arch_hash, row.seed))
        logits = model.predict(test_x, verbose=0)
        assert logits.shape == (len(test_y), 10)
        # the reported test accuracy is the saved network's on the test split ...
        assert row.test == pytest.approx(float(np.mean(logits.argmax(-1) == test_y)), abs=1e-6)
        # ... and the validation accuracy its accuracy on the validation split
        val = model.predict(val_x, verbose=0).argmax(-1)
        assert row.curve[-1] == pytest.approx(float(np.mean(val == val_y)), abs=1e-6)

    card = json.loads((plan.output / "final.json").read_text())
    assert card["complete"] and card["dataset"] == plugin.data.identity
    for net in card["networks"]:
        tests = [r.test for r in rows if r.arch_hash == net["arch_hash"]]
        assert net["test"]["n"] == 2
        assert net["test"]["mean"] == pytest.approx(np.mean(tests))
        assert net["test"]["std"] == pytest.approx(np.std(tests, ddof=1))
        assert net["params"] > 0 and net["flops"] > 0
    assert (plan.output / "final.png").stat().st_size > 0
    assert (plan.output / "final.csv").read_text().startswith("rank,nsc,arch_hash")

    again = finalize(plan, plugin_manager=manager, console=quiet())
    assert again.trained == 0 and again.complete


@pytest.mark.slow
def test_a_killed_finalize_resumes_training_only_what_is_missing(tmp_path: Path) -> None:
    run_dir = proxy_search(tmp_path)
    command = [
        sys.executable,
        "-m",
        "nasframe",
        "finalize",
        str(run_dir),
        "--top-k",
        "2",
        "--seeds",
        "0,1",
        "-q",
        "--set",
        "env.estimator=keras",
        *(arg for key, value in TINY_KERAS.items() for arg in ("--set", f"keras.{key}={value}")),
    ]
    rows_file = run_dir / "final" / "rows.csv"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if rows_file.is_file() and len(rows_file.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = read_rows(rows_file, drop_partial=True)
    assert 1 <= len(before) < 4
    result = CliRunner().invoke(main, command[3:])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"complete: {run_dir / 'final' / 'final.json'}")
    assert f"4 of 4 trainings stored, {4 - len(before)} trained" in result.output
    rows = read_rows(rows_file)
    assert sorted((r.arch_hash, r.seed) for r in rows) == sorted(
        {(r.arch_hash, r.seed) for r in rows}
    ), "a (network, seed) was trained twice"
    assert len(rows) == 4
    assert all(model_path(run_dir / "final", r.arch_hash, r.seed).is_file() for r in rows)


def test_finalize_refuses_an_estimator_that_cannot_test(tmp_path: Path) -> None:
    run_dir = proxy_search(tmp_path, steps=6)
    manager = nasframe.get_plugin_manager()
    config = load_run_config(run_dir, plugin_manager=manager)
    with pytest.raises(nasframe.ConfigError) as error:
        plan_finalize(run_dir, config, plugin_manager=manager)
    assert str(error.value) == (
        "[env] estimator: the run searched with 'proxy-v1', which estimates accuracy "
        "without training a network to test; finalize retrains the best networks with a "
        "trainer: pass --set env.estimator=keras (its settings: --epochs N, --set "
        "keras.KEY=VALUE)"
    )
    for name in ("cascade", "zerocost"):
        named = config.with_overrides({"env": {"estimator": name}})
        with pytest.raises(nasframe.ConfigError, match=rf"searched with '{name}-v1'.*env\."):
            check_trainer(named, manager)
    check_trainer(config.with_overrides({"env": {"estimator": "keras"}}), manager)
    # an estimator without measure() that slipped past the plan is still refused
    plan = plan_finalize(
        run_dir,
        load_run_config(run_dir, None, {"env": {"estimator": "keras"}}, plugin_manager=manager),
        plugin_manager=manager,
    )
    plan.estimator = ("proxy-v1", {})
    with pytest.raises(
        nasframe.ConfigError, match=r"\[env\] estimator: 'proxy-v1' cannot finalize"
    ):
        finalize(plan, plugin_manager=manager, console=quiet())


KERAS = ["--set", "env.estimator=keras"]


def relative_search(root: Path, output: str = "runs/a", database: str = "") -> Path:
    """A proxy search run in ``root`` with a relative ``[run] output`` (and ``[database]
    path``, if given); the run folder."""
    here = Path.cwd()
    os.chdir(root)
    try:
        manager = nasframe.get_plugin_manager()
        values: dict[str, dict[str, Any]] = {
            "run": {"steps": 4, "output": output, "verbosity": 0, "plots": False},
            "env": {"estimator": "proxy", "dataset": "digits", "max_steps": 2},
        }
        if database:
            values["database"] = {"path": database}
        config = nasframe.load_config(None, values, plugin_manager=manager)
        assert run_search(config, plugin_manager=manager, console=quiet()).outcome == "completed"
    finally:
        os.chdir(here)
    return root / output


def plan_of(run_dir: Path, *overrides: str) -> Any:
    from nasframe.config import parse_override

    merged: dict[str, dict[str, Any]] = {"env": {"estimator": "keras"}}
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    manager = nasframe.get_plugin_manager()
    config = load_run_config(run_dir, None, merged, plugin_manager=manager)
    return plan_finalize(run_dir, config, plugin_manager=manager)


def test_a_run_folder_is_finalized_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = relative_search(tmp_path)
    recorded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["config"]
    assert "path = runs/a/experiments.csv" in recorded  # relative to the search's folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = plan_of(Path("..") / "runs" / "a")
    assert plan.networks and plan.output == Path("..") / "runs" / "a" / "final"
    monkeypatch.chdir(tmp_path / "runs")
    assert plan_of(Path("a")).networks == plan.networks


def test_a_shared_database_is_found_from_the_folder_the_search_ran_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a relative database outside the run folder: run.json records the search's folder
    run_dir = relative_search(tmp_path, database="shared/experiments.csv")
    stored = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert stored["cwd"] == str(tmp_path)
    assert (tmp_path / "shared" / "experiments.csv").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert plan_of(run_dir).networks


def test_a_copied_run_folder_reads_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    run_dir = relative_search(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    monkeypatch.chdir(tmp_path)  # where the original's recorded path leads too
    (copy / "experiments.csv").unlink()
    with pytest.raises(nasframe.NasframeError) as error:
        plan_of(copy)
    assert str(error.value) == (
        f"{copy / 'experiments.csv'}: the run's experiment database does not exist; give "
        "it with --set database.path=FILE"
    )
    shutil.copy(run_dir / "experiments.csv", copy / "experiments.csv")
    assert plan_of(copy).networks == plan_of(run_dir).networks


def test_set_database_path_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    run_dir = relative_search(tmp_path)
    monkeypatch.chdir(tmp_path)
    shutil.move(run_dir / "experiments.csv", tmp_path / "moved.csv")
    assert plan_of(run_dir, "database.path=moved.csv").networks
    from nasframe.authoring.storage import open_database

    # a database of other networks holds none of this run's: said in one line
    other = open_database(tmp_path / "empty.csv", create=True)
    network = nasframe.NSC.parse(LONG)
    evaluation = nasframe.Evaluation(status="ok", accuracy=0.5, params=1)  # type: ignore[arg-type]
    other.put(nasframe.Record("d", "d", network.canonical_hash, LONG, "e", "1", "fp", evaluation))
    other.close()
    with pytest.raises(nasframe.NasframeError) as error:
        plan_of(run_dir, "database.path=empty.csv")
    assert str(error.value).startswith("empty.csv: holds none of the ")
    assert str(error.value).endswith(
        "networks this run evaluated (steps.csv); give the run's database with --set "
        "database.path=FILE"
    )
    result = CliRunner().invoke(
        main, ["finalize", str(run_dir), *KERAS, "--set", "database.path=nowhere.csv"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: nowhere.csv: the run's experiment database does not exist; give it with "
        "--set database.path=FILE"
    )


def test_a_dataset_without_test_split_is_named_and_can_be_given_one(tmp_path: Path) -> None:
    run_dir = proxy_search(tmp_path, steps=6, digits={"test": 0.0})
    manager = nasframe.get_plugin_manager()
    keras = {"env": {"estimator": "keras"}}
    plan = plan_finalize(
        run_dir,
        load_run_config(run_dir, None, keras, plugin_manager=manager),
        plugin_manager=manager,
    )
    with pytest.raises(nasframe.ConfigError) as error:
        finalize(plan, plugin_manager=manager, console=quiet())
    assert str(error.value) == (
        "[env] dataset: 'digits[resize=16,validation=0.2,test=0.0,seed=0]' has an empty test "
        "split; give its test fraction a value above 0 (e.g. --set digits.test=0.2) to finalize"
    )
    # the networks are found by task, so a final training may add the test split
    config = load_run_config(
        run_dir, None, {**keras, "digits": {"test": 0.2}}, plugin_manager=manager
    )
    assert plan_finalize(run_dir, config, plugin_manager=manager).networks == plan.networks


def test_final_settings_are_checked_against_the_estimator(tmp_path: Path) -> None:
    manager = nasframe.get_plugin_manager()

    def settings(**values: Any) -> dict[str, Any]:
        config = nasframe.load_config(None, {"finalize": values}, plugin_manager=manager)
        return final_settings(config, manager)[1]

    assert settings(epochs=30, builder="blockqnn-v1", settings="batch_size=32, patience=5") == {
        **settings(),
        "epochs": 30,
        "builder": "blockqnn-v1",
        "batch_size": 32,
        "patience": 5,
    }
    with pytest.raises(nasframe.ConfigError) as error:
        settings(settings="colour=red")
    assert str(error.value).startswith(
        "[finalize] settings: estimator 'keras-v1' has no setting 'colour' (its settings: "
    )
    with pytest.raises(nasframe.ConfigError, match=r"^\[finalize\] builder: \[keras\] builder: "):
        settings(builder="resnet")
    with pytest.raises(nasframe.ConfigError, match=r"\[finalize\] settings: 'batch_size' must be"):
        settings(settings="batch_size")


def test_top_networks_ranks_one_runs_ok_networks_of_one_dataset() -> None:
    db = MemoryDB()

    def put(
        nsc: str, accuracy: float, dataset: str = "d", status: str = "ok", params: int = 1
    ) -> str:
        network = nasframe.NSC.parse(nsc)
        evaluation = nasframe.Evaluation(status=status, accuracy=accuracy, params=params)  # type: ignore[arg-type]
        db.put(
            nasframe.Record(
                dataset, dataset, network.canonical_hash, nsc, "e", "1", "fp", evaluation
            )
        )
        return network.canonical_hash

    a = put("1,1,3,0,0", 0.5)
    b = put("1,1,5,0,0", 0.7)
    c = put("1,2,2,0,0", 0.7, params=0)  # as good as b and smaller: first
    put("1,1,1,0,0", 0.9, dataset="other")
    put("1,3,2,0,0", 0.95, status="invalid")
    put("", 0.99)  # the empty network is no result to finalize
    ranked = top_networks(db, task="d", k=5)
    assert [r.arch_hash for r in ranked] == [c, b, a]
    assert [r.arch_hash for r in top_networks(db, task="d", k=1, among={a, b})] == [b]
    assert [r.arch_hash for r in top_networks(db, task="other", k=3)] != []


def test_finalize_section_and_play_key_leave_a_runs_identity_alone() -> None:
    manager = nasframe.get_plugin_manager()
    base = nasframe.load_config(None, plugin_manager=manager)
    changed = nasframe.load_config(
        None, {"finalize": {"top_k": 9, "epochs": 100}}, plugin_manager=manager
    )
    assert identity_of(base) == identity_of(changed)
    assert "play" not in identity_of(base)["run"]
    played = nasframe.load_config(None, {"run": {"play": "a.zip"}}, plugin_manager=manager)
    assert identity_of(played)["run"]["play"] == "a.zip"


def test_finalize_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["finalize", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {tmp_path}: not a search's output folder (it has no run.json)"
    )
    run_dir = proxy_search(tmp_path, steps=3)
    result = CliRunner().invoke(main, ["finalize", str(run_dir), *KERAS, "--seeds", "0,x"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: [finalize] seeds = '0,x': 'x' is not a seed (need integers >= 0, "
        "comma-separated, e.g. 0,1,2)"
    )


# -- what finalize shows: final.png, the printed table, final.csv (no training) ---------

LONG = "1,1,3,0,0;2,2,2,1,0;3,6,0,1,2;4,1,5,3,0;5,1,3,4,0"


def final_summaries(tmp_path: Path) -> list[dict[str, Any]]:
    """Three networks: three seeds ok; one ok, one failed, one to train; none trained."""
    from nasframe.bench import TableRow
    from nasframe.finalize import FinalPlan
    from nasframe.finalize.report import _summaries

    def record(nsc: str, accuracy: float) -> nasframe.Record:
        network = nasframe.NSC.parse(nsc)
        evaluation = nasframe.Evaluation(status="ok", accuracy=accuracy, params=1234)  # type: ignore[arg-type]
        return nasframe.Record("d", "d", network.canonical_hash, nsc, "e", "1", "fp", evaluation)

    nets = [record(LONG, 0.9), record("1,1,5,0,0", 0.8), record("1,2,2,0,0;2,1,3,1,0", 0.7)]
    plan = FinalPlan(tmp_path, tmp_path / "final", nets, [0, 1, 2], ("keras", {}), ("digits", {}))
    first, second = nets[0], nets[1]
    rows = [
        TableRow(first.arch_hash, LONG, 5, s, "ok", curve=(0.9 + s / 100,), test=0.88 + s / 100)
        for s in (0, 1, 2)
    ]
    rows.append(TableRow(second.arch_hash, second.nsc, 1, 0, "ok", curve=(0.7,), test=0.69))
    rows.append(TableRow(second.arch_hash, second.nsc, 1, 1, "error", message="boom"))
    return _summaries(plan, rows, plan.output)


def nsc_cells(text: str) -> list[str]:
    """The NSC column of a printed table, each network's folded lines joined again."""
    cells: list[str] = []
    for line in text.splitlines():
        parts = line.split("│")
        if len(parts) < 4:
            continue  # a border, the title or the header
        if parts[1].strip():
            cells.append("")  # a new network: its rank is on this line
        cells[-1] += parts[2].strip()
    return cells


def test_finalize_table_shows_whole_nscs_and_seed_counts_that_read(tmp_path: Path) -> None:
    from nasframe.finalize.report import _fmt, _print_table, _rich_table, _write_table

    networks = final_summaries(tmp_path)
    assert _fmt(networks[0]["validation"]) == "0.9100 ± 0.0100"
    assert _fmt(networks[1]["validation"]) == "0.7000"  # one seed: no "± 0.0000"
    assert _fmt(networks[2]["validation"]) == "-"
    whole = [LONG, "1,1,5,0,0", "1,2,2,0,0;2,1,3,1,0"]
    # 80 columns: what rich assumes for a file or a pipe, where the table is printed whole
    for width in (40, 80):
        console = Console(file=io.StringIO(), width=width)
        _print_table(console, _rich_table(networks, tmp_path, 3))
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert nsc_cells(text) == whole, text
        assert "± 0.0000" not in text and "…" not in text
        lines = text.splitlines()
        seeds = [line.split("│")[8].strip() for line in lines if line.count("│") == 9]
        assert LONG in text and seeds[0] == "3/3"
    # a narrow terminal: every cell folds onto more lines, none is cut
    console = Console(file=io.StringIO(), width=60, force_terminal=True, color_system=None)
    _print_table(console, _rich_table(networks, tmp_path, 3))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert nsc_cells(text) == whole and "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 60
    assert seeds == ["3/3", "1/3 (1 failed, 1 to train)", "0/3 (not trained yet)"]  # no 0/0
    _write_table(tmp_path / "final.csv", networks)
    import csv

    with (tmp_path / "final.csv").open(encoding="utf-8") as handle:
        assert [row["nsc"] for row in csv.DictReader(handle)] == [n["nsc"] for n in networks]


def test_final_png_names_networks_by_nsc_and_its_legend_covers_no_bar(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from nasframe.finalize.report import _figure, _plot

    networks = final_summaries(tmp_path)
    figure = _figure(networks)
    try:
        axis = figure.axes[0]
        labels = [tick.get_text() for tick in axis.get_xticklabels()]
        assert labels == [
            "#1\n" + LONG.replace(";", "\n"),
            "#2\n1,1,5,0,0",
            "#3\n1,2,2,0,0\n2,1,3,1,0",
        ]
        assert not any(net["arch_hash"][:8] in "".join(labels) for net in networks)
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        legend = figure.legends[0].get_window_extent(renderer)
        assert not legend.overlaps(axis.get_window_extent(renderer))
        for patch in axis.patches:  # no bar under the legend either
            assert not legend.overlaps(patch.get_window_extent(renderer))
        # an error bar only where seeds give a spread (network 1), never a 0-length one
        bars = [c for c in axis.containers if type(c).__name__ == "ErrorbarContainer"]
        spans = [seg for c in bars for seg in c.lines[2][0].get_segments()]
        assert len(spans) == 2  # validation and test of network #1 (x = 0)
        assert all(abs(seg[0][0]) < 0.5 and seg[1][1] - seg[0][1] > 0 for seg in spans)
        assert axis.get_ylabel() == "accuracy (mean ± std over seeds)"
    finally:
        plt.close(figure)
    _plot(tmp_path / "final.png", networks)
    assert (tmp_path / "final.png").read_bytes().startswith(b"\x89PNG")
