"""The fixed cost per candidate of keras-v1 now against the code of an earlier commit.

One command::

    .venv/bin/python -m benchmarks.fixed_cost_vs_commit [--commit f94a28c] [--repeats 2]
        [--smoke]

Issue 13 asked to halve "the fixed cost per candidate, today 1.60 s median in
``benchmarks/estimator_throughput.py``", measured on another machine. This benchmark
measures the baseline itself: it checks the given commit (default ``f94a28c``, the last
before the issue) out into a temporary ``git worktree`` and runs the estimator of each
version in its own process (``PYTHONPATH`` puts that version's ``nasframe`` and plugins
first; the installed packages, TensorFlow among them, are shared), alternating the
versions, on the rows of ``estimator_throughput``'s table: the digits and random
32x32x3 data, the chain, multi-branch and deep networks, 6 and 4 epochs, unseeded. The
fixed cost of a run is its total time minus its epochs at its own steady rate. It
prints each row's median fixed cost of both versions and their ratio, then the ratio of
the medians. ``--smoke`` compares this checkout with itself (no worktree) on one small
row, so the test suite needs neither git history nor minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SMOKE_SLOW = True


def worker(smoke: bool, architectures: dict[str, str]) -> None:
    """Measure the nasframe first on ``sys.path``; print one ``RESULT {json}`` line.

    Only API that every version since the first keras-v1 has is used; the architectures
    come from the parent (this checkout's ``estimator_throughput``), because under
    ``PYTHONPATH`` the ``benchmarks`` package would be the baseline's.
    """
    import numpy as np
    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.settings import KerasSettings
    from sklearn.datasets import load_digits

    import nasframe
    from nasframe import NSC

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target
    if smoke:
        images, labels = images[:160], labels[:160]
    data = [(nasframe.ArrayDataset.from_arrays("digits", images, labels, test=0.0, seed=0), 6)]
    if smoke:
        data[0] = (data[0][0], 2)
    else:
        rng = np.random.default_rng(0)
        x = rng.random((1024, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, 1024)
        data.append((nasframe.ArrayDataset.from_arrays("cifar-sized", x, y, test=0.0, seed=0), 4))
    rows: dict[str, float] = {}
    for dataset, epochs in data:
        # one throw-away run: TensorFlow's one-time start-up belongs to no row
        KerasEstimator(KerasSettings(epochs=1)).evaluate(NSC.parse("1,1,1,0,0"), dataset)
        settings = KerasSettings(epochs=epochs, lr_decay_epochs=0)
        for label, text in architectures.items():
            estimator = KerasEstimator(settings)
            start = time.perf_counter()
            evaluation = estimator.evaluate(NSC.parse(text), dataset)
            total = time.perf_counter() - start
            if not evaluation.ok:
                raise RuntimeError(f"{label}: {evaluation.status} {evaluation.message}")
            epochs_seconds = estimator.last_train.epoch_seconds
            steady = statistics.median(epochs_seconds[1:] or epochs_seconds)
            rows[f"{dataset.name} {label}"] = total - steady * len(epochs_seconds)
    print("RESULT " + json.dumps({"code": nasframe.__file__, "rows": rows}))


def measure(root: Path, smoke: bool, architectures: dict[str, str]) -> dict[str, float]:
    """One worker process on the code under ``root``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "plugins")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "fixed_cost_vs_commit.py"),
        "--worker",
        "--architectures",
        json.dumps(architectures),
    ]
    if smoke:
        command.append("--smoke")
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"the worker on {root} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    if not str(result["code"]).startswith(str(root)):
        raise RuntimeError(f"the worker on {root} imported nasframe from {result['code']}")
    return dict(result["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commit", default="f94a28c", help="the baseline's commit")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--architectures", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.smoke, json.loads(args.architectures))
        return
    from benchmarks.estimator_throughput import ARCHITECTURES

    architectures = {"chain": ARCHITECTURES["chain"]} if args.smoke else ARCHITECTURES
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:
            baseline, label, repeats = ROOT, "this checkout", 1
        else:
            baseline, label, repeats = Path(scratch) / "baseline", args.commit, args.repeats
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    "-q",
                    str(baseline),
                    args.commit,
                ],
                check=True,
            )
        try:
            versions = {label: baseline, "now": ROOT}
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
            for repeat in range(repeats):
                order = list(versions) if repeat % 2 == 0 else list(versions)[::-1]
                for name in order:
                    runs[name].append(measure(versions[name], args.smoke, architectures))
        finally:
            if not args.smoke:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                    check=False,
                )
    print(f"fixed cost per candidate (s, median of {repeats} runs each, alternated)")
    print(f"{'row':<26} {label:>14} {'now':>8} {'ratio':>6}")
    medians: dict[str, list[float]] = {name: [] for name in runs}
    for row in runs["now"][0]:
        for name in runs:
            medians[name].append(statistics.median(run[row] for run in runs[name]))
        then, now = medians[label][-1], medians["now"][-1]
        print(f"{row:<26} {then:>14.3f} {now:>8.3f} {then / now:>6.2f}")
    then, now = statistics.median(medians[label]), statistics.median(medians["now"])
    print(
        f"ratio {label}/now (median fixed cost {then:.3f} s vs {now:.3f} s): "
        f"{then / now:.2f}x (target >= 2)"
    )


if __name__ == "__main__":
    main()
