"""Graph features of an NSC network, for surrogate models (``nasframe bench fit``).

:func:`network_features` describes a network by what its graph is, not by how its rows
are numbered, so two NSCs with the same canonical hash (renumbered layers, swapped merge
operands) always get the same features:

* ``op:<label>`` -- how many layers of each kind (``conv3``, ``max2``, ``add``, ...);
* ``edge:<from>><to>`` -- how many edges join each pair of kinds (``in`` is the input,
  ``out`` the block output, which concatenates the leaves);
* ``path:<a>-<b>-...`` -- BANANAS' path encoding (White et al., 2021): how many
  input-to-output paths pass through each sequence of kinds;
* structure: ``layers``, ``leaves``, ``paths``, the ``longest`` and ``shortest``
  path, the most and fewest poolings on a path (``pool_max``, ``pool_min``: the
  resolution the head sees), and ``width``, the block output's channels in multiples
  of the filters (concatenations add them up).

:class:`PathEncoding` fixes a vocabulary on the networks a model is fitted on (every
``op``, ``edge`` and structure key, and the most frequent paths) and turns networks into
rows of a matrix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasframe.errors import ConfigError
from nasframe.nsc import NSC, LayerType

__all__ = ["PathEncoding", "network_features"]

_KIND = {
    LayerType.CONVOLUTION: "conv",
    LayerType.MAX_POOLING: "max",
    LayerType.AVG_POOLING: "avg",
    LayerType.IDENTITY: "id",
    LayerType.ADD: "add",
    LayerType.CONCAT: "concat",
}
_POOLS = (LayerType.MAX_POOLING, LayerType.AVG_POOLING)
_STRUCTURE = ("layers", "leaves", "paths", "longest", "shortest", "pool_max", "pool_min", "width")


def _label(layer_type: LayerType, kernel: int) -> str:
    kind = _KIND[layer_type]
    return f"{kind}{kernel}" if layer_type.has_kernel else kind


def network_features(network: NSC) -> dict[str, float]:
    """The graph features of ``network`` (see the module docs); equal for equal graphs."""
    network = network.without_terminal()
    labels: dict[int, str] = {0: "in"}
    preds: dict[int, tuple[int, ...]] = {}
    features: dict[str, float] = {}

    def add(key: str, value: float = 1.0) -> None:
        features[key] = features.get(key, 0.0) + value

    for row in network:
        labels[row.index] = _label(row.type, row.kernel)
        preds[row.index] = row.predecessors
        add(f"op:{labels[row.index]}")
        for pred in row.predecessors:
            add(f"edge:{labels[pred]}>{labels[row.index]}")
    leaves = network.leaves
    for leaf in leaves:
        add(f"edge:{labels[leaf]}>out")
    # every input-to-node path, node by node in index order (a layer reads lower indices)
    paths: dict[int, Counter[tuple[str, ...]]] = {0: Counter({(): 1})}
    pools: dict[int, tuple[int, int]] = {0: (0, 0)}
    lengths: dict[int, tuple[int, int]] = {0: (0, 0)}
    width: dict[int, float] = {0: 1.0}
    for row in network:
        here: Counter[tuple[str, ...]] = Counter()
        for pred in row.predecessors:
            for path, count in paths[pred].items():
                here[(*path, labels[row.index])] += count
        paths[row.index] = here
        pooled = int(row.type in _POOLS)
        pools[row.index] = (
            max(pools[p][0] for p in row.predecessors) + pooled,
            min(pools[p][1] for p in row.predecessors) + pooled,
        )
        lengths[row.index] = (
            max(lengths[p][0] for p in row.predecessors) + 1,
            min(lengths[p][1] for p in row.predecessors) + 1,
        )
        if row.type is LayerType.CONVOLUTION:
            width[row.index] = 1.0
        elif row.type is LayerType.CONCAT:
            width[row.index] = sum(width[p] for p in row.predecessors)
        else:
            width[row.index] = max(width[p] for p in row.predecessors)
    total = 0
    for leaf in leaves:
        for path, count in paths[leaf].items():
            add("path:" + "-".join(path), count)
            total += count
    features["layers"] = len(network)
    features["leaves"] = len(leaves)
    features["paths"] = total
    features["longest"] = max(lengths[leaf][0] for leaf in leaves)
    features["shortest"] = min(lengths[leaf][1] for leaf in leaves)
    features["pool_max"] = max(pools[leaf][0] for leaf in leaves)
    features["pool_min"] = min(pools[leaf][1] for leaf in leaves)
    features["width"] = sum(width[leaf] for leaf in leaves)
    return features


@dataclass(frozen=True)
class PathEncoding:
    """A fixed vocabulary of :func:`network_features` keys: networks to matrix rows.

    Attributes:
        vocabulary: the feature names, in column order.
    """

    vocabulary: tuple[str, ...]

    @classmethod
    def fit(cls, networks: Iterable[NSC], *, max_paths: int = 256) -> PathEncoding:
        """The vocabulary of ``networks``: every non-path key, the ``max_paths`` most common paths.

        Paths are ranked by how many networks hold them (ties by name), so the
        vocabulary is the same for the same networks in any order.
        """
        if max_paths < 0:
            raise ConfigError(f"max_paths = {max_paths}: need an integer >= 0")
        keys: set[str] = set(_STRUCTURE)
        held: Counter[str] = Counter()
        for network in networks:
            for key in network_features(network):
                if key.startswith("path:"):
                    held[key] += 1
                else:
                    keys.add(key)
        ranked = sorted(held, key=lambda key: (-held[key], key))[:max_paths]
        return cls(tuple(sorted(keys) + sorted(ranked)))

    def transform(self, networks: Sequence[NSC]) -> np.ndarray:
        """One float32 row per network, one column per vocabulary key (0 when absent)."""
        column = {key: i for i, key in enumerate(self.vocabulary)}
        matrix = np.zeros((len(networks), len(self.vocabulary)), dtype=np.float32)
        for i, network in enumerate(networks):
            for key, value in network_features(network).items():
                j = column.get(key)
                if j is not None:
                    matrix[i, j] = value
        return matrix

    def unknown_layer(self, network: NSC) -> str | None:
        """The first layer of ``network`` of a kind the vocabulary never saw, or ``None``.

        A model fitted on a space knows only that space's kinds (``conv3``, ``add``, ...);
        a network with another is outside it.
        """
        for row in network.without_terminal():
            if f"op:{_label(row.type, row.kernel)}" not in self._known:
                return f"layer {_label(row.type, row.kernel)} (row {row})"
        return None

    @property
    def _known(self) -> frozenset[str]:
        known = self.__dict__.get("_known_cache")
        if known is None:
            known = frozenset(key for key in self.vocabulary if key.startswith("op:"))
            object.__setattr__(self, "_known_cache", known)
        return known

    def to_json(self) -> dict[str, Any]:
        return {"kind": "path-v1", "vocabulary": list(self.vocabulary)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PathEncoding:
        if data.get("kind") != "path-v1":
            raise ConfigError(f"unknown network encoding {data.get('kind')!r} (known: path-v1)")
        return cls(tuple(str(key) for key in data["vocabulary"]))
