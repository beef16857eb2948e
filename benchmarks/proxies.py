"""Zero-cost proxies against NSC-Bench: rank correlations and cost per network.

Run: ``python -m benchmarks.proxies TABLE [--seed 0] [--limit N] [--cost-sample 4]
[--bootstrap 1000] [--scores FILE] [--from-scores FILE [--partial]] [--cost-only]
[--smoke]``

``TABLE`` is an NSC-Bench table (a folder with ``table.csv.gz`` or ``rows.csv`` and
``build.json``). The networks are those with an ``ok`` row of ``--seed`` (``--limit N``:
a seeded random sample of N of them); each proxy of
``zerocost-v1`` (and the ``params``/``flops`` baselines, and a vote: the sum of the ranks
of synflow, jacob_cov and snip) scores the network the table's ``keras-v1`` settings
build, for the table's dataset. Printed per proxy: Spearman's rho and Kendall's tau
against the final validation accuracy of the table, each with a bootstrap 95% interval
(networks resampled with replacement); Spearman over the networks that learned (at or
above :data:`CHANCE`) and Spearman with ``params`` (how much of the proxy is size); and
whether any proxy beats ``params``.

The networks are scored in a seeded random order. ``--scores FILE`` appends each
network's scores to ``FILE`` as soon as they are known and skips the networks already in
it, so an interrupted run resumes and a partial file is a random sample;
``--from-scores FILE`` reports from such a file, plain or gzipped, without scoring (no
TensorFlow; with ``--partial`` over the networks it holds). The scores of every network
of both shipped tables are in ``benchmarks/data/nsc-bench-v{1,2}-proxy-scores.csv.gz``.

Cost, side by side in one process on ``--cost-sample`` networks of the table (a seeded
random sample; 0: no timing): the seconds of one ``zerocost-v1`` evaluation per proxy
(model build included), of a 1-epoch ``keras-v1`` training and of the table's full
training (the same settings and epochs), and the ratio line ``proxy / full training``
(target: at most 5%). ``--cost-only`` skips the correlations.

For the correlations each network's model is built twice (float64 for synflow, float32
for the rest) and every proxy function runs on it; the per-proxy cost is measured
separately through the estimator. ``--smoke``: 6 networks, 1 cost network, 50
bootstrap resamples.
"""

from __future__ import annotations

import argparse
import gzip
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import nasframe
from nasframe import NSC
from nasframe.bench import BenchTable

#: Its smoke needs an NSC-Bench table: this test builds one and runs the smoke.
SMOKE_TESTED_BY = "tests/test_benchmarks_issue14.py"


PROXIES = ("synflow", "naswot", "grad_norm", "snip", "jacob_cov")
BASELINES = ("params", "flops")
VOTE = ("synflow", "jacob_cov", "snip")

#: Validation accuracy below which a network counts as collapsed (10 classes: chance 0.10).
CHANCE = 0.15


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


COLUMNS = ("nsc", "arch_hash", "accuracy", *PROXIES, *BASELINES)


def _score_one(network: Any, dataset: Any, nsc: NSC, minibatch: Any, seed: int) -> list[float]:
    """Every proxy and baseline of one network, in the order of ``PROXIES + BASELINES``."""
    import keras
    from nasframe_zerocost.estimator import seed_keras
    from nasframe_zerocost.proxies import PROXY_FUNCTIONS

    images, labels = minibatch
    out: dict[str, float] = {}
    for policy in ("float64", "float32"):
        seed_keras(seed)
        keras.config.set_dtype_policy(policy)
        try:
            model = network.build_network(nsc, dataset)
            if policy == "float64":
                out["synflow"] = PROXY_FUNCTIONS["synflow"](model)
            else:
                for name in PROXIES[1:]:
                    out[name] = PROXY_FUNCTIONS[name](model, images, labels)
                out["params"] = float(model.count_params())
                out["flops"] = float(network.network_flops(model))
        finally:
            keras.config.set_dtype_policy("float32")
    return [float(out[name]) for name in (*PROXIES, *BASELINES)]


