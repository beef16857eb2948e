"""Every network of a search space up to a depth, each graph once."""

from __future__ import annotations

from collections import deque

from nasframe.contracts import SearchSpace, SearchState
from nasframe.errors import ConfigError
from nasframe.nsc import NSC

__all__ = ["enumerate_networks", "network_paths"]


def enumerate_networks(space: SearchSpace, depth: int) -> list[NSC]:
    """The distinct networks ``space`` can build with at most ``depth`` layers.

    A breadth-first walk over the space's own actions from its start state: whatever
    the space's action mode (chained, absolute, pointer), a network is in the list
    exactly when some episode of that space can build it. Networks are deduplicated by
    canonical graph hash (renumbered layers and swapped merge operands are one network)
    and listed by depth, then in the order found: the empty network (head only) first.

    Raises:
        ConfigError: ``depth`` is below 0 or above the space's ``max_depth``.
    """
    _check_depth(space, depth)
    start = space.reset()
    found: dict[str, NSC] = {start.nsc.without_terminal().canonical_hash: start.nsc}
    seen_states = {_state_key(start)}
    frontier: deque[SearchState] = deque([start])
    while frontier:
        state = frontier.popleft()
        for info in space.actions():
            if info.kind == "terminal":
                continue
            transition = space.apply(state, info.id)
            if transition.out_of_bounds:
                continue
            nxt = transition.state
            network = nxt.nsc.without_terminal()
            if len(network) > depth:
                continue
            key = _state_key(nxt)
            if key in seen_states:
                continue
            seen_states.add(key)
            found.setdefault(network.canonical_hash, network)
            frontier.append(nxt)
    return sorted(found.values(), key=len)


def network_paths(space: SearchSpace, depth: int) -> dict[str, list[int]]:
    """Per network of :func:`enumerate_networks` (by canonical hash), actions that build it.

    The same breadth-first walk: each network's path is the first found, one of the
    shortest; it ends with the space's terminal action when the network is shallower
    than ``depth`` (so an episode played from ``reset`` ends with that network), and
    without it at ``depth`` layers, where an episode of ``max_steps = depth`` ends.
    The empty network's path is the terminal action alone (``[]`` in a space without
    one).

    Raises:
        ConfigError: as :func:`enumerate_networks`.
    """
    _check_depth(space, depth)
    terminal = [info.id for info in space.actions() if info.kind == "terminal"][:1]
    start = space.reset()
    paths: dict[str, list[int]] = {start.nsc.without_terminal().canonical_hash: []}
    seen_states = {_state_key(start)}
    frontier: deque[tuple[SearchState, list[int]]] = deque([(start, [])])
    while frontier:
        state, path = frontier.popleft()
        for info in space.actions():
            if info.kind == "terminal":
                continue
            transition = space.apply(state, info.id)
            if transition.out_of_bounds:
                continue
            nxt = transition.state
            network = nxt.nsc.without_terminal()
            if len(network) > depth:
                continue
            key = _state_key(nxt)
            if key in seen_states:
                continue
            seen_states.add(key)
            paths.setdefault(network.canonical_hash, [*path, info.id])
            frontier.append((nxt, [*path, info.id]))
    return {
        arch_hash: path + (terminal if len(path) < depth else [])
        for arch_hash, path in paths.items()
    }


def _check_depth(space: SearchSpace, depth: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ConfigError(f"depth={depth!r} is not valid; need an integer >= 0")
    if depth > space.max_depth:
        raise ConfigError(
            f"depth={depth} is deeper than the search space allows (max_depth {space.max_depth})"
        )


def _state_key(state: SearchState) -> tuple[str, tuple[int, int], int]:
    # Pointer moves change the state but not the network; the NSC's own numbering is
    # kept in the key because later actions refer to layers by index.
    return (str(state.nsc), state.pointers, len(state.nsc))
