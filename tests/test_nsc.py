"""NSC: parsing, validation messages, and the canonical hash checked against networkx."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import networkx as nx
import pytest
from nasframe_spaces import ChainedSearchSpace

from nasframe import NSC, LayerType, NSCError


def _isomorphic(a: NSC, b: NSC) -> bool:
    return bool(
        nx.is_isomorphic(
            a.graph(), b.graph(), node_match=lambda x, y: x.get("label") == y.get("label")
        )
    )


def _wl(nsc: NSC) -> str:
    return str(nx.weisfeiler_lehman_graph_hash(nx.DiGraph(nsc.graph()), node_attr="label"))


# -- strings and rows -----------------------------------------------------------------------
def test_round_trips() -> None:
    text = "1,1,3,0,0;2,2,2,1,0;3,5,0,2,1;4,7,0,0,0"
    nsc = NSC.parse(text)
    assert str(nsc) == text
    assert NSC.from_rows([tuple(row) for row in nsc]) == nsc
    assert NSC.from_matrix(nsc.to_matrix(10)) == nsc
    assert nsc.depth == 3 and nsc.terminated
    assert NSC.parse("") == NSC() and str(NSC()) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,1,3,0", "NSC row 1 ('1,1,3,0') has 4 fields; expected 5"),
        ("1,1,3,0,0;2,x,2,1,0", "NSC row 2 ('2,x,2,1,0'): field 'type' is not an integer: 'x'"),
        ("1,9,3,0,0", "NSC row 1 ('1,9,3,0,0'): field 'type' is 9; valid types are"),
        ("1,1,3,0,0;;2,1,3,1,0", "NSC row 2 is empty"),
        ("1,1,3,2,0", "NSC layer 1 (1,1,3,2,0): field 'pred1' is 2; it must be 0"),
        ("1,1,0,0,0", "NSC layer 1 (1,1,0,0,0): field 'kernel' must be >= 1 for convolution"),
        ("1,5,3,0,0", "NSC layer 1 (1,5,3,0,0): field 'kernel' must be 0 for add"),
        ("1,1,3,0,1", "NSC layer 1 (1,1,3,0,1): field 'pred2' must be 0 for convolution"),
        ("1,1,3,0,0;1,1,3,0,0", "NSC layer 1 (1,1,3,0,0): field 'index' 1 is used twice"),
        ("1,7,0,0,0;2,1,3,1,0", "NSC layer 2 (2,1,3,1,0): a layer follows the terminal layer"),
        ("-1,1,3,0,0", "NSC row 1 ('-1,1,3,0,0'): field 'index' is negative"),
    ],
)
def test_malformed_strings_name_row_and_field(text: str, message: str) -> None:
    with pytest.raises(NSCError) as info:
        NSC.parse(text)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


# -- canonical hash: every chained network up to depth 4 ------------------------------------
def test_every_chained_network_up_to_depth_4() -> None:
    space = ChainedSearchSpace("chain")
    layer_actions = [a.id for a in space.actions() if a.kind == "layer"]
    terminal = next(a.id for a in space.actions() if a.kind == "terminal")
    by_hash: dict[str, NSC] = {}
    count = 0
    for depth in range(5):
        for actions in itertools.product(layer_actions, repeat=depth):
            state = space.reset()
            for action in actions:
                state = space.apply(state, action).state
            nsc = state.nsc
            count += 1
            # the terminal row and padding rows do not change the hash
            ended = space.apply(state, terminal).state.nsc
            assert ended.canonical_hash == nsc.canonical_hash
            assert NSC.from_matrix(nsc.to_matrix(10)).canonical_hash == nsc.canonical_hash
            # chains are isomorphic only when their label sequences are equal: no collisions
            assert nsc.canonical_hash not in by_hash, (nsc, by_hash.get(nsc.canonical_hash))
            by_hash[nsc.canonical_hash] = nsc
    assert count == sum(7**d for d in range(5)) == len(by_hash)
    # spot-check the chain assumption with networkx on neighbours in the enumeration
    nets = list(by_hash.values())
    for a, b in itertools.pairwise(nets[:300]):
        assert not _isomorphic(a, b)


# -- canonical hash: random multi-branch graphs ------------------------------------------------
_KERNELS = {
    LayerType.CONVOLUTION: (1, 3),
    LayerType.MAX_POOLING: (2,),
    LayerType.ADD: (0,),
    LayerType.CONCAT: (0,),
    LayerType.IDENTITY: (0,),
}


def _random_nsc(rng: random.Random, max_layers: int) -> NSC:
    rows = []
    for index in range(1, rng.randint(1, max_layers) + 1):
        layer_type = rng.choice(list(_KERNELS))
        kernel = rng.choice(_KERNELS[layer_type])
        pred1 = rng.randrange(index)
        pred2 = rng.randrange(index) if layer_type.arity == 2 else 0
        rows.append((index, int(layer_type), kernel, pred1, pred2))
    if rng.random() < 0.3:
        rows.append((len(rows) + 1, int(LayerType.TERMINAL), 0, 0, 0))
    return NSC.from_rows(rows)


def _relabel(nsc: NSC, rng: random.Random) -> NSC:
    """The same graph with layers renumbered (a random topological order) and operands swapped."""
    graph = nx.DiGraph()
    layers = nsc.without_terminal().rows
    graph.add_nodes_from(row.index for row in layers)
    for row in layers:
        graph.add_edges_from((p, row.index) for p in row.predecessors if p != 0)
    # a random topological order: repeatedly pick a random node whose predecessors are placed
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(layers):
        ready = [n for n in graph if n not in placed and set(graph.predecessors(n)) <= placed]
        node = rng.choice(ready)
        order.append(node)
        placed.add(node)
    new_index = {0: 0} | {old: new for new, old in enumerate(order, start=1)}
    by_old = {row.index: row for row in layers}
    rows = []
    for old in order:
        row = by_old[old]
        p1, p2 = new_index[row.pred1], new_index[row.pred2] if row.type.arity == 2 else 0
        if row.type.arity == 2 and rng.random() < 0.5:
            p1, p2 = p2, p1
        rows.append((new_index[old], int(row.type), row.kernel, p1, p2))
    rng.shuffle(rows)  # row order in the list does not matter either
    padding = [(0, 0, 0, 0, 0)] * rng.randint(0, 3)
    return NSC.from_rows(padding + rows)


def test_hash_is_invariant_under_renumbering_and_operand_order() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        nsc = _random_nsc(rng, 9)
        twin = _relabel(nsc, rng)
        assert twin.canonical_hash == nsc.canonical_hash, (nsc, twin)
        assert _isomorphic(nsc.without_terminal(), twin)


@pytest.mark.filterwarnings("ignore:The hashes produced for directed graphs changed")
def test_no_collisions_between_non_isomorphic_graphs() -> None:
    rng = random.Random(99)
    # small graphs over a small alphabet: many isomorphic pairs arise independently
    nets = [_random_nsc(rng, 5) for _ in range(4000)]
    by_hash: dict[str, list[NSC]] = defaultdict(list)
    for nsc in nets:
        by_hash[nsc.canonical_hash].append(nsc)
    shared = 0
    for group in by_hash.values():
        for other in group[1:]:
            assert _isomorphic(group[0], other), (group[0], other)
            shared += 1
    assert shared > 100  # the test really compared isomorphic graphs built independently
    # Isomorphic graphs always share networkx's WL hash, so comparing every pair of distinct
    # canonical hashes inside one WL bucket covers every pair that could be a collision.
    by_wl: dict[str, list[NSC]] = defaultdict(list)
    for group in by_hash.values():
        by_wl[_wl(group[0])].append(group[0])
    for bucket in by_wl.values():
        for a, b in itertools.combinations(bucket, 2):
            assert not _isomorphic(a, b), (a, b)
    assert len(by_hash) > 1000


def test_hash_distinguishes_operand_sources_and_multi_edges() -> None:
    # add(1, 1) and add(1, input) differ; so do which layers feed a concat
    assert (
        NSC.parse("1,1,3,0,0;2,5,0,1,1").canonical_hash
        != NSC.parse("1,1,3,0,0;2,5,0,1,0").canonical_hash
    )
    a = NSC.parse("1,1,3,0,0;2,1,1,0,0;3,6,0,1,2")
    b = NSC.parse("1,1,1,0,0;2,1,3,0,0;3,6,0,2,1")
    c = NSC.parse("1,1,3,0,0;2,1,1,1,0;3,6,0,1,2")
    assert a.canonical_hash == b.canonical_hash
    assert a.canonical_hash != c.canonical_hash


def test_density_counts_block_edges() -> None:
    # input -> 1 -> 2 -> output: 3 edges over 4 nodes
    assert NSC.parse("1,1,3,0,0;2,2,2,1,0").density() == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    ("text", "network", "label"),
    [
        ("", "", "head only"),
        ("1,7,0,0,0", "", "head only"),  # the head-only network as it was once stored
        ("1,1,3,0,0;2,7,0,0,0", "1,1,3,0,0", "1,1,3,0,0"),
        ("1,1,3,0,0;2,5,0,1,0", "1,1,3,0,0;2,5,0,1,0", "1,1,3,0,0;2,5,0,1,0"),
        ("1,1,7,0,0", "1,1,7,0,0", "1,1,7,0,0"),  # a 7x7 convolution, not a terminal
    ],
)
def test_stored_and_shown_network_strings(text: str, network: str, label: str) -> None:
    from nasframe.nsc import network_label, network_text

    assert network_text(text) == network == str(NSC.parse(text).without_terminal())
    assert network_label(text) == label


# -- the step's data path (issue 31 item 5) ---------------------------------------------------
def _count_forms(monkeypatch: pytest.MonkeyPatch) -> list[NSC]:
    import nasframe.nsc.code as module

    computed: list[NSC] = []
    original = module._canonical_form

    def counted(nsc: NSC) -> str:
        computed.append(nsc)
        return original(nsc)

    monkeypatch.setattr(module, "_canonical_form", counted)
    return computed


def test_without_terminal_is_one_object_whose_hash_is_computed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed = _count_forms(monkeypatch)
    ended = NSC.parse("1,1,3,0,0;2,2,2,1,0;3,7,0,0,0")
    network = ended.without_terminal()
    assert network is ended.without_terminal() and network == NSC.parse("1,1,3,0,0;2,2,2,1,0")
    assert network.without_terminal() is network and not network.terminated
    assert ended.canonical_hash == network.canonical_hash == ended.canonical_hash
    assert computed == [network]  # one computation serves both
    assert ended.consumers is network.consumers and ended.leaves == network.leaves


def test_a_terminal_row_appended_keeps_the_network_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed = _count_forms(monkeypatch)
    network = NSC().append(LayerType.CONVOLUTION, 3, 0, 0).append(LayerType.ADD, 0, 1, 0)
    digest = network.canonical_hash
    ended = network.append(LayerType.TERMINAL, 0, 0, 0)
    assert ended.without_terminal() is network and ended.canonical_hash == digest
    assert len(computed) == 1
    assert ended == NSC.parse(f"{network};3,7,0,0,0") and ended.rows == NSC(ended.rows).rows


@pytest.mark.parametrize(
    "row",
    [
        (LayerType.CONVOLUTION, 0, 2, 0),  # kernel 0 for a convolution
        (LayerType.ADD, 3, 1, 2),  # a kernel for add
        (LayerType.CONVOLUTION, 3, 5, 0),  # pred1 not an earlier layer
        (LayerType.CONCAT, 0, 1, 7),  # pred2 not an earlier layer
        (LayerType.IDENTITY, 0, 1, 1),  # pred2 on a one-input layer
        (LayerType.CONVOLUTION, 3, -1, 0),
        (9, 0, 0, 0),  # not a layer type
        (LayerType.CONVOLUTION, True, 0, 0),  # a bool is not an integer
        (LayerType.CONVOLUTION, 3.0, 0, 0),
        (LayerType.CONVOLUTION, 3, "1", 0),
    ],
)
def test_append_refuses_what_construction_refuses_with_its_message(row: tuple) -> None:
    for base in (NSC(), NSC.parse("1,1,3,0,0;3,2,2,1,0"), NSC.parse("1,4,0,0,0;2,7,0,0,0")):
        layer_type, kernel, pred1, pred2 = row
        with pytest.raises(NSCError) as built:
            NSC([*base.rows, (base.last_index + 1, int(layer_type), kernel, pred1, pred2)])
        with pytest.raises(NSCError) as appended:
            base.append(*row)
        assert str(appended.value) == str(built.value)


def test_append_after_a_terminal_row_is_refused_as_construction_does() -> None:
    ended = NSC.parse("1,1,3,0,0;2,7,0,0,0")
    with pytest.raises(NSCError, match=r"^NSC layer 3 \(3,1,3,1,0\): a layer follows the terminal"):
        ended.append(LayerType.CONVOLUTION, 3, 1, 0)
    grown = NSC.parse("2,1,3,0,0").append(LayerType.CONCAT, 0, 2, 0)
    assert grown == NSC.parse("2,1,3,0,0;3,6,0,2,0") and str(grown) == "2,1,3,0,0;3,6,0,2,0"
