"""What one env step costs, and how many trainings the canonical-hash cache saves.

Run: ``python -m benchmarks.env_step [--steps 2000] [--seed 0]`` (``--smoke``: 100 steps)

Part 1 (cost): one seeded random action sequence in the chained space, run three ways in
one process -- through ``NASEnv.step`` with the ``proxy`` estimator and a fresh
``memory`` cache (the misses), then the same sequence again (every step a cache hit),
each env step paired with the bare NSC state update of the same action (``NSC.append``:
no action validation, no evaluation, no observation), timed alternately so that machine
load hits both alike. Medians per step and the ratios are printed.

Part 2 (trainings): over the same 2,000-step seeded run, the trainings the env asked its
estimator for, against what NASGym's policy would have asked: NASGym keyed its cache by
the md5 of the sorted, zero-padded state matrix *including* the terminal row, so a
renumbered or terminated copy of a network was trained again.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import numpy as np

from nasframe import NSC, ArrayDataset, LayerType
from nasframe.env import make_env


def _dataset() -> ArrayDataset:
    # the proxy reads only the input shape and the classes: CIFAR-10's 32x32x3, 10 classes
    rng = np.random.default_rng(0)
    images = rng.random((50, 32, 32, 3), dtype=np.float32)
    return ArrayDataset.from_arrays("bench32", images, np.arange(50) % 10)


def _actions(n: int, seed: int, count: int) -> list[int]:
    return [int(a) for a in np.random.default_rng(seed).integers(0, n, size=count)]


def _layer_table(env) -> dict[int, tuple[LayerType, int]]:
    """Action id -> (layer type, kernel), read from the readable labels."""
    layers = {}
    for info in env.search_space.actions():
        name, rest = info.label.split("_k-")
        layers[info.id] = (LayerType.from_yaml_name(name), int(rest.split("_")[0]))
    return layers


def _run(env, actions: list[int], *, bare: bool) -> dict[str, list]:
    """Step ``env`` through ``actions``, resetting at episode ends.

    Returns per-step seconds of env steps by cache hit/miss, NASGym's cache key of every
    state, and -- with ``bare`` -- the seconds of the bare NSC update of the same action,
    timed right after each env step so that machine load hits both alike.
    """
    layers = _layer_table(env)
    out: dict[str, list] = {"miss": [], "hit": [], "bare": [], "nasgym": []}
    env.reset(seed=0)
    nsc = NSC()
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, info = env.step(action)
        elapsed = time.perf_counter() - start
        out["hit" if info["cache_hit"] else "miss"].append(elapsed)
        out["nasgym"].append(_nasgym_key(env))
        if bare:
            layer_type, kernel = layers[action]
            start = time.perf_counter()
            if layer_type is LayerType.TERMINAL:
                nsc = nsc.append(layer_type, 0, 0, 0)
            else:
                nsc = nsc.append(layer_type, kernel, nsc.last_index, 0)
            out["bare"].append(time.perf_counter() - start)
            assert nsc == env.state.nsc, "the bare loop must build the env's network"
        if terminated or truncated:
            env.reset()
            nsc = NSC()
    return out


def _nasgym_key(env) -> str:
    # NASGym: md5 of the d x 5 state, sorted, zero-padded, terminal row included
    matrix = env.state.nsc.to_matrix(env.search_space.max_depth)
    text = "".join("-".join(str(v) for v in row) + ";" for row in matrix.tolist())
    return hashlib.md5(text.encode()).hexdigest()


def main() -> None:
    """Run both parts and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.steps = 100

    env = make_env(search_space="chained", estimator="proxy", dataset=_dataset(), seed=args.seed)
    actions = _actions(int(env.search_space.action_space.n), args.seed, args.steps)

    first = _run(env, actions, bare=False)
    misses, states = first["miss"], first["nasgym"]
    trainings = env.evaluator.trainings
    second = _run(env, actions, bare=True)  # same sequence: every network is cached now
    assert env.evaluator.trainings == trainings, "the second pass must not train"
    all_hits, bare = second["hit"], second["bare"]

    us = 1e6
    med_miss = statistics.median(misses)
    med_hit = statistics.median(all_hits)
    med_bare = statistics.median(bare)
    print(f"env_step benchmark: chained space, proxy estimator, {args.steps} seeded random steps")
    print(
        f"  median step, cache miss (proxy evaluates): {med_miss * us:9.1f} us  (n={len(misses)})"
    )
    print(
        f"  median step, cache hit:                    {med_hit * us:9.1f} us  (n={len(all_hits)})"
    )
    print(f"  median bare NSC update (same actions):     {med_bare * us:9.1f} us  (n={len(bare)})")
    print(f"  ratio miss / bare: {med_miss / med_bare:6.1f}x")
    print(f"  ratio hit  / bare: {med_hit / med_bare:6.1f}x")

    nasgym = len(set(states))
    print(f"trainings over the same {args.steps}-step run (first pass, empty cache):")
    print(f"  nasframe (canonical hash, terminal ignored): {trainings}")
    print(f"  NASGym policy (md5 of padded state, terminal row included): {nasgym}")
    print(
        f"  ratio NASGym / nasframe: {nasgym / trainings:.2f}x "
        f"({nasgym - trainings} trainings saved, {1 - trainings / nasgym:.1%})"
    )


if __name__ == "__main__":
    main()
