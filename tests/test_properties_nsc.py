"""Properties of the NSC (Hypothesis): round trips, the canonical hash, bad text.

* ``NSC.parse(str(nsc)) == nsc`` for random valid networks;
* the canonical hash is invariant under random renumbering (any topological order, any
  increasing indices, gaps and a terminal row allowed) and merge-operand swaps;
* equal canonical hashes imply isomorphic graphs, checked independently with networkx
  (and isomorphic graphs imply equal hashes);
* random text makes ``NSC.parse`` raise nothing but a one-line ``NSCError``.
"""

from __future__ import annotations

import networkx as nx
from hypothesis import event, given, settings
from hypothesis import strategies as st
from properties import examples, one_line

from nasframe import NSC, LayerType, NSCError

KERNELS = (1, 2, 3)
LAYER_TYPES = [t for t in LayerType if t is not LayerType.TERMINAL]


@st.composite
def networks(draw: st.DrawFn, max_depth: int = 7, types: list[LayerType] = LAYER_TYPES) -> NSC:
    """A random valid network numbered 1..n in order, with or without a terminal row."""
    depth = draw(st.integers(0, max_depth))
    rows = []
    for index in range(1, depth + 1):
        layer_type = draw(st.sampled_from(types))
        kernel = draw(st.sampled_from(KERNELS)) if layer_type.has_kernel else 0
        pred1 = draw(st.integers(0, index - 1))
        pred2 = draw(st.integers(0, index - 1)) if layer_type.arity == 2 else 0
        rows.append((index, int(layer_type), kernel, pred1, pred2))
    if draw(st.booleans()):
        rows.append((depth + 1, int(LayerType.TERMINAL), 0, 0, 0))
    return NSC(rows)


@st.composite
def renumbered(draw: st.DrawFn, nsc: NSC) -> NSC:
    """``nsc`` in another topological order, with new increasing indices, operands swapped."""
    layers = list(nsc.without_terminal())
    placed: list[int] = []  # old indices, in the new order
    waiting = {row.index: set(row.predecessors) - {0} for row in layers}
    while waiting:
        ready = sorted(index for index, preds in waiting.items() if preds <= set(placed))
        choice = draw(st.sampled_from(ready))
        placed.append(choice)
        del waiting[choice]
    gaps = draw(st.lists(st.integers(1, 5), min_size=len(placed) + 1, max_size=len(placed) + 1))
    new_index, current = {0: 0}, 0
    for old, gap in zip(placed, gaps, strict=False):
        current += gap
        new_index[old] = current
    by_index = {row.index: row for row in layers}
    rows = []
    for old in placed:
        row = by_index[old]
        pred1, pred2 = new_index[row.pred1], new_index[row.pred2] if row.type.arity == 2 else 0
        if row.type.arity == 2 and draw(st.booleans()):
            pred1, pred2 = pred2, pred1
        rows.append((new_index[old], int(row.type), row.kernel, pred1, pred2))
    if nsc.terminated or draw(st.booleans()):
        rows.append((current + gaps[-1], int(LayerType.TERMINAL), 0, 0, 0))
    draw(st.randoms()).shuffle(rows)  # rows may come in any order; NSC sorts them
    return NSC(rows)


def isomorphic(a: NSC, b: NSC) -> bool:
    """The graphs of ``a`` and ``b`` are isomorphic, labels (type and kernel) respected."""
    match = nx.algorithms.isomorphism.categorical_node_match("label", None)
    return bool(nx.is_isomorphic(a.graph(), b.graph(), node_match=match))


@settings(max_examples=examples(200))
@given(networks())
def test_the_string_form_round_trips(nsc: NSC) -> None:
    assert NSC.parse(str(nsc)) == nsc
    assert NSC.from_matrix(nsc.to_matrix(len(nsc) + 2)) == nsc  # padded matrix too


@settings(max_examples=examples(200))
@given(st.data())
def test_the_hash_ignores_numbering_and_operand_order(data: st.DataObject) -> None:
    nsc = data.draw(networks())
    other = data.draw(renumbered(nsc))
    assert other.canonical_hash == nsc.canonical_hash
    assert other.depth == nsc.depth and isomorphic(other, nsc)


# Few layer types and shallow networks, so that two draws are often the same graph
# and equal hashes are really put to the test (about a fifth of the pairs collide).
SMALL_TYPES = [LayerType.CONVOLUTION, LayerType.IDENTITY, LayerType.ADD]


@settings(max_examples=examples(300))
@given(networks(max_depth=4, types=SMALL_TYPES), networks(max_depth=4, types=SMALL_TYPES))
def test_equal_hashes_exactly_when_isomorphic(a: NSC, b: NSC) -> None:
    same = a.canonical_hash == b.canonical_hash
    event("equal hashes" if same else "different hashes")  # --hypothesis-show-statistics
    assert same == isomorphic(a, b)


# Text near the NSC grammar (digits, separators, signs, blanks) finds more than any text.
NSC_ALPHABET = st.sampled_from([*"0123456789,;- _+\t\n", "10", "99", "1,1,3,0,0"])
nsc_like = st.lists(NSC_ALPHABET, max_size=40).map("".join)


@settings(max_examples=examples(300))
@given(st.one_of(nsc_like, st.text(max_size=60)))
def test_random_text_raises_only_nsc_error(text: str) -> None:
    try:
        nsc = NSC.parse(text)
    except NSCError as exc:
        one_line(exc)
    else:
        assert NSC.parse(str(nsc)) == nsc


@settings(max_examples=examples(200))
@given(st.lists(st.lists(st.integers(-3, 9), min_size=4, max_size=6), max_size=6))
def test_random_rows_raise_only_nsc_error(rows: list[list[int]]) -> None:
    try:
        nsc = NSC.from_rows(rows)
    except NSCError as exc:
        one_line(exc)
    else:
        assert NSC.parse(str(nsc)) == nsc
