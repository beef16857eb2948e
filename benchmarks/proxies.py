"""Zero-cost proxies against NSC-Bench: rank correlations and cost per network.

Run: ``python -m benchmarks.proxies TABLE [--seed 0] [--limit N] [--cost-sample 4]
[--bootstrap 1000] [--smoke]``

``TABLE`` is an NSC-Bench table (a folder with ``table.csv.gz`` or ``rows.csv`` and
``build.json``). The networks are those with an ``ok`` row of ``--seed`` (``--limit N``:
a seeded random sample of N of them); each proxy of
``zerocost-v1`` (and the ``params``/``flops`` baselines, and a vote: the sum of the ranks
of synflow, jacob_cov and snip) scores the network the table's ``keras-v1`` settings
build, for the table's dataset. Printed per proxy: Spearman's rho and Kendall's tau
against the final validation accuracy of the table, each with a bootstrap 95% interval
(networks resampled with replacement), and whether any proxy beats ``params``.

Cost, side by side in one process on ``--cost-sample`` networks of the table: the seconds
of one ``zerocost-v1`` evaluation per proxy (model build included), of a 1-epoch
``keras-v1`` training and of the table's full training (the same settings and epochs),
and the ratio line ``proxy / full training`` (target: at most 5%).

For the correlations each network's model is built twice (float64 for synflow, float32
for the rest) and every proxy function runs on it; the per-proxy cost is measured
separately through the estimator. ``--smoke``: 6 networks, 1 cost network, 50
bootstrap resamples.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from typing import Any

import numpy as np

import nasframe
from nasframe import NSC
from nasframe.bench import BenchTable

PROXIES = ("synflow", "naswot", "grad_norm", "snip", "jacob_cov")
BASELINES = ("params", "flops")
VOTE = ("synflow", "jacob_cov", "snip")


def _components(table: BenchTable, manager: Any) -> tuple[Any, Any]:
    build = table.build
    try:
        dataset_spec, estimator_spec = build["dataset_component"], build["estimator_component"]
    except KeyError as exc:
        sys.exit(f"error: {table.source}: build.json has no {exc.args[0]!r}; rebuild the table")
    registries = manager.registries()
    dataset = registries["dataset"].create(dataset_spec["name"], **dataset_spec["settings"])
    network = registries["estimator"].create(estimator_spec["name"], **estimator_spec["settings"])
    return dataset, network


def _scores(
    network: Any, dataset: Any, nets: list[NSC], batch_size: int, seed: int
) -> dict[str, list[float]]:
    import keras
    from nasframe_zerocost import ZeroCostEstimator
    from nasframe_zerocost.proxies import PROXY_FUNCTIONS

    batcher = ZeroCostEstimator("naswot", network=network, batch_size=batch_size)
    images, labels = batcher.minibatch(dataset, seed)
    out: dict[str, list[float]] = {name: [] for name in (*PROXIES, *BASELINES)}
    for number, nsc in enumerate(nets, start=1):
        for policy in ("float64", "float32"):
            keras.utils.set_random_seed(seed)
            keras.config.set_dtype_policy(policy)
            model = network.build_network(nsc, dataset)
            if policy == "float64":
                out["synflow"].append(PROXY_FUNCTIONS["synflow"](model))
            else:
                for name in PROXIES[1:]:
                    out[name].append(PROXY_FUNCTIONS[name](model, images, labels))
                out["params"].append(float(model.count_params()))
                out["flops"].append(float(network.network_flops(model)))
            keras.config.set_dtype_policy("float32")
            keras.backend.clear_session()
        if number % 50 == 0:
            print(f"  ... scored {number}/{len(nets)} networks", flush=True)
    return out


def _ranks(values: list[float]) -> np.ndarray:
    from scipy.stats import rankdata  # type: ignore[import-untyped]  # scikit-learn needs scipy

    clean = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    return rankdata(clean)


def _correlations(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> dict[str, Any]:
    from scipy.stats import kendalltau, spearmanr

    def both(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        return float(spearmanr(a, b).statistic), float(kendalltau(a, b).statistic)

    rho, tau = both(x, y)
    rng = np.random.default_rng(seed)
    boot_rho, boot_tau = [], []
    for _ in range(resamples):
        index = rng.integers(0, len(x), size=len(x))
        r, t = both(x[index], y[index])
        if not (math.isnan(r) or math.isnan(t)):
            boot_rho.append(r)
            boot_tau.append(t)
    lo_hi = lambda v: tuple(np.percentile(v, [2.5, 97.5])) if v else (math.nan, math.nan)  # noqa: E731
    return {"rho": rho, "rho_ci": lo_hi(boot_rho), "tau": tau, "tau_ci": lo_hi(boot_tau)}


def _costs(
    network: Any, dataset: Any, nets: list[NSC], seed: int, epochs: int, manager: Any
) -> dict[str, float]:
    from nasframe_zerocost import ZeroCostEstimator

    settings = dict(network.settings.__dict__)
    registry = manager.registry("estimator")
    one_epoch = registry.create("keras-v1", **{**settings, "epochs": 1})
    full = registry.create("keras-v1", **{**settings, "epochs": epochs})
    seconds: dict[str, list[float]] = {}
    for nsc in nets:
        # alternate the kinds per network so machine load hits all alike
        for name in (*PROXIES, *BASELINES):
            estimator = ZeroCostEstimator(name, network=network)
            start = time.perf_counter()
            estimator.evaluate(nsc, dataset, seed=seed)  # a NaN score costs the same
            seconds.setdefault(name, []).append(time.perf_counter() - start)
        for label, estimator in (("1 epoch", one_epoch), (f"full ({epochs} epochs)", full)):
            start = time.perf_counter()
            estimator.evaluate(nsc, dataset, seed=seed)
            seconds.setdefault(label, []).append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def main(argv: list[str] | None = None) -> None:
    """Score the table's networks, print the correlations, the costs and the ratio line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="an NSC-Bench table folder or file")
    parser.add_argument("--seed", type=int, default=0, help="the table seed whose rows are used")
    parser.add_argument(
        "--limit", type=int, default=0, help="a seeded random sample of this many networks (0: all)"
    )
    parser.add_argument("--cost-sample", type=int, default=4, help="networks timed side by side")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--batch-size", type=int, default=64, help="the proxies' minibatch")
    parser.add_argument("--smoke", action="store_true", help="6 networks, 1 cost network")
    args = parser.parse_args(argv)
    if args.smoke:
        args.limit, args.cost_sample, args.bootstrap = 6, 1, 50
    try:
        table = BenchTable.load(args.table)
    except nasframe.NasframeError as exc:
        sys.exit(f"error: {exc}")
    rows = [row for row in table if row.seed == args.seed and row.ok]
    if args.limit and args.limit < len(rows):
        pick = np.random.default_rng(args.seed).choice(len(rows), size=args.limit, replace=False)
        rows = [rows[i] for i in sorted(pick)]
    if len(rows) < 3:
        sys.exit(f"error: {table.source}: only {len(rows)} ok rows of seed {args.seed}; need 3")
    manager = nasframe.get_plugin_manager()
    dataset, network = _components(table, manager)
    nets = [NSC.parse(row.nsc) for row in rows]
    accuracy = np.array([row.accuracy() for row in rows])
    print(
        f"proxies benchmark: {len(rows)} networks of {table.source} (seed {args.seed}, "
        f"final validation accuracy after {table.max_epochs} epochs), {args.bootstrap} resamples"
    )
    start = time.perf_counter()
    scores = _scores(network, dataset, nets, args.batch_size, args.seed)
    print(f"  scored in {time.perf_counter() - start:.0f} s")
    ranked = {name: _ranks(values) for name, values in scores.items()}
    ranked["vote(synflow,jacob_cov,snip)"] = sum(ranked[name] for name in VOTE)  # type: ignore[assignment]
    print(
        f"  {'proxy':<30}{'spearman':>9} {'95% CI':>17}{'kendall':>9} {'95% CI':>17}   median score"
    )
    results = {}
    for name, ranks in ranked.items():
        r = _correlations(ranks, accuracy, args.bootstrap, args.seed)
        results[name] = r
        raw = scores.get(name)
        median = f"{statistics.median(raw):.4g}" if raw else "-"
        print(
            f"  {name:<30}{r['rho']:9.3f} [{r['rho_ci'][0]:6.3f}, {r['rho_ci'][1]:6.3f}]"
            f"{r['tau']:9.3f} [{r['tau_ci'][0]:6.3f}, {r['tau_ci'][1]:6.3f}]   {median}"
        )
    # strength of the ranking, either direction: a proxy that ranks inversely is as
    # informative to a search that knows it (the sign is printed)
    best = max((n for n in results if n not in BASELINES), key=lambda n: abs(results[n]["rho"]))
    params = results["params"]
    low, high = results[best]["rho_ci"]
    weakest = min(abs(low), abs(high)) if low * high > 0 else 0.0
    beats = weakest > abs(params["rho"])
    print(
        f"  strongest proxy {best}: rho {results[best]['rho']:.3f} vs params {params['rho']:.3f}; "
        f"{'beats' if beats else 'does not clearly beat'} params (|rho| CI bound vs |params rho|)"
    )
    cost_nets = nets[: max(args.cost_sample, 1)]
    costs = _costs(network, dataset, cost_nets, args.seed, table.max_epochs, manager)
    full_label = f"full ({table.max_epochs} epochs)"
    print(f"  median seconds per network over {len(cost_nets)} network(s), side by side:")
    for name, value in costs.items():
        print(f"    {name:<20}{value:8.2f} s")
    worst = max(costs[name] for name in (*PROXIES, *BASELINES))
    print(
        f"  ratio proxy / full training: {worst / costs[full_label]:.1%} (slowest proxy), "
        f"proxy / 1 epoch: {worst / costs['1 epoch']:.1%}; target <= 5% of a full training"
    )


if __name__ == "__main__":
    main()
