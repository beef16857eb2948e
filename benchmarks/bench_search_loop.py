"""What the search machinery costs per step: ``run_search`` against a bare agent loop.

``nasframe search`` adds, around every environment step, a wrapper that appends a row to
``steps.csv``, updates the counters and the progress display, and a callback that checks
the budget, the stop flag and the checkpoint schedule. This measures that price, side by
side on the same steps:

* **ours**: ``run_search`` with the random agent (quiet, no plots), which also builds
  the environment and agent and writes ``summary.json`` at the end;
* **baseline**: ``make_env`` with the same components and a plain loop drawing
  uniform random actions -- the least any search loop costs.

Both use the cheap ``proxy`` estimator and the in-memory database on a small in-memory
dataset, so the figures compare the loops, not network training (a real Keras training
takes seconds per step and dwarfs both). The order alternates so that machine load hits
both alike.

Run: ``python benchmarks/bench_search_loop.py [--steps N] [--repeat R]`` (``--smoke``: 20
steps, 2 repeats, seconds; the test suite runs it).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

import nasframe
from nasframe.search import run_search


class TinyData:
    """Registers ``bench-v1``: 64 random 16x16 images of 10 classes."""

    @nasframe.hookimpl
    def nasframe_register_datasets(self, registry):
        def build():
            rng = np.random.default_rng(0)
            x, y = rng.random((64, 16, 16, 1)), rng.integers(0, 10, 64)
            return nasframe.ArrayDataset(
                "bench", {s: (x, y) for s in ("train", "validation", "test")}
            )

        registry.add("bench-v1", build)


COMPONENTS = {"estimator": "proxy", "dataset": "bench", "database": "memory"}


def ours(steps: int, folder: Path) -> float:
    manager = nasframe.get_plugin_manager(plugins=[("bench", TinyData())])
    config = nasframe.load_config(
        None,
        {
            "run": {"steps": steps, "output": folder, "verbosity": 0, "plots": False},
            "env": COMPONENTS,
        },
        plugin_manager=manager,
    )
    start = time.perf_counter()
    run_search(config, plugin_manager=manager, force=True, console=Console(file=io.StringIO()))
    return time.perf_counter() - start


def baseline(steps: int) -> float:
    manager = nasframe.get_plugin_manager(plugins=[("bench", TinyData())])
    start = time.perf_counter()
    env = nasframe.make_env(plugin_manager=manager, seed=0, **COMPONENTS)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            env.reset()
    env.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:  # two repeats: the second replaces the first run (--force) at once
        args.steps, args.repeat = 20, 2
    warm = min(50, args.steps)
    ours_times, base_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ours(warm, Path(tmp) / "warm")  # imports and first-use costs out of the timing
        baseline(warm)
        for i in range(args.repeat):
            if i % 2 == 0:
                ours_times.append(ours(args.steps, Path(tmp) / "run"))
                base_times.append(baseline(args.steps))
            else:
                base_times.append(baseline(args.steps))
                ours_times.append(ours(args.steps, Path(tmp) / "run"))
    ours_us = statistics.median(ours_times) / args.steps * 1e6
    base_us = statistics.median(base_times) / args.steps * 1e6
    print(f"steps per run: {args.steps}, repeats: {args.repeat} (median)")
    print(f"ours     run_search, random agent : {ours_us:8.1f} us/step")
    print(f"baseline make_env + random loop   : {base_us:8.1f} us/step")
    print(f"ratio ours/baseline               : {ours_us / base_us:8.2f}x")
    print(f"overhead per step                 : {ours_us - base_us:8.1f} us")


if __name__ == "__main__":
    main()
