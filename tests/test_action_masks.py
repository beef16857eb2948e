"""Action masks: info["action_mask"], env.action_masks(), the vector env, MaskablePPO."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nasframe
from nasframe import NSC, ArrayDataset, SearchState
from nasframe.distributed.vector_env import NASVectorEnv
from nasframe.env import make_env


def _dataset(size: int = 20) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.random((20, size, size, 1), dtype=np.float32)
    return ArrayDataset.from_arrays("masks", images, np.arange(20) % 10)


def _env(space: str, size: int = 20) -> nasframe.NASEnv:
    return make_env(search_space=space, estimator="proxy", dataset=_dataset(size), seed=0)


def test_reset_and_step_carry_the_mask_of_env_action_masks() -> None:
    env = _env("pointer")
    _, info = env.reset(seed=0)
    mask = info["action_mask"]
    assert mask.dtype == np.bool_ and mask.shape == (env.action_space.n,)
    assert (mask == env.action_masks()).all()
    labels = [a.label for a in env.search_space.actions()]
    # on the empty network: no pointer can move up, merges would read the input twice
    assert not mask[labels.index("predshift_p-1_op-U")]
    assert not mask[labels.index("predshift_p-1_op-D")]  # L + shift would be < 0
    merges = [i for i, label in enumerate(labels) if label.startswith(("add", "concat"))]
    assert merges and not mask[merges].any()
    assert mask[labels.index("convolution_k-3_pred1-L_pred2-0")]
    _, _, _, _, info = env.step(labels.index("convolution_k-3_pred1-L_pred2-0"))
    assert (info["action_mask"] == env.action_masks()).all()
    assert info["action_mask"][labels.index("predshift_p-1_op-D")]  # now layer 1 exists


def test_mask_follows_the_validity_rule_of_the_estimator() -> None:
    env = _env("chained", size=8)
    env.reset(seed=0)
    env.state = SearchState(NSC.parse("1,1,5,0,0"))  # 8 -> 4: a 5x5 kernel no longer fits
    mask = env.action_masks()
    for info in env.search_space.actions():
        if info.kind != "layer":
            continue
        nsc = env.search_space.apply(env.state, info.id).state.nsc
        assert mask[info.id] == (env.estimator.why_invalid(nsc, env.dataset) is None), info.label


def test_absolute_predecessors_out_of_range_are_masked() -> None:
    env = _env("absolute")
    env.reset(seed=0)
    mask = env.action_masks()
    for info in env.search_space.actions():
        if info.kind == "layer" and ("pred1-0_" not in info.label or "pred2-0" not in info.label):
            assert not mask[info.id], info.label


@pytest.mark.parametrize("space", ["chained", "pointer", "absolute"])
def test_masked_random_runs_never_mask_everything_and_never_fail(space: str) -> None:
    env = _env(space, size=8)  # a small input: many layers become invalid
    rng = np.random.default_rng(3)
    _, info = env.reset(seed=3)
    reasons = []
    for _ in range(120):
        mask = info["action_mask"]
        assert mask.any()
        _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        assert info["status"] not in ("invalid", "out_of_range"), info
        if terminated or truncated:
            reasons.append(info["end_reason"])
            _, info = env.reset()
    assert reasons and not {"out_of_range", "failed"} & set(reasons)


def test_when_every_action_fails_the_terminal_stays_allowed() -> None:
    env = _env("chained", size=1)  # a 1x1 input: no kernel > 1 fits; 1x1 conv still does
    env.reset(seed=0)
    mask = env.action_masks()
    labels = [a.label for a in env.search_space.actions()]
    allowed = {labels[i] for i in np.flatnonzero(mask)}
    assert all(("k-1" in label) or label.startswith("terminal") for label in allowed)

    class Nothing(nasframe.PerformanceEstimator):
        name = "nothing-v1"

        def fingerprint(self) -> str:
            return "nothing"

        def evaluate(self, architecture, dataset, *, seed=None):  # type: ignore[no-untyped-def]
            return nasframe.Evaluation.failed(nasframe.Status.INVALID, "never")

        def why_invalid(self, architecture, dataset):  # type: ignore[no-untyped-def]
            return "no network is valid" if len(architecture) else None

    env = make_env(search_space="chained", estimator=Nothing(), dataset=_dataset(), seed=0)
    env.reset(seed=0)
    mask = env.action_masks()
    assert [labels[i] for i in np.flatnonzero(mask)] == [
        label for label in labels if label.startswith("terminal")
    ]


def _fresh_mask(env: nasframe.NASEnv) -> np.ndarray:
    """The mask of the env's state computed from scratch (no memo)."""
    env._mask_memo = {}
    return env.action_masks()


