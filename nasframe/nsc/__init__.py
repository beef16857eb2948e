"""The Neural Structure Code: the architecture value type, its hash and the validity rule.

* :mod:`nasframe.nsc.code` -- :class:`NSC`, the immutable list of 5-integer layer rows
  (BlockQNN's code), its compact string form and its canonical hash (the cache key of an
  architecture);
* :mod:`nasframe.nsc.validity` -- :func:`why_invalid`, the one rule that says whether the
  network of an NSC can be built for an input shape (a pure-Python shape walk).

Every public name of both modules is importable from ``nasframe.nsc`` (and the main ones
from ``nasframe``); nothing here imports TensorFlow.
"""

from __future__ import annotations

from nasframe.nsc.code import (
    FIELDS,
    HEAD_ONLY,
    INPUT,
    NSC,
    LayerType,
    NSCRow,
    network_label,
    network_text,
)
from nasframe.nsc.validity import InvalidNetworkError, NetworkShapes, block_shapes, why_invalid

__all__ = [
    "FIELDS",
    "HEAD_ONLY",
    "INPUT",
    "NSC",
    "InvalidNetworkError",
    "LayerType",
    "NSCRow",
    "NetworkShapes",
    "block_shapes",
    "network_label",
    "network_text",
    "why_invalid",
]
