"""What a ``table-v1`` query and an env step with it cost, against the proxy estimator.

Run: ``python -m benchmarks.table_query [--table PATH] [--queries 20000] [--smoke]``

``table-v1`` answers from a benchmark table (by default the shipped NSC-Bench v3, or a
made-up table of the same space and size when it is not installed); ``proxy-v1`` -- the
cheapest estimator before it, an analytic walk over the network -- is the baseline.
Part 1 times ``evaluate`` of the same networks with both, alternately (so machine load
hits both alike), and prints the medians and their ratio; the target is a median query
of at most 50 us. Part 2 times ``NASEnv.step`` (one seeded random episode after another,
every step a cache miss: a fresh in-memory cache per episode) with each estimator; the
target is a median step of at most 0.5 ms with ``table-v1``. ``--smoke`` is a tiny run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import nasframe
from nasframe.bench.table import BenchTable
from nasframe.bench.testing import write_table
from nasframe.env import NASEnv


def _table(path: str | None, scratch: Path, smoke: bool) -> Path:
    if path:
        return Path(path)
    if not smoke and BenchTable.shipped().exists():
        return BenchTable.shipped()
    return write_table(scratch / "table", depth=2 if smoke else 3, epochs=6)


def main() -> None:
    """Time both parts and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="a table folder (default: the shipped one)")
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    args = parser.parse_args()
    queries = 300 if args.smoke else args.queries
    manager = nasframe.get_plugin_manager()
    registries = manager.registries()
    with tempfile.TemporaryDirectory() as scratch:
        path = _table(args.table, Path(scratch), args.smoke)
        table = registries["estimator"].create("table", table=str(path), seed="random")
        proxy = registries["estimator"].create("proxy")
        build = table.bench.build
        component = build["dataset_component"]
        dataset = registries["dataset"].create(component["name"], **component["settings"])
        networks = [
            nasframe.NSC.parse(rows[0].nsc) if rows[0].nsc else nasframe.NSC()
            for rows in table.bench.by_hash.values()
        ]
        rng = np.random.default_rng(args.seed)
        picks = [networks[int(i)] for i in rng.integers(len(networks), size=queries)]
        times: dict[str, list[float]] = {"table": [], "proxy": []}
        for i, nsc in enumerate(picks):
            # as the env hands a network over: its canonical hash (the cache key) is known
            assert nsc.canonical_hash
            for name, estimator in (("table", table), ("proxy", proxy)):
                start = time.perf_counter()
                estimator.evaluate(nsc, dataset, seed=i)
                times[name].append(time.perf_counter() - start)
        steps = _steps({"table": table, "proxy": proxy}, dataset, manager, path, queries)
    us = 1e6
    query_t, query_p = statistics.median(times["table"]), statistics.median(times["proxy"])
    step_t, step_p = statistics.median(steps["table"]), statistics.median(steps["proxy"])
    print(f"table_query benchmark: {len(networks)} networks of {path}, {queries} queries")
    print(f"  median query, table-v1:  {query_t * us:8.1f} us  (target <= 50 us)")
    print(f"  median query, proxy-v1:  {query_p * us:8.1f} us")
    print(f"  median env step (cache miss), table-v1: {step_t * us:8.1f} us  (target <= 500 us)")
    print(f"  median env step (cache miss), proxy-v1: {step_p * us:8.1f} us")
    print(
        f"  ratio proxy / table: query {query_p / query_t:5.2f}x, env step {step_p / step_t:5.2f}x"
    )


def _steps(
    estimators, dataset, manager, path: Path, count: int, before_episode=None
) -> dict[str, list[float]]:
    """Per-step seconds of cache-missing env steps, the estimators stepped alternately.

    ``before_episode`` is called before each episode (surrogate_query empties the
    surrogate's own cache there, so its steps miss it too).
    """
    registries = manager.registries()
    build = BenchTable.load(path).build
    space = registries["search_space"].create(build["space"])
    encoder = registries["state_encoder"].create("onehot", space)
    rng = np.random.default_rng(0)
    out: dict[str, list[float]] = {name: [] for name in estimators}
    while len(out["table"]) < count:
        envs = {
            name: NASEnv(
                space,
                encoder,
                estimator,
                dataset,
                registries["database"].create("memory"),
                max_steps=int(build["depth"]),
                seed=0,
            )
            for name, estimator in estimators.items()
        }
        if before_episode is not None:
            before_episode()
        for env in envs.values():
            env.reset(seed=0)
        done = False
        while not done:
            action = int(rng.integers(space.action_space.n))
            for name, env in envs.items():
                start = time.perf_counter()
                _, _, terminated, truncated, _ = env.step(action)
                elapsed = time.perf_counter() - start
                if not env.last_cache_hit:
                    out[name].append(elapsed)
                done = terminated or truncated
    return out


if __name__ == "__main__":
    main()