def test_memoized_masks_equal_fresh_ones_along_a_random_run() -> None:
    env = _env("pointer", size=8)
    rng = np.random.default_rng(5)
    _, info = env.reset(seed=5)
    for _ in range(150):
        assert (info["action_mask"] == env.action_masks()).all()
        memoized = env.action_masks()
        assert (memoized == _fresh_mask(env)).all()
        _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            _, info = env.reset()


def test_a_changed_mask_does_not_change_the_memo() -> None:
    env = _env("chained")
    env.reset(seed=0)
    mask = env.action_masks()
    mask[:] = False
    assert env.action_masks().any()
    assert (env.action_masks() == _fresh_mask(env)).all()


def test_the_memo_follows_a_swapped_estimator_and_a_state_set_by_hand() -> None:
    env = _env("chained", size=8)
    env.reset(seed=0)
    assert env.action_masks().all()  # the empty network: every layer fits 8x8

    class Nothing(nasframe.PerformanceEstimator):
        name = "nothing-v1"

        def fingerprint(self) -> str:
            return "nothing"

        def evaluate(self, architecture, dataset, *, seed=None):  # type: ignore[no-untyped-def]
            return nasframe.Evaluation.failed(nasframe.Status.INVALID, "never")

        def why_invalid(self, architecture, dataset):  # type: ignore[no-untyped-def]
            return "no network is valid" if len(architecture) else None

    env.estimator = Nothing()
    kinds = [a.kind for a in env.search_space.actions()]
    assert [kinds[i] for i in np.flatnonzero(env.action_masks())] == ["terminal"]
    env.estimator = _env("chained", size=8).estimator
    env.state = SearchState(NSC.parse("1,1,5,0,0"))  # 8 -> 4: a 5x5 kernel no longer fits
    labels = [a.label for a in env.search_space.actions()]
    assert not env.action_masks()[labels.index("convolution_k-5_pred1-L_pred2-0")]
    env.state = SearchState(NSC())
    assert env.action_masks().all()


def test_vector_env_stacks_the_masks() -> None:
    envs = [_env("pointer") for _ in range(3)]
    vector = NASVectorEnv(envs)
    vector.reset(seed=0)
    masks = vector.action_masks()
    assert masks.shape == (3, envs[0].action_space.n) and masks.dtype == np.bool_
    for env, mask in zip(envs, masks, strict=True):
        assert (mask == env.action_masks()).all()
    vector.close()


@pytest.mark.slow
def test_maskable_ppo_agent_learns_and_never_takes_a_masked_action() -> None:
    env = _env("pointer", size=8)
    agent = nasframe.make_agent("maskable-ppo", env, seed=0, n_steps=8, batch_size=8, n_epochs=1)
    wasted = []

    def callback() -> bool:
        episode = env.last_episode
        if episode is not None:
            wasted.append(episode.reason)
        return True

    assert agent.learn(24, callback) == 24
    assert agent.num_timesteps == 24
    assert wasted and not {"out_of_range", "failed"} & set(wasted)


def test_maskable_ppo_works_on_the_sb3_vector_env() -> None:
    pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.utils import get_action_masks

    from nasframe.distributed.sb3 import to_sb3

    vector = to_sb3(NASVectorEnv([_env("pointer") for _ in range(2)]))
    vector.reset()
    masks = get_action_masks(vector)
    assert masks.shape == (2, 14) and masks.any(axis=1).all()
    vector.close()


def test_the_benchmark_smoke_mode_prints_its_ratio() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.action_masks", "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "ratio wasted steps unmasked / masked:" in result.stdout
    assert "ratio env step with / without masks on table-v1: memoized" in result.stdout
