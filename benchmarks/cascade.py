"""The cascade on NSC-Bench: full trainings and simulated seconds to reach the top 1%.

Run: ``python -m benchmarks.cascade [TABLE] [--seed 0] [--low 1] [--fraction 0.1]
[--warmup 5] [--agents random,ppo] [--seeds 20] [--max-steps 20000] [--smoke]``

``TABLE`` is an NSC-Bench table built by ``nasframe bench build`` (default: the one
shipped with nasframe). Every fidelity is ``table-v1`` on that table (training seed
``--seed``, simulated cost): the table's last epoch is the *full training*, ``--low``
epochs the cheap fidelity. Each search runs twice side by side, on the same seed:

* **without the cascade** the estimator is ``table-v1`` at the last epoch: every
  network the search evaluates is trained fully;
* **with** ``cascade-v1`` over ``table-v1`` at ``--low`` epochs, then at the last: the
  full training only for the top ``--fraction`` of what the low fidelity has seen (after
  ``--warmup`` networks).

The searches: ``random-order`` (the table's networks in a seeded random order, each
once: random sampling without replacement), and each agent of ``--agents`` (nasframe
agents such as ``random``, NASGym's uniform random actions, and ``ppo``, SB3's PPO with
the ``[ppo]`` defaults) driving a fresh ``NASEnv`` of the table's space and depth with an
in-memory cache, one run per seed ``0 .. --seeds - 1``.

A search stops as soon as a network of the top 1% (by the final validation accuracy of
``--seed``) has been *fully* trained -- so both reach the same final regret: their best
fully trained network is of the top 1% -- or after ``--max-steps`` environment steps
(not reached). Printed per search and agent: the mean full trainings and simulated
seconds (the table's recorded training seconds, the training part scaled to the epochs
trained, summed over every fidelity) and how many runs reached the top 1%, and one
``ratio`` line per search: full trainings without / with the cascade (target: >= 3x).
``--smoke``: 2 seeds, 300 steps at most.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, PerformanceEstimator
from nasframe.bench import BenchTable

#: Its smoke needs an NSC-Bench table: this test builds one and runs the smoke.
SMOKE_TESTED_BY = "tests/test_benchmarks_issue14.py"

#: The search that samples the table without replacement (no environment, no agent).
ORDER = "random-order"


class Counted(PerformanceEstimator):
    """An estimator that counts what it evaluates: ok evaluations and reported seconds.

    Everything else is the wrapped estimator's (its fingerprint too, so the cascade
    caches each fidelity under its own). ``reached`` turns true when an ok evaluation
    is of a network in ``targets``.
    """

    def __init__(self, inner: PerformanceEstimator, targets: frozenset[str] = frozenset()):
        self.inner, self.targets = inner, targets
        self.name, self.version = inner.name, inner.version
        self.trainings, self.seconds, self.reached = 0, 0.0, False
        self.best = -math.inf

    def fingerprint(self) -> str:
        """The wrapped estimator's."""
        return self.inner.fingerprint()

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """The wrapped estimator's."""
        return self.inner.why_invalid(architecture, dataset)

    def check_setup(self, search_space: Any, dataset: DatasetHandler) -> None:
        """The wrapped estimator's."""
        self.inner.check_setup(search_space, dataset)

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """Evaluate with the wrapped estimator and count it."""
        evaluation = self.inner.evaluate(architecture, dataset, seed=seed)
        self.seconds += evaluation.seconds
        if evaluation.ok:
            self.trainings += 1
            self.best = max(self.best, evaluation.accuracy)
            if architecture.without_terminal().canonical_hash in self.targets:
                self.reached = True
        return evaluation


@dataclass(frozen=True)
class Run:
    """One search: full trainings, simulated seconds, whether it reached the top 1%."""

    trainings: int
    seconds: float
    reached: bool
    regret: float  # best final accuracy - best fully trained network's final accuracy


@dataclass
class Setup:
    """What every search shares: the table, its fidelities, its space and dataset."""

    table: BenchTable
    low: PerformanceEstimator
    full: PerformanceEstimator
    targets: frozenset[str]
    best: float
    space: Any
    encoder: Any
    dataset: Any
    depth: int
    manager: Any


def _setup(source: str | None, seed: int, low: int, manager: Any) -> Setup:
    registries = manager.registries()
    table_v1 = registries["estimator"]
    try:
        full = table_v1.create("table", table=source, epochs=0, seed=str(seed))
    except nasframe.NasframeError as exc:
        sys.exit(f"error: {exc}")
    table: BenchTable = full.bench
    rows = [r for r in table if r.seed == seed and r.ok]
    if len(rows) < 10:
        sys.exit(f"error: {table.source}: {len(rows)} ok rows of seed {seed}; need 10")
    if not 1 <= low < table.max_epochs:
        sys.exit(f"error: --low {low}: the table records 1 to {table.max_epochs} epochs")
    build = table.build
    missing = [key for key in ("space", "dataset_component", "depth") if not build.get(key)]
    if missing:
        sys.exit(f"error: {table.source}: build.json lacks {', '.join(missing)}; rebuild it")
    final = {r.arch_hash: r.accuracy() for r in rows}
    cut = float(np.quantile(list(final.values()), 0.99))
    space = registries["search_space"].create(build["space"])
    component = build["dataset_component"]
    return Setup(
        table=table,
        low=table_v1.create("table", table=source, epochs=low, seed=str(seed)),
        full=full,
        targets=frozenset(h for h, v in final.items() if v >= cut),
        best=max(final.values()),
        space=space,
        encoder=registries["state_encoder"].create("onehot", space),
        dataset=registries["dataset"].create(component["name"], **component.get("settings", {})),
        depth=int(build["depth"]),
        manager=manager,
    )


