"""Cache semantics of both databases, through the core's Evaluator.

The estimator here is a real (if tiny) PerformanceEstimator: its score is a pure function
of the architecture, and it fails for architectures we choose, so every cache decision
can be checked by counting how often it was asked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB

from nasframe import (
    NSC,
    ArrayDataset,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Status,
    fingerprint_of,
)
from nasframe.evaluation import Evaluator

SMALL = NSC.parse("1,1,3,0,0")
DEEP = NSC.parse("1,1,3,0,0;2,1,5,1,0;3,5,0,1,2")
TIMES_OUT = NSC.parse("1,1,5,0,0;2,2,2,1,0")
INVALID = NSC.parse("1,2,2,0,0;2,2,2,1,0;3,2,2,2,0")


class DensityEstimator(PerformanceEstimator):
    """Scores an architecture by its depth and density; fails on request."""

    name = "density"
    version = "1"

    def __init__(self, scale: float = 0.1, failures: dict[str, Status] | None = None) -> None:
        self.scale = scale
        self.failures = failures or {}
        self.calls: list[str] = []

    def fingerprint(self) -> str:
        return fingerprint_of(self.name, self.version, {"scale": self.scale})

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        self.calls.append(str(architecture))
        status = self.failures.get(str(architecture))
        if status is not None:
            return Evaluation.failed(status, f"{status} on purpose", seconds=1.0)
        return Evaluation(
            accuracy=min(1.0, self.scale * len(architecture) + architecture.density() / 10),
            params=100 * len(architecture),
            density=architecture.density(),
            seconds=0.5,
            epochs=1,
        )


def dataset(name: str = "tiny") -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays(name, rng.random((30, 4, 4)), np.arange(30) % 3)


@pytest.fixture(params=["csv", "sqlite"])
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / f"cache.{request.param}"


def open_db(path: Path) -> ExperimentDB:
    return CsvExperimentDB(path) if path.suffix == ".csv" else SqliteExperimentDB(path)


def test_a_stored_architecture_is_never_trained_again(db_path: Path) -> None:
    estimator, data = DensityEstimator(), dataset()
    evaluator = Evaluator(estimator, data, open_db(db_path), seed=1)
    first = evaluator.evaluate(DEEP)
    again = evaluator.evaluate(DEEP)
    assert not first.cache_hit and again.cache_hit
    assert again.evaluation == first.evaluation
    assert estimator.calls == [str(DEEP)]
    # A new run, a new process's view of the same file: still a hit.
    later = Evaluator(DensityEstimator(), data, open_db(db_path), seed=2)
    outcome = later.evaluate(NSC.parse("1,1,3,0,0;2,1,5,1,0;3,5,0,2,1"))  # DEEP, reordered
    assert outcome.cache_hit
    assert outcome.record.seed == 1  # the stored record, not a new one
    assert later.trainings == 0 and later.hits == 1


def test_the_key_includes_dataset_and_estimator_fingerprint(db_path: Path) -> None:
    database = open_db(db_path)
    Evaluator(DensityEstimator(), dataset(), database).evaluate(SMALL)
    other_data = DensityEstimator()
    assert not Evaluator(other_data, dataset("other"), database).evaluate(SMALL).cache_hit
    other_settings = DensityEstimator(scale=0.2)
    outcome = Evaluator(other_settings, dataset(), database).evaluate(SMALL)
    assert not outcome.cache_hit
    assert len(database) == 3
    assert {r.dataset for r in database} == {
        "tiny[val=0.2,test=0.2,seed=0]",
        "other[val=0.2,test=0.2,seed=0]",
    }


@pytest.mark.parametrize("retry", [False, True])
def test_failed_evaluations_are_cached_and_transient_ones_may_be_retried(
    db_path: Path, retry: bool
) -> None:
    failures = {str(TIMES_OUT): Status.TIMEOUT, str(INVALID): Status.INVALID}
    estimator = DensityEstimator(failures=failures)
    evaluator = Evaluator(estimator, dataset(), open_db(db_path), retry_transient=retry)
    for nsc in (TIMES_OUT, INVALID):
        assert evaluator.evaluate(nsc).evaluation.status in (Status.TIMEOUT, Status.INVALID)
    estimator.failures = {}  # the next training of anything would succeed
    timed_out = evaluator.evaluate(TIMES_OUT)
    invalid = evaluator.evaluate(INVALID)
    # 'invalid' is not transient: it is a cache hit either way.
    assert invalid.cache_hit and invalid.evaluation.status is Status.INVALID
    if retry:
        assert not timed_out.cache_hit
        assert estimator.calls.count(str(TIMES_OUT)) == 2
        # The retry supersedes the transient failure, so it is cached from now on ...
        assert timed_out.evaluation.status is Status.OK
        assert evaluator.evaluate(TIMES_OUT).cache_hit
        assert estimator.calls.count(str(TIMES_OUT)) == 2
        # ... in this process and in a fresh one.
        reopened = open_db(db_path)
        assert reopened.get(evaluator.key(TIMES_OUT)) == timed_out.record
        assert [r.arch_hash for r in reopened] == [
            evaluator.key(TIMES_OUT).arch_hash,
            evaluator.key(INVALID).arch_hash,
        ]
    else:
        assert timed_out.cache_hit and timed_out.evaluation.status is Status.TIMEOUT
        assert timed_out.evaluation.message == "timeout on purpose"
        assert estimator.calls.count(str(TIMES_OUT)) == 1
