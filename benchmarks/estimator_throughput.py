"""Training throughput of the Keras estimator vs hand-written ``model.fit`` and ``tf.function``.

One command::

    .venv/bin/python benchmarks/estimator_throughput.py [--repeats 3] [--epochs 4]
        [--small-epochs 6] [--quick] [--smoke]

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

Two more lines follow: the fixed cost of a tiny candidate with and without the
estimator's ``gc.freeze()`` (interleaved), and the training rate of seeded runs without
and with TensorFlow's op determinism (sequential: it cannot be switched off again).

``--smoke`` (the test suite runs it, marked slow): one architecture, 160 digits, one
repeat of two epochs -- it checks that the benchmark runs, nothing more.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

#: Its smoke mode trains with TensorFlow: the test suite marks it slow.
SMOKE_SLOW = True


ARCHITECTURES = {
    "chain": "1,1,3,0,0;2,1,3,1,0;3,2,2,2,0",
    "multi-branch": "1,1,3,0,0;2,1,1,0,0;3,5,0,1,2;4,1,3,0,0;5,6,0,3,4;6,2,3,5,0",
    "deep": "1,1,3,0,0;2,1,1,1,0;3,1,3,2,0;4,1,1,3,0;5,1,1,4,0;6,1,1,5,0;7,1,1,6,0;8,2,2,7,0",
}


def datasets(quick: bool, smoke: bool = False):
    from sklearn.datasets import load_digits

    import nasframe

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    if smoke:
        images, labels = images[:160], digits.target[:160]
    else:
        labels = digits.target
    yield nasframe.ArrayDataset.from_arrays("digits", images, labels, test=0.0, seed=0)
    if smoke:
        return  # the CIFAR-sized data runs the same code
    rng = np.random.default_rng(0)
    n = 512 if quick else 1024
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, n)
    yield nasframe.ArrayDataset.from_arrays("cifar-sized", x, y, test=0.0, seed=0)


def run_estimator(nsc, data, settings, epochs, seed=None):
    from nasframe_keras.estimator import KerasEstimator

    estimator = KerasEstimator(settings)
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
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    architectures = ARCHITECTURES
    if args.smoke:
        args.repeats, args.epochs, args.small_epochs = 1, 2, 2
        architectures = {"chain": ARCHITECTURES["chain"]}

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
    gc_freeze_gain(args)
    determinism_cost(last, KerasSettings(epochs=args.epochs, lr_decay_epochs=0), args)


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
    for repeat in range(2 if args.smoke else 2 * max(3, args.repeats)):
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
