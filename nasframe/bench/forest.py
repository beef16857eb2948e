"""Fitted tree ensembles as plain arrays: saved without pickle, evaluated in microseconds.

A surrogate answers one network at a time inside a search, and the libraries' own
``predict`` is built for batches: scikit-learn's histogram gradient boosting spends about
15 ms on one row (it starts its thread pool and validates the input every call),
LightGBM about 0.4 ms per model. :class:`Forest` holds the same trees as flat arrays --
for each node its feature, threshold, children and value -- and walks every tree of
every target at once, one NumPy step per tree level, giving the libraries' predictions
to the last bit (a test checks it). The arrays are also what a surrogate saves
(``numpy.savez``): compact, and loading them runs no code.

Supported: :class:`sklearn.ensemble.HistGradientBoostingRegressor` (squared error,
numerical features) and :class:`lightgbm.LGBMRegressor` (``<=`` splits); both send a
value left when it is at most the threshold, as here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasframe.errors import ConfigError

__all__ = ["Forest"]

#: One tree as node arrays: feature, threshold, left, right, value; and its depth.
_Tree = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]


@dataclass(frozen=True)
class Forest:
    """Trees of one or more targets, padded to one node count.

    Attributes:
        feature: ``(trees, nodes)`` int32, the split feature of each node (0 at leaves).
        threshold: ``(trees, nodes)`` float64; a value ``<=`` it goes left.
        left: ``(trees, nodes)`` int32 child index; a leaf points at itself.
        right: ``(trees, nodes)`` int32 child index; a leaf points at itself.
        value: ``(trees, nodes)`` float64, the leaf values (0 at internal nodes).
        target: ``(trees,)`` int32, the target each tree adds to.
        baseline: ``(targets,)`` float64, each target's constant term.
        depth: the deepest leaf (the steps a walk takes).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    target: np.ndarray
    baseline: np.ndarray
    depth: int

    @classmethod
    def from_models(cls, models: Sequence[Any]) -> Forest:
        """One forest of the fitted ``models``, target ``i`` being ``models[i]``.

        Raises:
            ConfigError: a model of a kind this module cannot read.
        """
        trees: list[_Tree] = []
        targets: list[int] = []
        baseline = []
        for index, model in enumerate(models):
            model_trees, constant = _trees_of(model)
            trees += model_trees
            targets += [index] * len(model_trees)
            baseline.append(constant)
        nodes = max((len(tree[0]) for tree in trees), default=1)
        shape = (len(trees), nodes)
        feature = np.zeros(shape, dtype=np.int32)
        threshold = np.zeros(shape, dtype=np.float64)
        left = np.tile(np.arange(nodes, dtype=np.int32), (len(trees), 1))
        right = left.copy()
        value = np.zeros(shape, dtype=np.float64)
        depth = 0
        for t, (f, thr, lc, rc, val, leaf_depth) in enumerate(trees):
            n = len(f)
            feature[t, :n], threshold[t, :n], value[t, :n] = f, thr, val
            left[t, :n], right[t, :n] = lc, rc
            depth = max(depth, leaf_depth)
        return cls(
            feature,
            threshold,
            left,
            right,
            value,
            np.asarray(targets, dtype=np.int32),
            np.asarray(baseline, dtype=np.float64),
            depth,
        )

    def __post_init__(self) -> None:
        # The walk indexes flat arrays by global node id (tree * nodes + node): one
        # gather per array and level, whatever the number of trees. ``child[2 * id]`` is
        # the right child and ``child[2 * id + 1]`` the left, so the comparison's result
        # picks the next node without a branch.
        trees, nodes = self.feature.shape
        start = (np.arange(trees, dtype=np.int64) * nodes)[:, None]
        child = np.stack([self.right + start, self.left + start], axis=-1)
        flat = {
            "start": start.ravel(),
            "feature": self.feature.ravel().astype(np.int64),
            "threshold": self.threshold.ravel(),
            "child": child.reshape(-1).astype(np.int64),
            "value": self.value.ravel(),
            "onehot": np.eye(len(self.baseline))[self.target],
        }
        object.__setattr__(self, "_flat", flat)

    @property
    def targets(self) -> int:
        return len(self.baseline)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(rows, targets)`` predictions of ``(rows, features)`` (or one row, 1-D)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        flat = self._flat  # type: ignore[attr-defined]
        width = x.shape[1]
        # one row's features at x_flat[row * width + feature]
        x_flat = x.ravel()
        offset = (np.arange(len(x), dtype=np.int64) * width)[:, None]
        node = np.broadcast_to(flat["start"], (len(x), len(flat["start"])))
        feature, threshold, child = flat["feature"], flat["threshold"], flat["child"]
        for _ in range(self.depth):
            go_left = x_flat[offset + feature[node]] <= threshold[node]
            node = child[2 * node + go_left]
        return flat["value"][node] @ flat["onehot"] + self.baseline

    def select(self, targets: Sequence[int]) -> Forest:
        """The forest of ``targets`` only (in that order): fewer trees to walk per query."""
        keep = np.concatenate([np.flatnonzero(self.target == t) for t in targets])
        renumber = {old: new for new, old in enumerate(targets)}
        return Forest(
            self.feature[keep],
            self.threshold[keep],
            self.left[keep],
            self.right[keep],
            self.value[keep],
            np.asarray([renumber[int(t)] for t in self.target[keep]], dtype=np.int32),
            self.baseline[list(targets)],
            self.depth,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to save (``numpy.savez``), ``depth`` included."""
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "value": self.value,
            "target": self.target,
            "baseline": self.baseline,
            "depth": np.asarray([self.depth]),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> Forest:
        """The forest of :meth:`arrays` (a mapping, e.g. a loaded ``.npz``)."""
        return cls(
            feature=np.asarray(arrays["feature"], dtype=np.int32),
            threshold=np.asarray(arrays["threshold"], dtype=np.float64),
            left=np.asarray(arrays["left"], dtype=np.int32),
            right=np.asarray(arrays["right"], dtype=np.int32),
            value=np.asarray(arrays["value"], dtype=np.float64),
            target=np.asarray(arrays["target"], dtype=np.int32),
            baseline=np.asarray(arrays["baseline"], dtype=np.float64),
            depth=int(np.asarray(arrays["depth"])[0]),
        )


def _trees_of(model: Any) -> tuple[list[_Tree], float]:
    """The trees of a fitted model as node arrays, and its constant term."""
    if hasattr(model, "_predictors") and hasattr(model, "_baseline_prediction"):
        return _hgb_trees(model), float(np.ravel(model._baseline_prediction)[0])
    if hasattr(model, "booster_"):
        return _lightgbm_trees(model.booster_.dump_model()), 0.0
    raise ConfigError(f"cannot read the trees of a {type(model).__name__} model")


def _hgb_trees(model: Any) -> list[_Tree]:
    trees: list[_Tree] = []
    for (predictor,) in model._predictors:  # one tree per iteration (regression)
        nodes = predictor.nodes
        if np.any(nodes["is_categorical"]):
            raise ConfigError("categorical splits are not supported")
        leaf = nodes["is_leaf"].astype(bool)
        index = np.arange(len(nodes), dtype=np.int32)
        trees.append(
            (
                np.where(leaf, 0, nodes["feature_idx"]).astype(np.int32),
                nodes["num_threshold"].astype(np.float64),
                np.where(leaf, index, nodes["left"]).astype(np.int32),
                np.where(leaf, index, nodes["right"]).astype(np.int32),
                np.where(leaf, nodes["value"], 0.0).astype(np.float64),
                int(nodes["depth"].max()),
            )
        )
    return trees


def _lightgbm_trees(dump: dict[str, Any]) -> list[_Tree]:
    trees: list[_Tree] = []
    for info in dump["tree_info"]:
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        deepest = 0
        stack: list[tuple[dict[str, Any], int, int]] = [(info["tree_structure"], -1, 0)]
        # nodes are numbered as they are first reached; a child fills its parent's slot
        while stack:
            node, parent_slot, depth = stack.pop()
            index = len(feature)
            if parent_slot >= 0:
                slots = left if parent_slot % 2 == 0 else right
                slots[parent_slot // 2] = index
            feature.append(0)
            threshold.append(0.0)
            left.append(index)
            right.append(index)
            value.append(0.0)
            if "leaf_value" in node:
                value[index] = float(node["leaf_value"])
                deepest = max(deepest, depth)
                continue
            if node.get("decision_type", "<=") != "<=":
                raise ConfigError(f"LightGBM split {node.get('decision_type')!r} is not supported")
            feature[index] = int(node["split_feature"])
            threshold[index] = float(node["threshold"])
            stack.append((node["right_child"], 2 * index + 1, depth + 1))
            stack.append((node["left_child"], 2 * index, depth + 1))
        trees.append(
            (
                np.asarray(feature, dtype=np.int32),
                np.asarray(threshold, dtype=np.float64),
                np.asarray(left, dtype=np.int32),
                np.asarray(right, dtype=np.int32),
                np.asarray(value, dtype=np.float64),
                deepest,
            )
        )
    return trees
