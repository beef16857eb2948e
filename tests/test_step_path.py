"""The step's data path (issue 31 item 5): the estimator fingerprint computed once, and
the step log's row written from the step's typed plan and outcome, as it was from ``info``."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from nasframe_proxy import ProxyEstimator

from nasframe import NSC, ArrayDataset, Evaluation
from nasframe.env import make_env
from nasframe.nsc import network_text
from nasframe.search.recording import step_row

CONV1, CONV3, TERMINAL = 0, 1, 7  # the chain space
P1_UP = 10  # the multibranch space


@pytest.fixture
def dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays("tiny", rng.random((60, 8, 8, 1)), rng.integers(0, 4, 60))


class Measured(ProxyEstimator):
    """The proxy's results with a training accuracy, a measure and seconds; counts fingerprints."""

    def __init__(self) -> None:
        super().__init__()
        self.fingerprints = 0

    def fingerprint(self) -> str:
        self.fingerprints += 1
        return super().fingerprint()

    def evaluate(self, architecture: NSC, dataset: Any, *, seed: int | None = None) -> Evaluation:
        evaluation = super().evaluate(architecture, dataset, seed=seed)
        return dataclasses.replace(
            evaluation, train_accuracy=0.5, measure="synflow score", seconds=1.25
        )


def test_the_fingerprint_is_computed_once_per_estimator(dataset: ArrayDataset) -> None:
    estimator = Measured()
    env = make_env(search_space="chained", estimator=estimator, dataset=dataset)
    env.reset(seed=0)
    for action in np.random.default_rng(0).integers(0, 8, 200):
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
    assert env.evaluator.trainings > 10 and estimator.fingerprints == 1
    records = list(env.database)
    assert len(records) == env.evaluator.trainings
    assert {record.fingerprint for record in records} == {estimator.fingerprint()}
    other = Measured()
    env.evaluator.estimator = other  # another estimator object: its own fingerprint
    assert env.evaluator.key(NSC()).fingerprint == env.evaluator.fingerprint
    assert other.fingerprints == 1


