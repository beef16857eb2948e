"""The settings of the Keras estimator: the ``[keras]`` configuration section.

Pure Python (no TensorFlow), so ``nasframe plugins`` and ``nasframe config show`` can
declare and validate them without importing TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from nasframe import NSC, ConfigError, ConfigSchema, Settings, closest, setting, why_invalid

__all__ = [
    "AUGMENTATIONS",
    "BATCH_NORM_MODES",
    "BUILDERS",
    "RESULT_SETTINGS",
    "TRAINER_VERSION",
    "KerasSettings",
    "SettingsView",
    "declare",
    "is_builder_name",
]

#: The network builders this plugin registers, by versioned name. A change of what a
#: builder builds is a new version, so cached results of the old one are never mixed with
#: the new one. Any other registered builder may be named too (``[keras] builder``).
BUILDERS = ("nasgym-v1", "blockqnn-v1")

#: Training-data augmentations: ``none``; ``shift``, a random translation of up to 10 %
#: of the height and width (zeros fill in), right for any image data; ``flip-shift``, a
#: random horizontal flip as well, only for data whose classes are mirror-invariant
#: (natural images such as CIFAR-10; not digits or characters).
AUGMENTATIONS = ("none", "shift", "flip-shift")

#: How the trainer makes the batch-normalisation statistics that inference uses
#: (``[keras] batch_norm``; docs/estimator.md#batch-normalisation):
#: ``recompute`` (the default), the statistics are recomputed from a fixed subset of
#: training batches before every accuracy measurement; ``momentum``, every
#: BatchNormalization layer's moving averages use ``batch_norm_momentum`` (0.9) instead
#: of Keras' 0.99, so they settle within a few dozen steps; ``as-built``, the layers are
#: left as the builder made them (keras-v1's first trainer, whose results it reproduces
#: bit for bit).
BATCH_NORM_MODES = ("recompute", "momentum", "as-built")

#: The version of the training loop; part of the fingerprint. 2: batch-normalisation
#: statistics that have settled (``batch_norm``); the ``as-built`` mode is version 1.
TRAINER_VERSION = "2"

#: The trainer version whose results ``batch_norm = as-built`` reproduces.
_AS_BUILT_TRAINER = "1"

#: Settings that never change a result (device placement and memory handling only).
_NOT_RESULT = ("memory_growth",)

#: Settings that only matter to the stacked builder.
_STACKED_ONLY = ("blocks_per_stage", "stages")

_SECTION = "keras"
_DESCRIPTION = "The Keras estimator: network builder and early-stop training."


@dataclass(frozen=True)
class KerasSettings(Settings):
    """Every setting of the Keras estimator (see ``docs/estimator.md``).

    Each field is declared once, here (:class:`nasframe.Settings`): its default, its
    one-line description and its bounds make both the dataclass and the ``[keras]``
    configuration section (:func:`declare`), and the dataclass validates a value with
    the same configuration key, so the two cannot disagree.

    Attributes:
        epochs: training epochs (NASGym: 12).
        batch_size: examples per step (NASGym: 128).
        learning_rate: Adam's initial learning rate (NASGym: 1e-3).
        beta1: Adam's first-moment decay.
        beta2: Adam's second-moment decay.
        epsilon: Adam's epsilon; 1e-8 is what NASGym meant (it wrote ``10e-08`` = 1e-7).
        lr_decay: factor applied to the learning rate every ``lr_decay_epochs`` epochs
            (BlockQNN: 0.2; NASGym's schedule never fired).
        lr_decay_epochs: epochs between decays (0: no decay).
        filters: convolution filters (the first stage's, for the stacked builder).
        fc_units: width of the hidden dense layer of the head.
        dropout: dropout rate of the head, in [0, 1).
        padding: ``valid`` (NASGym) or ``same`` for convolution and pooling.
        builder: the registered network builder: ``nasgym-v1`` (the NSC block is the whole
            feature extractor), ``blockqnn-v1`` (the block stacked in stages), or one a
            plugin registers (``nasframe_register_builders``).
        blocks_per_stage: blocks per stage of the stacked builder (BlockQNN's N).
        stages: stages of the stacked builder; a stride-2 reduction doubling the
            channels separates two stages.
        patience: epochs without a better validation accuracy before stopping (0: off).
        time_budget: wall seconds per evaluation before it stops with ``timeout`` (0: none).
        deterministic: make TensorFlow's ops deterministic when a seed is given.
        mixed_precision: train in float16 with float32 variables (GPU).
        jit_compile: compile the train step with XLA.
        memory_growth: let TensorFlow grow GPU memory on demand instead of taking it all.
        augmentation: augmentation of the training batches, one of :data:`AUGMENTATIONS`
            (NASGym: none; a final training may use ``shift``).
        batch_norm: how the batch-normalisation statistics of inference are made, one
            of :data:`BATCH_NORM_MODES`; ``as-built`` reproduces keras-v1's first
            trainer (whose short trainings left them unsettled).
        batch_norm_momentum: the moving-average momentum of every BatchNormalization
            layer under ``batch_norm = momentum``.
    """

    epochs: int = setting(12, "training epochs (NASGym: 12)", min=1)
    batch_size: int = setting(128, "examples per training step", min=1)
    learning_rate: float = setting(1e-3, "Adam's initial learning rate", above=0)
    beta1: float = setting(0.9, "Adam's beta_1", min=0, max=1)
    beta2: float = setting(0.999, "Adam's beta_2", min=0, max=1)
    epsilon: float = setting(1e-8, "Adam's epsilon (NASGym meant 1e-8)", min=0)
    lr_decay: float = setting(0.2, "learning-rate factor every lr_decay_epochs", above=0)
    lr_decay_epochs: int = setting(5, "epochs between decays (0: none)", min=0)
    filters: int = setting(32, "convolution filters (first stage)", min=1)
    fc_units: int = setting(1024, "units of the hidden dense layer of the head", min=1)
    dropout: float = setting(0.4, "dropout rate of the head", min=0, below=1)
    padding: str = setting("valid", "convolution/pooling padding", choices=("valid", "same"))
    builder: str = setting(
        "nasgym-v1",
        "network builder: nasgym-v1, blockqnn-v1 or a registered one (nasframe plugins)",
        component="builder",
    )
    blocks_per_stage: int = setting(2, "blockqnn builder: blocks per stage", min=1)
    stages: int = setting(3, "blockqnn builder: stages (reductions between)", min=1)
    patience: int = setting(0, "early-stopping patience in epochs (0: off)", min=0)
    time_budget: float = setting(0.0, "wall seconds per evaluation (0: none)", min=0)
    deterministic: bool = setting(True, "deterministic ops when seeded")
    mixed_precision: bool = setting(False, "float16 compute (GPU)")
    jit_compile: bool = setting(False, "XLA-compile the train step")
    memory_growth: bool = setting(False, "grow GPU memory on demand")
    augmentation: str = setting(
        "none",
        "training augmentation: none, shift (random translation), flip-shift (and mirror)",
        choices=AUGMENTATIONS,
    )
    batch_norm: str = setting(
        "recompute",
        "batch-norm statistics: recompute (from training batches before each measurement), "
        "momentum (settle fast), as-built (keras-v1's first trainer)",
        choices=BATCH_NORM_MODES,
    )
    batch_norm_momentum: float = setting(
        0.9, "moving-average momentum of batch-norm layers (batch_norm = momentum)", min=0, below=1
    )

    SECTION: ClassVar[str] = _SECTION
    DESCRIPTION: ClassVar[str] = _DESCRIPTION

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_builder_name(self.builder):
            raise ConfigError(
                f"[{_SECTION}] builder: {self.builder!r} is not one of {', '.join(BUILDERS)}"
                f"{closest(self.builder, BUILDERS)} nor a registered builder's versioned "
                "name (like 'wide-v1')"
            )

    def why_invalid(self, nsc: NSC, input_shape: tuple[int, int, int]) -> str | None:
        """Why the builder cannot build ``nsc`` for ``input_shape``; ``None`` if it can.

        :func:`nasframe.why_invalid` (the one validity rule) with this builder's padding,
        pooling stride and reductions; pure Python, no model is built. ``None`` for a
        builder of another plugin, whose rules are its own (its ``build`` says).
        """
        if self.builder == "nasgym-v1":
            return why_invalid(nsc, input_shape, padding=self.padding)
        if self.builder == "blockqnn-v1":
            return why_invalid(
                nsc, input_shape, padding="same", pool_stride=1, reductions=self.stages - 1
            )
        return None

    def result_settings(self) -> dict[str, Any]:
        """The settings that change a result, for the fingerprint.

        The stacked builder's shape settings are left out for the NASGym builder, which
        ignores them, so changing them does not needlessly invalidate a cache.
        """
        values = {k: v for k, v in asdict(self).items() if k not in _NOT_RESULT}
        if self.builder == "nasgym-v1":
            for key in _STACKED_ONLY:
                values.pop(key)
        if self.augmentation == "none":
            # added after the first caches were written: absent unless used, so the
            # fingerprint of every earlier setting is unchanged
            values.pop("augmentation")
        if self.batch_norm == "as-built":
            # the first trainer exactly: its fingerprint too, so its cached results and
            # tables stay valid for it (and only for it)
            values.pop("batch_norm")
            values.pop("batch_norm_momentum")
            values["trainer"] = _AS_BUILT_TRAINER
            return values
        if self.batch_norm != "momentum":
            values.pop("batch_norm_momentum")
        values["trainer"] = TRAINER_VERSION
        return values


class SettingsView(Mapping[str, Any]):
    """A read-only mapping of a :class:`KerasSettings`: what the estimator hands builders.

    A builder receives the estimator's settings as a mapping (the
    :class:`~nasframe.NetworkBuilder` contract); this plugin's builders take the
    validated dataclass back from it (:attr:`settings`) instead of building and checking
    a new one from the mapping on every evaluation.
    """

    def __init__(self, settings: KerasSettings) -> None:
        self.settings = settings
        self._values = asdict(settings)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def is_builder_name(name: str) -> bool:
    """Whether ``name`` can name a builder: a built-in one or any ``<name>-v<N>``."""
    base, dash, version = name.rpartition("-v")
    return name in BUILDERS or bool(base and dash and version.isdigit())


#: The keys of :class:`KerasSettings` that go into the fingerprint (all but device ones).
RESULT_SETTINGS = tuple(f.name for f in fields(KerasSettings) if f.name not in _NOT_RESULT)


def declare(schema: ConfigSchema) -> None:
    """Declare the ``[keras]`` section and its keys on ``schema`` (from the dataclass)."""
    KerasSettings.declare(schema)
