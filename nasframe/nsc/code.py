"""The Neural Structure Code (NSC) of BlockQNN, as an immutable value type.

An architecture is a list of layers, one 5-integer row per layer::

    (index, type, kernel, pred1, pred2)

``index`` numbers the layer (from 1; a row of index 0 is padding and is dropped),
``type`` is a :class:`LayerType` code, ``kernel`` is the kernel or pool size (0 for layers
without one), and ``pred1``/``pred2`` are the indices of the layers feeding this one
(0 means the network input; ``pred2`` is used by ``add`` and ``concat`` only).

The compact string form writes rows as comma-separated fields, separated by ``;``::

    >>> nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0;3,7,0,0,0")
    >>> str(nsc)
    '1,1,3,0,0;2,2,2,1,0;3,7,0,0,0'

Two NSC lists that describe the same graph -- renumbered layers, swapped operands of
``add``/``concat``, padding rows, a terminal row or not -- have the same
:meth:`NSC.canonical_hash`; two different graphs never do. The experiment database uses
this hash as its cache key, so the same network is never trained twice.

What a run stores (the experiment database, ``steps.csv``, ``summary.json``) is the
*network*, with the terminal row dropped: :func:`network_text`. The network of no layer
-- the input straight into the classifier head -- is then the empty string ``""``, and
:func:`network_label` shows it as ``head only``; strings stored before that rule (the
head-only network as ``1,7,0,0,0``) read the same way.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from nasframe.errors import NSCError

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "FIELDS",
    "HEAD_ONLY",
    "INPUT",
    "NSC",
    "LayerType",
    "NSCRow",
    "network_label",
    "network_text",
]

#: The names of the five NSC fields, in row order.
FIELDS = ("index", "type", "kernel", "pred1", "pred2")

#: The predecessor index that stands for the network input.
INPUT = 0

#: How the network of no layer (the input straight into the classifier head) is shown.
HEAD_ONLY = "head only"


class LayerType(enum.IntEnum):
    """The NSC layer type codes (BlockQNN, NASGym)."""

    CONVOLUTION = 1
    MAX_POOLING = 2
    AVG_POOLING = 3
    IDENTITY = 4
    ADD = 5
    CONCAT = 6
    TERMINAL = 7

    @property
    def yaml_name(self) -> str:
        """The name of this type in a search-space YAML file (NASGym's names)."""
        return _YAML_NAMES[self]

    @classmethod
    def from_yaml_name(cls, name: str) -> LayerType:
        """Return the type named ``name`` in a search-space YAML file.

        Raises:
            KeyError: ``name`` is not a layer type.
        """
        return _BY_YAML_NAME[name]

    @property
    def has_kernel(self) -> bool:
        """Whether the ``kernel`` field is meaningful (convolution and pooling)."""
        return self in (LayerType.CONVOLUTION, LayerType.MAX_POOLING, LayerType.AVG_POOLING)

    @property
    def arity(self) -> int:
        """How many predecessors the layer reads: 2 for merges, 0 for terminal, else 1."""
        if self in (LayerType.ADD, LayerType.CONCAT):
            return 2
        return 0 if self is LayerType.TERMINAL else 1


_YAML_NAMES = {
    LayerType.CONVOLUTION: "convolution",
    LayerType.MAX_POOLING: "maxpooling",
    LayerType.AVG_POOLING: "avgpooling",
    LayerType.IDENTITY: "identity",
    LayerType.ADD: "add",
    LayerType.CONCAT: "concat",
    LayerType.TERMINAL: "terminal",
}
_BY_YAML_NAME = {name: layer_type for layer_type, name in _YAML_NAMES.items()}


class NSCRow(NamedTuple):
    """One layer of an NSC: ``(index, type, kernel, pred1, pred2)``."""

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the NSC name
    type: LayerType
    kernel: int
    pred1: int
    pred2: int

    def __str__(self) -> str:
        return f"{self.index},{int(self.type)},{self.kernel},{self.pred1},{self.pred2}"

    @property
    def predecessors(self) -> tuple[int, ...]:
        """The indices this layer reads, as many as its type's arity."""
        return (self.pred1, self.pred2)[: self.type.arity]


class NSC(Sequence[NSCRow]):
    """An immutable, validated NSC architecture: its layers sorted by index.

    Build one with :meth:`parse` (string), :meth:`from_rows` (5-tuples),
    :meth:`from_matrix` (a padded integer matrix) or :meth:`append`. Construction checks
    the structural rules and raises :class:`~nasframe.errors.NSCError` naming the row and
    field at fault:

    * every field is an integer; the type is a known :class:`LayerType`;
    * indices are positive and unique;
    * convolution and pooling have a kernel >= 1, every other type has kernel 0;
    * every predecessor is 0 (the input) or the index of an earlier layer;
    * ``pred2`` is 0 unless the layer is ``add`` or ``concat``;
    * a terminal layer, if any, is the last one.

    What a search space allows on top of that (depth, kernel sizes, layer types) is
    checked by :meth:`check_space`.
    """

    __slots__ = ("__dict__", "_rows")

    def __init__(self, rows: Iterable[Sequence[Any]] = ()) -> None:
        self._rows: tuple[NSCRow, ...] = _validate(rows)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> NSC:
        """Parse the compact string form (``"1,1,3,0,0;2,2,2,1,0"``; ``""`` is empty).

        Raises:
            NSCError: a row has the wrong number of fields, a field is not an integer, or
                the rows break an NSC rule; the message names the row and the field.
        """
        if not isinstance(text, str):
            raise NSCError(f"NSC must be a string like '1,1,3,0,0;2,2,2,1,0', got {text!r}")
        rows: list[list[int]] = []
        parts = [part.strip() for part in text.strip().strip(";").split(";")]
        for number, part in enumerate(parts, start=1):
            if not part:
                if len(parts) == 1:
                    break
                raise NSCError(f"NSC row {number} is empty in {text!r}")
            fields = [field.strip() for field in part.split(",")]
            if len(fields) != len(FIELDS):
                raise NSCError(
                    f"NSC row {number} ({part!r}) has {len(fields)} fields; expected 5: "
                    "index,type,kernel,pred1,pred2"
                )
            row = []
            for name, field in zip(FIELDS, fields, strict=True):
                try:
                    row.append(int(field))
                except ValueError:
                    raise NSCError(
                        f"NSC row {number} ({part!r}): field {name!r} is not an integer: {field!r}"
                    ) from None
            rows.append(row)
        return cls(rows)

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> NSC:
        """Build from an iterable of 5-tuples; padding rows (all zeros) are dropped."""
        return cls(rows)

    @classmethod
    def from_matrix(cls, matrix: Any) -> NSC:
        """Build from an ``n x 5`` integer array such as :meth:`to_matrix` returns."""
        array = np.asarray(matrix)
        if array.ndim != 2 or array.shape[1] != len(FIELDS):
            raise NSCError(f"NSC matrix must have shape (n, 5), got {array.shape}")
        return cls(array.tolist())

    def append(self, layer_type: LayerType | int, kernel: int, pred1: int, pred2: int) -> NSC:
        """Return a new NSC with one more layer, numbered one past the highest index.

        The rows of ``self`` are valid already, so only the new row is checked -- by the
        rules and with the messages construction uses (the new row is the last and its
        index the highest, so no other rule can break). Appending a terminal row keeps
        ``self`` as the new network's :meth:`without_terminal`, cached hash and all.

        Raises:
            NSCError: the new row breaks an NSC rule (as ``NSC([*self, row])`` would).
        """
        row = _parse_row(
            len(self._rows) + 1, (self.last_index + 1, int(layer_type), kernel, pred1, pred2)
        )
        assert row is not None  # its index is at least 1: never a padding row
        _check_row(
            row, {known.index for known in self._rows}, self._rows[-1] if self._rows else None
        )
        new = _trusted((*self._rows, row))
        if row.type is LayerType.TERMINAL:
            new.__dict__["_network"] = self
        return new

    # -- views ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, item: Any) -> Any:
        return self._rows[item]

    def __iter__(self) -> Iterator[NSCRow]:
        return iter(self._rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NSC) and self._rows == other._rows

    def __hash__(self) -> int:
        return hash(self._rows)

    def __str__(self) -> str:
        return ";".join(str(row) for row in self._rows)

    def __repr__(self) -> str:
        return f"NSC({str(self)!r})"

    @property
    def rows(self) -> tuple[NSCRow, ...]:
        """The layers, sorted by index (padding dropped, terminal kept)."""
        return self._rows

    @property
    def last_index(self) -> int:
        """The highest layer index, 0 for the empty network."""
        return self._rows[-1].index if self._rows else INPUT

    @property
    def terminated(self) -> bool:
        """Whether the last layer is a terminal layer."""
        return bool(self._rows) and self._rows[-1].type is LayerType.TERMINAL

    @property
    def depth(self) -> int:
        """The number of layers, not counting a terminal layer."""
        return len(self._rows) - int(self.terminated)

    def without_terminal(self) -> NSC:
        """This network without its terminal row (the network the terminal ends).

        ``self`` when it has no terminal row; otherwise the same object on every call
        (made once, without re-validating the rows), so what it caches -- its
        :attr:`canonical_hash` -- is computed once.
        """
        if not self.terminated:
            return self
        network: NSC | None = self.__dict__.get("_network")
        if network is None:
            network = self.__dict__["_network"] = _trusted(self._rows[:-1])
        return network

    def to_matrix(self, rows: int | None = None) -> np.ndarray:
        """The rows as an ``int32`` matrix, padded on top with zero rows up to ``rows``.

        NASGym kept its state this way: empty rows first, the current layer last.

        Raises:
            NSCError: the network has more than ``rows`` layers.
        """
        size = len(self._rows) if rows is None else rows
        if len(self._rows) > size:
            raise NSCError(f"NSC {self} has {len(self._rows)} rows, more than {size}")
        matrix = np.zeros((size, len(FIELDS)), dtype=np.int32)
        if self._rows:
            matrix[size - len(self._rows) :] = np.array(
                [[int(v) for v in row] for row in self._rows], dtype=np.int32
            )
        return matrix

    def check_space(
        self,
        *,
        max_depth: int | None = None,
        kernels: dict[LayerType, Sequence[int]] | None = None,
    ) -> None:
        """Check the rules a search space adds: the depth limit and allowed kernels.

        Args:
            max_depth: the most layers allowed (terminal not counted).
            kernels: allowed kernel sizes by layer type; a type missing from the mapping is
                not allowed at all. Types without a kernel map to ``(0,)`` or ``()``.

        Raises:
            NSCError: naming the row and the value that is not allowed.
        """
        if max_depth is not None and self.depth > max_depth:
            raise NSCError(f"NSC {self} has {self.depth} layers; the limit is {max_depth}")
        if kernels is None:
            return
        for number, row in enumerate(self._rows, start=1):
            if row.type not in kernels:
                allowed_types = ", ".join(t.yaml_name for t in kernels)
                raise NSCError(
                    f"NSC row {number} ({row}): layer type {row.type.yaml_name!r} is not in the "
                    f"search space (allowed: {allowed_types})"
                )
            allowed = tuple(kernels[row.type]) or (0,)
            if row.kernel not in allowed:
                raise NSCError(
                    f"NSC row {number} ({row}): kernel {row.kernel} is not allowed for "
                    f"{row.type.yaml_name} (allowed: {', '.join(map(str, allowed))})"
                )

    # -- graph ------------------------------------------------------------------------
    @cached_property
    def consumers(self) -> dict[int, int]:
        """How many times each node (0 = input, else a layer index) is read by a layer."""
        if self.terminated:  # the terminal row reads nothing: the network's counts
            return self.without_terminal().consumers
        counts = {INPUT: 0} | {row.index: 0 for row in self._layers}
        for row in self._layers:
            for pred in row.predecessors:
                counts[pred] += 1
        return counts

    @property
    def _layers(self) -> tuple[NSCRow, ...]:
        return self.without_terminal()._rows

    @cached_property
    def leaves(self) -> tuple[int, ...]:
        """The nodes nobody reads; their outputs are concatenated into the block output.

        The input counts as a leaf only when no layer reads it (the empty network).
        """
        return tuple(node for node, count in self.consumers.items() if count == 0)

    def graph(self) -> nx.MultiDiGraph:
        """The block as a networkx multigraph.

        Nodes: ``"input"``, each layer index (attributes ``type`` and ``kernel``) and
        ``"output"``; an edge from each predecessor to its layer (twice when a merge reads
        one node twice) and from each leaf to ``"output"``.
        """
        import networkx as nx

        graph = nx.MultiDiGraph()
        graph.add_node("input", label="input")
        for row in self._layers:
            graph.add_node(row.index, label=_label(row), type=row.type, kernel=row.kernel)
        graph.add_node("output", label="output")
        for row in self._layers:
            for pred in row.predecessors:
                graph.add_edge("input" if pred == INPUT else pred, row.index)
        for leaf in self.leaves:
            graph.add_edge("input" if leaf == INPUT else leaf, "output")
        return graph

    def density(self) -> float:
        """BlockQNN's density of the block: edges / nodes, input and output included."""
        edges = sum(len(row.predecessors) for row in self._layers) + len(self.leaves)
        return edges / (len(self._layers) + 2)

    @cached_property
    def canonical_form(self) -> str:
        """A string that is equal for isomorphic blocks and different otherwise.

        Layers are nodes labelled ``type:kernel``; the input, the output and the edges
        (operand order of ``add``/``concat`` ignored) make up the rest of the graph. The
        terminal row and padding rows do not take part.
        """
        if self.terminated:  # the network's form, computed (and cached) once for both
            return self.without_terminal().canonical_form
        return _canonical_form(self)

    @cached_property
    def canonical_hash(self) -> str:
        """A 20-hex-digit hash of :attr:`canonical_form`: the architecture's cache key."""
        return hashlib.sha256(self.canonical_form.encode()).hexdigest()[:20]


def _trusted(rows: tuple[NSCRow, ...]) -> NSC:
    """An NSC of ``rows`` already validated (sorted :class:`NSCRow`), built without a check."""
    nsc = NSC.__new__(NSC)
    nsc._rows = rows
    return nsc


def _label(row: NSCRow) -> str:
    return f"{int(row.type)}:{row.kernel}"


def _validate(rows: Iterable[Sequence[Any]]) -> tuple[NSCRow, ...]:
    parsed: list[NSCRow] = []
    for number, raw in enumerate(rows, start=1):
        row = _parse_row(number, raw)
        if row is not None:
            parsed.append(row)
    parsed.sort(key=lambda row: row.index)
    seen: set[int] = set()
    for row in parsed:
        _check_row(row, seen, parsed[len(seen) - 1] if seen else None)
        seen.add(row.index)
    return tuple(parsed)


def _parse_row(number: int, raw: Sequence[Any]) -> NSCRow | None:
    """Row ``number`` (from 1) as an :class:`NSCRow`; ``None`` for a padding row."""
    values = list(raw)
    text = ",".join(map(str, values))
    if len(values) != len(FIELDS):
        raise NSCError(f"NSC row {number} ({text!r}) has {len(values)} fields; expected 5")
    ints = []
    for name, value in zip(FIELDS, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise NSCError(
                f"NSC row {number} ({text!r}): field {name!r} is not an integer: {value!r}"
            )
        ints.append(int(value))
    index, type_code, kernel, pred1, pred2 = ints
    if index == 0:
        if any(ints):
            raise NSCError(
                f"NSC row {number} ({text!r}): field 'index' is 0 (padding) but the row is "
                "not all zeros; layer indices start at 1"
            )
        return None
    if index < 0:
        raise NSCError(f"NSC row {number} ({text!r}): field 'index' is negative: {index}")
    try:
        layer_type = LayerType(type_code)
    except ValueError:
        raise NSCError(
            f"NSC row {number} ({text!r}): field 'type' is {type_code}; valid types are "
            "1 convolution, 2 max-pooling, 3 avg-pooling, 4 identity, 5 add, 6 concat, "
            "7 terminal"
        ) from None
    return NSCRow(index, layer_type, kernel, pred1, pred2)


def _check_row(row: NSCRow, seen: Collection[int], previous: NSCRow | None) -> None:
    """The rules between ``row`` and the rows before it (``seen``: their indices, sorted
    first; ``previous``: the last of them)."""
    where = f"NSC layer {row.index} ({row})"
    if row.index in seen:
        raise NSCError(f"{where}: field 'index' {row.index} is used twice")
    if row.type.has_kernel and row.kernel < 1:
        raise NSCError(f"{where}: field 'kernel' must be >= 1 for {row.type.yaml_name}")
    if not row.type.has_kernel and row.kernel != 0:
        raise NSCError(f"{where}: field 'kernel' must be 0 for {row.type.yaml_name}")
    for name, pred in (("pred1", row.pred1), ("pred2", row.pred2)):
        if name == "pred2" and row.type.arity < 2:
            if pred != 0:
                raise NSCError(
                    f"{where}: field 'pred2' must be 0 for {row.type.yaml_name} "
                    "(only add and concat read two layers)"
                )
            continue
        if pred != INPUT and pred not in seen:
            raise NSCError(
                f"{where}: field {name!r} is {pred}; it must be 0 (the input) or the index "
                "of an earlier layer"
            )
    if previous is not None and previous.type is LayerType.TERMINAL:
        raise NSCError(f"{where}: a layer follows the terminal layer")


# -- canonical form ------------------------------------------------------------------
# Colour refinement (1-WL over predecessors and successors) splits the nodes by structure;
# where it leaves ties, every member of the first tied cell is individualised in turn and
# the smallest resulting encoding wins (individualisation-refinement, as in nauty). Nodes
# with the same label and the same neighbours ("twins") are swapped by an automorphism,
# so only one of them needs a branch. Colours are ranks of sorted signatures, never
# Python's randomised hash(), so the form is the same in every process.


def _canonical_form(nsc: NSC) -> str:
    layers = nsc.without_terminal().rows
    nodes = ["input", *(_label(row) for row in layers), "output"]
    position = {INPUT: 0} | {row.index: i for i, row in enumerate(layers, start=1)}
    output = len(nodes) - 1
    preds: list[list[int]] = [[] for _ in nodes]
    for row in layers:
        preds[position[row.index]] = sorted(position[p] for p in row.predecessors)
    preds[output] = sorted(position[leaf] for leaf in nsc.leaves)
    succs: list[list[int]] = [[] for _ in nodes]
    for node, node_preds in enumerate(preds):
        for pred in node_preds:
            succs[pred].append(node)
    colours = _ranks(nodes)
    best = _search(_refine(colours, preds, succs), nodes, preds, succs)
    return "|".join(best)


def _ranks(signatures: Sequence[Any]) -> list[int]:
    order = {sig: rank for rank, sig in enumerate(sorted(set(signatures)))}
    return [order[sig] for sig in signatures]


def _refine(colours: list[int], preds: list[list[int]], succs: list[list[int]]) -> list[int]:
    while True:
        signatures = [
            (
                colour,
                tuple(sorted(colours[p] for p in preds[node])),
                tuple(sorted(colours[s] for s in succs[node])),
            )
            for node, colour in enumerate(colours)
        ]
        refined = _ranks(signatures)
        if len(set(refined)) == len(set(colours)):
            return refined
        colours = refined


def _search(
    colours: list[int], labels: list[str], preds: list[list[int]], succs: list[list[int]]
) -> tuple[str, ...]:
    cells: dict[int, list[int]] = {}
    for node, colour in enumerate(colours):
        cells.setdefault(colour, []).append(node)
    tied = [cell for _, cell in sorted(cells.items()) if len(cell) > 1]
    if not tied:
        order = sorted(range(len(colours)), key=colours.__getitem__)
        place = {node: i for i, node in enumerate(order)}
        return tuple(
            f"{labels[node]}<{','.join(str(p) for p in sorted(place[q] for q in preds[node]))}>"
            for node in order
        )
    cell = tied[0]
    representatives: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    for node in cell:
        representatives.setdefault((tuple(preds[node]), tuple(sorted(succs[node]))), node)
    best: tuple[str, ...] | None = None
    for node in representatives.values():
        individual = [
            2 * c + (0 if n == node or c != colours[node] else 1) for n, c in enumerate(colours)
        ]
        candidate = _search(_refine(_ranks(individual), preds, succs), labels, preds, succs)
        if best is None or candidate < best:
            best = candidate
    assert best is not None
    return best


# -- stored and shown networks -------------------------------------------------------------


def network_text(text: str) -> str:
    """The stored form of the network NSC string ``text`` names: its terminal row dropped.

    ``"1,1,3,0,0;2,7,0,0,0"`` -> ``"1,1,3,0,0"``; ``"1,7,0,0,0"`` -> ``""`` (head only);
    anything else is returned as it is. A string test, no parse, so readers of large
    tables can call it on every row; it is how old rows, stored with their terminal row,
    read as the network they name.
    """
    head, _, last = text.rpartition(";")
    cells = last.split(",")
    if len(cells) == len(FIELDS) and cells[1].strip() == str(int(LayerType.TERMINAL)):
        return head
    return text


def network_label(text: str) -> str:
    """``text`` (an NSC string) as a person reads it: ``head only`` for the empty network.

    The terminal row is dropped (:func:`network_text`), so ``"1,7,0,0,0"`` and ``""`` both
    read ``head only``.
    """
    return network_text(text) or HEAD_ONLY
