"""Memory flatness of the Keras estimator: peak RSS after evaluation 200 vs after 10.

One command::

    .venv/bin/python benchmarks/estimator_memory.py [--evaluations 200] [--baseline 10]

(``--smoke``: 3 evaluations; the test suite runs it, marked slow).

Evaluates a rotation of five small architectures on sklearn's bundled 8x8 digits (a
512-image training subset, one epoch, a 64-unit head) and prints the peak resident set
size after evaluation ``--baseline`` and after the last one, and their ratio (target
from issue 4: within 10%, i.e. <= 1.10). ``--no-clear`` skips the estimator's
``keras.backend.clear_session()`` to show the growth it prevents.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

#: Its smoke mode trains with TensorFlow: the test suite marks it slow.
SMOKE_SLOW = True


ROTATION = (
    "1,1,3,0,0",
    "1,1,3,0,0;2,2,2,1,0",
    "1,1,1,0,0;2,1,3,0,0;3,5,0,1,2",
    "1,1,3,0,0;2,1,1,0,0;3,6,0,1,2;4,3,2,3,0",
    "",
)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument(
        "--no-clear", action="store_true", help="skip clear_session (shows the growth it stops)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.evaluations, args.baseline = 3, 1

    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.settings import KerasSettings
    from sklearn.datasets import load_digits

    import nasframe

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:640, ..., None]
    data = nasframe.ArrayDataset.from_arrays(
        "digits", images, digits.target[:640], validation=0.2, test=0.0, seed=0
    )
    estimator = KerasEstimator(KerasSettings(epochs=1, batch_size=64, fc_units=64))
    if args.no_clear:
        estimator._release = lambda: None  # type: ignore[method-assign]
    start = time.perf_counter()
    at_baseline = 0.0
    for i in range(1, args.evaluations + 1):
        nsc = nasframe.NSC.parse(ROTATION[i % len(ROTATION)])
        evaluation = estimator.evaluate(nsc, data, seed=i)
        assert evaluation.ok, evaluation.message
        if i == args.baseline:
            at_baseline = peak_rss_mib()
        if i % 25 == 0:
            rate = i / (time.perf_counter() - start)
            print(f"evaluation {i}: peak RSS {peak_rss_mib():.0f} MiB, {rate:.2f} evaluations/s")
    final = peak_rss_mib()
    print(
        f"peak RSS after evaluation {args.baseline}: {at_baseline:.0f} MiB; after evaluation "
        f"{args.evaluations}: {final:.0f} MiB; ratio {final / at_baseline:.3f} (target <= 1.10); "
        f"{(time.perf_counter() - start) / args.evaluations:.2f} s per evaluation"
    )
    print(f"ratio peak RSS last/baseline: {final / at_baseline:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
