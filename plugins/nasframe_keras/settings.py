"""The settings of the Keras estimator: the ``[keras]`` configuration section.

Pure Python (no TensorFlow), so ``nasframe plugins`` and ``nasframe config show`` can
declare and validate them without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from nasframe import NSC, ConfigError, ConfigSchema, closest, why_invalid

__all__ = [
    "AUGMENTATIONS",
    "BUILDERS",
    "RESULT_SETTINGS",
    "TRAINER_VERSION",
    "KerasSettings",
    "declare",
]

#: The network builders, by versioned name. A change of what a builder builds is a new
#: version, so cached results of the old one are never mixed with the new one.
BUILDERS = ("nasgym-v1", "blockqnn-v1")

#: Training-data augmentations: ``none``; ``shift``, a random translation of up to 10 %
#: of the height and width (zeros fill in), right for any image data; ``flip-shift``, a
#: random horizontal flip as well, only for data whose classes are mirror-invariant
#: (natural images such as CIFAR-10; not digits or characters).
AUGMENTATIONS = ("none", "shift", "flip-shift")

#: The version of the training loop; part of the fingerprint.
TRAINER_VERSION = "1"

#: Settings that never change a result (device placement and memory handling only).
_NOT_RESULT = ("memory_growth",)

#: Settings that only matter to the stacked builder.
_STACKED_ONLY = ("blocks_per_stage", "stages")


@dataclass(frozen=True)
class KerasSettings:
    """Every setting of the Keras estimator (see ``docs/estimator.md``).

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
        dropout: dropout rate of the head.
        padding: ``valid`` (NASGym) or ``same`` for convolution and pooling.
        builder: ``nasgym-v1`` (the NSC block is the whole feature extractor) or
            ``blockqnn-v1`` (the block stacked in stages).
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
    """

    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    lr_decay: float = 0.2
    lr_decay_epochs: int = 5
    filters: int = 32
    fc_units: int = 1024
    dropout: float = 0.4
    padding: str = "valid"
    builder: str = "nasgym-v1"
    blocks_per_stage: int = 2
    stages: int = 3
    patience: int = 0
    time_budget: float = 0.0
    deterministic: bool = True
    mixed_precision: bool = False
    jit_compile: bool = False
    memory_growth: bool = False
    augmentation: str = "none"

    def __post_init__(self) -> None:
        if self.padding not in ("valid", "same"):
            raise ConfigError(
                f"[keras] padding: {self.padding!r} is not one of valid, same"
                f"{closest(self.padding, ('valid', 'same'))}"
            )
        if self.builder not in BUILDERS:
            raise ConfigError(
                f"[keras] builder: {self.builder!r} is not one of {', '.join(BUILDERS)}"
                f"{closest(self.builder, BUILDERS)}"
            )
        if self.augmentation not in AUGMENTATIONS:
            raise ConfigError(
                f"[keras] augmentation: {self.augmentation!r} is not one of "
                f"{', '.join(AUGMENTATIONS)}{closest(self.augmentation, AUGMENTATIONS)}"
            )
        for name in ("epochs", "batch_size", "filters", "fc_units", "blocks_per_stage"):
            if getattr(self, name) < 1:
                raise ConfigError(f"[keras] {name}: {getattr(self, name)!r} is below the minimum 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"[keras] dropout: {self.dropout!r} must be in [0, 1)")
        if self.learning_rate <= 0 or self.lr_decay <= 0:
            raise ConfigError("[keras] learning_rate and lr_decay must be > 0")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> KerasSettings:
        """Settings from keyword values (a configuration section); unknown keys are errors.

        Raises:
            ConfigError: a key is unknown or a value is out of range.
        """
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"unknown key {key!r} in section [keras]{closest(key, known)} "
                    f"(known: {', '.join(sorted(known))})"
                )
        return cls(**values)

    def why_invalid(self, nsc: NSC, input_shape: tuple[int, int, int]) -> str | None:
        """Why the builder cannot build ``nsc`` for ``input_shape``; ``None`` if it can.

        :func:`nasframe.why_invalid` (the one validity rule) with this builder's padding,
        pooling stride and reductions; pure Python, no model is built.
        """
        if self.builder == "nasgym-v1":
            return why_invalid(nsc, input_shape, padding=self.padding)
        return why_invalid(
            nsc, input_shape, padding="same", pool_stride=1, reductions=self.stages - 1
        )

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
        values["trainer"] = TRAINER_VERSION
        return values


#: The keys of :class:`KerasSettings` that go into the fingerprint (all but device ones).
RESULT_SETTINGS = tuple(f.name for f in fields(KerasSettings) if f.name not in _NOT_RESULT)


def declare(schema: ConfigSchema) -> None:
    """Declare the ``[keras]`` section and its keys on ``schema``."""
    d = KerasSettings()
    s = schema.section("keras", "The Keras estimator: network builder and early-stop training.")
    s.add("epochs", int, d.epochs, "training epochs (NASGym: 12)", min=1)
    s.add("batch_size", int, d.batch_size, "examples per training step", min=1)
    s.add("learning_rate", float, d.learning_rate, "Adam's initial learning rate", min=1e-12)
    s.add("beta1", float, d.beta1, "Adam's beta_1", min=0, max=1)
    s.add("beta2", float, d.beta2, "Adam's beta_2", min=0, max=1)
    s.add("epsilon", float, d.epsilon, "Adam's epsilon (NASGym meant 1e-8)", min=0)
    s.add("lr_decay", float, d.lr_decay, "learning-rate factor every lr_decay_epochs", min=1e-12)
    s.add("lr_decay_epochs", int, d.lr_decay_epochs, "epochs between decays (0: none)", min=0)
    s.add("filters", int, d.filters, "convolution filters (first stage)", min=1)
    s.add("fc_units", int, d.fc_units, "units of the hidden dense layer of the head", min=1)
    s.add("dropout", float, d.dropout, "dropout rate of the head", min=0, max=0.99)
    s.add("padding", str, d.padding, "convolution/pooling padding", choices=("valid", "same"))
    s.add("builder", str, d.builder, "network builder", choices=BUILDERS)
    s.add("blocks_per_stage", int, d.blocks_per_stage, "blockqnn builder: blocks per stage", min=1)
    s.add("stages", int, d.stages, "blockqnn builder: stages (reductions between)", min=1)
    s.add("patience", int, d.patience, "early-stopping patience in epochs (0: off)", min=0)
    s.add("time_budget", float, d.time_budget, "wall seconds per evaluation (0: none)", min=0)
    s.add("deterministic", bool, d.deterministic, "deterministic ops when seeded")
    s.add("mixed_precision", bool, d.mixed_precision, "float16 compute (GPU)")
    s.add("jit_compile", bool, d.jit_compile, "XLA-compile the train step")
    s.add("memory_growth", bool, d.memory_growth, "grow GPU memory on demand")
    s.add(
        "augmentation",
        str,
        d.augmentation,
        "training augmentation: none, shift (random translation), flip-shift (and mirror)",
        choices=AUGMENTATIONS,
    )
