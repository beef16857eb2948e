"""A short check of the estimator's GPU settings, for a machine with a GPU.

One command (the lead runs it on a GPU machine; it also runs, slowly, on CPU)::

    python benchmarks/gpu_check.py [--epochs 2]

(``--smoke``: 256 images, one epoch, two settings; the test suite runs it, marked slow.)

It evaluates one NSC on 32x32x3 random data of CIFAR-10's size with the default
settings and then with each GPU setting on its own -- ``memory_growth``,
``mixed_precision``, ``jit_compile`` (XLA) -- and all three together, printing the
device, then per run the status, accuracy, seconds and the steady training rate, and the
ratio of each setting's training rate to the default's. ``memory_growth`` can
only take effect before TensorFlow touches the GPU, so it is applied first, by the first
estimator that asks for it, and stays on for the rest of the process (printed).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

#: Its smoke mode trains with TensorFlow: the test suite marks it slow.
SMOKE_SLOW = True


NSC_TEXT = "1,1,3,0,0;2,1,1,0,0;3,5,0,1,2;4,1,3,3,0;5,2,2,4,0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--examples", type=int, default=8192)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.examples = 1, 256

    import tensorflow as tf
    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.settings import KerasSettings

    import nasframe

    rng = np.random.default_rng(0)
    x = rng.random((args.examples, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, args.examples)
    data = nasframe.ArrayDataset.from_arrays("cifar-sized", x, y, test=0.0, seed=0)
    nsc = nasframe.NSC.parse(NSC_TEXT)
    runs = [
        ("memory_growth", {"memory_growth": True}),
        ("default", {}),
        ("mixed_precision", {"mixed_precision": True}),
        ("jit_compile", {"jit_compile": True}),
        ("all three", {"memory_growth": True, "mixed_precision": True, "jit_compile": True}),
    ]
    if args.smoke:
        runs = runs[:2]
    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow {tf.__version__}; GPUs: {[gpu.name for gpu in gpus] or 'none (CPU)'}")
    print(f"NSC {NSC_TEXT}; {data.num_examples('train')} training images; {args.epochs} epochs")
    rates: dict[str, float] = {}
    for label, settings in runs:
        estimator = KerasEstimator(KerasSettings(epochs=args.epochs, **settings))  # type: ignore[arg-type]
        start = time.perf_counter()
        # Unseeded: a seed switches TensorFlow's op determinism on for the whole process,
        # and XLA (jit_compile) has no deterministic max-pooling gradient.
        evaluation = estimator.evaluate(nsc, data, seed=None)
        wall = time.perf_counter() - start
        epochs = estimator.last_train.epoch_seconds if estimator.last_train else []
        rate = data.num_examples("train") / statistics.median(epochs[1:] or epochs) if epochs else 0
        growth = [tf.config.experimental.get_memory_growth(gpu) for gpu in gpus]
        print(
            f"{label:<16} status={evaluation.status} accuracy={evaluation.accuracy:.4f} "
            f"seconds={wall:.2f} images/s={rate:.0f} memory_growth={growth} "
            f"{evaluation.message}"
        )
        rates[label] = rate
    for label, rate in rates.items():
        if label != "default":
            ratio = rate / rates["default"] if rates["default"] else float("nan")
            print(f"ratio images/s {label}/default: {ratio:.2f}x")


if __name__ == "__main__":
    main()
