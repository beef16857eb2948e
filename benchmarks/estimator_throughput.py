"""Training throughput of the Keras estimator vs hand-written ``model.fit`` and ``tf.function``.

One command::

    .venv/bin/python benchmarks/estimator_throughput.py [--repeats 3] [--epochs 4]
        [--small-epochs 6] [--quick] [--smoke] [--fixed-cost-only]

For three architectures (a chain, a multi-branch block with add and concat, a deep chain)
on two datasets -- sklearn's bundled 8x8 digits and random 32x32x3 data of CIFAR-10's
size -- three trainers run on the *identical* model (our builder, same settings), arrays,
epochs, batch size and Adam settings, interleaved round-robin so load changes on the
shared machine hit all three alike:

* ``estimator``: ``KerasEstimator.evaluate`` (build + our train step + validation);
* ``fit``: a minimal hand-written ``model.compile`` + ``model.fit`` + ``model.evaluate``
  on the validation split;
* ``loop``: a minimal hand-written ``@tf.function`` train step over ``tf.data`` and a
  validation pass.

Throughput is training images per second of the epochs after the first (the first
holds the tracing), pooled over the repeats; the table prints each trainer's median and
the ratios estimator/fit and estimator/loop (targets from issue 4: >= 1.0 and >= 0.95),
and the same ratios of the fastest epochs (on a shared machine the least disturbed).
The fixed cost per candidate is a run's total time minus its epochs at the steady
rate: model build, tracing, first-step graph optimisation, validation and clean-up
(printed for the estimator and for ``fit``). Digits epochs are short (about 1150
images), so they run ``--small-epochs``.

Then the fixed cost per candidate of the trainer's own traced Adam update against Keras'
optimizer (the path before it; selected by the estimator's private ``_keras_optimizer``
flag), interleaved, on the digits and on NSC-Bench's translated digits
(``shifted-digits-v1``, 20x20 canvas, 12x12 digits, NSC-Bench's ``[keras]`` settings),
with the ratio of the medians. Two more lines follow: the fixed cost of a tiny candidate
with and without the estimator's ``gc.freeze()`` (interleaved), and the training rate of
seeded runs without and with TensorFlow's op determinism (sequential: it cannot be
switched off again).

``--fixed-cost-only`` runs only that comparison. ``--smoke`` runs a seconds-long version
(digits only, one architecture, one repeat, two epochs, no gc or determinism lines) for
the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

ARCHITECTURES = {
    "chain": "1,1,3,0,0;2,1,3,1,0;3,2,2,2,0",
    "multi-branch": "1,1,3,0,0;2,1,1,0,0;3,5,0,1,2;4,1,3,0,0;5,6,0,3,4;6,2,3,5,0",
    "deep": "1,1,3,0,0;2,1,1,1,0;3,1,3,2,0;4,1,1,3,0;5,1,1,4,0;6,1,1,5,0;7,1,1,6,0;8,2,2,7,0",
}


def digits_data(smoke: bool = False):
    from sklearn.datasets import load_digits

    import nasframe

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target
    if smoke:  # a few steps per epoch: the smoke run checks that the code runs
        images, labels = images[:160], labels[:160]
    return nasframe.ArrayDataset.from_arrays("digits", images, labels, test=0.0, seed=0)


def datasets(quick: bool, smoke: bool = False):
    import nasframe

    yield digits_data(smoke)
    if smoke:
        return
    rng = np.random.default_rng(0)
    n = 512 if quick else 1024
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, n)
    yield nasframe.ArrayDataset.from_arrays("cifar-sized", x, y, test=0.0, seed=0)


def run_estimator(nsc, data, settings, epochs, seed=None, keras_optimizer=False):
    from nasframe_keras.estimator import KerasEstimator

    estimator = KerasEstimator(settings)
    estimator._keras_optimizer = keras_optimizer
    start = time.perf_counter()
    evaluation = estimator.evaluate(nsc, data, seed=seed)
    total = time.perf_counter() - start
    assert evaluation.ok, evaluation.message
    return total, estimator.last_train.epoch_seconds


def _model(nsc, data, settings):
    import keras
    from nasframe_keras.builder import build_model

    return keras, build_model(nsc, data.input_shape, data.num_classes, settings)


def _adam(keras, s):
    return keras.optimizers.Adam(s.learning_rate, beta_1=s.beta1, beta_2=s.beta2, epsilon=s.epsilon)


def run_fit(nsc, data, settings, epochs):
    start = time.perf_counter()
    keras, model = _model(nsc, data, settings)
    x, y = data.arrays("train")
    times: list[float] = []

    callback: Any = keras.callbacks.Callback

    class Timer(callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=_adam(keras, settings), loss=loss, metrics=["sparse_categorical_accuracy"]
    )
    model.fit(x, y, batch_size=settings.batch_size, epochs=epochs, verbose=0, callbacks=[Timer()])
    # the estimator measures validation accuracy; so does every hand-written equivalent
    model.evaluate(*data.arrays("validation"), batch_size=settings.batch_size, verbose=0)
    total = time.perf_counter() - start
    keras.backend.clear_session()
    return total, times


def run_loop(nsc, data, settings, epochs):
    import tensorflow as tf

    start = time.perf_counter()
    keras, model = _model(nsc, data, settings)
    x, y = data.arrays("train")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y)).batch(settings.batch_size)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    optimizer = _adam(keras, settings)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    @tf.function
    def correct(images, labels):
        predicted = tf.argmax(model(images, training=False), axis=-1)
        return tf.reduce_sum(tf.cast(predicted == labels, tf.int64))

    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        for images, labels in ds:
            step(images, labels)
        times.append(time.perf_counter() - t)
    xv, yv = data.arrays("validation")
    validation = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(settings.batch_size)
    sum(int(correct(images, labels)) for images, labels in validation) / len(yv)
    total = time.perf_counter() - start
    keras.backend.clear_session()
    return total, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="epochs on CIFAR-sized data")
    parser.add_argument("--small-epochs", type=int, default=6, help="epochs on digits")
    parser.add_argument("--quick", action="store_true", help="fewer CIFAR-sized examples")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: digits, one architecture, one repeat"
    )
    parser.add_argument(
        "--fixed-cost-only",
        action="store_true",
        help="only the fixed-cost comparison (Keras' optimizer vs the traced Adam)",
    )
    args = parser.parse_args()
    if args.fixed_cost_only:
        fixed_cost_paths(args)
        return
    if args.smoke:
        args.repeats, args.small_epochs, args.epochs = 1, 2, 2
    architectures = {"chain": ARCHITECTURES["chain"]} if args.smoke else ARCHITECTURES

    from nasframe_keras.settings import KerasSettings

    from nasframe import NSC

    runners = {"estimator": run_estimator, "fit": run_fit, "loop": run_loop}
    print(
        f"epochs {args.small_epochs} (digits) / {args.epochs} (cifar-sized), batch 128, "
        f"repeats {args.repeats}"
    )
    header = (
        f"{'dataset':<12} {'architecture':<13} {'estimator':>10} {'fit':>7} {'loop':>7} "
        f"{'est/fit':>8} {'est/loop':>9} {'best e/f':>9} {'best e/l':>9} "
        f"{'fixed s':>8} {'fit fixed':>9}"
    )
    print(
        "images/s: median over every steady epoch of every repeat (pooled); 'best' ratios "
        "compare each trainer's fastest epoch, the least disturbed by other processes"
    )
    print(header)
    ratios_fit, ratios_loop, fixed_all = [], [], []
    last = None
    for data in datasets(args.quick, args.smoke):
        last = data
        epochs = args.small_epochs if data.name == "digits" else args.epochs
        settings = KerasSettings(epochs=epochs, lr_decay_epochs=0)
        n_train = data.num_examples("train")
        # one throw-away run: TensorFlow's one-time start-up belongs to no trainer
        run_estimator(NSC.parse("1,1,1,0,0"), data, KerasSettings(epochs=1), 1)
        for label, text in architectures.items():
            nsc = NSC.parse(text)
            rates: dict[str, list[float]] = {name: [] for name in runners}
            fixed: dict[str, list[float]] = {name: [] for name in runners}
            for repeat in range(args.repeats):
                order = list(runners)
                order = order[repeat % 3 :] + order[: repeat % 3]  # rotate who goes first
                for name in order:
                    total, times = runners[name](nsc, data, settings, epochs)
                    steady = times[1:] or times
                    rates[name].extend(n_train / t for t in steady)
                    fixed[name].append(total - statistics.median(steady) * len(times))
            med = {name: statistics.median(values) for name, values in rates.items()}
            best = {name: max(values) for name, values in rates.items()}
            r_fit, r_loop = med["estimator"] / med["fit"], med["estimator"] / med["loop"]
            ratios_fit.append(r_fit)
            ratios_loop.append(r_loop)
            fixed_est = statistics.median(fixed["estimator"])
            fixed_all.append(fixed_est)
            print(
                f"{data.name:<12} {label:<13} {med['estimator']:>10.0f} {med['fit']:>7.0f} "
                f"{med['loop']:>7.0f} {r_fit:>8.2f} {r_loop:>9.2f} "
                f"{best['estimator'] / best['fit']:>9.2f} {best['estimator'] / best['loop']:>9.2f} "
                f"{fixed_est:>8.2f} {statistics.median(fixed['fit']):>9.2f}"
            )
    print(
        f"overall median ratio estimator/fit {statistics.median(ratios_fit):.2f}x (target >= 1.0), "
        f"estimator/loop {statistics.median(ratios_loop):.2f}x (target >= 0.95); "
        f"fixed cost per candidate median {statistics.median(fixed_all):.2f} s"
    )
    print(
        f"ratio estimator/fit {statistics.median(ratios_fit):.2f}x, estimator/loop "
        f"{statistics.median(ratios_loop):.2f}x (medians over every dataset and architecture)"
    )
    fixed_cost_paths(args)
    if args.smoke:
        return
    gc_freeze_gain(args)
    determinism_cost(last, KerasSettings(epochs=args.epochs, lr_decay_epochs=0), args)


#: small candidates for the fixed-cost comparison: most of their evaluation is fixed cost
FIXED_COST_ARCHITECTURES = {
    "empty": "",
    "conv": "1,1,3,0,0",
    "conv+pool": "1,1,3,0,0;2,2,2,1,0",
    "chain": ARCHITECTURES["chain"],
}


def fixed_cost_datasets(args):
    """The digits (the table's settings) and NSC-Bench's data with NSC-Bench's settings."""
    from nasframe_keras.settings import KerasSettings

    yield digits_data(args.smoke), KerasSettings(epochs=args.small_epochs, lr_decay_epochs=0)
    if args.smoke:
        return
    from nasframe_digits.shifted import ShiftedDigitsDataset

    # resources/nsc-bench.ini: the data and [keras] settings of the NSC-Bench build
    shifted = ShiftedDigitsDataset(canvas=20, digit=12, placements=4, eval_placements=2)
    yield shifted, KerasSettings(epochs=6, padding="same", filters=16, fc_units=128)


def fixed_cost_paths(args) -> None:
    """Fixed cost per candidate: the trainer's traced Adam vs Keras' optimizer, interleaved.

    The fixed cost of a run is its total time minus its epochs at its own steady rate (the
    median epoch after the first), as in the table above. Both paths train bit-identical
    weights (tested), so only time differs.
    """
    from nasframe import NSC

    paths = {"keras optimizer": True, "traced adam": False}
    architectures = FIXED_COST_ARCHITECTURES
    if args.smoke:
        architectures = {"conv": FIXED_COST_ARCHITECTURES["conv"]}
    print(
        "fixed cost per candidate (s, median over repeats): Keras' optimizer (before) vs the "
        "trainer's traced Adam (now), interleaved"
    )
    print(
        f"{'dataset':<16} {'architecture':<13} {'before':>7} {'now':>7} {'ratio':>6} "
        f"{'img/s before':>13} {'img/s now':>10} {'rate ratio':>11}"
    )
    before_all, now_all, rate_ratios = [], [], []
    for data, settings in fixed_cost_datasets(args):
        run_estimator(NSC.parse("1,1,1,0,0"), data, settings, settings.epochs)  # warm-up
        for label, text in architectures.items():
            nsc = NSC.parse(text)
            fixed: dict[str, list[float]] = {name: [] for name in paths}
            rates: dict[str, list[float]] = {name: [] for name in paths}
            for repeat in range(max(args.repeats, 2)):
                order = list(paths) if repeat % 2 == 0 else list(paths)[::-1]
                for name in order:
                    total, times = run_estimator(
                        nsc, data, settings, settings.epochs, keras_optimizer=paths[name]
                    )
                    steady = times[1:] or times
                    fixed[name].append(total - statistics.median(steady) * len(times))
                    rates[name].extend(data.num_examples("train") / t for t in steady)
            before = statistics.median(fixed["keras optimizer"])
            now = statistics.median(fixed["traced adam"])
            rate_before = statistics.median(rates["keras optimizer"])
            rate_now = statistics.median(rates["traced adam"])
            before_all.append(before)
            now_all.append(now)
            rate_ratios.append(rate_now / rate_before)
            print(
                f"{data.name:<16} {label:<13} {before:>7.2f} {now:>7.2f} {before / now:>6.2f} "
                f"{rate_before:>13.0f} {rate_now:>10.0f} {rate_now / rate_before:>11.2f}"
            )
    before, now = statistics.median(before_all), statistics.median(now_all)
    print(
        f"fixed cost per candidate median: {before:.2f} s before, {now:.2f} s now; "
        f"ratio {before / now:.2f}x (target >= 2); steady training rate now/before "
        f"{statistics.median(rate_ratios):.2f}x"
    )


def gc_freeze_gain(args) -> None:
    """Fixed cost per candidate with TensorFlow's objects frozen out of the GC vs not.

    The estimator freezes once, on its first evaluation; ``gc.unfreeze()`` undoes it for
    the runs labelled "without", interleaved with runs re-frozen by ``gc.freeze()``.
    """
    import gc

    from nasframe_keras.settings import KerasSettings

    from nasframe import NSC, ArrayDataset

    rng = np.random.default_rng(1)
    data = ArrayDataset.from_arrays(
        "tiny", rng.random((160, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 160)
    )
    nsc = NSC.parse(ARCHITECTURES["multi-branch"])
    tiny = KerasSettings(epochs=1, fc_units=64)
    costs: dict[str, list[float]] = {"with": [], "without": []}
    for repeat in range(2 * max(3, args.repeats)):
        label = "without" if repeat % 2 else "with"
        if label == "without":
            gc.unfreeze()
        else:
            gc.freeze()
        costs[label].append(run_estimator(nsc, data, tiny, 1)[0])
    gc.freeze()
    with_, without = statistics.median(costs["with"]), statistics.median(costs["without"])
    print(
        f"fixed cost of a 1-epoch candidate on 96 images: {with_:.2f} s with gc.freeze, "
        f"{without:.2f} s without; ratio {without / with_:.2f}x"
    )


def determinism_cost(data, settings, args) -> None:
    """Seeded runs without, then with, op determinism (it cannot be switched off again)."""
    import dataclasses

    from nasframe import NSC

    nsc = NSC.parse(ARCHITECTURES["multi-branch"])
    rates = {}
    for deterministic in (False, True):
        chosen = dataclasses.replace(settings, deterministic=deterministic)
        values = []
        for repeat in range(args.repeats):
            _, times = run_estimator(nsc, data, chosen, args.epochs, seed=repeat)
            values.append(data.num_examples("train") / statistics.median(times[1:] or times))
        rates[deterministic] = statistics.median(values)
    print(
        f"op determinism ({data.name}, multi-branch, seeded, sequential): "
        f"{rates[False]:.0f} images/s without, {rates[True]:.0f} with; "
        f"ratio {rates[True] / rates[False]:.2f}x"
    )


if __name__ == "__main__":
    main()
