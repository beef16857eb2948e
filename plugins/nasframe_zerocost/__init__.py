"""Plugin ``zerocost``: zero-cost proxies of the network ``keras-v1`` would train.

Registers the estimator ``zerocost-v1`` (configuration section ``[zerocost]``; needs the
``tensorflow`` extra). One estimator, one ``proxy`` setting:

* ``synflow`` -- no data: absolute weights, all-ones input, the sum of the logits;
  ``sum |w * dR/dw|`` (Tanaka et al. 2020);
* ``naswot`` -- log-determinant of the kernel of the minibatch's binary ReLU codes
  (Mellor et al. 2021);
* ``grad_norm`` -- the summed norms of the loss gradients of the weights;
* ``snip`` -- ``sum |w * dL/dw|`` (Lee et al. 2019);
* ``jacob_cov`` -- how uncorrelated the input gradients of the minibatch are (Mellor
  et al. 2020);
* ``params`` and ``flops`` -- the baselines every proxy must beat.

The network is built by the network estimator (``keras-v1``) through its public
``build_network`` method, found by name in the estimator registry: this plugin imports
nothing of the Keras plugin. The score becomes a reward in [0, 1] by a fixed monotone
squashing (:func:`nasframe_zerocost.estimator.squash`); see ``docs/fidelities.md``.
Importing this package does not import TensorFlow.
"""

from __future__ import annotations

import nasframe
from nasframe_zerocost.estimator import PROXIES, SQUASH, ProxyScore, ZeroCostEstimator, squash

__all__ = [
    "PROXIES",
    "SQUASH",
    "ProxyScore",
    "ZeroCostEstimator",
    "nasframe_add_config",
    "nasframe_register_estimators",
    "squash",
]


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(
    registry: nasframe.Registry[nasframe.PerformanceEstimator],
) -> None:
    """Register ``zerocost-v1``."""
    from nasframe_zerocost.estimator import create_estimator

    registry.add(
        "zerocost-v1",
        create_estimator,
        summary="zero-cost proxy (synflow, naswot, grad_norm, snip, jacob_cov, params, flops)",
        section="zerocost",
        requires=("tensorflow",),
        extra="tensorflow",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[zerocost]`` section."""
    section = schema.section(
        "zerocost", "Zero-cost proxies of the untrained network (no training)."
    )
    section.add("proxy", str, "synflow", "the proxy", choices=PROXIES)
    section.add(
        "network",
        str,
        "keras-v1",
        "the estimator whose network is scored (built with its default settings)",
    )
    section.add("batch_size", int, 64, "examples of the one minibatch", min=2)
    section.add("center", float, None, "squashing center (default: the proxy's)", optional=True)
    section.add(
        "scale", float, None, "squashing scale > 0 (default: the proxy's)", optional=True, above=0
    )
