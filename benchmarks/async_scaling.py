"""Lockstep against asynchronous scheduling: a simulated cluster, and a whole search here.

Run::

    python benchmarks/async_scaling.py                  # the simulation, 2..64 workers
    python benchmarks/async_scaling.py --plot runs/async-scaling.png
    python benchmarks/async_scaling.py --search         # + a whole Keras search here
    python benchmarks/async_scaling.py --startup        # + what start-up costs (Keras)
    python benchmarks/async_scaling.py --smoke          # seconds: a tiny simulation

1. **A simulated cluster** (:mod:`nasframe.distributed.simulation`). A search on the
   chained space (episodes of up to 10 steps, every step evaluated, as in a real search)
   over ``W`` simulated workers for 2, 8, 32 and 64 workers, until ``200 x W`` networks
   are trained (``--per-worker``; docs/distributed.md also reports 60 per worker, where
   the end-of-search drain weighs more). Every evaluation lasts the seconds the
   NSC-Bench table recorded for that network (the shipped table, else
   ``benchmarks/data/nsc-bench-v1-rows.csv``, the rows recorded while it was built; a
   network outside the table gets the duration of a table row chosen by its hash). Side
   by side, random search in *lockstep* -- the real ``NASVectorEnv`` with ``W``
   environments, each step waiting for all ``W`` evaluations --, lockstep with ``4 W``
   environments queued over the ``W`` workers (what ``[run] envs`` gives the RL agents)
   and *async* -- the real ``AsyncScheduler`` --; and a real Stable-Baselines3 PPO (its
   ``[ppo]`` defaults: 64-step rollouts) over ``W`` environments, in lockstep and
   *pipelined* (``[run] scheduler = pipelined``: each step submits its networks and goes
   on, the rewards are added at the rollout's end). Printed: worker utilization (busy
   seconds / (wall seconds x workers)) over the whole search, the same until the
   budget's last evaluation started on a worker (*steady*: the end-of-search drain left
   out), and evaluations per hour; ``--plot`` draws evaluations per hour against
   workers. The driver's own time (about 1 ms per evaluation on Ray; here also PPO's
   updates) is not simulated.
2. **A whole search on this machine** (``--search``): ``nasframe search`` with real
   Keras training (resources/quickstart.ini, ``--search-steps`` steps, a fresh output
   folder and database each), in-process (``--workers 1``) and with ``--workers 2``
   (asynchronous, on Ray), one after the other in this run; wall seconds including
   start-up, networks trained, and the ratio of networks trained per minute.
3. **Start-up** (``--startup``): on a local Ray instance, the seconds to start Ray, to
   start 2 Keras workers, and their first evaluations against the next ones (the
   first pays TensorFlow's import and tracing); then the same workers kept
   (``keep_workers``) and found again by a second evaluator, as a second search on a
   running cluster would.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasframe.distributed.simulation import (
    SimulationResult,
    TableTimedEstimator,
    shipped_table,
    simulate,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COPIED_ROWS = HERE / "data" / "nsc-bench-v1-rows.csv"


def simulation(
    workers: list[int], per_worker: int, runs: list[str] | None = None
) -> dict[tuple[str, int], SimulationResult]:
    table = shipped_table() or COPIED_ROWS
    estimator = TableTimedEstimator(table)
    durations = sorted(estimator.durations)
    print(
        f"durations: {len(durations)} networks of {table}: median "
        f"{durations[len(durations) // 2]:.1f} s, min {durations[0]:.1f} s, "
        f"max {durations[-1]:.1f} s"
    )
    results: dict[tuple[str, int], SimulationResult] = {}
    print(
        f"{'workers':>7} {'scheduler':<18} {'envs':>5} {'trained':>8} {'steps':>6} "
        f"{'hours':>7} {'utilization':>11} {'steady':>7} {'evals/hour':>11}"
    )
    for count in workers:
        for name, scheduler, envs, agent in RUNS:
            if runs is not None and name not in runs:
                continue
            if agent == "ppo" and importlib.util.find_spec("stable_baselines3") is None:
                print(f"{count:>7} {name:<18} skipped: needs the rl extra (stable-baselines3)")
                continue
            result = simulate(
                scheduler,
                count,
                trainings=per_worker * count,
                estimator=estimator,
                envs=None if envs is None else envs * count,
                agent=agent,
            )
            results[name, count] = result
            print(
                f"{count:>7} {name:<18} {result.envs:>5} {result.trainings:>8} "
                f"{result.steps:>6} {result.seconds / 3600:>7.2f} {result.utilization:>11.3f} "
                f"{result.steady_utilization:>7.3f} {result.per_hour:>11.0f}"
            )
    return results


#: What the simulation compares: (name, scheduler, environments per worker, agent).
RUNS: tuple[tuple[str, str, int | None, str], ...] = (
    ("lockstep", "lockstep", 1, "random"),
    ("lockstep 4x envs", "lockstep", 4, "random"),
    ("async", "async", None, "random"),
    ("ppo lockstep", "lockstep", 1, "ppo"),
    ("ppo pipelined", "pipelined", 1, "ppo"),
)


def plot(results: dict[tuple[str, int], SimulationResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, *_ in RUNS if any(n == name for n, _ in results)]
    figure, axis = plt.subplots(figsize=(6, 4))
    for name in names:
        points = sorted((w, r.per_hour) for (n, w), r in results.items() if n == name)
        axis.plot([w for w, _ in points], [p for _, p in points], marker="o", label=name)
    axis.set_xlabel("workers (simulated)")
    axis.set_ylabel("networks trained per hour")
    axis.set_title("Random search, NSC-Bench durations")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    print(f"plot: {path}")


def whole_search(steps: int) -> None:
    """``nasframe search`` in-process and with --workers 2, side by side."""
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            output = Path(folder) / "run"
            command = [
                sys.executable, "-m", "nasframe", "search",
                "--config", str(ROOT / "resources" / "quickstart.ini"),
                "--output", str(output), "--steps", str(steps), "--workers", str(workers),
                "--quiet", "--force",
            ]  # fmt: skip
            environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            start = time.perf_counter()
            subprocess.run(command, check=True, env=environment, cwd=ROOT)
            seconds = time.perf_counter() - start
            summary = json.loads((output / "summary.json").read_text())
            trained = int(summary.get("session_trainings") or summary.get("trainings") or 0)
        rates[workers] = trained * 60 / seconds
        print(
            f"--workers {workers}: {seconds:.1f} s wall (start-up included), {trained} "
            f"networks trained, {rates[workers]:.1f} per minute"
        )
    print(f"ratio: --workers 2 / in-process = {rates[2] / rates[1]:.2f}x networks per minute "
          "(target >= 1.4x)")  # fmt: skip


def startup() -> None:
    """Start-up costs on a local Ray instance, and what kept workers save."""
    import nasframe
    from nasframe.distributed import ComponentSpec, RayEvaluator, connect_ray, stop_kept_workers

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    manager = nasframe.get_plugin_manager()
    config = nasframe.load_config(ROOT / "resources" / "quickstart.ini", plugin_manager=manager)

    def spec(kind: str) -> ComponentSpec:
        info = manager.registry(kind).get(str(config.get("env", kind)))
        return ComponentSpec(kind, info.name, config.component_settings(info))

    specs = (spec("estimator"), spec("dataset"))
    nets = [
        nasframe.NSC.parse(f"1,1,{k},0,0;2,{t},{j},1,0")
        for k in (1, 3, 5)
        for t, j in ((2, 2), (3, 2))
    ]
    import ray

    start = time.perf_counter()
    connect_ray(num_cpus=2)
    times = {"ray": time.perf_counter() - start}

    def timed(name: str, call: Callable[[], Any]) -> Any:
        begin = time.perf_counter()
        value = call()
        times[name] = time.perf_counter() - begin
        return value

    from nasframe_memory import MemoryDB

    first = timed("workers", lambda: RayEvaluator(*specs, MemoryDB(), workers=2, keep_workers=True))
    timed("first", lambda: first.evaluate_many(nets[0:2]))
    timed("warm", lambda: first.evaluate_many(nets[2:4]))
    first.close()
    second = timed("kept", lambda: RayEvaluator(*specs, MemoryDB(), workers=2, keep_workers=True))
    timed("kept first", lambda: second.evaluate_many(nets[4:6]))
    reused = second.reused
    second.close()
    stop_kept_workers()
    ray.shutdown()
    print(
        f"start-up: Ray {times['ray']:.1f} s, 2 Keras workers {times['workers']:.1f} s, "
        f"their first 2 evaluations {times['first']:.1f} s (the next 2: {times['warm']:.1f} s)"
    )
    print(
        f"kept workers ({reused} reused): ready in {times['kept']:.1f} s, their next 2 "
        f"evaluations {times['kept first']:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,8,32,64", help="simulated workers, comma-separated")
    parser.add_argument("--per-worker", type=int, default=200, help="networks trained per worker")
    parser.add_argument("--plot", type=Path, help="draw evaluations per hour to this PNG")
    parser.add_argument("--search", action="store_true", help="also a whole Keras search here")
    # long enough that start-up is under 5% of the two-worker search (docs/distributed.md)
    parser.add_argument("--search-steps", type=int, default=2400)
    parser.add_argument("--startup", action="store_true", help="also measure start-up (Keras)")
    parser.add_argument("--smoke", action="store_true", help="tiny: 2 and 4 workers, 5 each")
    parser.add_argument(
        "--runs",
        help="only these rows, comma-separated: " + ", ".join(name for name, *_ in RUNS),
    )
    args = parser.parse_args()
    workers = [2, 4] if args.smoke else [int(w) for w in args.workers.split(",")]
    per_worker = 5 if args.smoke else args.per_worker
    runs = None if args.runs is None else [name.strip() for name in args.runs.split(",")]
    unknown = sorted(set(runs or ()) - {name for name, *_ in RUNS})
    if unknown:
        parser.error(f"--runs: unknown {', '.join(unknown)}")
    results = simulation(workers, per_worker, runs)
    middle = 32 if 32 in workers else workers[-1]
    names = ("lockstep", "lockstep 4x envs", "async", "ppo lockstep", "ppo pipelined")
    schedulers, learners = (
        all((name, middle) in results for name in group) for group in (names[:3], names[3:])
    )
    if not (schedulers or learners):
        print("ratio: not printed (--runs left out a row each ratio compares)")
    if schedulers:
        lock, lock4, fast = (results[name, middle] for name in names[:3])
        met = "met" if fast.utilization >= 0.90 else "not met"
        print(
            f"ratio: at {middle} workers async utilization {fast.utilization:.3f} (target "
            f">= 0.90: {met}; steady {fast.steady_utilization:.3f}), lockstep "
            f"{lock.utilization:.3f}, lockstep with 4x envs {lock4.utilization:.3f}; async / "
            f"lockstep evaluations per hour = {fast.per_hour / lock.per_hour:.2f}x"
        )
    if learners:
        ppo, piped = (results[name, middle] for name in names[3:])
        print(
            f"ratio: at {middle} workers PPO pipelined utilization {piped.utilization:.3f} "
            f"(steady {piped.steady_utilization:.3f}), PPO lockstep {ppo.utilization:.3f}; "
            f"pipelined / lockstep evaluations per hour = {piped.per_hour / ppo.per_hour:.2f}x"
        )
    if args.plot:
        plot(results, args.plot)
    if args.startup:
        startup()
    if args.search:
        whole_search(args.search_steps)


if __name__ == "__main__":
    main()