def _scores(
    network: Any, dataset: Any, rows: list[Any], args: argparse.Namespace
) -> dict[str, list[float]]:
    """The scores of every row, in a seeded random order; with ``--scores`` each network's
    line is appended as soon as it is scored, and networks already in the file are not
    scored again (an interrupted run resumes; a partial file is a random sample)."""
    import csv

    from nasframe_zerocost import ZeroCostEstimator
    from nasframe_zerocost.estimator import _freeze_once

    # as the estimator does: a full garbage collection skips TensorFlow's objects
    _freeze_once()
    batcher = ZeroCostEstimator("naswot", network=network, batch_size=args.batch_size)
    minibatch = batcher.minibatch(dataset, args.seed)
    known = _read_scores(args.scores, rows, partial=True) if args.scores else {}
    path = Path(args.scores) if args.scores else None
    if path is not None and not path.exists():
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(COLUMNS)
    order = np.random.default_rng(args.seed).permutation(len(rows))
    todo = [rows[int(i)] for i in order if rows[int(i)].arch_hash not in known]
    if known:
        print(f"  {len(known)} networks' scores read from {path}; scoring {len(todo)} more")
    for number, row in enumerate(todo, start=1):
        values = _score_one(network, dataset, NSC.parse(row.nsc), minibatch, args.seed)
        known[row.arch_hash] = values
        if path is not None:
            with path.open("a", newline="", encoding="utf-8") as handle:
                fields = [row.nsc, row.arch_hash, repr(row.accuracy()), *map(repr, values)]
                csv.writer(handle).writerow(fields)
        if number % 50 == 0:
            print(f"  ... scored {number}/{len(todo)} networks", flush=True)
    names = (*PROXIES, *BASELINES)
    return {name: [known[row.arch_hash][k] for row in rows] for k, name in enumerate(names)}


def _read_scores(path: str, rows: list[Any], *, partial: bool = False) -> dict[str, list[float]]:
    """The scores a ``--scores`` file holds of ``rows``, by network hash (a missing file:
    none); unless ``partial``, every row must be there."""
    import csv

    file = Path(path)
    if partial and not file.exists():
        return {}
    names = (*PROXIES, *BASELINES)
    wanted = {row.arch_hash for row in rows}
    try:
        # the shipped score files (benchmarks/data/*-proxy-scores.csv.gz) are gzipped
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rt", newline="", encoding="utf-8") as handle:
            lines = [line for line in csv.DictReader(handle) if line["arch_hash"] in wanted]
        known = {line["arch_hash"]: [float(line[name]) for name in names] for line in lines}
    except (OSError, KeyError, TypeError, ValueError, csv.Error) as exc:
        sys.exit(f"error: scores file {path}: unreadable or a column is missing ({exc!r})")
    missing = [row.nsc or "(head only)" for row in rows if row.arch_hash not in known]
    if missing and not partial:
        sys.exit(f"error: {path}: no scores of {len(missing)} networks, e.g. {missing[0]}")
    return known


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr  # type: ignore[import-untyped]  # scikit-learn needs scipy

    return float(spearmanr(a, b).statistic) if len(a) > 2 else math.nan


def _ranks(values: list[float]) -> np.ndarray:
    from scipy.stats import rankdata

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
    for name in ("synflow", "naswot"):  # untimed warm-up: TensorFlow's first calls, both dtypes
        ZeroCostEstimator(name, network=network).evaluate(nets[0], dataset, seed=seed)
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


