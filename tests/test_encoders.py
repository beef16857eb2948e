"""State encoders: NASGym's one-hot shapes and values, the NSC matrix, exact dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from nasframe_spaces import (
    AbsoluteSearchSpace,
    ChainedSearchSpace,
    MatrixEncoder,
    OneHotEncoder,
    PointerSearchSpace,
)

from nasframe import NSC, SearchState


@pytest.mark.parametrize(
    ("space", "shape"),
    [
        (ChainedSearchSpace("chain"), (10, 25)),  # d + k + 10
        (ChainedSearchSpace("nasenv"), (10, 25)),
        (PointerSearchSpace("multibranch"), (10, 36)),  # 2d + k + 11
        (AbsoluteSearchSpace("nasenv"), (10, 36)),
    ],
)
def test_onehot_shapes_match_nasgym(space: object, shape: tuple[int, int]) -> None:
    encoder = OneHotEncoder(space)  # type: ignore[arg-type]
    assert encoder.observation_space.shape == shape
    assert encoder.observation_space.dtype == np.int32
    obs = encoder.encode(SearchState())
    assert obs.shape == shape and obs.dtype == np.int32
    assert obs in encoder.observation_space


def test_onehot_values() -> None:
    encoder = OneHotEncoder(PointerSearchSpace("multibranch"))
    obs = encoder.encode(SearchState(NSC.parse("1,1,3,0,0;2,2,2,1,0;3,6,0,2,1")))
    # padding rows on top set slot 0 of every block: type, kernel, pred1, pred2
    padding = np.zeros(36, dtype=np.int32)
    padding[[0, 8, 14, 25]] = 1
    assert (obs[:7] == padding).all()
    last = obs[9]
    assert np.flatnonzero(last).tolist() == [6, 8 + 0, 14 + 2, 25 + 1]  # concat, k0, p1 2, p2 1
    assert np.flatnonzero(obs[7]).tolist() == [1, 8 + 3, 14 + 0, 25 + 0]
    assert obs.sum() == 4 * 10  # one slot per block per row


def test_onehot_chained_drops_pred2() -> None:
    encoder = OneHotEncoder(ChainedSearchSpace("chain"))
    obs = encoder.encode(SearchState(NSC.parse("1,3,2,0,0")))
    assert np.flatnonzero(obs[-1]).tolist() == [3, 8 + 2, 14 + 0]
    assert obs.sum() == 3 * 10


def test_matrix_encoder_is_the_padded_nsc() -> None:
    space = PointerSearchSpace("multibranch")
    encoder = MatrixEncoder(space)
    nsc = NSC.parse("1,1,5,0,0;2,5,0,1,0;3,7,0,0,0")
    obs = encoder.encode(SearchState(nsc))
    assert obs.dtype == np.int32 and obs.shape == (10, 5)
    assert (obs == nsc.to_matrix(10)).all()
    assert obs in encoder.observation_space
    assert NSC.from_matrix(obs) == nsc
    assert encoder.observation_space.high.max() == 10


@pytest.mark.parametrize("encoder_cls", [OneHotEncoder, MatrixEncoder])
def test_flatten_gives_the_same_values_as_a_vector(encoder_cls: type) -> None:
    space = ChainedSearchSpace("chain")
    state = SearchState(NSC.parse("1,1,3,0,0;2,2,2,1,0"))
    square = encoder_cls(space).encode(state)
    flat_encoder = encoder_cls(space, flatten=True)
    flat = flat_encoder.encode(state)
    assert flat.ndim == 1 and flat_encoder.observation_space.shape == flat.shape
    assert (flat == square.reshape(-1)).all()
    assert flat in flat_encoder.observation_space


@pytest.mark.parametrize("encoder_cls", [OneHotEncoder, MatrixEncoder])
@pytest.mark.parametrize("space_cls", [AbsoluteSearchSpace, ChainedSearchSpace, PointerSearchSpace])
def test_every_reachable_state_is_in_the_space(encoder_cls: type, space_cls: type) -> None:
    space = space_cls()
    encoder = encoder_cls(space)
    rng = np.random.default_rng(0)
    for _ in range(30):
        state = space.reset()
        for _ in range(12):
            transition = space.apply(state, int(rng.integers(space.action_space.n)))
            if transition.out_of_bounds:
                break
            state = transition.state
            obs = encoder.encode(state)
            assert obs in encoder.observation_space
            assert obs.dtype == encoder.observation_space.dtype
    # a new array every call: mutating one observation never changes the next
    first = encoder.encode(state)
    expected = first.copy()
    first[...] = 1
    assert (encoder.encode(state) == expected).all()


def test_onehot_pointers_makes_the_pointer_offsets_observable() -> None:
    from nasframe_spaces import OneHotEncoder, OneHotPointerEncoder, PointerSearchSpace

    space = PointerSearchSpace()
    encoder = OneHotPointerEncoder(space)
    d, width = space.max_depth, OneHotEncoder(space).width
    assert encoder.observation_space.shape == (d + 1, width)
    state = space.reset()
    for action in (0, 0):  # two convolutions
        state = space.apply(state, action).state
    labels = [a.label for a in space.actions()]
    down1, down2 = labels.index("predshift_p-1_op-D"), labels.index("predshift_p-2_op-D")
    moved = space.apply(space.apply(state, down1).state, down2).state
    moved = space.apply(moved, down2).state
    assert moved.pointers == (-1, -2) and moved.nsc == state.nsc
    before, after = encoder.encode(state), encoder.encode(moved)
    assert encoder.observation_space.contains(before) and encoder.observation_space.contains(after)
    # the NSC rows are onehot-v1's; only the last row differs, and it holds the offsets
    assert (before[:d] == OneHotEncoder(space).encode(state)).all()
    assert (before[:d] == after[:d]).all()
    assert np.flatnonzero(before[d]).tolist() == [0, d + 1]
    assert np.flatnonzero(after[d]).tolist() == [1, d + 1 + 2]
    flat = OneHotPointerEncoder(space, flatten=True)
    assert (flat.encode(moved) == after.reshape(-1)).all()


def test_onehot_pointers_is_onehot_v1_without_pointers() -> None:
    from nasframe_spaces import ChainedSearchSpace, OneHotEncoder, OneHotPointerEncoder

    space = ChainedSearchSpace()
    state = space.apply(space.reset(), 0).state
    assert (OneHotPointerEncoder(space).encode(state) == OneHotEncoder(space).encode(state)).all()
    assert OneHotPointerEncoder(space).observation_space == OneHotEncoder(space).observation_space
