"""The one job pool of ``bench build`` and ``finalize`` (``nasframe.distributed.rows``).

On a local Ray instance (2 CPUs) that outlives the pool, as a cluster would: every actor
the pool started -- the replacement of one that died included -- must be gone when the
pool ends (the build's own pool used to leak the replacement).
"""

from __future__ import annotations

import math
import os
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, Measurement, PerformanceEstimator
from nasframe.distributed import connect_ray
from nasframe.distributed.rows import PoolSettings, RowPool, measure_row, measure_rows
from nasframe.errors import ConfigError

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


class CrashingEstimator(PerformanceEstimator):
    """Measures by hash; the first measurement of ``crash_on`` kills its worker process."""

    name = "crashing"
    version = "1"

    def __init__(self, marker: Path, crash_on: str = "", *, always: bool = False) -> None:
        self.marker = Path(marker)
        self.crash_on = crash_on
        self.always = always

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {})

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        return self.measure(architecture, dataset, seed=seed).evaluation

    def measure(
        self,
        architecture: NSC,
        dataset: DatasetHandler,
        *,
        seed: int | None = None,
        test: bool = False,
        save_to: str | Path | None = None,
    ) -> Measurement:
        if str(architecture) == self.crash_on and (self.always or not self.marker.exists()):
            self.marker.touch()
            os._exit(3)
        time.sleep(0.05)
        score = (zlib.crc32(architecture.canonical_hash.encode()) % 100) / 100
        evaluation = Evaluation(accuracy=score, epochs=2, seconds=0.05, train_accuracy=score)
        return Measurement(evaluation, curve=(score / 2, score), test_accuracy=score)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = connect_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def _dataset() -> nasframe.ArrayDataset:
    rng = np.random.default_rng(0)
    return nasframe.ArrayDataset.from_arrays(
        "tiny", rng.random((8, 4, 4, 1)), rng.integers(0, 2, 8), num_classes=2
    )


def _alive() -> int:
    # the GCS's actor table (the state API needs the dashboard, which is off)
    from ray._private import state

    return sum(info["State"] == "ALIVE" for info in state.actors().values())


JOBS = ["1,1,3,0,0", "1,1,5,0,0", "1,3,2,0,0", "1,2,2,0,0"]


def test_a_replacement_actor_is_killed_with_the_others(cluster: None, tmp_path: Path) -> None:
    before = _alive()
    estimator = CrashingEstimator(tmp_path / "crashed", crash_on="1,1,5,0,0")
    pool = RowPool(estimator, _dataset(), workers=2, settings=PoolSettings(num_cpus=0.5))
    rows = list(pool.run([(NSC.parse(text), 0, None) for text in JOBS]))
    assert sorted(row.nsc for row in rows) == sorted(JOBS)
    assert all(row.ok and row.train == row.curve[-1] for row in rows)
    assert len(pool.actors) == 3  # two, and the one that replaced the dead one
    deadline = time.monotonic() + 20
    while _alive() > before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive() == before  # none leaked: the cluster is left as it was found


def test_a_job_whose_actors_keep_dying_becomes_an_error_row(cluster: None, tmp_path: Path) -> None:
    estimator = CrashingEstimator(tmp_path / "crashed", crash_on="1,1,3,0,0", always=True)
    settings = PoolSettings(num_cpus=0.5, max_retries=1)
    pool = RowPool(estimator, _dataset(), workers=2, settings=settings)
    rows = {row.nsc: row for row in pool.run([(NSC.parse(text), 0, None) for text in JOBS])}
    assert rows["1,1,3,0,0"].status == "error"
    assert "the worker died 2 times" in rows["1,1,3,0,0"].message
    assert all(rows[text].ok for text in JOBS[1:])


def test_in_process_rows_are_the_same_rows(tmp_path: Path) -> None:
    estimator = CrashingEstimator(tmp_path / "never")
    jobs = [(NSC.parse(text), 1, None) for text in JOBS]
    rows = list(measure_rows(jobs, estimator=estimator, dataset=_dataset()))
    assert [row.nsc for row in rows] == JOBS
    single = measure_row(estimator, _dataset(), NSC.parse(JOBS[0]), 1)
    assert rows[0].curve == single.curve and rows[0].seed == 1 and not math.isnan(single.train)


def test_pool_settings_come_from_ray_and_set_every_thread_variable() -> None:
    settings = PoolSettings.from_section({"num_cpus": 1.5, "num_gpus": 0, "max_retries": 4})
    assert settings.max_retries == 4
    environment = settings.environment()
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert environment[name] == "2"
    with pytest.raises(ConfigError, match=r"^\[ray\] num_cpus = 0: must be > 0$"):
        PoolSettings.from_section({"num_cpus": 0})
    with pytest.raises(ConfigError, match=r"^\[ray\] max_retries = -1"):
        PoolSettings.from_section({"max_retries": -1})