def _correlation_report(
    args: argparse.Namespace,
    rows: list[Any],
    nets: list[NSC],
    accuracy: np.ndarray,
    network: Any,
    dataset: Any,
) -> None:
    """Score every network, print each proxy's correlations and whether one beats params."""
    if args.from_scores:
        known = _read_scores(args.from_scores, rows, partial=args.partial)
        if len(known) < 3:
            sys.exit(f"error: {args.from_scores}: scores of {len(known)} networks; need 3")
        keep = [i for i, row in enumerate(rows) if row.arch_hash in known]
        rows, accuracy = [rows[i] for i in keep], accuracy[keep]
        names = (*PROXIES, *BASELINES)
        scores = {n: [known[row.arch_hash][k] for row in rows] for k, n in enumerate(names)}
        print(f"  scores of {len(rows)} networks read from {args.from_scores}")
    else:
        start = time.perf_counter()
        scores = _scores(network, dataset, rows, args)
        print(f"  scored in {time.perf_counter() - start:.0f} s")
    ranked = {name: _ranks(values) for name, values in scores.items()}
    ranked["vote(synflow,jacob_cov,snip)"] = sum(ranked[name] for name in VOTE)  # type: ignore[assignment]
    # what a proxy rewards: its ranking among the networks that learned (above chance:
    # the collapsed ones are a block of near-equal accuracies), and how much of it is size
    learned = accuracy >= CHANCE
    print(
        f"  {'proxy':<30}{'spearman':>9} {'95% CI':>17}{'kendall':>9} {'95% CI':>17}"
        f"  {'rho learned':>11}  {'rho params':>10}   median score"
    )
    results = {}
    for name, ranks in ranked.items():
        r = _correlations(ranks, accuracy, args.bootstrap, args.seed)
        results[name] = r
        raw = scores.get(name)
        median = f"{statistics.median(raw):.4g}" if raw else "-"
        rho_learned = _spearman(ranks[learned], accuracy[learned])
        rho_params = _spearman(ranks, ranked["params"])
        print(
            f"  {name:<30}{r['rho']:9.3f} [{r['rho_ci'][0]:6.3f}, {r['rho_ci'][1]:6.3f}]"
            f"{r['tau']:9.3f} [{r['tau_ci'][0]:6.3f}, {r['tau_ci'][1]:6.3f}]"
            f"  {rho_learned:11.3f}  {rho_params:10.3f}   {median}"
        )
    print(
        f"  rho learned: Spearman over the {int(learned.sum())} networks at or above "
        f"{CHANCE:g} validation accuracy (the others collapsed near chance); rho params: "
        "Spearman with params (how much of the proxy is network size)"
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


def main(argv: list[str] | None = None) -> None:
    """Score the table's networks, print the correlations, the costs and the ratio line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="an NSC-Bench table folder or file")
    parser.add_argument("--seed", type=int, default=0, help="the table seed whose rows are used")
    parser.add_argument(
        "--limit", type=int, default=0, help="a seeded random sample of this many networks (0: all)"
    )
    parser.add_argument(
        "--cost-sample", type=int, default=4, help="networks timed side by side (0: no timing)"
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--batch-size", type=int, default=64, help="the proxies' minibatch")
    parser.add_argument(
        "--scores", help="append every network's scores to this CSV file (resumes from it)"
    )
    parser.add_argument(
        "--from-scores", help="read the scores from a --scores file instead of computing them"
    )
    parser.add_argument(
        "--partial", action="store_true", help="with --from-scores: the networks the file has"
    )
    parser.add_argument(
        "--cost-only", action="store_true", help="only the cost part (no scores, no correlations)"
    )
    parser.add_argument("--smoke", action="store_true", help="6 networks, 1 cost network")
    args = parser.parse_args(argv)
    if args.smoke:
        args.limit, args.cost_sample, args.bootstrap = 6, 1, 50
    if args.scores and args.scores.endswith(".gz"):
        sys.exit(f"error: --scores {args.scores}: appends plain CSV; gzip the file when done")
    if args.cost_only and not args.cost_sample > 0:
        sys.exit("error: --cost-only needs --cost-sample >= 1")
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
    if not args.cost_only:
        _correlation_report(args, rows, nets, accuracy, network, dataset)
    if args.cost_sample > 0:
        _cost_report(args, nets, network, dataset, table.max_epochs, manager)


def _cost_report(
    args: argparse.Namespace, nets: list[NSC], network: Any, dataset: Any, epochs: int, manager: Any
) -> None:
    """Time every proxy, a 1-epoch and a full training side by side; print the ratio line."""
    # a seeded random sample: the table lists its networks by depth, shallowest first
    pick = np.random.default_rng(args.seed).permutation(len(nets))[: args.cost_sample]
    cost_nets = [nets[int(i)] for i in pick]
    costs = _costs(network, dataset, cost_nets, args.seed, epochs, manager)
    full_label = f"full ({epochs} epochs)"
    print(f"  median seconds per network over {len(cost_nets)} network(s), side by side:")
    full_seconds, epoch_seconds = costs[full_label], costs["1 epoch"]
    for name, value in costs.items():
        print(
            f"    {name:<20}{value:8.2f} s  {value / full_seconds:7.1%} of a full training, "
            f"{value / epoch_seconds:7.1%} of 1 epoch"
        )
    worst = max(costs[name] for name in (*PROXIES, *BASELINES))
    print(
        f"  ratio proxy / full training: {worst / full_seconds:.1%} (slowest proxy), "
        f"proxy / 1 epoch: {worst / epoch_seconds:.1%}; target <= 5% of a full training"
    )


if __name__ == "__main__":
    main()