def _estimators(setup: Setup, cascade: bool, args: argparse.Namespace) -> tuple[Any, list[Counted]]:
    """The search's estimator and the counters of its fidelities (the full one last)."""
    from nasframe_cascade import CascadeEstimator

    full = Counted(setup.full, setup.targets)
    if not cascade:
        return full, [full]
    low = Counted(setup.low)
    chain = CascadeEstimator(fraction=args.fraction, warmup=args.warmup, estimators=[low, full])
    return chain, [low, full]


def _result(setup: Setup, counters: list[Counted]) -> Run:
    full = counters[-1]
    return Run(
        trainings=full.trainings,
        seconds=sum(c.seconds for c in counters),
        reached=full.reached,
        regret=setup.best - full.best if full.trainings else math.nan,
    )


def _order_search(setup: Setup, cascade: bool, seed: int, args: argparse.Namespace) -> Run:
    nets = [NSC.parse(r.nsc) for r in setup.table if r.seed == args.seed and r.ok]
    estimator, counters = _estimators(setup, cascade, args)
    for i in np.random.default_rng(seed).permutation(len(nets)):
        estimator.evaluate(nets[int(i)], setup.dataset, seed=seed)
        if counters[-1].reached:
            break
    return _result(setup, counters)


def _agent_search(
    setup: Setup, agent_name: str, cascade: bool, seed: int, args: argparse.Namespace
) -> Run:
    from nasframe.agents import make_agent
    from nasframe.env import NASEnv

    estimator, counters = _estimators(setup, cascade, args)
    env = NASEnv(
        setup.space,
        setup.encoder,
        estimator,
        setup.dataset,
        setup.manager.registry("database").create("memory"),
        max_steps=setup.depth,
        seed=seed,
    )
    agent = make_agent(agent_name, env, seed=seed, plugin_manager=setup.manager)
    try:
        agent.learn(args.max_steps, lambda: not counters[-1].reached)
    finally:
        agent.close()
        env.close()
    return _result(setup, counters)


def _one_thread_torch(agents: list[str], manager: Any) -> None:
    # The policies are tiny; torch's thread pool only costs time on a busy machine
    # (nasframe bench run does the same).
    registry = manager.registry("agent")
    if any("torch" in registry.get(name).requires for name in agents):
        import torch

        torch.set_num_threads(1)


def _summary(label: str, runs: list[Run]) -> float:
    trainings = statistics.mean(r.trainings for r in runs)
    seconds = statistics.mean(r.seconds for r in runs)
    done = sum(r.reached for r in runs)
    regrets = [r.regret for r in runs if not math.isnan(r.regret)]
    regret = statistics.mean(regrets) if regrets else math.nan
    print(
        f"    {label:<40} full trainings {trainings:7.1f}   simulated {seconds:8.0f} s   "
        f"top 1% in {done:2d}/{len(runs)}   final regret {regret:.4f}"
    )
    return trainings


def main(argv: list[str] | None = None) -> None:
    """Run every search with and without the cascade and print the ratio lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", help="a table folder (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0, help="the table seed that answers")
    parser.add_argument("--low", type=int, default=1, help="epochs of the low fidelity")
    parser.add_argument("--fraction", type=float, default=0.1, help="top share promoted")
    parser.add_argument("--warmup", type=int, default=5, help="networks promoted regardless")
    parser.add_argument("--agents", default="random,ppo", help="agents, comma-separated")
    parser.add_argument("--seeds", type=int, default=20, help="runs per search")
    parser.add_argument("--max-steps", type=int, default=20000, help="env steps per run at most")
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 300 steps at most")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.max_steps = 2, 300
    if args.seeds < 1 or args.max_steps < 1:
        sys.exit("error: --seeds and --max-steps must be >= 1")
    if not 0 < args.fraction <= 1 or args.warmup < 0:
        sys.exit("error: --fraction must be in (0, 1] and --warmup >= 0")
    manager = nasframe.get_plugin_manager()
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    registry = manager.registry("agent")
    try:
        agents = [registry.get(name).base_name for name in agents]
    except nasframe.NasframeError as exc:
        sys.exit(f"error: {exc}")
    setup = _setup(args.table, args.seed, args.low, manager)
    _one_thread_torch(agents, manager)
    full = setup.table.max_epochs
    print(
        f"cascade benchmark: {len(setup.targets)} top-1% networks "
        f"(final validation accuracy of seed {args.seed}) of {setup.table.source}; "
        f"table-v1 fidelities {args.low} and {full} epochs; cascade fraction "
        f"{args.fraction:g}, warm-up {args.warmup}; {args.seeds} seeds, "
        f"<= {args.max_steps} steps per agent run"
    )
    ratios: dict[str, float] = {}
    for search in (ORDER, *agents):
        print(f"  {search}:")
        means = []
        for cascade in (False, True):
            if search == ORDER:
                runs = [_order_search(setup, cascade, s, args) for s in range(args.seeds)]
            else:
                runs = [_agent_search(setup, search, cascade, s, args) for s in range(args.seeds)]
            label = f"cascade {args.low} -> {full} epochs" if cascade else f"{full} epochs each"
            means.append(_summary(label, runs))
        ratios[search] = means[0] / means[1] if means[1] else math.inf
    for search, ratio in ratios.items():
        verdict = "meets" if ratio >= 3 else "misses"
        print(
            f"ratio full trainings without / with cascade, {search}: {ratio:.2f}x "
            f"({verdict} the 3x target)"
        )


if __name__ == "__main__":
    main()
