"""How many steps of a random search fail or leave the range, with and without action masks.

Run: ``python -m benchmarks.action_masks [--steps 1000] [--seed 0] [--space pointer] [--smoke]``

One seeded random run of ``--steps`` steps in the multi-branch (``pointer``) space, with
``proxy-v1`` on the NSC-Bench input (20x20x1, 10 classes: it answers the validity rule
exactly as ``keras-v1`` would, in microseconds), twice in one process: once drawing every
action uniformly (NASGym's random search), once drawing uniformly among the actions
``env.action_masks()`` allows. Printed: the share of steps that ended an episode as
``out_of_range`` (a pointer or predecessor that does not exist) or ``failed`` (the network
cannot be built), per run, and the ratio of wasted steps. ``--smoke`` runs 40 steps.
"""

from __future__ import annotations

import argparse

import numpy as np

from nasframe import ArrayDataset
from nasframe.env import make_env


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


def main() -> None:
    """Run both searches and print the shares and the ratio line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default="pointer")
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


if __name__ == "__main__":
    main()
