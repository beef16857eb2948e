"""Evaluations per minute with 1 and 2 Ray workers, and the overhead Ray adds.

Run::

    python benchmarks/scaling.py                 # keras on digits if installed, else burn
    python benchmarks/scaling.py --estimator burn --networks 12 --repeats 3
    python benchmarks/scaling.py --estimator keras --set epochs=2 --networks 8
    python benchmarks/scaling.py --smoke          # burn, tiny: checks it runs (seconds)

Two figures, each side by side in one run:

1. **Speed-up.** The same distinct architectures evaluated by a
   :class:`~nasframe.distributed.RayEvaluator` with 1 worker and with 2 workers (one CPU
   each, TensorFlow limited to one intra-/inter-op thread per worker); evaluations per
   minute and their ratio (target: >= 1.7x on 2 cores). Beside them, the baseline: the
   same evaluations on 1 and 2 plain worker processes (``ProcessPoolExecutor``, no Ray,
   no cache), which shows how parallel the machine really is at that moment -- on a
   shared machine that is what limits the speed-up. The set-ups alternate (and repeat
   with ``--repeats``) so that load changes hit all of them alike; worker start-up and
   the first evaluation of each worker (imports) are not timed.
2. **Overhead.** A trivial estimator (returns at once) called one evaluation at a time
   by the in-process :class:`~nasframe.evaluation.Evaluator` and by a 1-worker
   ``RayEvaluator``; the difference per evaluation is what Ray adds (shipping the NSC,
   the round trip, the dispatcher).

The ``burn`` estimator is a CPU-bound stand-in for training: it hashes for a fixed number
of rounds in pure Python (one core, deterministic), used when the Keras estimator or the
digits dataset is not installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import nasframe
from nasframe import (
    NSC,
    ArrayDataset,
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    PerformanceEstimator,
    Record,
)

#: Its smoke mode starts Ray: the test suite marks it slow.
SMOKE_SLOW = True


class BurnEstimator(PerformanceEstimator):
    """Burns ``rounds`` SHA-256 rounds per evaluation; accuracy from the last digest."""

    name = "burn"

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {"rounds": self.rounds})

    def evaluate(self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None):
        start = time.perf_counter()
        digest = architecture.canonical_hash.encode()
        for _ in range(self.rounds):
            digest = hashlib.sha256(digest).digest()
        return Evaluation(accuracy=digest[0] / 255, seconds=time.perf_counter() - start)


class TrivialEstimator(PerformanceEstimator):
    """Returns at once: what is left of an evaluation is the framework's overhead."""

    name = "trivial"

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, self.version, {})

    def evaluate(self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None):
        return Evaluation(accuracy=0.5)


class DictDB(ExperimentDB):
    """An in-memory experiment database: the benchmark measures evaluation, not storage."""

    name = "dict"

    def __init__(self) -> None:
        self.records: dict[CacheKey, Record] = {}

    def get(self, key: CacheKey) -> Record | None:
        return self.records.get(key)

    def put(self, record: Record) -> None:
        self.records.setdefault(record.key, record)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self.records.values()))


def networks(count: int) -> list[NSC]:
    """``count`` distinct small networks (conv/pool chains, some with a skip add)."""
    layers = [(1, 1), (1, 3), (1, 5), (2, 2), (3, 2), (4, 0)]
    found: dict[str, NSC] = {}
    for a in layers:
        for b in layers:
            for c in layers:
                for skip in (False, True):
                    rows = [(1, *a, 0, 0), (2, *b, 1, 0), (3, *c, 2, 0)]
                    if skip:
                        rows.append((4, 5, 0, 3, 1))
                    nsc = NSC(rows)
                    found.setdefault(nsc.canonical_hash, nsc)
                    if len(found) == count:
                        return list(found.values())
    return list(found.values())


def tiny_dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays("tiny", rng.random((40, 8, 8, 1)), rng.integers(0, 4, 40))


