"""How many steps of a random search fail or leave the range, with and without action masks.

Run: ``python -m benchmarks.action_masks [--steps 1000] [--seed 0] [--space pointer]
[--table-steps 5000] [--smoke]``

One seeded random run of ``--steps`` steps in the multi-branch (``pointer``) space, with
``proxy-v1`` on the NSC-Bench input (20x20x1, 10 classes: it answers the validity rule
exactly as ``keras-v1`` would, in microseconds), twice in one process: once drawing every
action uniformly (NASGym's random search), once drawing uniformly among the actions
``env.action_masks()`` allows. Printed: the share of steps that ended an episode as
``out_of_range`` (a pointer or predecessor that does not exist) or ``failed`` (the network
cannot be built), per run, and the ratio of wasted steps. ``--smoke`` runs 40 steps.

Part 2, what the masks cost on table lookups: seeded random steps of a ``NASEnv`` with
``table-v1`` (the shipped NSC-Bench table, or a made-up table of the same space when it
is not installed; ``--smoke``: a small made-up one), its space and depth, timed three
ways in turn on the same actions: without masks (``action_masks`` replaced by a constant
vector: the step minus the mask), with the mask computed anew every step (the memo
cleared: what every step cost before the mask was memoized per state), and as shipped
(memoized). Printed: the median step of each and the ratios to the step without masks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import nasframe
from nasframe import ArrayDataset
from nasframe.bench.table import BenchTable
from nasframe.bench.testing import write_table
from nasframe.env import NASEnv, make_env


def _dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.random((20, 20, 20, 1), dtype=np.float32)
    return ArrayDataset.from_arrays("bench20", images, np.arange(20) % 10)


def run(space: str, steps: int, seed: int, *, masked: bool) -> dict[str, int]:
    """Count the end reasons and statuses of a seeded random run of ``steps`` steps."""
    env = make_env(search_space=space, estimator="proxy", dataset=_dataset(), seed=seed)
    rng = np.random.default_rng(seed)
    counts = {"steps": 0, "out_of_range": 0, "failed": 0, "episodes": 0}
    _, info = env.reset(seed=seed)
    n = int(env.search_space.action_space.n)
    while counts["steps"] < steps:
        if masked:
            allowed = np.flatnonzero(info["action_mask"])
            action = int(rng.choice(allowed))
        else:
            action = int(rng.integers(n))
        _, _, terminated, truncated, info = env.step(action)
        counts["steps"] += 1
        reason = info.get("end_reason", "")
        if reason in ("out_of_range", "failed"):
            counts[reason] += 1
        if terminated or truncated:
            counts["episodes"] += 1
            _, info = env.reset()
    env.close()
    return counts


def _table_env(path: Path) -> NASEnv:
    registries = nasframe.get_plugin_manager().registries()
    estimator = registries["estimator"].create("table", table=str(path), seed="mean")
    build = estimator.bench.build
    space = registries["search_space"].create(build["space"])
    component = build["dataset_component"]
    return NASEnv(
        space,
        registries["state_encoder"].create("onehot", space),
        estimator,
        registries["dataset"].create(component["name"], **component.get("settings", {})),
        registries["database"].create("memory"),
        max_steps=int(build["depth"]),
        seed=0,
    )


def step_times(path: Path, steps: int, seed: int) -> dict[str, float]:
    """Median seconds of an env step on ``table-v1``: no masks, masks anew, masks memoized."""
    envs = {
        "no masks": _table_env(path),
        "mask anew": _table_env(path),
        "memoized": _table_env(path),
    }
    n = int(envs["no masks"].search_space.action_space.n)
    ones = np.ones(n, dtype=np.bool_)
    envs["no masks"].action_masks = lambda: ones.copy()  # type: ignore[method-assign]
    times: dict[str, list[float]] = {name: [] for name in envs}
    for env in envs.values():
        env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = int(rng.integers(n))
        for name, env in envs.items():  # in turn, so machine load hits all alike
            if name == "mask anew":
                env._mask_memo = {}
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            times[name].append(time.perf_counter() - start)
            if terminated or truncated:
                env.reset()
    for env in envs.values():
        env.close()
    return {name: statistics.median(values) for name, values in times.items()}


def _masks_on_table(steps: int, seed: int, smoke: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        shipped = BenchTable.shipped()
        path = shipped if shipped.exists() and not smoke else None
        if path is None:
            path = write_table(Path(scratch) / "table", depth=2 if smoke else 3, epochs=6)
        median = step_times(path, steps, seed)
    us = 1e6
    print(f"  env step on table-v1 ({path.name}), median of {steps} seeded random steps:")
    for name, value in median.items():
        print(f"    {name:<10}{value * us:8.1f} us")
    base = median["no masks"]
    print(
        f"ratio env step with / without masks on table-v1: memoized "
        f"{median['memoized'] / base:.2f}x, mask anew every step {median['mask anew'] / base:.2f}x"
    )


def main() -> None:
    """Run both searches and print the shares and the ratio line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default="pointer")
    parser.add_argument("--table-steps", type=int, default=5000, help="steps of part 2")
    parser.add_argument("--smoke", action="store_true", help="40 steps")
    args = parser.parse_args()
    steps = 40 if args.smoke else args.steps
    print(f"action_masks benchmark: {args.space} space, proxy-v1, {steps} seeded random steps")
    wasted = {}
    for masked in (False, True):
        c = run(args.space, steps, args.seed, masked=masked)
        wasted[masked] = c["out_of_range"] + c["failed"]
        label = "masked  " if masked else "unmasked"
        print(
            f"  {label}: {c['episodes']:4d} episodes, out_of_range {c['out_of_range']:4d} "
            f"({c['out_of_range'] / c['steps']:6.1%}), failed {c['failed']:4d} "
            f"({c['failed'] / c['steps']:6.1%}) of {c['steps']} steps"
        )
    ratio = wasted[False] / max(wasted[True], 1)
    print(
        f"  ratio wasted steps unmasked / masked: {ratio:.1f}x "
        f"({wasted[False]} vs {wasted[True]}; masked count floored at 1)"
    )
    _masks_on_table(steps if args.smoke else args.table_steps, args.seed, args.smoke)


if __name__ == "__main__":
    main()
