"""Every figure says what it is: a score or a low fidelity is never an accuracy (issue 32)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from nasframe_cascade import CascadeEstimator
from nasframe_proxy import ProxyEstimator
from rich.console import Console

import nasframe
from nasframe import NSC, ArrayDataset, Evaluation, Status
from nasframe.cli import main
from nasframe.results import (
    StepLog,
    StepRow,
    best_architectures,
    best_phrase,
    best_scores,
    best_table,
    summarize,
)
from nasframe.results.plots import best_so_far, rewards_figure
from nasframe.search import run_search


def row(step: int, accuracy: float, measure: str = "", **changes: object) -> StepRow:
    values: dict[str, object] = {
        "step": step,
        "episode": step,
        "episode_step": 1,
        "task": "digits",
        "action": 1,
        "action_label": "conv",
        "nsc": f"1,1,{step},0,0",
        "arch_hash": f"h{step}",
        "reward": accuracy,
        "accuracy": accuracy,
        "params": 100 + step,
        "status": "ok",
        "cache_hit": False,
        "seconds": 0.1,
        "terminated": True,
        "truncated": False,
        "measure": measure,
    }
    values.update(changes)
    return StepRow(**values)  # type: ignore[arg-type]


MIXED = [
    row(1, 0.61),
    row(2, 0.93, "cascade 1/2: synflow score"),  # a high score, not an accuracy
    row(3, 0.72),
    row(4, 0.40, "cascade 1/2: synflow score"),
    row(5, 0.99, "other score", status="invalid"),  # failed: counted nowhere
]


def test_the_summary_counts_only_accuracies_as_the_best_accuracy() -> None:
    summary = summarize(MIXED)
    assert summary["best_accuracy"] == 0.72
    assert summary["best_scores"] == {"cascade 1/2: synflow score": 0.93}
    assert best_scores(MIXED) == {"cascade 1/2: synflow score": 0.93}
    best = best_architectures(MIXED)
    # accuracies first, then the scores, each entry naming its measure
    assert [(b["accuracy"], b["measure"]) for b in best] == [
        (0.72, ""),
        (0.61, ""),
        (0.93, "cascade 1/2: synflow score"),
        (0.40, "cascade 1/2: synflow score"),
    ]


def test_the_end_line_names_each_measure() -> None:
    assert best_phrase(0.72, {}) == "best accuracy 0.7200"
    assert best_phrase(0.72, {"cascade 1/2: synflow score": 0.93}) == (
        "best accuracy 0.7200; best cascade 1/2: synflow score 0.9300"
    )
    assert best_phrase(0.0, {"synflow score": 0.5703}) == (
        "best synflow score 0.5703 (no accuracy measured)"
    )


def test_the_table_shows_a_measure_column_only_when_a_value_is_not_an_accuracy() -> None:
    def text(rows: list[StepRow]) -> str:
        console = Console(file=io.StringIO(), width=160)
        console.print(best_table(best_architectures(rows)))
        return console.file.getvalue()  # type: ignore[attr-defined]

    plain = text([row(1, 0.61), row(3, 0.72)])
    assert "accuracy" in plain and "measure" not in plain
    mixed = text(MIXED)
    header = mixed.splitlines()[2]
    assert "value" in header and "measure" in header and "accuracy" not in header
    assert "cascade 1/2: synflow score" in mixed


def test_best_so_far_keeps_each_measure_apart() -> None:
    assert best_so_far(MIXED) == [0.61, 0.61, 0.72, 0.72, 0.72]
    assert best_so_far(MIXED, "cascade 1/2: synflow score") == [0.0, 0.93, 0.93, 0.93, 0.93]
    import matplotlib.pyplot as plt

    figure = rewards_figure(MIXED)
    try:
        labels = [line.get_label() for line in figure.axes[0].get_lines()]
        assert labels[:2] == ["best accuracy so far", "best cascade 1/2: synflow score so far"]
        assert figure.axes[0].get_ylabel() == "reward / accuracy / cascade 1/2: synflow score"
    finally:
        plt.close(figure)
    scores_only = rewards_figure([row(1, 0.4, "synflow score"), row(2, 0.5, "synflow score")])
    try:
        labels = [line.get_label() for line in scores_only.axes[0].get_lines()]
        assert "best accuracy so far" not in labels and "best synflow score so far" in labels
    finally:
        plt.close(scores_only)


def test_a_step_log_without_the_measure_column_is_read_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "steps.csv"
    log = StepLog(path)
    log.append(row(1, 0.5))
    log.close()
    lines = path.read_text().splitlines()
    assert lines[0].endswith(",truncated,measure")
    # the log as nasframe wrote it before the column existed
    old_header = lines[0].removesuffix(",measure")
    path.write_text("\n".join([old_header, lines[1].removesuffix(",")]) + "\n")
    assert StepLog(path).read() == [row(1, 0.5)]  # an accuracy
    log = StepLog(path)
    log.append(row(2, 0.3, "synflow score"))
    log.close()
    assert StepLog(path).read() == [row(1, 0.5), row(2, 0.3, "synflow score")]
    assert path.read_text().splitlines()[0].endswith(",measure")


def _dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays(
        "measures", rng.random((10, 20, 20, 1), dtype=np.float32), np.arange(10) % 10
    )


def test_a_cascade_names_its_low_fidelity_and_not_its_last() -> None:
    dataset = _dataset()
    chain = [ProxyEstimator(filters=8, dense_units=16), ProxyEstimator(filters=32)]
    strict = CascadeEstimator(fraction=0.01, warmup=0, estimators=chain)
    networks = ["1,1,3,0,0", "1,1,1,0,0", "1,1,5,0,0", "1,2,2,0,0"]
    evaluations = [strict.evaluate(NSC.parse(n), dataset) for n in networks]
    levels = [e.message.split()[1] for e in evaluations]
    assert "1/2" in levels and "2/2" in levels
    for evaluation, level in zip(evaluations, levels, strict=True):
        expected = "" if level == "2/2" else "cascade 1/2: accuracy"
        assert evaluation.measure == expected, evaluation
    # an inner measure is kept: a zero-cost first fidelity reads "cascade 1/2: <its score>"

    class Scored(ProxyEstimator):
        def evaluate(
            self, architecture: NSC, dataset: nasframe.DatasetHandler, *, seed: int | None = None
        ) -> Evaluation:
            evaluation = super().evaluate(architecture, dataset, seed=seed)
            return replace(evaluation, measure="toy score", epochs=0)

    scored = CascadeEstimator(fraction=0.01, warmup=0, estimators=[Scored(), ProxyEstimator()])
    labels = {scored.evaluate(NSC.parse(n), dataset).measure for n in networks}
    assert "cascade 1/2: toy score" in labels
    assert Evaluation(status=Status.OK, measure="toy score").label == "toy score"
    assert Evaluation().label == "accuracy"


def test_a_cascade_search_reports_its_low_fidelity_as_what_it_is(tmp_path: Path) -> None:
    manager = nasframe.get_plugin_manager()
    output = tmp_path / "run"
    config = nasframe.load_config(
        None,
        {
            "run": {"steps": 30, "output": str(output), "verbosity": 1, "plots": True},
            "env": {"estimator": "cascade", "dataset": "digits", "max_steps": 3},
            "cascade": {"chain": "proxy-v1,proxy-v1", "fraction": 0.2, "warmup": 2},
        },
        plugin_manager=manager,
    )
    console = Console(file=io.StringIO(), width=200)
    run = run_search(config, plugin_manager=manager, console=console)
    assert run.outcome == "completed"
    rows = StepLog(output / "steps.csv").read()
    ok = [r for r in rows if r.status == "ok"]
    low = [r for r in ok if r.measure == "cascade 1/2: accuracy"]
    full = [r for r in ok if r.measure == ""]
    assert low and full and len(low) + len(full) == len(ok)
    summary = json.loads((output / "summary.json").read_text())
    assert summary["best_accuracy"] == max(r.accuracy for r in full)
    assert summary["best_scores"] == {"cascade 1/2: accuracy": max(r.accuracy for r in low)}
    assert run.best_accuracy == summary["best_accuracy"]
    state = json.loads((output / "state.json").read_text())
    assert state["best_scores"] == summary["best_scores"]
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"best accuracy {summary['best_accuracy']:.4f}; best cascade 1/2: accuracy" in printed
    with (output / "steps.csv").open(newline="") as handle:
        assert "cascade 1/2: accuracy" in {line["measure"] for line in csv.DictReader(handle)}
    assert (output / "rewards.png").is_file()
    # the database keeps the measure, and db show names it
    shown = CliRunner().invoke(main, ["db", "show", str(output / "experiments.csv"), "-n", "50"])
    assert shown.exit_code == 0, shown.output
    assert "measure" in shown.output and "cascade 1/2: accuracy" in shown.output
    stats = CliRunner().invoke(main, ["db", "stats", str(output / "experiments.csv")])
    assert stats.exit_code == 0, stats.output
    assert "by measure" in stats.output and "best value" in stats.output