def components(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """The estimator and dataset to scale, as specs (keras/digits) or instances (burn)."""
    from nasframe.distributed import ComponentSpec

    manager = nasframe.get_plugin_manager()
    registries = manager.registries()
    keras_ready = (
        "keras" in registries["estimator"]
        and registries["estimator"].get("keras").available
        and "digits" in registries["dataset"]
    )
    if args.estimator == "keras" or (args.estimator == "auto" and keras_ready):
        info = registries["estimator"].get("keras")
        section = info.section or "keras"
        # One epoch by default: scaling is about throughput, not about good networks.
        overrides = {"epochs": "1", **dict(item.split("=", 1) for item in args.set)}
        # Typed and checked like the configuration file would be.
        config = nasframe.load_config(None, {section: overrides}, plugin_manager=manager)
        settings = {k: v for k, v in config.section(section).items() if v is not None}
        label = f"keras on digits ({', '.join(f'{k}={v}' for k, v in overrides.items())})"
        return (
            ComponentSpec("estimator", info.name, settings),
            ComponentSpec("dataset", "digits"),
            label,
        )
    return BurnEstimator(args.hash_rounds), tiny_dataset(), f"burn ({args.hash_rounds} hashes)"


def ray_run(estimator, dataset, workers: int, batch: list[NSC]) -> tuple[int, float]:
    """Timed evaluations and seconds on a ``RayEvaluator`` (workers started and warm)."""
    from nasframe.distributed import RayEvaluator

    with RayEvaluator(estimator, dataset, DictDB(), workers=workers, num_cpus=1, seed=0) as ev:
        ev.evaluate_many(batch[:workers])  # one each: every worker's imports are warm
        start = time.perf_counter()
        outcomes = ev.evaluate_many(batch[workers:])
        elapsed = time.perf_counter() - start
        bad = [o.evaluation.message for o in outcomes if not o.evaluation.ok]
        if bad:
            raise SystemExit(f"evaluations failed: {bad[:3]}")
    return len(outcomes), elapsed


_POOL: dict[str, Any] = {}


def _pool_start(estimator: Any, dataset: Any, threads: str) -> None:
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = threads
    from nasframe.distributed import ComponentSpec

    build = [c.build() if isinstance(c, ComponentSpec) else c for c in (estimator, dataset)]
    _POOL["estimator"], _POOL["dataset"] = build


def _pool_evaluate(nsc: str) -> bool:
    evaluation = _POOL["estimator"].evaluate(NSC.parse(nsc), _POOL["dataset"], seed=0)
    return bool(evaluation.ok)


def process_run(estimator, dataset, workers: int, batch: list[NSC]) -> tuple[int, float]:
    """The baseline: the same evaluations on plain worker processes, no Ray, no cache."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_pool_start, initargs=(estimator, dataset, "1")
    ) as pool:
        list(pool.map(_pool_evaluate, [str(n) for n in batch[:workers]]))  # warm up
        start = time.perf_counter()
        results = list(pool.map(_pool_evaluate, [str(n) for n in batch[workers:]]))
        elapsed = time.perf_counter() - start
    if not all(results):
        raise SystemExit("evaluations failed in the process pool")
    return len(results), elapsed


def overhead_ms(count: int) -> tuple[float, float]:
    """Milliseconds per trivial evaluation: in-process and on one Ray worker."""
    from nasframe.distributed import RayEvaluator
    from nasframe.evaluation import Evaluator

    batch, dataset = networks(count), tiny_dataset()
    local = Evaluator(TrivialEstimator(), dataset, DictDB())
    start = time.perf_counter()
    for nsc in batch:
        local.evaluate(nsc)
    local_ms = 1000 * (time.perf_counter() - start) / count
    with RayEvaluator(TrivialEstimator(), dataset, DictDB(), workers=1) as ev:
        ev.evaluate(networks(count + 1)[-1])
        start = time.perf_counter()
        for nsc in batch:
            ev.evaluate(nsc)
        ray_ms = 1000 * (time.perf_counter() - start) / count
    return local_ms, ray_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", choices=("auto", "keras", "burn"), default="auto")
    parser.add_argument("--networks", type=int, help="timed evaluations per run (14; keras 12)")
    parser.add_argument("--hash-rounds", type=int, default=1_500_000, help="burn: per eval")
    parser.add_argument("--set", action="append", default=[], help="keras: KEY=VALUE")
    parser.add_argument("--repeats", type=int, help="alternating rounds (2; keras 1)")
    parser.add_argument("--overhead-evals", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.estimator, args.networks, args.repeats = "burn", 2, 1
        args.hash_rounds, args.overhead_evals = 2_000, 5

    import ray

    from nasframe.distributed import connect_ray

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    connect_ray(num_cpus=2)
    estimator, dataset, label = components(args)
    keras = not isinstance(estimator, BurnEstimator)
    args.networks = args.networks or (12 if keras else 14)
    args.repeats = args.repeats or (1 if keras else 2)
    batch = networks(args.networks + 2)
    print(f"estimator: {label}; {args.networks} timed evaluations per run; {os.cpu_count()} CPUs")
    # Plain processes measure how parallel the machine is right now (it may be shared);
    # the four set-ups alternate so that load changes hit all of them alike.
    runs = {"ray": ray_run, "processes": process_run}
    totals: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeats):
        for workers in (1, 2):
            for name, run in runs.items():
                count, seconds = run(estimator, dataset, workers, batch[2 - workers :])
                total = totals.setdefault((name, workers), [0.0, 0.0])
                total[0] += count
                total[1] += seconds
    rate = {key: 60 * count / seconds for key, (count, seconds) in totals.items()}
    print(f"{'':10} {'RayEvaluator':>14} {'plain processes':>16}   (evaluations/min)")
    for workers in (1, 2):
        label = f"{workers} worker" + ("s" if workers > 1 else "")
        print(f"{label:10} {rate['ray', workers]:14.1f} {rate['processes', workers]:16.1f}")
    ray_up = rate["ray", 2] / rate["ray", 1]
    base_up = rate["processes", 2] / rate["processes", 1]
    print(
        f"speed-up : Ray {ray_up:.2f}x (target >= 1.7x), plain processes {base_up:.2f}x; "
        f"Ray / processes with 2 workers: {rate['ray', 2] / rate['processes', 2]:.2f}"
    )
    print(f"ratio evaluations/min 2/1 workers: Ray {ray_up:.2f}x, plain processes {base_up:.2f}x")
    local_ms, ray_ms = overhead_ms(args.overhead_evals)
    print(
        f"overhead : in-process {local_ms:.2f} ms/eval, Ray {ray_ms:.2f} ms/eval, "
        f"Ray adds {ray_ms - local_ms:.2f} ms per evaluation ({ray_ms / local_ms:.0f}x)"
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
