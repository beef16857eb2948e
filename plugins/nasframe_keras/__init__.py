"""The default performance estimator: NSC -> Keras network, early-stop training.

Registers the estimator ``keras-v1`` (configuration section ``[keras]``; needs the
``tensorflow`` extra) and the network builders ``nasgym-v1`` and ``blockqnn-v1``; any
registered builder may be named in ``[keras] builder``. Importing this package does not
import TensorFlow: the builder, trainer and estimator import it when a model is first
built. See ``docs/estimator.md``.
"""

from __future__ import annotations

import nasframe
from nasframe import ConfigSchema, NetworkBuilder, PerformanceEstimator, Registry
from nasframe_keras.settings import declare

__all__ = ["nasframe_add_config", "nasframe_register_builders", "nasframe_register_estimators"]


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(registry: Registry[PerformanceEstimator]) -> None:
    """Register ``keras-v1``."""
    from nasframe_keras.estimator import create_estimator

    registry.add(
        "keras-v1",
        create_estimator,
        summary="NSC -> Keras CNN (NASGym or BlockQNN-stacked), early-stop training",
        section="keras",
        requires=("tensorflow",),
        extra="tensorflow",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_register_builders(registry: Registry[NetworkBuilder]) -> None:
    """Register the network builders ``nasgym-v1`` and ``blockqnn-v1``."""
    from nasframe_keras.builders import BlockQNNBuilder, NASGymBuilder

    for cls, summary in (
        (NASGymBuilder, "NASGym's network: the NSC block is the feature extractor (Keras)"),
        (BlockQNNBuilder, "BlockQNN's network: the NSC block stacked in stages (Keras)"),
    ):
        registry.add(cls.name, cls, summary=summary, requires=("tensorflow",), extra="tensorflow")


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: ConfigSchema) -> None:
    """Declare the ``[keras]`` section."""
    declare(schema)
