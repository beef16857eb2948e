"""Does ``keras-v1`` rank networks as a longer, correctly measured training does? (issue 28)

A fixed, seeded random sample of NSC-Bench's space (``chained-v1`` to depth 4 on the
translated digits, NSC-Bench's ``[keras]`` settings) and of the quick start's (the bundled
digits, ``resources/quickstart.ini``'s settings, depth up to 6). Every network is trained
side by side, in one process each, by:

* ``old``: the first trainer (``[keras] batch_norm = as-built``: Keras' batch-norm
  momentum 0.99, statistics unsettled after a short training);
* ``new``: the default trainer (``batch_norm = recompute``: the statistics recomputed
  from a fixed subset of training batches before every measurement);
* ``momentum``: the measured alternative (``batch_norm = momentum``: every batch-norm
  layer's momentum 0.9 instead of Keras' 0.99);
* ``reference``: an independent plain-Keras run -- the same untrained network from the
  estimator's builder, Keras' ``compile``/``fit`` (Keras' own Adam and loop), three times
  the epochs (the learning-rate decay stretched to match), then the batch-norm
  statistics recomputed on the training subset and ``model.evaluate`` on the
  validation split; the mean of seeds 0 and 1.

It prints the Spearman and Kendall correlation (``scipy.stats``) of ``old``, ``new`` and
``momentum`` with the reference, over each sample and over both; the networks each one
scores below 0.15 whose reference is above 0.5 (collapsed); and the cost per evaluation of
``new`` and ``momentum`` against ``old`` (the estimator's wall seconds, the trainers run
alternately in the same worker). Targets: Spearman >= 0.90 for ``new``, no collapsed
network, cost at most 1.10x.

    python -m benchmarks.reward_fidelity                # 40 + 10 networks, 2 processes
    python -m benchmarks.reward_fidelity --networks 12 --quickstart 4
    python -m benchmarks.reward_fidelity --smoke        # seconds: 2 networks, 1 epoch

Each worker process gets one thread (as ``bench build``'s Ray workers do), so ``--jobs
2`` on 2 cores measures what a build measures. ``--csv`` writes one row per network.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

SMOKE_SLOW = True

#: the trainers compared, each a ``[keras] batch_norm`` mode
MODES = {"old": "as-built", "new": "recompute", "momentum": "momentum"}

#: NSC-Bench's [keras] settings (resources/nsc-bench-v3.ini) and the quick start's
NSC_BENCH_KERAS = {"epochs": 6, "padding": "same", "filters": 16, "fc_units": 128, "patience": 0}
QUICKSTART_KERAS = {"epochs": 3, "batch_size": 64, "filters": 16, "fc_units": 128}


def sample(space_name: str, depth: int, count: int, seed: int) -> list[str]:
    """``count`` distinct networks of ``space_name`` up to ``depth``, drawn with ``seed``."""
    import numpy as np

    from nasframe import get_plugin_manager
    from nasframe.bench.networks import enumerate_networks

    space = get_plugin_manager().registry("search_space").create(space_name)
    networks = [str(nsc) for nsc in enumerate_networks(space, depth)]
    picked = np.random.default_rng(seed).choice(len(networks), size=count, replace=False)
    return [networks[i] for i in sorted(int(i) for i in picked)]


def quickstart_sample(count: int, seed: int) -> list[str]:
    """``count`` distinct chains of 1-6 layers (the quick start's episodes) that build.

    Each layer is one of the chained space's seven (convolution k1/3/5, max or average
    pooling k2/3), drawn uniformly; chains the quick start's builder cannot build on the
    16x16 digits (``valid`` padding shrinks them) are drawn again.
    """
    import numpy as np
    from nasframe_keras.settings import KerasSettings

    from nasframe import NSC

    layers = [(1, 1), (1, 3), (1, 5), (2, 2), (2, 3), (3, 2), (3, 3)]
    settings = KerasSettings.from_mapping(dict(QUICKSTART_KERAS))
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < count:
        depth = int(rng.integers(1, 7))
        rows = []
        for index in range(1, depth + 1):
            kind, kernel = layers[int(rng.integers(len(layers)))]
            rows.append(f"{index},{kind},{kernel},{index - 1},0")
        text = ";".join(rows)
        if text not in out and settings.why_invalid(NSC.parse(text), (16, 16, 1)) is None:
            out.append(text)
    return out


def _dataset(kind: str, smoke: bool) -> Any:
    if kind == "quickstart":
        from nasframe_digits import DigitsDataset

        return DigitsDataset(resize=16)
    from nasframe_digits.shifted import ShiftedDigitsDataset

    if smoke:
        return ShiftedDigitsDataset(placements=1, eval_placements=1)
    return ShiftedDigitsDataset(placements=4, eval_placements=2)


def _settings(kind: str, smoke: bool) -> Any:
    from nasframe_keras.settings import KerasSettings

    values: dict[str, Any] = dict(QUICKSTART_KERAS if kind == "quickstart" else NSC_BENCH_KERAS)
    if smoke:
        values["epochs"] = 1
    return KerasSettings.from_mapping(values)


def reference(nsc: str, kind: str, seed: int, smoke: bool) -> float:
    """The plain-Keras reference accuracy of ``nsc`` with ``seed`` (see the module docs)."""
    import keras
    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.trainer import recompute_batch_norm, train_subset

    from nasframe import NSC

    dataset = _dataset(kind, smoke)
    settings = replace(_settings(kind, smoke), batch_norm="as-built")
    estimator = KerasEstimator(settings)
    keras.utils.set_random_seed(seed)
    model = estimator.build_network(NSC.parse(nsc), dataset)
    stretch = 3
    decay_every = settings.lr_decay_epochs * stretch

    def rate(epoch: int, _: float) -> float:
        if decay_every <= 0:
            return settings.learning_rate
        return float(settings.learning_rate * settings.lr_decay ** (epoch // decay_every))

    model.compile(
        optimizer=keras.optimizers.Adam(
            settings.learning_rate, settings.beta1, settings.beta2, settings.epsilon
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = dataset.arrays("train")
    model.fit(
        x,
        y,
        batch_size=settings.batch_size,
        epochs=settings.epochs * stretch,
        shuffle=True,
        verbose=0,
        callbacks=[keras.callbacks.LearningRateScheduler(rate)],
    )
    recompute_batch_norm(model, train_subset(dataset, settings.batch_size))
    xv, yv = dataset.arrays("validation")
    _, accuracy = model.evaluate(xv, yv, batch_size=settings.batch_size, verbose=0)
    keras.backend.clear_session()
    return float(accuracy)


_WARM: list[bool] = []


def measure_network(job: tuple[str, str, bool, int]) -> dict[str, Any]:
    """Train one network by every trainer and the reference (in a worker process)."""
    nsc, kind, smoke, position = job
    from nasframe_keras.estimator import KerasEstimator

    from nasframe import NSC

    dataset = _dataset(kind, smoke)
    base = _settings(kind, smoke)
    if not _WARM:  # the process's first training pays TensorFlow's start-up: untimed
        KerasEstimator(base).evaluate(NSC(), dataset, seed=0)
        _WARM.append(True)
    row: dict[str, Any] = {"sample": kind, "nsc": nsc}
    names = list(MODES)
    if position % 2:  # alternate the order: drift in machine speed cancels out
        names.reverse()
    for name in names:
        estimator = KerasEstimator(replace(base, batch_norm=MODES[name]))
        evaluation = estimator.measure(NSC.parse(nsc), dataset, seed=0).evaluation
        row[name] = evaluation.accuracy if evaluation.ok else 0.0
        row[f"{name}_train"] = evaluation.train_accuracy
        row[f"{name}_seconds"] = evaluation.seconds
        estimator.close()
    seeds = (0,) if smoke else (0, 1)
    references = [reference(nsc, kind, seed, smoke) for seed in seeds]
    row["reference"] = sum(references) / len(references)
    row["reference_seeds"] = references
    return row


def _one_thread() -> None:
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def summarise(rows: list[dict[str, Any]]) -> list[str]:
    """The printed report: correlations, collapsed networks, cost ratios."""
    from scipy import stats  # type: ignore[import-untyped]

    lines = []
    groups = {"all": rows}
    for kind in sorted({row["sample"] for row in rows}):
        groups[kind] = [row for row in rows if row["sample"] == kind]
    lines.append("sample       n   trainer    spearman  kendall  collapsed")
    for group, members in groups.items():
        truth = [row["reference"] for row in members]
        for name in MODES:
            values = [row[name] for row in members]
            if len(members) > 2:
                rho = stats.spearmanr(values, truth).statistic
                tau = stats.kendalltau(values, truth).statistic
            else:
                rho = tau = math.nan
            collapsed = sum(v < 0.15 and t > 0.5 for v, t in zip(values, truth, strict=True))
            lines.append(
                f"{group:<10} {len(members):>3}   {name:<9} {rho:>9.3f} {tau:>8.3f} {collapsed:>10}"
            )
    old = sum(row["old_seconds"] for row in rows)
    for name in ("new", "momentum"):
        cost = sum(row[f"{name}_seconds"] for row in rows)
        lines.append(
            f"ratio {name}/old cost per evaluation: {cost / old:.3f} "
            f"({cost / len(rows):.2f} s against {old / len(rows):.2f} s)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=40, help="NSC-Bench networks")
    parser.add_argument("--quickstart", type=int, default=10, help="quick-start networks")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--csv", type=Path, help="write one row per network here")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.quickstart, args.jobs = 2, 1, 1
    jobs: list[tuple[str, str, bool, int]] = []
    for nsc in sample("chained", 4, args.networks, args.seed):
        jobs.append((nsc, "nsc-bench", args.smoke, len(jobs)))
    for nsc in quickstart_sample(args.quickstart, args.seed):
        jobs.append((nsc, "quickstart", args.smoke, len(jobs)))
    print(f"{len(jobs)} networks, {args.jobs} process(es)", flush=True)
    start = time.perf_counter()
    _one_thread()
    rows: list[dict[str, Any]] = []
    if args.jobs <= 1:
        results: Any = map(measure_network, jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=args.jobs, initializer=_one_thread)
        results = pool.map(measure_network, jobs)
    for row in results:
        rows.append(row)
        print(
            f"[{len(rows)}/{len(jobs)}] {row['sample']:<10} {row['nsc'] or 'head only':<40} "
            + " ".join(f"{name} {row[name]:.3f}" for name in (*MODES, "reference")),
            flush=True,
        )
    if args.jobs > 1:
        pool.shutdown()
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    for line in summarise(rows):
        print(line)
    print(f"{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
