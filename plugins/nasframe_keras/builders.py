"""The registered network builders of this plugin: ``nasgym-v1`` and ``blockqnn-v1``.

Each is a :class:`nasframe.NetworkBuilder` that returns an uncompiled ``keras.Model``
(logits). Importing this module does not import TensorFlow; :meth:`build` does (through
:mod:`nasframe_keras.builder`, where the networks are described).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasframe import NSC, NetworkBuilder

__all__ = ["BlockQNNBuilder", "KerasBuilder", "NASGymBuilder", "builtin_builder"]


class KerasBuilder(NetworkBuilder):
    """A builder of this plugin: the network of :func:`nasframe_keras.builder.build_model`.

    It reads the estimator's settings (``filters``, ``padding``, ``fc_units``,
    ``dropout``, and for ``blockqnn-v1`` ``stages`` and ``blocks_per_stage``).
    """

    framework = "keras"

    def build(
        self,
        architecture: NSC,
        input_shape: tuple[int, int, int],
        num_classes: int,
        settings: Mapping[str, Any],
    ) -> Any:
        """The uncompiled Keras model of ``architecture`` (see ``docs/estimator.md``).

        Raises:
            BuildError: the architecture cannot be built for this input (a ValueError).
        """
        from nasframe_keras.builder import build_model
        from nasframe_keras.settings import KerasSettings, SettingsView

        if isinstance(settings, SettingsView) and settings.settings.builder == self.name:
            typed = settings.settings  # the estimator's, validated once
        else:
            typed = KerasSettings(**{**settings, "builder": self.name})
        return build_model(architecture, input_shape, num_classes, typed)


class NASGymBuilder(KerasBuilder):
    """``nasgym-v1``: NASGym's network, the NSC block is the whole feature extractor."""

    name = "nasgym-v1"


class BlockQNNBuilder(KerasBuilder):
    """``blockqnn-v1``: BlockQNN's network, the block stacked in stages."""

    name = "blockqnn-v1"


_BUILTIN: dict[str, type[KerasBuilder]] = {
    NASGymBuilder.name: NASGymBuilder,
    BlockQNNBuilder.name: BlockQNNBuilder,
}


def builtin_builder(name: str) -> KerasBuilder | None:
    """This plugin's builder called ``name`` (full versioned name), or ``None``."""
    cls = _BUILTIN.get(name)
    return cls() if cls is not None else None