# What the step log wrote from ``info`` before it was written from the plan and outcome:
# (action_label, nsc, arch_hash, reward, accuracy, train_accuracy, measure, params,
#  status, cache_hit, seconds, terminated, truncated)
CONV3_LABEL, CONV1_LABEL = "convolution_k-3_pred1-L_pred2-0", "convolution_k-1_pred1-L_pred2-0"
TERMINAL_LABEL = "terminal_k-0_pred1-0_pred2-0"
MEASURED = "synflow score"
CHAINED_ROWS = [
    (CONV3_LABEL, "1,1,3,0,0", "bb75a68e3a52dbdb4221", 0.498144, 0.498144, 0.5, MEASURED,
     1185220, "ok", False, 1.25, False, False),
    (TERMINAL_LABEL, "1,1,3,0,0", "bb75a68e3a52dbdb4221", 0.498144, 0.498144, 0.5, MEASURED,
     1185220, "ok", True, 0.0, True, False),
    (CONV3_LABEL, "1,1,3,0,0", "bb75a68e3a52dbdb4221", 0.498144, 0.498144, 0.5, MEASURED,
     1185220, "ok", True, 0.0, False, False),
    (CONV3_LABEL, "1,1,3,0,0;2,1,3,1,0", "b43db962c11963729a10", 0.643022, 0.643022, 0.5,
     MEASURED, 539236, "ok", False, 1.25, False, False),
    (CONV3_LABEL, "1,1,3,0,0;2,1,3,1,0;3,1,3,2,0", "c186d987b76a8ff11de3", 0.745482,
     0.745482, 0.5, MEASURED, 155396, "ok", False, 1.25, False, False),
    (CONV3_LABEL, "1,1,3,0,0;2,1,3,1,0;3,1,3,2,0;4,1,3,3,0", "9c490911650f0d1807c7", 0.0,
     0.0, 0.5, MEASURED, 0, "invalid", False, 1.25, True, False),
    (CONV1_LABEL, "1,1,1,0,0", "d598509bbaffc2f144b7", 0.354029, 0.354029, 0.5, MEASURED,
     2102468, "ok", False, 1.25, False, False),
    (CONV1_LABEL, "1,1,1,0,0;2,1,1,1,0", "897b7f19617df5e9831f", 0.371846, 0.371846, 0.5,
     MEASURED, 2103652, "ok", False, 1.25, False, False),
    (CONV1_LABEL, "1,1,1,0,0;2,1,1,1,0;3,1,1,2,0", "419f88048f8d5557f71f", 0.382652,
     0.382652, 0.5, MEASURED, 2104836, "ok", False, 1.25, False, False),
    (CONV1_LABEL, "1,1,1,0,0;2,1,1,1,0;3,1,1,2,0;4,1,1,3,0", "6677f8cd845999492d59",
     0.389206, 0.389206, 0.5, MEASURED, 2106020, "ok", False, 1.25, False, False),
    (CONV1_LABEL, "1,1,1,0,0;2,1,1,1,0;3,1,1,2,0;4,1,1,3,0;5,1,1,4,0", "a4c4b8c20d05f93d4ab1",
     0.393181, 0.393181, 0.5, MEASURED, 2107204, "ok", False, 1.25, False, True),
]  # fmt: skip
POINTER_ROWS = [
    ("predshift_p-1_op-U", "", "facc10bab864a9b943c3", 0.0, 0.0, None, "", 0, "out_of_range",
     False, 0.0, True, False),
]  # fmt: skip
EPISODE_END_ROWS = [
    (CONV1_LABEL, "1,1,1,0,0", "d598509bbaffc2f144b7", 0.0, 0.0, None, "", 0, "not_evaluated",
     False, 0.0, False, False),
    (TERMINAL_LABEL, "1,1,1,0,0", "d598509bbaffc2f144b7", 0.354029, 0.354029, None, "",
     2102468, "ok", False, 0.0, True, False),
]  # fmt: skip
FIELDS = (
    "action_label", "nsc", "arch_hash", "reward", "accuracy", "train_accuracy", "measure",
    "params", "status", "cache_hit", "seconds", "terminated", "truncated",
)  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "actions", "expected"),
    [
        (
            {"search_space": "chained", "max_steps": 5},
            [CONV3, TERMINAL, CONV3, CONV3, CONV3, CONV3, *[CONV1] * 5],
            CHAINED_ROWS,
        ),
        ({"search_space": "pointer", "estimator": "proxy"}, [P1_UP], POINTER_ROWS),
        (
            {"search_space": "chained", "estimator": "proxy", "evaluate": "episode_end"},
            [CONV1, TERMINAL],
            EPISODE_END_ROWS,
        ),
    ],
    ids=["miss-hit-terminal-invalid-truncated", "out-of-range", "skipped"],
)
def test_the_step_row_is_what_info_gave(
    dataset: ArrayDataset, settings: dict[str, Any], actions: list[int], expected: list[tuple]
) -> None:
    settings = {"estimator": Measured(), **settings}
    env = make_env(dataset=dataset, database="memory", **settings)
    env.reset(seed=0)
    rows = []
    for number, action in enumerate(actions, start=1):
        _, reward, terminated, truncated, info = env.step(action)
        assert env.last_plan is not None and env.last_plan.action == action
        row = step_row(
            env.last_plan,
            env.last_outcome,
            step=number,
            episode=1,
            episode_step=number,
            task="t",
            reward=float(reward),
            terminated=terminated,
            truncated=truncated,
        )
        assert (row.step, row.action, row.task) == (number, action, "t")
        assert row.nsc == network_text(info["nsc"]) and row.arch_hash == info["arch_hash"]
        rows.append(tuple(getattr(row, name) for name in FIELDS))
        if terminated or truncated:
            env.reset()
            assert env.last_plan is None and env.last_outcome is None
    assert rows == expected
