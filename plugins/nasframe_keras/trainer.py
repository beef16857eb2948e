"""The early-stop trainer: a compiled train step of our own over ``tf.data``.

Why not ``model.fit``: on the 2-core development machine ``fit`` on a small CNN ran whole
epochs at half speed at random (issue 4; ``benchmarks/estimator_throughput.py`` compares
the two), and its callbacks, metrics and per-epoch setup add to the fixed cost of every
candidate. One ``tf.function`` train step with a fixed, full-batch input signature is
traced once per model; the epoch loop is plain Python, which also lets the wall-clock
budget be checked after every step.

The Adam update is traced by the trainer itself (:class:`_Adam`): Keras' arithmetic op
for op, bit-identical, at about half the traced ops of Keras' optimizer -- tracing is
most of a small candidate's fixed cost (issue 13).

Semantics (docs/estimator.md):

* the train split, shuffled every pass from the seed, is repeated without end and cut
  into full batches (NASGym's input function did the same); an epoch is
  ``ceil(n_train / batch_size)`` steps;
* with ``augmentation`` the training batches are randomly translated (and mirrored),
  from the seed; validation and test data never are;
* Adam(learning_rate, beta1, beta2, epsilon), sparse softmax cross-entropy on logits;
* the learning rate of epoch ``e`` (from 0) is
  ``learning_rate * lr_decay ** (e // lr_decay_epochs)`` and is written into the
  optimizer before the epoch (NASGym's decay never fired);
* accuracy is measured on the validation split only: after every epoch when early
  stopping or a time budget is on (so the best accuracy so far is known), else after the
  last epoch; the reported accuracy is the best measured one;
* batch normalisation (``batch_norm``, docs/estimator.md#batch-normalisation): by
  default every BatchNormalization layer of the model gets momentum
  ``batch_norm_momentum`` (0.9) before the first step, so its moving averages settle in
  a short training (with Keras' 0.99 they keep a third of their initial values after 100
  steps, and inference-mode accuracy of stacked convolutions falls to chance);
  ``recompute`` instead recomputes the statistics from the training subset below
  before every measurement; ``as-built`` leaves the layers alone (the first trainer);
* the training accuracy is measured once, after the last epoch, in inference mode as
  the validation accuracy is, on a fixed subset of the training split: its first
  examples, as many as the validation split has;
* a NaN or infinite mean training loss of an epoch stops training with ``diverged``;
* the wall-clock budget is checked after every step; running out stops with ``timeout``
  and keeps the best accuracy so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasframe import DatasetHandler, Status
from nasframe_keras.settings import KerasSettings

__all__ = [
    "TrainResult",
    "TrainingCallbacks",
    "batch_norm_layers",
    "input_pipelines",
    "learning_rate_at",
    "recompute_batch_norm",
    "train",
    "train_subset",
]


@dataclass(frozen=True)
class TrainingCallbacks:
    """Pluggable parts of the training loop: ``KerasEstimator(callbacks=...)``.

    Attributes:
        name: a versioned name (``"cosine-v1"``) that goes into the estimator's
            fingerprint: results trained with other callbacks never share cache entries.
            Change it whenever what the callbacks do changes.
        learning_rate: ``(epoch, settings) -> rate`` for epoch ``epoch`` (from 0), written
            into the optimizer before the epoch; replaces the step decay of
            ``lr_decay``/``lr_decay_epochs``. ``None``: the step decay.
        augment: ``(images, labels) -> (images, labels)`` of TensorFlow ops applied to
            every training batch (shape kept: ``(batch_size, *input_shape)``); validation
            and test batches are never augmented. ``None``: no augmentation.

    Module-level functions keep an estimator picklable (Ray workers).
    """

    name: str
    learning_rate: Callable[[int, KerasSettings], float] | None = None
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes:
        status: ``ok``, ``diverged`` or ``timeout``.
        accuracy: the best validation accuracy measured (0 if none was).
        epochs: epochs completed.
        message: why the status is not ``ok``.
        learning_rates: the optimizer's learning rate read back at the start of each epoch.
        accuracies: the validation accuracy of each epoch it was measured after
            (``(epoch, accuracy)``, epochs from 1).
        losses: the mean training loss of each completed epoch.
        epoch_seconds: wall seconds of the training pass of each completed epoch
            (validation excluded), for throughput measurements.
        test_accuracy: the accuracy on the test split after the last epoch, when
            :func:`train` was asked for it and the training ended ``ok``.
        train_accuracy: the accuracy on the training subset (inference mode, final
            weights) after a training that ended ``ok``; ``None`` otherwise.
    """

    status: Status = Status.OK
    accuracy: float = 0.0
    epochs: int = 0
    message: str = ""
    learning_rates: list[float] = field(default_factory=list)
    accuracies: list[tuple[int, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    test_accuracy: float | None = None
    train_accuracy: float | None = None


def learning_rate_at(epoch: int, settings: KerasSettings) -> float:
    """The scheduled learning rate of ``epoch`` (counted from 0)."""
    if settings.lr_decay_epochs <= 0:
        return settings.learning_rate
    return float(settings.learning_rate * settings.lr_decay ** (epoch // settings.lr_decay_epochs))


def input_pipelines(
    dataset: DatasetHandler,
    batch_size: int,
    *,
    seed: int | None = None,
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
) -> tuple[Any, Any, int]:
    """The train and validation ``tf.data`` pipelines and the steps of one epoch.

    The train pipeline is NASGym's input: the train split, shuffled every pass from
    ``seed``, repeated without end and cut into full batches; an epoch is
    ``ceil(n_train / batch_size)`` steps. Full batches give the train step a static
    shape -- one trace, and CPU kernels picked for the real batch size, which ran faster
    here than a step traced for any batch size. The validation pipeline is the
    validation split in order, the last batch possibly short. ``augment`` maps every
    training batch (see :class:`TrainingCallbacks`).
    """
    import tensorflow as tf

    steps_per_epoch = -(-dataset.num_examples("train") // batch_size)
    # tf.data's autotuner off. Measured on 2 cores (benchmarks/scaling.py): with it on, a
    # training given one CPU -- a Ray worker with num_cpus=1 -- sat idle for 25-35 % of
    # its wall time waiting on the pipeline, and two such trainings side by side ran 1.5x
    # as fast as one instead of 2x. With it off each keeps its CPU busy, and a training
    # that has every core is as fast as before. Parallel maps (AUTOTUNE) then run as wide
    # as tf.data's thread pool.
    options = tf.data.Options()
    options.autotune.enabled = False
    train_data = (
        dataset.tf_dataset("train", batch_size=batch_size, shuffle=True, seed=seed)
        .repeat()
        .rebatch(batch_size, drop_remainder=True)
    )
    if augment is not None:
        train_data = train_data.map(augment, deterministic=True)
    train_data = train_data.prefetch(tf.data.AUTOTUNE).with_options(options)
    validation = dataset.tf_dataset("validation", batch_size=batch_size).with_options(options)
    return train_data, validation, steps_per_epoch


def train_subset(dataset: DatasetHandler, batch_size: int) -> Any:
    """The fixed training subset: the first examples of the train split, in order.

    As many as the validation split has (all of the train split if that is smaller), in
    batches of ``batch_size``; never augmented. The training accuracy is measured on it,
    and ``batch_norm = recompute`` computes the statistics from it.
    """
    count = min(dataset.num_examples("train"), max(1, dataset.num_examples("validation")))
    return (
        dataset.tf_dataset("train", batch_size=batch_size)
        .unbatch()
        .take(count)
        .batch(batch_size)
        .cache()
    )


def batch_norm_layers(model: Any) -> list[Any]:
    """Every ``keras.layers.BatchNormalization`` of ``model``, nested models included."""
    import keras

    return [
        layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]


def _all_layers(model: Any) -> list[Any]:
    # Keras' own recursive walk where the model has it (any keras.Model), else its layers
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    return list(getattr(model, "layers", []))


def recompute_batch_norm(model: Any, batches: Any, *, function: Any = None) -> Any:
    """Recompute every batch-norm layer's moving statistics from ``batches``.

    Each batch is passed through ``model`` in training mode -- every batch-norm layer
    normalises with the statistics of the batch, as in training -- with dropout off; the
    moving mean and variance become the average of the batches' means and variances,
    weighted by batch size (Wu and Johnson's "precise BN"). The weights do not change.

    Args:
        model: the trained Keras model.
        batches: an iterable of ``(images, labels)`` (labels are ignored).
        function: what an earlier call returned, to reuse its traced pass (the layers
            must be the same); ``None`` traces a new one.

    Returns:
        The traced pass, for the next call on the same model.
    """
    norms = batch_norm_layers(model)
    if not norms:
        return function

    sums: list[list[Any]] | None = None
    total = 0
    for images, *_ in batches:
        count = int(images.shape[0])
        if function is None:
            function = _statistics_pass(model, norms, images)
        moments = function(images)
        weighted = [[mean * count, variance * count] for mean, variance in moments]
        if sums is None:
            sums = weighted
        else:
            for pair, (mean, variance) in zip(sums, weighted, strict=True):
                pair[0] += mean
                pair[1] += variance
        total += count
    if sums is not None and total:
        for layer, (mean, variance) in zip(norms, sums, strict=True):
            layer.moving_mean.assign(mean / total)
            layer.moving_variance.assign(variance / total)
    return function


def _statistics_pass(model: Any, norms: list[Any], images: Any) -> Any:
    """The traced training-mode pass of ``recompute_batch_norm``: one trace per model.

    The batch dimension is left open, so the last, smaller batch of the subset runs the
    same graph instead of tracing a second one (tracing is most of the pass's cost).
    """
    import keras
    import tensorflow as tf

    dropouts = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.Dropout)]
    spec = tf.TensorSpec((None, *images.shape[1:]), images.dtype)

    @tf.function(input_signature=[spec], autograph=False)
    def function(images: Any) -> Any:
        # Python, so it runs once, while tracing: momentum 0 makes each layer's moving
        # statistics exactly the batch's; no dropout, as the reference.
        momenta = [layer.momentum for layer in norms]
        rates = [layer.rate for layer in dropouts]
        try:
            for layer in norms:
                layer.momentum = 0.0
            for layer in dropouts:
                layer.rate = 0.0
            model(images, training=True)
        finally:
            for layer, momentum in zip(norms, momenta, strict=True):
                layer.momentum = momentum
            for layer, rate in zip(dropouts, rates, strict=True):
                layer.rate = rate
        return [
            (tf.identity(layer.moving_mean.value), tf.identity(layer.moving_variance.value))
            for layer in norms
        ]

    return function


#: Variables of at most this many elements are updated together as one flat vector.
_FUSE_LIMIT = 1 << 16


class _Adam:
    """Keras' Adam update (``keras.optimizers.Adam``), op for op, traced straight into the step.

    Keras' optimizer spends most of a candidate's trace on its own machinery: per variable
    it rebuilds the step count, the bias corrections and the step size, and it routes every
    update through ``tf.distribute`` (an all-reduce wrapped in a ``tf.custom_gradient``,
    even on one device). Here the scalars are built once per step, and the many small
    variables (biases, BatchNorm scales and offsets, convolution kernels) are updated as
    one flat vector -- one set of update ops instead of one per variable -- while the large
    ones (the head's dense kernels) are updated one by one, so no step copies them. The
    arithmetic is Keras' ``Adam.update_step``: the same element-wise TensorFlow ops on the
    same operands in the same order, and an element-wise op does not care where in a
    tensor an element sits, so a seeded training gives bit-identical weights
    (``tests/test_keras_estimator.py`` compares both; ``benchmarks/estimator_throughput.py``
    measures the time saved).

    Args:
        variables: the model's trainable variables (Keras or TensorFlow variables).
        settings: the estimator settings (learning rate, betas, epsilon).
    """

    def __init__(self, variables: list[Any], settings: KerasSettings) -> None:
        import keras
        import tensorflow as tf

        self._variables = [v.value if isinstance(v, keras.Variable) else v for v in variables]
        #: what the gradient is taken of (the TensorFlow variables themselves)
        self.gradient_targets = self._variables
        sizes = [int(v.shape.num_elements()) for v in self._variables]
        self._small = [
            i
            for i, (size, v) in enumerate(zip(sizes, self._variables, strict=True))
            if size <= _FUSE_LIMIT and v.dtype == tf.float32
        ]
        self._small_sizes = [sizes[i] for i in self._small]
        self._m: dict[Any, Any] = {}
        self._v: dict[Any, Any] = {}
        for i, variable in enumerate(self._variables):
            if i not in self._small:
                self._m[i] = _zeros(variable.shape, variable.dtype)
                self._v[i] = _zeros(variable.shape, variable.dtype)
        if self._small:
            flat = (sum(self._small_sizes),)
            self._m["small"] = _zeros(flat, tf.float32)
            self._v["small"] = _zeros(flat, tf.float32)
        self._iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._learning_rate = tf.Variable(settings.learning_rate, dtype=tf.float32, trainable=False)
        self._beta1, self._beta2, self._epsilon = settings.beta1, settings.beta2, settings.epsilon

    def set_learning_rate(self, value: float) -> None:
        self._learning_rate.assign(value)

    def read_learning_rate(self) -> float:
        return float(self._learning_rate.numpy())

    def scale_loss(self, loss: Any) -> Any:
        return loss

    def apply(self, gradients: list[Any]) -> None:
        """Adam's update of every variable with a gradient (in the traced step)."""
        import tensorflow as tf

        # Keras' arithmetic, written with the same ops: python floats become float32
        # constants where Keras' ops convert them (1 - beta1 is rounded in double first).
        local_step = tf.cast(self._iterations + 1, tf.float32)
        beta1_power = tf.pow(tf.constant(self._beta1, tf.float32), local_step)
        beta2_power = tf.pow(tf.constant(self._beta2, tf.float32), local_step)
        lr = self._learning_rate.read_value()
        alpha = lr * tf.sqrt(1 - beta2_power) / (1 - beta1_power)
        decay1 = tf.constant(1 - self._beta1, tf.float32)
        decay2 = tf.constant(1 - self._beta2, tf.float32)
        epsilon = tf.constant(self._epsilon, tf.float32)

        def update(gradient: Any, m: Any, v: Any) -> Any:
            m.assign_add(tf.multiply(tf.subtract(gradient, m), decay1))
            v.assign_add(tf.multiply(tf.subtract(tf.square(gradient), v), decay2))
            return tf.divide(tf.multiply(m, alpha), tf.add(tf.sqrt(v), epsilon))

        small = self._small
        if any(gradients[i] is None for i in small):
            small = []  # Keras skips a variable the loss does not reach: update one by one
        for i, (gradient, variable) in enumerate(zip(gradients, self._variables, strict=True)):
            if gradient is None or i in small:
                continue
            if i not in self._m:  # a small variable updated on its own
                with tf.init_scope():  # created once, outside the traced step
                    self._m[i] = _zeros(variable.shape, variable.dtype)
                    self._v[i] = _zeros(variable.shape, variable.dtype)
            variable.assign_sub(update(gradient, self._m[i], self._v[i]))
        if small:
            flat = tf.concat([tf.reshape(gradients[i], [-1]) for i in small], axis=0)
            steps = tf.split(update(flat, self._m["small"], self._v["small"]), self._small_sizes)
            for i, step in zip(small, steps, strict=True):
                self._variables[i].assign_sub(tf.reshape(step, self._variables[i].shape))
        self._iterations.assign_add(1)


def _zeros(shape: Any, dtype: Any) -> Any:
    import tensorflow as tf

    return tf.Variable(tf.zeros(shape, dtype), trainable=False)


class _KerasAdam:
    """Keras' own Adam (with loss scaling under mixed precision), as :class:`_Adam` is used."""

    def __init__(self, variables: list[Any], settings: KerasSettings) -> None:
        import keras

        optimizer: Any = keras.optimizers.Adam(
            learning_rate=settings.learning_rate,
            beta_1=settings.beta1,
            beta_2=settings.beta2,
            epsilon=settings.epsilon,
        )
        if settings.mixed_precision:
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(variables)
        self._optimizer = optimizer
        self.gradient_targets = variables

    def set_learning_rate(self, value: float) -> None:
        self._optimizer.learning_rate.assign(value)

    def read_learning_rate(self) -> float:
        import keras

        return float(keras.ops.convert_to_numpy(self._optimizer.learning_rate))

    def scale_loss(self, loss: Any) -> Any:
        return self._optimizer.scale_loss(loss)

    def apply(self, gradients: list[Any]) -> None:
        self._optimizer.apply(gradients, self.gradient_targets)


def _augmenter(name: str, seed: int | None) -> Any:
    """The Keras preprocessing layers of augmentation ``name`` (``None`` for ``none``)."""
    if name == "none":
        return None
    import keras

    steps: list[Any] = []
    if name == "flip-shift":
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed))
    steps.append(keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed))
    return keras.Sequential(steps)


