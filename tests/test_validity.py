"""The one validity rule: nasframe.why_invalid, shared by proxy-v1, keras-v1 and the masks."""

from __future__ import annotations

import numpy as np
import pytest

import nasframe
from nasframe import NSC, ArrayDataset
from nasframe.bench.networks import enumerate_networks


def _dataset(shape: tuple[int, int, int] = (20, 20, 1), classes: int = 10) -> ArrayDataset:
    rng = np.random.default_rng(0)
    split = (rng.random((4, *shape), dtype=np.float32), np.arange(4) % classes)
    return ArrayDataset(
        "tiny", {"train": split, "validation": split, "test": split}, num_classes=classes
    )


def test_a_merge_of_the_input_is_invalid() -> None:
    reason = nasframe.why_invalid(NSC.parse("1,1,3,0,0;2,5,0,1,0"), (20, 20, 1))
    assert reason is not None and "layer 2 (add) merges the raw input" in reason


def test_a_kernel_larger_than_what_is_left_is_invalid_only_with_valid_padding() -> None:
    nsc = NSC.parse("1,1,5,0,0;2,2,5,1,0;3,1,5,2,0")  # 20 -> 16 -> 3 -> 5x5 conv
    assert "layer 3 (convolution 5x5) needs an input of at least 5x5, got 3x3" in str(
        nasframe.why_invalid(nsc, (20, 20, 1))
    )
    assert nasframe.why_invalid(nsc, (20, 20, 1), padding="same") is None


def test_the_terminal_row_and_the_empty_network_are_valid() -> None:
    assert nasframe.why_invalid(NSC(), (8, 8, 1)) is None
    assert nasframe.why_invalid(NSC.parse("1,1,3,0,0;2,7,0,0,0"), (8, 8, 1)) is None


def test_shapes_pad_channels_of_merges_and_leaves() -> None:
    shapes = nasframe.block_shapes(NSC.parse("1,1,3,0,0;2,2,2,1,0;3,6,0,1,2"), (20, 20, 3))
    assert shapes.nodes == {0: (20, 20, 3), 1: (18, 18, 32), 2: (9, 9, 32), 3: (18, 18, 64)}
    assert shapes.output == (18, 18, 64)
    assert shapes.convolutions == 1
    unpadded = nasframe.block_shapes(
        NSC.parse("1,1,3,0,0;2,4,0,0,0"), (20, 20, 3), filters=8, pad_channels=False
    )
    assert unpadded.output == (20, 20, 11)  # leaves 1 (18x18x8) and 2 (the input) concat


def test_reductions_need_a_two_by_two_input() -> None:
    assert nasframe.why_invalid(NSC(), (4, 4, 1), padding="same", reductions=2) is None
    reason = nasframe.why_invalid(NSC(), (2, 2, 1), padding="same", reductions=2)
    assert reason is not None and "stage 3 of 3 needs a 2x2 input" in reason


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="padding 'full' is not one of valid, same"):
        nasframe.why_invalid(NSC(), (8, 8, 1), padding="full")
    with pytest.raises(ValueError, match="reductions must be >= 0"):
        nasframe.why_invalid(NSC(), (8, 8, 1), reductions=-1)


def _multibranch_sample(space: nasframe.SearchSpace, count: int, seed: int) -> list[NSC]:
    """``count`` distinct networks from seeded random episodes of ``space``."""
    rng = np.random.default_rng(seed)
    found: dict[str, NSC] = {}
    n_actions = int(space.action_space.n)
    while len(found) < count:
        state = space.reset()
        for _ in range(3 * space.max_depth):
            transition = space.apply(state, int(rng.integers(n_actions)))
            if transition.out_of_bounds or transition.state.nsc.terminated:
                break
            state = transition.state
            network = state.nsc.without_terminal()
            found.setdefault(str(network), network)
    return list(found.values())[:count]


def _networks(plugin_manager: nasframe.PluginManager) -> list[NSC]:
    spaces = plugin_manager.registry("search_space")
    chained = enumerate_networks(spaces.create("chained-v1"), 4)
    sample = _multibranch_sample(spaces.create("pointer-v1"), 2000, seed=0)
    return chained + sample


def test_proxy_v1_and_keras_v1_agree_on_validity(plugin_manager: nasframe.PluginManager) -> None:
    """Every chained network to depth 4 and 2,000 seeded multi-branch ones.

    keras-v1's ``why_invalid`` is the check its builder runs before it builds anything
    (a failed check is status ``invalid``); ``test_keras_builds_what_the_rule_accepts``
    builds real models on a sample to show the check matches what Keras can build.
    """
    estimators = plugin_manager.registry("estimator")
    proxy, keras_v1 = estimators.create("proxy-v1"), estimators.create("keras-v1")
    dataset = _dataset()
    networks = _networks(plugin_manager)
    assert len(networks) > 2000
    invalid = 0
    for nsc in networks:
        status = proxy.evaluate(nsc, dataset).status
        keras_reason = keras_v1.why_invalid(nsc, dataset)
        assert (status == nasframe.Status.INVALID) == (keras_reason is not None), str(nsc)
        assert proxy.why_invalid(nsc, dataset) == keras_reason
        invalid += keras_reason is not None
    assert 0 < invalid < len(networks)  # both kinds occur, so the agreement says something


@pytest.mark.slow
def test_keras_builds_what_the_rule_accepts(plugin_manager: nasframe.PluginManager) -> None:
    """Real Keras models for a seeded sample: built exactly when the rule says valid."""
    import keras

    estimator = plugin_manager.registry("estimator").create("keras-v1")
    dataset = _dataset()
    networks = _networks(plugin_manager)
    rng = np.random.default_rng(1)
    valid = [n for n in networks if estimator.why_invalid(n, dataset) is None]
    invalid = [n for n in networks if estimator.why_invalid(n, dataset) is not None]
    sample = [valid[i] for i in rng.choice(len(valid), 12, replace=False)]
    sample += [invalid[i] for i in rng.choice(len(invalid), 4, replace=False)]
    try:
        for nsc in sample:
            if estimator.why_invalid(nsc, dataset) is None:
                model = estimator.build_network(nsc, dataset)
                assert model.output.shape[-1] == 10
            else:
                with pytest.raises(ValueError):
                    estimator.build_network(nsc, dataset)
    finally:
        keras.backend.clear_session()
