"""Results of a search: the step log, summary, table, plots and TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from nasframe.errors import NasframeError
from nasframe.results import (
    StepLog,
    StepRow,
    best_architectures,
    best_table,
    plot_architecture,
    plot_rewards,
    summarize,
    write_summary,
    write_tensorboard,
)

PNG = b"\x89PNG\r\n\x1a\n"


def row(step: int, nsc: str, accuracy: float, **changes: object) -> StepRow:
    values: dict[str, object] = {
        "step": step,
        "episode": 1 + (step - 1) // 3,
        "episode_step": 1 + (step - 1) % 3,
        "task": "digits",
        "action": step % 5,
        "action_label": f"action-{step % 5}",
        "nsc": nsc,
        "arch_hash": f"h-{nsc}",
        "reward": accuracy,
        "accuracy": accuracy,
        "params": 1000 + step,
        "status": "ok",
        "cache_hit": False,
        "seconds": 0.5,
        "terminated": False,
        "truncated": step % 3 == 0,
    }
    values.update(changes)
    return StepRow(**values)  # type: ignore[arg-type]


ROWS = [
    row(1, "1,1,3,0,0", 0.5),
    row(2, "1,1,3,0,0;2,2,2,1,0", 0.7),
    row(3, "1,1,3,0,0;2,2,2,1,0;3,1,5,2,0", 0.0, status="invalid", terminated=True),
    row(4, "1,1,3,0,0", 0.5, cache_hit=True),
    row(5, "1,1,5,0,0", 0.9, task="other"),
    row(6, "", 0.1),
]


def test_step_log_round_trips_and_survives_a_torn_line(tmp_path: Path) -> None:
    log = StepLog(tmp_path / "steps.csv")
    assert log.read() == []
    for entry in ROWS:
        log.append(entry)
    assert log.read() == ROWS
    with (tmp_path / "steps.csv").open("a") as handle:
        handle.write("7,3,1,digits,2,act")  # a crash in the middle of a line
    assert log.read() == ROWS
    log.truncate(log.read())
    log.append(row(7, "1,1,1,0,0", 0.2))
    assert len(log.read()) == 7


def test_step_log_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "steps.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(NasframeError, match=r"steps.csv: not a nasframe step log"):
        StepLog(path).read()
    log = StepLog(tmp_path / "ok.csv")
    for entry in ROWS[:3]:
        log.append(entry)
    text = (tmp_path / "ok.csv").read_text().splitlines()
    text[2] = text[2].replace(",0.7,", ",zzz,")
    (tmp_path / "ok.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(NasframeError, match=r"ok.csv: line 3 is corrupt"):
        log.read()


def test_best_architectures_are_distinct_ok_and_ranked() -> None:
    best = best_architectures(ROWS)
    # The empty network counts like any other, so the table agrees with best_accuracy.
    assert [b["nsc"] for b in best] == ["1,1,5,0,0", "1,1,3,0,0;2,2,2,1,0", "1,1,3,0,0", ""]
    assert best[0]["task"] == "other" and best[0]["accuracy"] == 0.9
    assert best[2]["visits"] == 2 and best[2]["first_step"] == 1
    assert best_architectures(ROWS, top=1) == best[:1]


def test_summary_counts(tmp_path: Path) -> None:
    summary = summarize(ROWS, agent="random-v1")
    assert summary["agent"] == "random-v1"
    assert summary["steps"] == 6
    assert summary["episodes"] == 2  # episodes end at steps 3 and 6
    assert summary["cache_hits"] == 1
    assert summary["invalid"] == 1
    assert summary["best_accuracy"] == 0.9
    assert summary["tasks"] == ["digits", "other"]
    path = write_summary(tmp_path / "summary.json", {**summary, "nan": float("nan")})
    loaded = json.loads(path.read_text())
    assert loaded["best"][0]["nsc"] == "1,1,5,0,0"
    assert loaded["nan"] is None


def test_best_table_lists_nsc_accuracy_params() -> None:
    console = Console(width=120, record=True)
    console.print(best_table(best_architectures(ROWS)))
    text = console.export_text()
    assert "head only" in text  # the empty network, row 6
    assert "1,1,3,0,0;2,2,2,1,0" in text
    assert "0.9000" in text
    assert "1,005" in text  # params of step 5


def test_a_terminal_step_logs_the_network_it_ends() -> None:
    # The network, as the database stores it: the head-only network is "".
    assert row(1, "1,7,0,0,0", 0.1, terminated=True).nsc == ""
    assert row(2, "1,1,3,0,0;2,7,0,0,0", 0.5, terminated=True).nsc == "1,1,3,0,0"
    best = best_architectures([row(1, "1,7,0,0,0", 0.9, terminated=True, arch_hash="h")])
    assert best[0]["nsc"] == ""


def test_an_old_step_log_reads_the_head_only_network_as_empty(tmp_path: Path) -> None:
    log = StepLog(tmp_path / "steps.csv")
    log.append(row(1, "1,1,3,0,0", 0.5))
    log.close()
    old = row(2, "", 0.9, terminated=True, arch_hash="h-head").to_strings()
    old["nsc"] = "1,7,0,0,0"  # how the head-only network was logged before
    with (tmp_path / "steps.csv").open("a", newline="", encoding="utf-8") as handle:
        handle.write(",".join(f'"{old[name]}"' for name in old) + "\n")
    rows = log.read()
    assert [r.nsc for r in rows] == ["1,1,3,0,0", ""]
    summary = summarize(rows)
    assert summary["best"][0]["nsc"] == ""
    loaded = json.loads(write_summary(tmp_path / "summary.json", summary).read_text())
    assert loaded["best"][0]["nsc"] == ""
    console = Console(width=120, record=True)
    console.print(best_table(summary["best"]))
    text = console.export_text()
    assert "head only" in text and "7,0,0,0" not in text
    log.truncate(rows)  # a resumed run rewrites the log: in the new form
    assert "7,0,0,0" not in (tmp_path / "steps.csv").read_text()


def test_plots_are_png_files(tmp_path: Path) -> None:
    rewards = plot_rewards(ROWS, tmp_path / "rewards.png")
    assert rewards.read_bytes().startswith(PNG)
    graph = plot_architecture("1,1,3,0,0;2,2,2,1,0;3,6,0,1,2;4,7,0,0,0", tmp_path / "g.png")
    assert graph.read_bytes().startswith(PNG)
    assert graph.stat().st_size > 5000  # a drawing, not an empty canvas


def test_plots_without_matplotlib_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    with pytest.raises(NasframeError) as info:
        plot_rewards(ROWS, tmp_path / "rewards.png")
    assert str(info.value) == (
        "plots need matplotlib, which is not installed; run: pip install 'nasframe[plot]'"
    )


def test_tensorboard_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = write_tensorboard(ROWS, tmp_path / "tb")
    write_tensorboard(ROWS, logdir)  # rewriting replaces, never duplicates
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(logdir))
    events.Reload()
    best = [e.value for e in events.Scalars("search/best_accuracy")]
    assert best == pytest.approx([0.5, 0.7, 0.7, 0.7, 0.9, 0.9])
    assert [e.step for e in events.Scalars("search/reward")] == [1, 2, 3, 4, 5, 6]


def test_rewards_plot_draws_best_so_far_as_steps_under_visible_rewards() -> None:
    import matplotlib.pyplot as plt

    from nasframe.results.plots import best_so_far, rewards_figure

    # the best so far counts ok steps only and holds until beaten
    assert best_so_far(ROWS) == [0.5, 0.7, 0.7, 0.7, 0.9, 0.9]
    figure = rewards_figure(ROWS)
    try:
        axis = figure.axes[0]
        lines = {line.get_label(): line for line in axis.get_lines()}
        best, reward = lines["best accuracy so far"], lines["reward per step"]
        assert best.get_drawstyle() == "steps-post"
        assert list(best.get_ydata()) == best_so_far(ROWS)
        assert list(reward.get_ydata()) == [r.reward for r in ROWS]
        # a reward equal to the best so far (steps 1, 2 and 5) is a marker drawn on top
        assert reward.get_linestyle() == "None" and reward.get_marker() == "o"
        assert reward.get_zorder() > best.get_zorder()
        assert best.get_linewidth() < 2
        # the legend is outside the axes: it covers no point
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        legend = figure.legends[0].get_window_extent(renderer)
        assert not legend.overlaps(axis.get_tightbbox(renderer))  # ticks, labels too
    finally:
        plt.close(figure)
