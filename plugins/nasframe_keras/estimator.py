"""The Keras performance estimator ``keras-v1``: build, train early-stopped, report.

Importing this module does not import TensorFlow; :meth:`KerasEstimator.evaluate` does.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import nasframe
from nasframe import (
    NSC,
    ConfigError,
    DatasetHandler,
    Evaluation,
    Measurement,
    NetworkBuilder,
    PerformanceEstimator,
    Status,
    fingerprint_of,
    get_plugin_manager,
)
from nasframe_keras.builders import builtin_builder
from nasframe_keras.settings import KerasSettings, SettingsView
from nasframe_keras.trainer import TrainingCallbacks

__all__ = ["KerasEstimator", "classify_error", "create_estimator"]

log = logging.getLogger(__name__)


def create_estimator(
    composition: nasframe.Composition | None = None, **settings: Any
) -> KerasEstimator:
    """The registry factory: an estimator from the ``[keras]`` section's values.

    ``builder`` is a name or, from the composition (``[keras] builder`` is a component
    key), the registered :class:`~nasframe.NetworkBuilder` itself; a name is built with
    ``composition``'s plugin manager when one is given.

    Raises:
        ConfigError: a setting is unknown or out of range, or the builder does not build
            Keras networks.
    """
    builder = settings.get("builder")
    if isinstance(builder, str) and composition is not None:
        known = builtin_builder(builder)
        builder = known or composition.create("builder", builder)
    if isinstance(builder, NetworkBuilder):
        settings = {**settings, "builder": builder.name}
        return KerasEstimator(KerasSettings.from_mapping(settings), builder=builder)
    return KerasEstimator(KerasSettings.from_mapping(settings))


class KerasEstimator(PerformanceEstimator):
    """Trains the network of an NSC with Keras (TensorFlow backend) and reports it.

    ``evaluate`` never raises: a failure is a status (``invalid``, ``diverged``,
    ``out_of_memory``, ``timeout``, ``error``) with a one-line message.

    Args:
        settings: the estimator settings; defaults are NASGym's (see ``docs/estimator.md``).
        builder: the network builder; by default the one ``settings.builder`` names (this
            plugin's own, or else one registered by an installed plugin).
        callbacks: a :class:`~nasframe_keras.trainer.TrainingCallbacks` -- a learning-rate
            schedule and a training-batch augmentation replacing the built-in ones; its
            ``name`` goes into the fingerprint.

    Raises:
        ConfigError: the builder does not build Keras networks.
        RegistryError: ``settings.builder`` names no registered builder.
    """

    name = "keras-v1"
    version = "1"

    def __init__(
        self,
        settings: KerasSettings | None = None,
        builder: NetworkBuilder | None = None,
        *,
        callbacks: TrainingCallbacks | None = None,
    ) -> None:
        settings = settings or KerasSettings()
        if builder is None:
            builder = builtin_builder(settings.builder) or _registered_builder(settings.builder)
        if builder.framework != "keras":
            raise ConfigError(
                f"[keras] builder: {builder.name!r} builds {builder.framework or 'unknown'} "
                "networks; keras-v1 needs a builder of keras networks"
            )
        if builder.name != settings.builder:
            settings = replace(settings, builder=builder.name)
        self.settings = settings
        self._view: SettingsView | None = None
        #: the :class:`~nasframe.NetworkBuilder` that turns an NSC into a Keras model
        self.builder = builder
        #: the pluggable parts of the training loop (``None``: the built-in ones)
        self.callbacks = callbacks
        #: the :class:`~nasframe_keras.trainer.TrainResult` of the last training, for
        #: inspection (learning rates and accuracies per epoch)
        self.last_train: Any = None
        self._devices_configured = False
        # Private, for benchmarks/estimator_throughput.py only: train with Keras' own
        # optimizer, the path before the trainer's traced Adam, to time both in one run.
        self._keras_optimizer = False

    @property
    def _settings_view(self) -> SettingsView:
        # what builders get: one mapping per settings object, not one per evaluation
        if self._view is None or self._view.settings is not self.settings:
            self._view = SettingsView(self.settings)
        return self._view

    def fingerprint(self) -> str:
        """Name, builder and trainer versions and every result-changing setting.

        The builder counts by its own fingerprint (its name for this plugin's builders,
        so their fingerprints are those of the settings alone, as before builders were
        a plugin kind).
        """
        values = self.settings.result_settings()
        values["builder"] = self.builder.fingerprint()
        if self.callbacks is not None:
            values["callbacks"] = self.callbacks.name
        return fingerprint_of("keras", self.version, values)

    @property
    def deterministic(self) -> bool:
        """Seeded CPU runs repeat exactly when ``deterministic`` is on.

        Not with ``jit_compile``: XLA has no deterministic gradient of max pooling, so
        the estimator does not switch op determinism on for it.
        """
        return self.settings.deterministic and not self.settings.jit_compile

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """Why the network of ``architecture`` cannot be built for ``dataset``; ``None`` if it can.

        The one validity rule (:func:`nasframe.why_invalid`) with this builder's settings;
        no TensorFlow is imported.
        """
        return self.settings.why_invalid(architecture.without_terminal(), dataset.input_shape)

    def build_network(self, architecture: NSC, dataset: DatasetHandler) -> Any:
        """The untrained Keras model :meth:`evaluate` would train for ``architecture``.

        Built by the estimator's builder (``[keras] builder``). Public so that other
        estimators (the zero-cost proxies) score exactly this network without importing
        this plugin: they get the estimator from the registry and call
        this method. The model outputs logits; the caller owns it (and clears the Keras
        session when done).

        Raises:
            ValueError: the network cannot be built (the message says why).
        """
        return self.builder.build(
            architecture.without_terminal(),
            dataset.input_shape,
            dataset.num_classes,
            self._settings_view,
        )

    def network_flops(self, model: Any) -> int:
        """The FLOPs of one forward pass of one example through ``model`` (analytic).

        What :meth:`evaluate` reports as ``flops``; public for the zero-cost proxies.
        """
        from nasframe_keras.flops import model_flops

        return int(model_flops(model))

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """Build and train ``architecture`` on ``dataset``; accuracy on its validation split."""
        return self._run(architecture, dataset, seed=seed, curve=False, test=False).evaluation

    def measure(
        self,
        architecture: NSC,
        dataset: DatasetHandler,
        *,
        seed: int | None = None,
        test: bool = False,
        save_to: str | Path | None = None,
    ) -> Measurement:
        """Train as :meth:`evaluate` does, validating after every epoch; test if asked.

        The reported ``evaluation.accuracy`` is the best validation accuracy, as in
        :meth:`evaluate`; ``curve`` holds every epoch's, so a table built from it answers
        any epoch count up to ``epochs``. Validating every epoch does not change the
        training (the validation pass reads no random state).

        With ``save_to`` the trained model (final weights, logits output) is written there
        as a ``.keras`` file after a training that ended ``ok``; it loads with
        ``keras.models.load_model`` once ``nasframe_keras.builder`` is imported (its
        merge padding layer is registered there). A failed save is status ``error``.
        """
        return self._run(architecture, dataset, seed=seed, curve=True, test=test, save_to=save_to)

    def _run(
        self,
        architecture: NSC,
        dataset: DatasetHandler,
        *,
        seed: int | None,
        curve: bool,
        test: bool,
        save_to: str | Path | None = None,
    ) -> Measurement:
        start = time.perf_counter()
        budget = self.settings.time_budget
        deadline = start + budget if budget > 0 else None
        network = architecture.without_terminal()
        density = network.density()
        params = flops = 0
        gradients_before: set[str] | None = None
        try:
            from nasframe_keras.builder import BuildError
            from nasframe_keras.flops import model_flops
            from nasframe_keras.trainer import train

            self._prepare(seed)
            gradients_before = _custom_gradients()
            try:
                model = self.builder.build(
                    network, dataset.input_shape, dataset.num_classes, self._settings_view
                )
            except BuildError as exc:
                return Measurement(
                    Evaluation.failed(
                        Status.INVALID,
                        f"{network or 'the empty network'}: {exc}",
                        density=density,
                        seconds=time.perf_counter() - start,
                    )
                )
            except ValueError as exc:  # Keras' own shape checks
                return Measurement(
                    Evaluation.failed(
                        Status.INVALID,
                        f"{network}: cannot build: {exc}",
                        density=density,
                        seconds=time.perf_counter() - start,
                    )
                )
            params, flops = int(model.count_params()), model_flops(model)
            result = train(
                model,
                dataset,
                self.settings,
                seed=seed,
                deadline=deadline,
                every_epoch=curve,
                test=test,
                _keras_optimizer=self._keras_optimizer,
                callbacks=self.callbacks,
            )
            self.last_train = result
            if save_to is not None and result.status is Status.OK:
                target = Path(save_to)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.stem + ".partial.keras")
                model.save(partial)
                partial.replace(target)  # a killed save never leaves a torn model file
            evaluation = Evaluation(
                status=result.status,
                accuracy=float(result.accuracy),
                params=params,
                flops=flops,
                density=density,
                seconds=time.perf_counter() - start,
                epochs=result.epochs,
                message=" ".join(result.message.split()),
                train_accuracy=result.train_accuracy,
            )
            return Measurement(
                evaluation,
                curve=tuple(accuracy for _, accuracy in result.accuracies) if curve else (),
                test_accuracy=result.test_accuracy,
                train_seconds=sum(result.epoch_seconds),
            )
        except Exception as exc:  # the env must never see an exception
            status, message = classify_error(exc)
            return Measurement(
                Evaluation.failed(
                    status,
                    message,
                    params=params,
                    flops=flops,
                    density=density,
                    seconds=time.perf_counter() - start,
                )
            )
        finally:
            self._release()
            if gradients_before is not None:
                _forget_custom_gradients(gradients_before)

    def _prepare(self, seed: int | None) -> None:
        import keras
        import tensorflow as tf

        if not self._devices_configured:
            self._devices_configured = True
            _once_per_process()
            if self.settings.memory_growth:
                for gpu in tf.config.list_physical_devices("GPU"):
                    try:
                        tf.config.experimental.set_memory_growth(gpu, True)
                    except RuntimeError as exc:  # GPUs already initialised in this process
                        log.warning("memory_growth not applied: %s", exc)
        keras.mixed_precision.set_global_policy(
            "mixed_float16" if self.settings.mixed_precision else "float32"
        )
        if seed is not None:
            keras.utils.set_random_seed(seed)
            if self.deterministic:
                # Process-wide and irreversible in TensorFlow; documented in docs/estimator.md.
                tf.config.experimental.enable_op_determinism()

    def _release(self) -> None:
        # clear_session drops the graph, the traced functions and Keras' name counters,
        # so memory stays flat over thousands of candidates (benchmarks/estimator_memory.py).
        import keras

        keras.backend.clear_session()
        if self.settings.mixed_precision:
            keras.mixed_precision.set_global_policy("float32")

    def close(self) -> None:
        """Free TensorFlow's session state; nothing to do if Keras was never imported.

        A Ray driver holds an estimator only for its fingerprint and never trains: closing
        it must not import Keras and TensorFlow just to clear an empty session (measured:
        7 s at the end of every parallel search).
        """
        if "keras" in sys.modules:
            self._release()


def _registered_builder(name: str) -> NetworkBuilder:
    # A builder of another plugin named directly in KerasSettings (not through the
    # composition, which hands the estimator the built builder): the installed plugins'.
    registry = get_plugin_manager().builders()
    builder: NetworkBuilder = registry.create(name)
    builder.name = builder.name or registry.get(name).name
    return builder


_frozen = False


def _gradient_registry() -> dict[str, Any] | None:
    # TensorFlow-private: the global name -> gradient function table of graph mode.
    try:
        from tensorflow.python.framework import ops

        table = ops._gradient_registry._registry
    except (ImportError, AttributeError):  # a TensorFlow without it: nothing to clean
        return None
    return table if isinstance(table, dict) else None


def _custom_gradients() -> set[str]:
    """The names of the ``tf.custom_gradient`` functions registered so far."""
    table = _gradient_registry()
    return {name for name in table if name.startswith("CustomGradient-")} if table else set()


def _forget_custom_gradients(keep: set[str]) -> None:
    """Drop the custom gradients registered since ``keep`` was taken.

    Keras' optimizer, traced in graph mode, all-reduces the gradients through a
    ``tf.custom_gradient`` (even with one replica); each trace registers a gradient
    function in TensorFlow's global registry that is never removed and holds the whole
    traced train step: about 4 MiB per candidate, growing without bound. The graph that
    needed it is gone once the evaluation ends, so its entry can go too.
    """
    table = _gradient_registry()
    if table:
        for name in _custom_gradients() - keep:
            table.pop(name, None)


class _NoRetracingWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _once_per_process() -> None:
    """Freeze TensorFlow's objects out of the GC's reach; quiet the retracing warning.

    Every candidate traces fresh functions by design, so TensorFlow's retracing warning
    would fire for each one and say nothing useful.

    Freezing moves every object alive now (TensorFlow's and Keras' modules) out of the
    garbage collector's reach. ``clear_session`` runs a full garbage collection, and
    tracing triggers many more; each walked the millions of objects TensorFlow creates at
    import, about 0.7 s per candidate here. Frozen objects are never collected, which is
    right for module state that lives as long as the process; everything a candidate
    creates later is collected as before.
    """
    global _frozen
    if not _frozen:
        import tensorflow as tf

        _frozen = True
        tf.get_logger().addFilter(_NoRetracingWarning())
        gc.collect()
        gc.freeze()


def classify_error(exc: BaseException) -> tuple[Status, str]:
    """The status and one-line message of an exception raised while training.

    ``ResourceExhaustedError`` and ``MemoryError`` are ``out_of_memory``; anything else is
    ``error`` with the exception's type and message.
    """
    import tensorflow as tf

    text = " ".join(str(exc).split())
    if isinstance(exc, tf.errors.ResourceExhaustedError | MemoryError):
        return Status.OUT_OF_MEMORY, f"out of memory: {type(exc).__name__}: {text}"[:500]
    return Status.ERROR, f"{type(exc).__name__}: {text}"[:500]
