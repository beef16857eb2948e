"""Default plugin ``spaces``: NASGym's search spaces and state encoders.

Search spaces (config section ``[search_space]``, key ``file``):

* ``absolute-v1`` -- predecessors chosen by absolute index (161 actions for ``nasenv``);
* ``chained-v1`` -- one layer after another (8 actions for ``chain``);
* ``pointer-v1`` -- chained plus two movable predecessor pointers, multi-branch
  (14 actions for ``multibranch``).

State encoders: ``onehot-v1`` (NASGym's one-hot, 10x25 chained / 10x36 pointer) and
``matrix-v1`` (the plain int32 NSC matrix); ``onehot-pointers-v1`` adds the pointer offsets of
the pointer mode to ``onehot-v1`` (NASGym hid them).
"""

from __future__ import annotations

import nasframe
from nasframe_spaces.encoders import MatrixEncoder, OneHotEncoder, OneHotPointerEncoder
from nasframe_spaces.spaces import (
    DEFAULT_FILES,
    AbsoluteSearchSpace,
    ChainedSearchSpace,
    PointerSearchSpace,
    YamlSearchSpace,
)
from nasframe_spaces.spec import BUILTIN_FILES, LayerSpec, SpaceSpec, load_space, parse_space

__all__ = [
    "BUILTIN_FILES",
    "DEFAULT_FILES",
    "AbsoluteSearchSpace",
    "ChainedSearchSpace",
    "LayerSpec",
    "MatrixEncoder",
    "OneHotEncoder",
    "OneHotPointerEncoder",
    "PointerSearchSpace",
    "SpaceSpec",
    "YamlSearchSpace",
    "load_space",
    "parse_space",
]

#: The configuration section of the search spaces.
SECTION = "search_space"
#: The configuration section of the state encoders.
ENCODER_SECTION = "state_encoder"


@nasframe.hookimpl(trylast=True)
def nasframe_register_search_spaces(registry: nasframe.Registry[nasframe.SearchSpace]) -> None:
    """Register ``absolute-v1``, ``chained-v1`` and ``pointer-v1``."""
    registry.add(
        "absolute-v1",
        AbsoluteSearchSpace,
        summary="predecessors by absolute index (NASGym 'default'; 161 actions for nasenv)",
        section=SECTION,
    )
    registry.add(
        "chained-v1",
        ChainedSearchSpace,
        summary="each layer reads the previous one (NASGym 'chained'; 8 actions for chain)",
        section=SECTION,
    )
    registry.add(
        "pointer-v1",
        PointerSearchSpace,
        summary="multi-branch with two movable predecessor pointers (NASGym 'pred-free'; 14)",
        section=SECTION,
    )


@nasframe.hookimpl(trylast=True)
def nasframe_register_state_encoders(registry: nasframe.Registry[nasframe.StateEncoder]) -> None:
    """Register ``onehot-v1``, ``onehot-pointers-v1`` and ``matrix-v1``."""
    registry.add(
        "onehot-v1",
        OneHotEncoder,
        summary="NASGym's one-hot encoding of the NSC rows",
        section=ENCODER_SECTION,
    )
    registry.add(
        "onehot-pointers-v1",
        OneHotPointerEncoder,
        summary="onehot-v1 plus a row of the pointer offsets (pointer mode made observable)",
        section=ENCODER_SECTION,
    )
    registry.add(
        "matrix-v1",
        MatrixEncoder,
        summary="the plain int32 NSC matrix (d x 5)",
        section=ENCODER_SECTION,
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare ``[search_space] file`` and ``[state_encoder] flatten``."""
    section = schema.section(SECTION, "The search-space YAML file of the search space.")
    section.add(
        "file",
        str,
        None,
        "a built-in space (nasenv, chain, multibranch) or a .yml path; empty: the mode's "
        "default (absolute: nasenv, chained: chain, pointer: multibranch)",
        optional=True,
    )
    encoder = schema.section(ENCODER_SECTION, "The state encoder's options.")
    encoder.add(
        "flatten",
        bool,
        False,
        "observations as one vector instead of NASGym's rows x columns matrix",
    )
