"""The default performance estimator: NSC -> Keras network, early-stop training.

Registers the estimator ``keras-v1`` (configuration section ``[keras]``; needs the
``tensorflow`` extra). Importing this package does not import TensorFlow: the builder,
trainer and estimator import it when a model is first built. See ``docs/estimator.md``.
"""

from __future__ import annotations

import nasframe
from nasframe import ConfigSchema, Registry
from nasframe_keras.settings import declare

__all__ = ["nasframe_add_config", "nasframe_register_estimators"]


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(registry: Registry) -> None:
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
def nasframe_add_config(schema: ConfigSchema) -> None:
    """Declare the ``[keras]`` section."""
    declare(schema)
