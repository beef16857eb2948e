"""Does a surrogate rank search agents as the exhaustive table does? (issue 30, item 4)

NAS-Bench-301's test of a surrogate benchmark, where the truth is known: fit a surrogate
(``nasframe bench fit``'s models) on a random 30 % of NSC-Bench v3's networks, write its
answer for every network of the space as a table (``tabulate``), and run ``bench run``
-- every agent, the same seeds, budget and protocol -- on the measured table and on the
surrogate's. It prints the surrogate's held-out figures, each agent's mean regret (over
the whole curve, 1 .. budget trainings) on both, the two rankings, and the Kendall
correlation between them (``scipy.stats``; target >= 0.8), and draws each agent's regret
curve on both in one figure.

    python -m benchmarks.surrogate_validation                  # v3, 30 %, 100 seeds, budget 100
    python -m benchmarks.surrogate_validation --plot docs/img/surrogate-validation.png
    python -m benchmarks.surrogate_validation --smoke          # seconds: a tiny table

Both comparisons are stored under ``--output`` as they run (``bench run``'s folders):
the same command resumes them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, help="an exhaustive table (default: shipped v3)")
    parser.add_argument("--train-fraction", type=float, default=0.3)
    parser.add_argument("--family", default="hgb", help="hgb or lightgbm")
    parser.add_argument("--agents", default="", help="comma-separated (default: every agent)")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--evaluate", default="episode_end", choices=("episode_end", "every_step"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("runs/surrogate-validation"))
    parser.add_argument("--plot", type=Path, help="write the regret curves here (PNG)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np
    from scipy import stats  # type: ignore[import-untyped]

    from nasframe.bench import BenchTable
    from nasframe.bench.compare import CompareSettings, compare_agents
    from nasframe.bench.surrogate import fit_surrogate, tabulate

    scratch = None
    agents = [name.strip() for name in args.agents.split(",") if name.strip()]
    if args.smoke:
        from nasframe.bench.testing import write_table

        scratch = tempfile.TemporaryDirectory()
        root = Path(scratch.name)
        args.table = write_table(root / "table", depth=2, consistent=True)
        args.output, args.seeds, args.budget, args.jobs = root / "out", 2, 8, 1
        args.train_fraction, agents = 0.5, agents or ["random", "rea"]
    table_path = args.table or BenchTable.shipped()
    table = BenchTable.load(table_path)
    started = time.perf_counter()
    surrogate = fit_surrogate(table, family=args.family, train_fraction=args.train_fraction, seed=0)
    folder = surrogate.save(args.output / f"surrogate-{args.family}")
    predicted_table = tabulate(surrogate, folder / "table")
    fit_seconds = time.perf_counter() - started
    figures = surrogate.card["held_out"]["accuracy"]
    split = surrogate.card["split"]
    print(
        f"surrogate ({args.family}) fitted on {split['train']} of {len(table)} networks "
        f"in {fit_seconds:.1f} s; on the {split['held_out']} held out: R2 {figures['r2']:.3f}, "
        f"Spearman {figures['spearman']:.3f}, Kendall {figures['kendall']:.3f} "
        f"(top 10 %: Kendall {figures['top_kendall']:.3f})"
    )
    noise = surrogate.card.get("seed_noise") or {}
    if noise:
        own = surrogate.card["surrogate_vs_second_seed"]
        print(
            f"held-out networks trained twice ({noise['networks']}): seed {noise['seeds'][0]} "
            f"vs {noise['seeds'][1]} Kendall {noise['kendall']:.3f}, the surrogate vs seed "
            f"{noise['seeds'][1]} Kendall {own['kendall']:.3f}"
        )

    curves: dict[str, dict[str, np.ndarray]] = {}
    for label, path in (("table", table_path), ("surrogate", predicted_table)):
        settings = CompareSettings(
            table=Path(path),
            agents=agents,
            seeds=args.seeds,
            budget=args.budget,
            jobs=args.jobs,
            evaluate=args.evaluate,
            first_seed=args.first_seed,
        )
        began = time.perf_counter()
        (args.output / label).mkdir(parents=True, exist_ok=True)
        comparison = compare_agents(settings, output=args.output / label, warn=lambda _: None)
        print(f"bench run on the {label}: {time.perf_counter() - began:.0f} s")
        for summary in comparison.summaries:
            curves.setdefault(summary.agent, {})[label] = summary.regret.mean(axis=0)

    names = [name for name in curves if len(curves[name]) == 2]
    measured = np.asarray([curves[name]["table"].mean() for name in names])
    simulated = np.asarray([curves[name]["surrogate"].mean() for name in names])
    rank_m = stats.rankdata(measured)
    rank_s = stats.rankdata(simulated)
    print(f"{'agent':16} {'regret table':>13} {'regret surrogate':>17} {'rank':>5} {'rank':>5}")
    for i, name in enumerate(names):
        print(
            f"{name:16} {measured[i]:13.4f} {simulated[i]:17.4f} {rank_m[i]:5.1f} {rank_s[i]:5.1f}"
        )
    kendall = float(stats.kendalltau(measured, simulated).statistic) if len(names) > 1 else 1.0
    print(f"Kendall of the agents' rankings by mean regret: {kendall:.3f} (target >= 0.8)")
    print(
        f"ratio of mean regret, surrogate / table, over all agents: "
        f"{simulated.mean() / max(measured.mean(), 1e-12):.3f}"
    )
    if args.plot and not args.smoke:
        draw(curves, names, args.plot, kendall)
        print(f"wrote {args.plot}")
    if scratch is not None:
        scratch.cleanup()
    return 0


def draw(curves: dict, names: list[str], path: Path, kendall: float) -> None:
    """One panel per agent: its mean regret curve on the table and on the surrogate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 5
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.4 * rows), sharey=True)
    for ax, name in zip(getattr(axes, "flat", [axes]), names, strict=False):
        for label, style in (("table", "-"), ("surrogate", "--")):
            curve = curves[name][label]
            ax.plot(range(1, len(curve) + 1), curve, style, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xscale("log")
    for ax in list(getattr(axes, "flat", [axes]))[len(names) :]:
        ax.axis("off")
    first = next(iter(getattr(axes, "flat", [axes])))
    first.legend(fontsize=8)
    first.set_ylabel("mean test regret")
    figure.suptitle(
        f"agents on NSC-Bench v3 and on its 30 % surrogate (Kendall of rankings {kendall:.2f})"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
