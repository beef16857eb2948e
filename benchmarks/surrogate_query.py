"""What a ``surrogate-v1`` query and an env step with it cost, against ``table-v1`` (issue 30).

Run: ``python -m benchmarks.surrogate_query [--surrogate FOLDER] [--smoke]``

Fits (or reads, ``--surrogate``) a surrogate of NSC-Bench v3 (``bench fit``'s models, 30 %
of the networks) and times, alternately so that machine load hits both alike:

* the **first query** of each of v3's networks (the surrogate's cache is emptied before
  every query: the network is encoded and three models run) with ``surrogate-v1``
  against the same query with ``table-v1`` (a dictionary lookup), for each model family;
* a **cache-missing env step** (seeded random episodes, a fresh in-memory database per
  episode and the surrogate's cache emptied) with each estimator.

Target: a query well under a millisecond. It prints the medians and the ratios
surrogate / table. ``--smoke`` is a tiny run on a made-up table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nasframe
from benchmarks.table_query import _steps
from nasframe.bench.surrogate import fit_surrogate
from nasframe.bench.table import BenchTable
from nasframe.bench.testing import write_table


def main() -> None:
    """Time both parts for every family and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="hgb,lightgbm")
    parser.add_argument("--steps", type=int, default=3000, help="env steps per estimator")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    args = parser.parse_args()
    manager = nasframe.get_plugin_manager()
    registries = manager.registries()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        path = write_table(root / "t", depth=2, epochs=6) if args.smoke else BenchTable.shipped()
        bench = BenchTable.load(path)
        table = registries["estimator"].create("table", table=str(path), seed="mean")
        component = bench.build["dataset_component"]
        dataset = registries["dataset"].create(component["name"], **component["settings"])
        networks = [
            nasframe.NSC.parse(rows[0].nsc) if rows[0].nsc else nasframe.NSC()
            for rows in bench.by_hash.values()
        ]
        steps = 200 if args.smoke else args.steps
        print(f"surrogate_query benchmark: {len(networks)} networks of {path}")
        for family in [name.strip() for name in args.families.split(",") if name.strip()]:
            fitted = fit_surrogate(bench, family=family, train_fraction=0.3, seed=0)
            folder = fitted.save(root / family)
            surrogate = registries["estimator"].create("surrogate", file=str(folder))
            surrogate.check_setup(registries["search_space"].create(bench.build["space"]), dataset)
            times: dict[str, list[float]] = {"surrogate": [], "table": []}
            for i, nsc in enumerate(networks):
                assert nsc.canonical_hash  # known when the env hands a network over
                surrogate.forget()
                for name, estimator in (("surrogate", surrogate), ("table", table)):
                    start = time.perf_counter()
                    estimator.evaluate(nsc, dataset, seed=i)
                    times[name].append(time.perf_counter() - start)
            stepped = _steps(
                {"surrogate": surrogate, "table": table},
                dataset,
                manager,
                Path(path),
                steps,
                before_episode=surrogate.forget,
            )
            us = 1e6
            query_s, query_t = (statistics.median(times[k]) for k in ("surrogate", "table"))
            step_s, step_t = (statistics.median(stepped[k]) for k in ("surrogate", "table"))
            print(
                f"  {family}: median first query, surrogate-v1 {query_s * us:8.1f} us "
                f"(target well under 1000 us), table-v1 {query_t * us:6.1f} us"
            )
            print(
                f"  {family}: median env step (cache miss), surrogate-v1 {step_s * us:8.1f} us, "
                f"table-v1 {step_t * us:6.1f} us"
            )
            print(
                f"ratio surrogate / table ({family}): query {query_s / query_t:6.1f}x, "
                f"env step {step_s / step_t:5.2f}x"
            )


if __name__ == "__main__":
    main()
