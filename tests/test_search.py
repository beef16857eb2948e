"""run_search: budgets, agents, results, hooks, stop and resume, refusals (cheap estimator)."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nasframe_memory import MemoryDB
from rich.console import Console

import nasframe
from nasframe.results import StepLog
from nasframe.search import Run, run_search

#: The hooks these tests see fired (checked by tests/test_hooks_meta.py).
EXERCISED_HOOKS = ("nasframe_run_started", "nasframe_run_finished", "nasframe_evaluation_stored")


class SearchPlugin:
    """A small real dataset, a shared in-memory database, and a recorder of run hooks."""

    def __init__(self, database: MemoryDB | None = None, stop_after: int = 0) -> None:
        self.database = database if database is not None else MemoryDB()
        self.stop_after = stop_after
        self.stored = 0
        self.events: list[tuple[str, str]] = []

    @nasframe.hookimpl
    def nasframe_register_datasets(self, registry: nasframe.Registry) -> None:
        def tiny() -> nasframe.ArrayDataset:
            rng = np.random.default_rng(0)
            x, y = rng.random((24, 12, 12, 1)), rng.integers(0, 4, 24)
            return nasframe.ArrayDataset(
                "tiny", {s: (x, y) for s in ("train", "validation", "test")}
            )

        registry.add("tiny-v1", tiny, summary="24 random 12x12 images, 4 classes")

    @nasframe.hookimpl
    def nasframe_register_experiment_dbs(self, registry: nasframe.Registry) -> None:
        registry.add("shared-v1", lambda **_: self.database, summary="one MemoryDB per test")

    @nasframe.hookimpl
    def nasframe_evaluation_stored(self, record: nasframe.Record) -> None:
        self.stored += 1
        if self.stop_after and self.stored == self.stop_after:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, mid-run

    @nasframe.hookimpl
    def nasframe_run_started(self, run: Run) -> None:
        self.events.append(("started", run.outcome))

    @nasframe.hookimpl
    def nasframe_run_finished(self, run: Run) -> None:
        self.events.append(("finished", run.outcome))


def setup(
    tmp_path: Path, plugin: SearchPlugin | None = None, **run: Any
) -> tuple[nasframe.Config, nasframe.PluginManager, SearchPlugin]:
    plugin = plugin or SearchPlugin()
    manager = nasframe.get_plugin_manager(plugins=[("search-test", plugin)])
    values: dict[str, Any] = {"output": tmp_path / "out", "steps": 40, "verbosity": 0}
    values.update(run)
    env = {"estimator": "proxy", "dataset": "tiny", "database": "shared"}
    env.update(values.pop("env", {}))
    config = nasframe.load_config(None, {"run": values, "env": env}, plugin_manager=manager)
    return config, manager, plugin


def quiet() -> Console:
    return Console(file=io.StringIO(), width=100)


# Every agent runs hundreds of steps through the command line in test_search_cli.py.
@pytest.mark.parametrize("agent", ["random", "a2c"])
def test_each_agent_searches_hundreds_of_steps(tmp_path: Path, agent: str) -> None:
    config, manager, plugin = setup(tmp_path, agent=agent, steps=300, plots=False)
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed"
    assert run.steps == 300
    assert plugin.events == [("started", "running"), ("finished", "completed")]
    rows = StepLog(run.output / "steps.csv").read()
    assert [r.step for r in rows] == list(range(1, 301))
    assert run.episodes == sum(r.done for r in rows) >= 30  # episodes are at most 10 steps
    assert run.session_trainings == len(plugin.database) == plugin.stored
    assert run.session_hits == sum(r.cache_hit for r in rows)
    summary = json.loads((run.output / "summary.json").read_text())
    assert summary["agent"] == f"{agent}-v1"
    assert summary["steps"] == 300
    best = summary["best"][0]
    assert best["accuracy"] == max(r.accuracy for r in rows if r.status == "ok") > 0.25
    assert nasframe.NSC.parse(best["nsc"]).depth >= 1
    assert (run.output / f"agent{run.agent.checkpoint_suffix}").is_file()  # type: ignore[union-attr]


def test_results_files_and_printed_table(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, steps=60, verbosity=1, tensorboard=True)
    console = Console(record=True, width=200, file=io.StringIO())
    run = run_search(config, plugin_manager=manager, console=console)
    text = console.export_text()
    best = run.summary["best"][0]
    assert "Best architectures" in text and best["nsc"] in text
    assert f"best architecture: {best['nsc']} (accuracy {best['accuracy']:.4f}" in text
    for name in ("rewards.png", "best_architecture.png", "summary.json", "search.log"):
        assert (run.output / name).stat().st_size > 0
    assert list((run.output / "tensorboard").glob("events.out.tfevents.*"))
    assert "starting run in" in (run.output / "search.log").read_text()


def test_episode_budget(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, steps=0, episodes=7)
    run = run_search(config, plugin_manager=manager, console=quiet())
    rows = StepLog(run.output / "steps.csv").read()
    assert run.episodes == 7 == sum(r.done for r in rows)
    assert rows[-1].done and rows[-1].episode == 7


def test_stop_and_resume_reuses_every_stored_evaluation(tmp_path: Path) -> None:
    database = MemoryDB()
    plugin = SearchPlugin(database, stop_after=15)
    config, manager, _ = setup(tmp_path, plugin, steps=120, checkpoint_every=0)
    first = run_search(config, plugin_manager=manager, console=quiet(), resume_command="again")
    assert first.outcome == "interrupted" and first.stop_reason == "SIGINT"
    assert plugin.events[-1] == ("finished", "interrupted")
    assert first.session_trainings == 15 == len(database)  # stopped right after the 15th
    assert 15 <= first.steps < 120
    assert (first.output / "agent.json").is_file()
    state = json.loads((first.output / "state.json").read_text())
    assert state["outcome"] == "interrupted" and state["steps"] == first.steps

    # A fresh process would rebuild everything; the database is the only thing shared.
    plugin2 = SearchPlugin(database)
    config2, manager2, _ = setup(tmp_path, plugin2, steps=120)
    second = run_search(config2, plugin_manager=manager2, console=quiet())
    assert second.outcome == "completed"
    assert second.resumed_from == first.steps and second.steps == 120
    rows = StepLog(second.output / "steps.csv").read()
    assert [r.step for r in rows] == list(range(1, 121))
    # nothing trained twice: every training made a new record
    assert first.session_trainings + second.session_trainings == len(database)
    assert second.trainings == len(database)
    assert len({(r.dataset, r.arch_hash) for r in database}) == len(database)

    # the random agent resumed its random stream: same actions as an uninterrupted run
    config3, manager3, _ = setup(tmp_path / "whole", steps=120)
    whole = run_search(config3, plugin_manager=manager3, console=quiet())
    whole_rows = StepLog(whole.output / "steps.csv").read()
    assert [r.action for r in rows] == [r.action for r in whole_rows]

    # running the finished run again trains nothing and keeps the log
    third = run_search(config2, plugin_manager=manager2, console=quiet())
    assert third.outcome == "completed" and third.session_trainings == 0
    assert len(StepLog(second.output / "steps.csv").read()) == 120


def test_sigterm_stops_like_ctrl_c(tmp_path: Path) -> None:
    class Term(SearchPlugin):
        @nasframe.hookimpl
        def nasframe_evaluation_stored(self, record: nasframe.Record) -> None:
            self.stored += 1
            if self.stored == 5:
                os.kill(os.getpid(), signal.SIGTERM)

    config, manager, plugin = setup(tmp_path, Term(), steps=200)
    before = signal.getsignal(signal.SIGTERM)
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "interrupted" and run.stop_reason == "SIGTERM"
    assert run.session_trainings == 5 == len(plugin.database)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_a_finished_run_can_be_extended(tmp_path: Path) -> None:
    database = MemoryDB()
    config, manager, _ = setup(tmp_path, SearchPlugin(database), steps=30)
    run_search(config, plugin_manager=manager, console=quiet())
    config2, manager2, _ = setup(tmp_path, SearchPlugin(database), steps=50)
    run = run_search(config2, plugin_manager=manager2, console=quiet())
    assert run.resumed_from == 30 and run.steps == 50


def test_other_configuration_in_the_folder_is_refused(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, steps=10)
    run_search(config, plugin_manager=manager, console=quiet())
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    other, manager2, _ = setup(tmp_path, steps=10, seed=7)
    with pytest.raises(nasframe.ConfigError) as info:
        run_search(other, plugin_manager=manager2, console=quiet())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"output folder {tmp_path / 'out'} holds a run with a different")
    assert "[run] seed: '0' there, '7' now" in message
    assert "--force" in message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before  # nothing lost

    forced = run_search(other, plugin_manager=manager2, console=quiet(), force=True)
    assert forced.outcome == "completed" and forced.resumed_from == 0
    aside = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("replaced-")]
    assert len(aside) == 1 and (aside[0] / "steps.csv").is_file()


def test_forcing_again_within_one_second_keeps_every_replaced_run(tmp_path: Path) -> None:
    # Issue 17, defect 1: the folder was named by the second alone, so a second --force
    # within that second raised FileExistsError. The folders of the next minute exist
    # already, so every replacement collides however slowly the runs go.
    import datetime as dt

    out = tmp_path / "out"
    out.mkdir()
    now = dt.datetime.now(dt.UTC)
    taken = {
        (out / f"replaced-{(now + dt.timedelta(seconds=ahead)):%Y%m%dT%H%M%S}")
        for ahead in range(60)
    }
    for folder in taken:
        folder.mkdir()
    config, manager, _ = setup(tmp_path, steps=5, plots=False)
    for seed in range(3):
        overrides = {"run": {"seed": seed}}
        run_search(
            config.with_overrides(overrides), plugin_manager=manager, console=quiet(), force=True
        )
    aside = {p for p in out.iterdir() if p.name.startswith("replaced-")}
    new = aside - taken
    # the first run found no run; each later one moved its predecessor into a new folder
    assert len(new) == 2 and all(not any(folder.iterdir()) for folder in taken)
    seeds = sorted(json.loads((p / "run.json").read_text())["identity"]["run"]["seed"] for p in new)
    assert seeds == ["0", "1"]
    assert all((p / "steps.csv").is_file() for p in new)
    assert json.loads((out / "run.json").read_text())["identity"]["run"]["seed"] == "2"


def test_a_run_without_steps_can_be_corrected(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, agent="ppo", steps=10)
    bad = config.with_overrides({"ppo": {"net_arch": "x"}})
    with pytest.raises(nasframe.ConfigError, match="net_arch 'x' must be comma-separated"):
        run_search(bad, plugin_manager=manager, console=quiet())
    run = run_search(config, plugin_manager=manager, console=quiet())  # fixed: not refused
    assert run.outcome == "completed" and run.steps == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"steps": 0},
            "[run] steps and [run] episodes are both 0: the budget must be at least 1 step "
            "(--steps N) or 1 episode (--episodes N)",
        ),
        (
            {"steps": 5, "episodes": 3},
            "[run] steps = 5 and [run] episodes = 3: give one budget, set the other to 0",
        ),
    ],
)
def test_bad_budgets(tmp_path: Path, changes: dict[str, int], message: str) -> None:
    config, manager, _ = setup(tmp_path, **changes)
    with pytest.raises(nasframe.ConfigError) as info:
        run_search(config, plugin_manager=manager, console=quiet())
    assert str(info.value) == message
    assert not (tmp_path / "out").exists()


def test_negative_budget_is_refused_by_the_config(tmp_path: Path) -> None:
    with pytest.raises(nasframe.ConfigError) as info:
        setup(tmp_path, steps=-5)
    assert str(info.value) == "[run] steps: -5 is below the minimum 0"


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("run", "agent", "rnadom", "unknown agent 'rnadom'; did you mean 'random'?"),
        ("env", "dataset", "tinyy", "unknown dataset 'tinyy'; did you mean 'tiny'?"),
        ("env", "search_space", "chain", "unknown search space 'chain'"),
    ],
)
def test_unknown_names_list_the_known_ones(
    tmp_path: Path, section: str, key: str, value: str, expected: str
) -> None:
    if section == "run":
        config, manager, _ = setup(tmp_path, **{key: value})
    else:
        config, manager, _ = setup(tmp_path, env={key: value})
    with pytest.raises(nasframe.ConfigError) as info:
        run_search(config, plugin_manager=manager, console=quiet())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"[{section}] {key} (override value): {expected}")
    assert "(available: " in message
    known = {"run": "random-v1", "env": "tiny-v1" if key == "dataset" else "chained-v1"}
    assert known[section] in message
    assert not (tmp_path / "out").exists()


def test_missing_rl_extra_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nasframe.ComponentInfo, "missing", property(lambda self: self.requires))
    config, manager, _ = setup(tmp_path, agent="ppo")
    with pytest.raises(nasframe.PluginError) as info:
        run_search(config, plugin_manager=manager, console=quiet())
    assert str(info.value) == (
        "[run] agent: agent 'ppo-v1' needs stable_baselines3, torch, which is not installed; "
        "run: pip install 'nasframe[rl]'"
    )


def test_workers_without_the_ray_back_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "nasframe.distributed", None)  # its import fails
    config, manager, _ = setup(tmp_path, workers=2)
    with pytest.raises(nasframe.PluginError) as info:
        run_search(config, plugin_manager=manager, console=quiet())
    assert str(info.value) == (
        "[run] workers = 2 needs the Ray back end (the nasframe.distributed module and the "
        "ray extra), which is not available; run: pip install 'nasframe[ray]' (or set "
        "workers = 1)"
    )


def test_meta_rl_needs_one_worker(tmp_path: Path) -> None:
    pytest.importorskip("nasframe.distributed")
    config, manager, _ = setup(tmp_path, workers=2, meta_rl=True)
    with pytest.raises(nasframe.ConfigError) as info:
        run_search(config, plugin_manager=manager, console=quiet())
    assert str(info.value) == (
        "[run] meta_rl needs [run] workers = 1 (the meta-RL wrappers work on one "
        "environment), got workers = 2"
    )


def test_meta_rl_run_with_the_recurrent_learner(tmp_path: Path) -> None:
    config, manager, _ = setup(
        tmp_path,
        agent="recurrent-ppo",
        meta_rl=True,
        tasks="tiny:20,tiny:20",
        steps=45,
        plots=False,
    )
    run = run_search(config, plugin_manager=manager, console=quiet())
    assert run.outcome == "completed" and run.steps == 45
    assert run.env.observation_space.shape[0] > run.env.unwrapped.observation_space.shape[0]


def test_unknown_task_in_the_schedule(tmp_path: Path) -> None:
    config, manager, _ = setup(tmp_path, tasks="omniglot:10")
    with pytest.raises(nasframe.ConfigError) as info:
        run_search(config, plugin_manager=manager, console=quiet())
    assert str(info.value) == "[run] tasks: unknown task 'omniglot' (the dataset's tasks: tiny)"


def test_networks_trained_leaves_out_invalid_networks_that_trained_nothing(
    tmp_path: Path,
) -> None:
    """An invalid network is a cache miss the estimator answers without training."""

    def counts(rows: list[Any]) -> tuple[int, int]:
        misses = [r for r in rows if not r.cache_hit and r.status != "not_evaluated"]
        invalid = sum(1 for r in misses if r.status == "invalid")
        return len(misses) - invalid, invalid

    database = MemoryDB()
    plugin = SearchPlugin(database, stop_after=12)
    env = {"max_steps": 6}
    config, manager, _ = setup(tmp_path, plugin, steps=60, checkpoint_every=0, env=env)
    first = run_search(config, plugin_manager=manager, console=quiet(), resume_command="again")
    assert first.outcome == "interrupted"
    first_rows = StepLog(first.output / "steps.csv").read()
    trained, invalid = counts(first_rows)
    assert invalid >= 1  # the resumed session must count the first session's too
    assert (first.session_trained, first.session_invalid_untrained) == (trained, invalid)
    assert first.session_trainings == trained + invalid == len(database)

    console = Console(record=True, width=300, file=io.StringIO())
    config2, manager2, _ = setup(tmp_path, SearchPlugin(database), steps=60, verbosity=1, env=env)
    second = run_search(config2, plugin_manager=manager2, console=console)
    assert second.outcome == "completed"
    rows = StepLog(second.output / "steps.csv").read()
    session = counts(rows[len(first_rows) :])
    assert session[1] > 0, "the proxy found no invalid network: pick another seed"
    assert (second.session_trained, second.session_invalid_untrained) == session
    total = counts(rows)
    assert (second.trained, second.invalid_untrained) == total
    assert second.trainings == sum(total) == len(database)  # every estimator call stored
    text = console.export_text()
    assert (
        f"completed: 60 steps, {second.episodes} episodes, {session[0]} networks trained, "
        f"{session[1]} invalid (not trained) and {second.session_hits} cache hits this session"
    ) in text
    summary = json.loads((second.output / "summary.json").read_text())
    assert summary["trained"] == total[0] and summary["invalid_untrained"] == total[1]
    assert summary["session_trained"] == session[0]
    assert summary["session_invalid_untrained"] == session[1]
    assert summary["trainings"] == sum(total)


def test_trained_phrase_names_invalid_networks_only_when_there_are_some() -> None:
    from nasframe.search.report import trained_phrase

    assert trained_phrase(12, 3) == "12 networks trained, 3 invalid (not trained)"
    assert trained_phrase(1, 0) == "1 network trained"
    assert trained_phrase(0, 2) == "0 networks trained, 2 invalid (not trained)"
