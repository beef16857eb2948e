"""The databases as the environment's cache, built from the configuration like a search."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

import nasframe
from nasframe import ArrayDataset, DatabaseError


def dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays("tiny", rng.random((40, 8, 8)), np.arange(40) % 4)


def episode_infos(env: nasframe.NASEnv, actions: list[int]) -> list[dict[str, object]]:
    env.reset(seed=0)
    infos = []
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            env.reset()
    return infos


@pytest.mark.parametrize("backend", ["csv", "sqlite"])
def test_a_second_run_on_the_same_file_trains_nothing(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "run" / f"experiments.{backend}"
    config = nasframe.load_config(
        overrides={"env": {"database": backend}, "database": {"path": str(path)}}
    )

    def make() -> nasframe.NASEnv:
        return nasframe.make_env(
            search_space="chained", estimator="proxy", dataset=dataset(), config=config, seed=0
        )

    env = make()
    actions = [int(a) for a in np.random.default_rng(1).integers(0, env.action_space.n, 30)]
    first = episode_infos(env, actions)
    stored = len(env.database)
    assert stored > 0 and path.is_file()
    assert (
        type(env.database).__name__
        == {"csv": "CsvExperimentDB", "sqlite": "SqliteExperimentDB"}[backend]
    )
    env.database.close()

    again = make()  # a new process's view: the same configuration, the same file
    second = episode_infos(again, actions)
    assert len(again.database) == stored  # nothing new was stored ...
    evaluated = [info for info in second if info["status"] != "out_of_range"]
    assert evaluated and all(info["cache_hit"] for info in evaluated)  # ... or trained
    assert [i["accuracy"] for i in second] == [i["accuracy"] for i in first]


def test_a_configured_csv_database_needs_a_path() -> None:
    config = nasframe.load_config(overrides={"env": {"database": "csv"}})
    with pytest.raises(DatabaseError, match=r"^\[database\] path is empty"):
        nasframe.make_env(
            search_space="chained", estimator="proxy", dataset=dataset(), config=config
        )


def open_descriptors(*paths: Path) -> int:
    """How many descriptors of this process point at one of ``paths`` (Linux /proc)."""
    targets = {str(path.resolve()) for path in paths}
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed while listing (the listing's own)
            count += str(Path(fd).readlink()) in targets
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("backend", ["csv", "sqlite"])
def test_close_releases_the_database_it_built(backend: str, tmp_path: Path) -> None:
    # Issue 17, defect 2: every stepped and closed env kept 2 descriptors open (the CSV
    # file and its write descriptor), so a sweep in one process leaked them.
    path = tmp_path / f"experiments.{backend}"
    files = (path, Path(f"{path}.lock"), Path(f"{path}-wal"), Path(f"{path}-journal"))
    config = nasframe.load_config(
        overrides={"env": {"database": backend}, "database": {"path": str(path)}}
    )
    before = open_descriptors(*files)
    for _ in range(3):
        env = nasframe.make_env(
            search_space="chained", estimator="proxy", dataset=dataset(), config=config, seed=0
        )
        episode_infos(env, [0, 1, 2, 3])
        assert open_descriptors(*files) > before  # it really holds the file open
        env.close()
        env.close()  # twice is harmless
        assert open_descriptors(*files) == before
    with nasframe.make_env(config=config, estimator="proxy", dataset=dataset()) as env:
        assert len(env.database) > 0  # closing lost nothing
    assert open_descriptors(*files) == before


def test_close_leaves_a_database_passed_in_open(tmp_path: Path) -> None:
    from nasframe_csv import CsvExperimentDB

    with CsvExperimentDB(tmp_path / "shared.csv", fsync=False) as database:
        env = nasframe.make_env(
            search_space="chained", estimator="proxy", dataset=dataset(), database=database
        )
        episode_infos(env, [0, 1])
        env.close()
        assert len(database) > 0  # still usable: it belongs to the caller