def train(
    model: Any,
    dataset: DatasetHandler,
    settings: KerasSettings,
    *,
    seed: int | None = None,
    deadline: float | None = None,
    every_epoch: bool = False,
    test: bool = False,
    _keras_optimizer: bool = False,
    callbacks: TrainingCallbacks | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset``'s train split; measure accuracy on its validation split.

    Args:
        model: a built Keras model that outputs logits.
        dataset: the data.
        settings: the estimator settings (epochs, optimizer, schedule, patience, ...).
        seed: the seed of the shuffle order (``None``: unseeded).
        deadline: a ``time.perf_counter()`` value after which training stops (timeout).
        every_epoch: measure the validation accuracy after every epoch (a learning
            curve), even without early stopping or a deadline.
        test: measure the test accuracy of the final weights (benchmark tables and final
            reports only; a search never asks for it).
        _keras_optimizer: private, for ``benchmarks/estimator_throughput.py`` only: update
            with Keras' own Adam (the path before :class:`_Adam`), to measure both.
        callbacks: a learning-rate schedule and a training-batch augmentation to use
            instead of the built-in ones.

    Returns:
        The result; failures of the run itself (NaN loss, time) are statuses. Errors
        TensorFlow raises (out of memory, ...) propagate to the caller.
    """
    import tensorflow as tf

    batch = settings.batch_size
    augment_batches = callbacks.augment if callbacks is not None else None
    schedule = callbacks.learning_rate if callbacks is not None else None
    train_data, validation_data, steps_per_epoch = input_pipelines(
        dataset, batch, seed=seed, augment=augment_batches
    )
    variables = model.trainable_variables
    optimizer: _Adam | _KerasAdam
    if settings.mixed_precision or _keras_optimizer:
        optimizer = _KerasAdam(variables, settings)
    else:
        optimizer = _Adam(variables, settings)
    loss_sum = tf.Variable(0.0, dtype=tf.float32, trainable=False)
    steps = tf.Variable(0, dtype=tf.int64, trainable=False)
    x_spec = tf.TensorSpec((None, *dataset.input_shape), tf.float32)
    y_spec = tf.TensorSpec((None,), tf.int64)
    x_batch = tf.TensorSpec((batch, *dataset.input_shape), tf.float32)
    y_batch = tf.TensorSpec((batch,), tf.int64)
    jit = True if settings.jit_compile else None
    augment = _augmenter(settings.augmentation, seed)
    if settings.batch_norm == "momentum":
        # before the train step is traced: the layers read their momentum while tracing
        for layer in batch_norm_layers(model):
            layer.momentum = settings.batch_norm_momentum
    subset = train_subset(dataset, batch)
    recompute = settings.batch_norm == "recompute"
    statistics_pass: list[Any] = [None]

    # One trace per model. No autograph: the steps have no tensor-dependent Python
    # control flow, and skipping the source conversion shortens every candidate's trace.
    @tf.function(input_signature=[x_batch, y_batch], jit_compile=jit, autograph=False)
    def train_step(images: Any, labels: Any) -> None:
        if augment is not None:
            images = augment(images, training=True)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, optimizer.gradient_targets))
        loss_sum.assign_add(loss)
        steps.assign_add(1)

    # Correct predictions are counted on the device; the count is read once per pass,
    # not once per batch (each read waits for the device).
    right = tf.Variable(0, dtype=tf.int64, trainable=False)

    @tf.function(input_signature=[x_spec, y_spec], jit_compile=jit, autograph=False)
    def count_correct(images: Any, labels: Any) -> None:
        predicted = tf.argmax(model(images, training=False), axis=-1)
        right.assign_add(tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.int64)))

    def accuracy_on(batches: Any, count: int) -> float:
        right.assign(0)
        for images, labels in batches:
            count_correct(images, labels)
        return int(right.numpy()) / max(1, count)

    def validate() -> float:
        if recompute:
            statistics_pass[0] = recompute_batch_norm(model, subset, function=statistics_pass[0])
        return accuracy_on(validation_data, dataset.num_examples("validation"))

    result = TrainResult()
    every_epoch = every_epoch or settings.patience > 0 or deadline is not None
    batches = iter(train_data)
    best_epoch = 0
    for epoch in range(settings.epochs):
        rate = schedule(epoch, settings) if schedule else learning_rate_at(epoch, settings)
        optimizer.set_learning_rate(float(rate))
        result.learning_rates.append(optimizer.read_learning_rate())
        loss_sum.assign(0.0)
        steps.assign(0)
        timed_out = False
        epoch_start = time.perf_counter()
        for _ in range(steps_per_epoch):
            images, labels = next(batches)
            train_step(images, labels)
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                break
        mean_loss = float(loss_sum.numpy()) / max(1, int(steps.numpy()))
        epoch_seconds = time.perf_counter() - epoch_start
        if not math.isfinite(mean_loss):
            result.status = Status.DIVERGED
            result.message = (
                f"the training loss became {mean_loss} in epoch {epoch + 1} "
                f"(learning rate {result.learning_rates[-1]:g})"
            )
            return result
        if timed_out:
            result.status = Status.TIMEOUT
            done = f"{result.epochs} epoch(s) finished" if result.epochs else "no epoch finished"
            result.message = f"time budget of {settings.time_budget:g} s ran out; {done}"
            return result
        result.losses.append(mean_loss)
        result.epoch_seconds.append(epoch_seconds)
        result.epochs = epoch + 1
        if every_epoch or epoch + 1 == settings.epochs:
            accuracy = validate()
            result.accuracies.append((epoch + 1, accuracy))
            if accuracy > result.accuracy or not best_epoch:
                result.accuracy, best_epoch = accuracy, epoch + 1
            elif settings.patience and epoch + 1 - best_epoch >= settings.patience:
                break
    # The last epoch was always measured, so under recompute the statistics are already
    # those of the final weights.
    count = min(dataset.num_examples("train"), max(1, dataset.num_examples("validation")))
    result.train_accuracy = accuracy_on(subset, count)
    if test and dataset.num_examples("test"):
        test_data = dataset.tf_dataset("test", batch_size=batch)
        result.test_accuracy = accuracy_on(test_data, dataset.num_examples("test"))
    return result
