"""State encoders: NASGym's one-hot encoding and the plain NSC matrix.

Both see the state as NASGym kept it: a ``d x 5`` matrix (``d`` = the space's depth) of
the NSC rows sorted by index, padding rows (all zeros) on top, the current layer last.

* ``onehot-v1``: per row, ``one-hot(type, 8) | one-hot(kernel, max_kernel + 1) |
  one-hot(pred1, d + 1)`` and, in multi-branch spaces, ``| one-hot(pred2, d + 1)``; the
  index column is dropped (the position implies it). A padding row sets the ``0`` slot of
  each block. Shapes for ``d = 10`` and max kernel 5: ``10 x 25`` chained, ``10 x 36``
  pointer, exactly NASGym's. The space is ``Box(0, 1, int32)`` and observations are int32
  (NASGym declared int32 but returned float64).
* ``matrix-v1``: the ``d x 5`` int32 NSC matrix itself, ``Box(0, max(d, 7, max_kernel))``.

* ``onehot-pointers-v1``: ``onehot-v1`` plus, in a space with pointers (``pointer``), one more row
  holding the two pointer offsets: ``one-hot(-shift1, d + 1) | one-hot(-shift2, d + 1)``
  (an offset is ``0 .. -d``; the rest of the row is 0). NASGym's one-hot hid the offsets,
  so two states with the same network but different pointers looked alike although the
  same action does different things in them; with v2 the policy can tell them apart.
  Shape ``(d + 1) x width`` in pointer spaces; in other spaces exactly ``onehot-v1``. A
  name of its own, not ``onehot-v2``: the name ``onehot`` (the default encoder) resolves
  to the highest version, and the default observation must stay NASGym's.

All take ``flatten=True`` (config ``[state_encoder] flatten``) to return the same values
as one vector (``d*width``): Stable-Baselines3's checker recommends 1-D observations and
its MLP policies flatten anyway; the 2-D default keeps NASGym's shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasframe import LayerType, SearchSpace, SearchState, StateEncoder

__all__ = ["MatrixEncoder", "OneHotEncoder", "OneHotPointerEncoder"]

_TYPE_SLOTS = max(LayerType) + 1  # 0 (padding) and the seven type codes


def _multi_branch(space: SearchSpace) -> bool:
    flag = getattr(space, "multi_branch", None)
    if flag is not None:
        return bool(flag)
    merges = any(LayerType(t).arity == 2 for t in space.layer_kernels)
    return merges and space.uses_pointers


class OneHotEncoder(StateEncoder):
    """NASGym's one-hot encoding of the NSC state.

    Args:
        space: the search space (its depth, largest kernel and branching set the shape).
        flatten: return a 1-D vector of ``d * width`` values instead of ``d x width``.
    """

    name = "onehot-v1"

    def __init__(self, space: SearchSpace, *, flatten: bool = False) -> None:
        import gymnasium

        self.depth = int(space.max_depth)
        self.max_kernel = int(space.max_kernel)
        self.pred2 = _multi_branch(space)
        self._offsets = np.cumsum(
            [0, _TYPE_SLOTS, self.max_kernel + 1, self.depth + 1]
            + ([self.depth + 1] if self.pred2 else [])
        )
        self.width = int(self._offsets[-1])
        self.flatten = bool(flatten)
        shape = (self.depth * self.width,) if self.flatten else (self.depth, self.width)
        self._space = gymnasium.spaces.Box(0, 1, shape=shape, dtype=np.int32)

    @property
    def observation_space(self) -> Any:
        """``Box(0, 1, (d, width), int32)`` (``(d * width,)`` flattened)."""
        return self._space

    def encode(self, state: SearchState) -> np.ndarray:
        """The one-hot matrix of ``state`` (a new array every call)."""
        matrix = state.nsc.to_matrix(self.depth)
        columns = matrix[:, 1:5] if self.pred2 else matrix[:, 1:4]
        out = np.zeros((self.depth, self.width), dtype=np.int32)
        rows = np.arange(self.depth)
        for block, column in enumerate(columns.T):
            # values outside a block (cannot happen for states of this space) stay all-zero
            size = self._offsets[block + 1] - self._offsets[block]
            ok = column < size
            out[rows[ok], self._offsets[block] + column[ok]] = 1
        return out.reshape(-1) if self.flatten else out


class MatrixEncoder(StateEncoder):
    """The plain ``d x 5`` int32 NSC matrix (index, type, kernel, pred1, pred2).

    Args:
        space: the search space (its depth sets the rows).
        flatten: return a 1-D vector of ``d * 5`` values instead of ``d x 5``.
    """

    name = "matrix-v1"

    def __init__(self, space: SearchSpace, *, flatten: bool = False) -> None:
        import gymnasium

        self.depth = int(space.max_depth)
        self.flatten = bool(flatten)
        high = max(self.depth, int(max(LayerType)), int(space.max_kernel))
        shape = (self.depth * 5,) if self.flatten else (self.depth, 5)
        self._space = gymnasium.spaces.Box(0, high, shape=shape, dtype=np.int32)

    @property
    def observation_space(self) -> Any:
        """``Box(0, max(d, 7, max_kernel), (d, 5), int32)`` (``(d * 5,)`` flattened)."""
        return self._space

    def encode(self, state: SearchState) -> np.ndarray:
        """The padded NSC matrix of ``state`` (a new array every call)."""
        matrix = state.nsc.to_matrix(self.depth)
        return matrix.reshape(-1) if self.flatten else matrix


class OneHotPointerEncoder(OneHotEncoder):
    """``onehot-v1`` plus a row of the two pointer offsets (pointer spaces only).

    Args:
        space: the search space.
        flatten: return a 1-D vector instead of a matrix.
    """

    name = "onehot-pointers-v1"

    def __init__(self, space: SearchSpace, *, flatten: bool = False) -> None:
        super().__init__(space, flatten=flatten)
        self.pointers = bool(space.uses_pointers)
        if self.pointers:
            import gymnasium

            rows = self.depth + 1
            shape = (rows * self.width,) if self.flatten else (rows, self.width)
            self._space = gymnasium.spaces.Box(0, 1, shape=shape, dtype=np.int32)

    def encode(self, state: SearchState) -> np.ndarray:
        """The one-hot matrix of ``state`` and, with pointers, the row of their offsets."""
        if not self.pointers:
            return super().encode(state)
        rows = super().encode(state).reshape(self.depth, self.width)
        extra = np.zeros((1, self.width), dtype=np.int32)
        for number, shift in enumerate(state.pointers):
            slot = min(max(-int(shift), 0), self.depth)
            extra[0, number * (self.depth + 1) + slot] = 1
        out = np.concatenate([rows, extra])
        return out.reshape(-1) if self.flatten else out
