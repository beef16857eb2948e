"""Event hooks fired by the environment: an observer plugin sees every store and episode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nasframe
from nasframe import get_plugin_manager, make_env

EXAMPLE_SRC = (
    Path(__file__).resolve().parents[1] / "docs" / "examples" / "nasframe-example-plugin" / "src"
)

#: The hooks this module implements in its observer plugin (see test_hooks_meta.py).
EXERCISED_HOOKS = ("nasframe_evaluation_stored", "nasframe_episode_ended")


class Observer:
    """A plugin that records what it observes, as a logger or exporter would."""

    def __init__(self) -> None:
        self.records: list[nasframe.Record] = []
        self.episodes: list[Any] = []

    @nasframe.hookimpl
    def nasframe_evaluation_stored(self, record: nasframe.Record) -> None:
        self.records.append(record)

    @nasframe.hookimpl
    def nasframe_episode_ended(self, episode: Any) -> None:
        self.episodes.append(episode)


def _episode(env: Any, actions: list[int] | None = None) -> tuple[list[int], list[bool]]:
    """Run one episode (the given actions, or sampled ones); return actions and cache hits."""
    env.reset()
    taken: list[int] = []
    hits: list[bool] = []
    done = False
    while not done:
        action = actions[len(taken)] if actions is not None else int(env.action_space.sample())
        _, _, terminated, truncated, _ = env.step(action)
        taken.append(action)
        hits.append(env.unwrapped.last_cache_hit)
        done = terminated or truncated
    return taken, hits


def test_env_fires_evaluation_stored_and_episode_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example plugin's small dataset keeps this independent of the bundled data.
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    import nasframe_shapes

    observer = Observer()
    manager = get_plugin_manager(
        plugins=[("shapes", nasframe_shapes), ("observer", observer)], autoload=False
    )
    config = nasframe.load_config(
        overrides={"shapes": {"size": 16, "per_class": 5}}, plugin_manager=manager
    )
    env = make_env(
        search_space="chained",
        estimator="proxy",
        dataset="shapes",
        database="memory",
        config=config,
        plugin_manager=manager,
        max_steps=4,
        seed=0,
    )
    env.action_space.seed(0)
    actions, _ = _episode(env)
    assert [episode.number for episode in observer.episodes] == [1]
    first = observer.episodes[0]
    assert list(first.actions) == actions
    assert first.steps == len(actions) and len(first.rewards) == len(actions)
    # one stored record per training (a cache miss), none for hits
    assert len(observer.records) == env.evaluator.trainings == first.trainings
    for record in observer.records:
        assert env.evaluator.database.get(record.key) == record
    stored = len(observer.records)
    assert stored > 0
    # the same actions again: every evaluation is a cache hit, so nothing new is stored
    again, hits = _episode(env, actions)
    assert again == actions
    assert [episode.number for episode in observer.episodes] == [1, 2]
    assert len(observer.records) == stored
    assert observer.episodes[1].trainings == 0
    assert all(hits)
