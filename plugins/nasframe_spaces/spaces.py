"""The three action modes of NASGym over a YAML layer catalogue.

* ``absolute`` (NASGym's "default"): one action per (layer, kernel, absolute ``pred1`` in
  ``0 .. d-1``, and for two-input layers ``pred2`` in ``0 .. pred1-1``). The resources
  file with depth 10 gives 161 actions (``d^2 + 6d + 1``). NASGym's parser for this mode
  crashed the env; here it works. An action naming a layer that does not exist yet adds
  nothing and ends the episode (``Transition.out_of_bounds``), like a pointer out of range.
* ``chained``: one action per (layer, kernel); ``pred1`` is the current last layer
  (``L``), ``pred2`` of a merge is ``L`` too (``0`` on the empty network). The chain file
  gives 8 actions.
* ``pointer`` (NASGym's "pred-free", multi-branch): the chained actions with
  ``pred1 = L + shift1`` and ``pred2 = L + shift2``, plus four moves of the two pointer
  offsets (``predshift_p-1_op-U``, ``..._op-D``, and for pointer 2). The offsets start at 0
  on reset, persist after a layer is added, and a move is valid iff ``0 <= L + shift <= L``
  for both pointers, so ``U`` from 0 is immediately out of range. The multi-branch file
  gives 14 actions.

A new layer gets the index one past the highest; when the network already has
``max_depth`` rows nothing is added (the env ends the episode at that point anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nasframe import (
    NSC,
    ActionInfo,
    LayerType,
    SearchSpace,
    SearchSpaceError,
    SearchState,
    Transition,
)
from nasframe_spaces.spec import LayerSpec, SpaceSpec, load_space

__all__ = [
    "DEFAULT_FILES",
    "AbsoluteSearchSpace",
    "ChainedSearchSpace",
    "PointerSearchSpace",
    "YamlSearchSpace",
]

Mode = Literal["absolute", "chained", "pointer"]

#: The built-in file each mode uses when no ``file`` is configured.
DEFAULT_FILES: dict[str, str] = {
    "absolute": "nasenv",
    "chained": "chain",
    "pointer": "multibranch",
}


@dataclass(frozen=True)
class _Action:
    info: ActionInfo
    layer: LayerSpec | None = None
    kernel: int = 0
    # absolute mode: fixed predecessors; relative modes: None (computed from the state)
    pred1: int | None = None
    pred2: int | None = None
    # pointer moves: (pointer number 1 or 2, +1 for U / -1 for D)
    move: tuple[int, int] | None = None


class YamlSearchSpace(SearchSpace):
    """A search space read from a NASGym layers YAML file, in one action mode.

    Args:
        file: a built-in name (``nasenv``, ``chain``, ``multibranch``) or a path to a YAML
            file; ``None`` uses the mode's default (absolute: ``nasenv``, chained: ``chain``,
            pointer: ``multibranch``).
        spec: an already parsed :class:`SpaceSpec` (instead of ``file``).

    Raises:
        SearchSpaceError: the file is missing or invalid.
    """

    mode: Mode = "chained"

    def __init__(self, file: str | Path | None = None, *, spec: SpaceSpec | None = None) -> None:
        if spec is None:
            spec = load_space(file if file is not None else DEFAULT_FILES[self.mode])
        self.spec = spec
        self.name = f"{self.mode}-v1"
        self.max_depth = spec.max_depth
        self.layer_kernels = spec.kernels
        self._actions: tuple[_Action, ...] = tuple(self._build_actions())
        self._infos = tuple(action.info for action in self._actions)
        import gymnasium

        self._action_space = gymnasium.spaces.Discrete(len(self._actions))

    # -- the contract ---------------------------------------------------------------------
    @property
    def action_space(self) -> Any:
        """The Gymnasium ``Discrete`` action space."""
        return self._action_space

    def actions(self) -> Sequence[ActionInfo]:
        """Every action, by id, with its readable label."""
        return self._infos

    @property
    def multi_branch(self) -> bool:
        """Whether a layer's second predecessor carries information of its own.

        The one-hot encoder adds a ``pred2`` block exactly when this is true (NASGym: the
        pointer mode; here also the absolute mode with add/concat in the file).
        """
        return self.spec.has_merges and self.mode != "chained"

    def apply(self, state: SearchState, action: Any) -> Transition:
        """Apply ``action`` (an integer id) to ``state``.

        Raises:
            SearchSpaceError: ``action`` is not an integer, or not in ``0 .. n-1``.
        """
        chosen = self._actions[self.check_action(action)]
        if chosen.move is not None:
            return self._move(state, chosen)
        nsc = state.nsc
        if len(nsc) >= self.max_depth or nsc.terminated:
            return Transition(state=state, action=chosen.info)
        layer = chosen.layer
        assert layer is not None
        if layer.type is LayerType.TERMINAL:
            row = (0, 0, 0)
        else:
            resolved = self._predecessors(state, chosen)
            if resolved is None:
                return Transition(state=state, action=chosen.info, out_of_bounds=True)
            row = (chosen.kernel, *resolved)
        new = nsc.append(layer.type, *row)
        added = tuple(int(v) for v in new.rows[-1])
        return Transition(
            state=SearchState(new, state.pointers),
            action=chosen.info,
            added=(added[0], added[1], added[2], added[3], added[4]),
        )

    def check_action(self, action: Any) -> int:
        """The action as a Python int.

        Raises:
            SearchSpaceError: not an integer (numpy integers and 0-d integer arrays are
                fine), or out of range.
        """
        value = action
        if isinstance(value, np.ndarray) and value.shape in ((), (1,)):
            value = value.reshape(()).item() if np.issubdtype(value.dtype, np.integer) else value
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise SearchSpaceError(
                f"action {action!r} of type {type(action).__name__} is not an integer; "
                f"valid actions are 0 .. {len(self._actions) - 1} of the {self.name} space"
            )
        number = int(value)
        if not 0 <= number < len(self._actions):
            raise SearchSpaceError(
                f"action {number} is out of range; valid actions are 0 .. "
                f"{len(self._actions) - 1} of the {self.name} space"
            )
        return number

    def describe(self, action: int) -> ActionInfo:
        """The :class:`ActionInfo` of ``action``."""
        return self._infos[self.check_action(action)]

    def check(self, nsc: NSC) -> None:
        """Check that ``nsc`` fits this space (depth and kernels).

        Raises:
            NSCError: naming the row and the value that is not allowed.
        """
        nsc.check_space(max_depth=self.max_depth, kernels=dict(self.layer_kernels))

    # -- modes ------------------------------------------------------------------------------
    def _build_actions(self) -> list[_Action]:
        raise NotImplementedError

    def _predecessors(self, state: SearchState, action: _Action) -> tuple[int, int] | None:
        raise NotImplementedError

    def _move(self, state: SearchState, action: _Action) -> Transition:
        raise SearchSpaceError(f"the {self.name} space has no pointer moves")

    def _layer_actions(self, pred1: str, pred2: str) -> list[_Action]:
        actions: list[_Action] = []
        for layer in self.spec.layers:
            for kernel in layer.kernels or (0,):
                p1 = pred1 if layer.pred1 else "0"
                p2 = pred2 if layer.pred2 else "0"
                kind: Literal["layer", "terminal"] = (
                    "terminal" if layer.type is LayerType.TERMINAL else "layer"
                )
                label = f"{layer.name}_k-{kernel}_pred1-{p1}_pred2-{p2}"
                actions.append(_Action(ActionInfo(len(actions), label, kind), layer, kernel))
        return actions


class ChainedSearchSpace(YamlSearchSpace):
    """Each layer reads the previous one (NASGym's ``chained``); 8 actions for ``chain``."""

    mode: Mode = "chained"

    def _build_actions(self) -> list[_Action]:
        return self._layer_actions("L", "BL")

    def _predecessors(self, state: SearchState, action: _Action) -> tuple[int, int] | None:
        last = state.nsc.last_index
        assert action.layer is not None
        return last, (last if action.layer.pred2 else 0)


class PointerSearchSpace(YamlSearchSpace):
    """Chained layers whose two predecessors are pointers the agent moves (multi-branch).

    NASGym's ``pred-free`` mode; 14 actions for ``multibranch``. See the module docs for
    the pointer rules.
    """

    mode: Mode = "pointer"

    @property
    def uses_pointers(self) -> bool:
        """True: actions move predecessor pointers."""
        return True

    def _build_actions(self) -> list[_Action]:
        actions = self._layer_actions("L", "BL")
        for pointer in (1, 2):
            for op, delta in (("U", 1), ("D", -1)):
                info = ActionInfo(len(actions), f"predshift_p-{pointer}_op-{op}", "pointer")
                actions.append(_Action(info, move=(pointer, delta)))
        return actions

    def _predecessors(self, state: SearchState, action: _Action) -> tuple[int, int] | None:
        last = state.nsc.last_index
        shift1, shift2 = state.pointers
        assert action.layer is not None
        pred2 = (0 if last == 0 else last + shift2) if action.layer.pred2 else 0
        return last + shift1, pred2

    def _move(self, state: SearchState, action: _Action) -> Transition:
        assert action.move is not None
        pointer, delta = action.move
        shifts = list(state.pointers)
        shifts[pointer - 1] += delta
        last = state.nsc.last_index
        if not all(0 <= last + shift <= last for shift in shifts):
            return Transition(state=state, action=action.info, out_of_bounds=True)
        return Transition(state=SearchState(state.nsc, (shifts[0], shifts[1])), action=action.info)


class AbsoluteSearchSpace(YamlSearchSpace):
    """Every action names its predecessors by absolute index (NASGym's ``default``).

    161 actions for ``nasenv`` (depth 10). A predecessor that does not exist yet ends the
    episode without adding the layer.
    """

    mode: Mode = "absolute"

    def _build_actions(self) -> list[_Action]:
        actions: list[_Action] = []
        depth = self.spec.max_depth
        for layer in self.spec.layers:
            kind: Literal["layer", "terminal"] = (
                "terminal" if layer.type is LayerType.TERMINAL else "layer"
            )
            for kernel in layer.kernels or (0,):
                pairs: list[tuple[int, int]]
                if not layer.pred1:
                    pairs = [(0, 0)]
                elif layer.pred2:
                    pairs = [(p1, p2) for p1 in range(depth) for p2 in range(p1)]
                else:
                    pairs = [(p1, 0) for p1 in range(depth)]
                for p1, p2 in pairs:
                    label = f"{layer.name}_k-{kernel}_pred1-{p1}_pred2-{p2}"
                    info = ActionInfo(len(actions), label, kind)
                    actions.append(_Action(info, layer, kernel, p1, p2))
        return actions

    def _predecessors(self, state: SearchState, action: _Action) -> tuple[int, int] | None:
        assert action.pred1 is not None and action.pred2 is not None
        last = state.nsc.last_index
        if action.pred1 > last or action.pred2 > last:
            return None
        return action.pred1, action.pred2
