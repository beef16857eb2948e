"""Typed configuration: the schema, the core's sections, loading, component settings.

Every key is declared in a :class:`ConfigSchema` -- the core declares its sections, and
every plugin declares its own through the ``nasframe_add_config`` hook -- and a
configuration is built-in defaults < an INI file < explicit overrides.

The modules of this package:

* :mod:`~nasframe.config.schema` -- :class:`ConfigSchema`, :class:`Section`, :class:`Key`:
  plain value types that depend on neither the loader nor the plugin manager;
* :mod:`~nasframe.config.core` -- :func:`core_schema`: the core's own sections
  (``[run]``, ``[env]``, ``[bench]``, ``[finalize]``, ``[ray]``, ``[database]``) and
  :data:`COMPONENT_KEYS`;
* :mod:`~nasframe.config.loading` -- :class:`Config` and :func:`load_config`: reading,
  converting and checking a configuration, and the ``config template`` text;
* :mod:`~nasframe.config.settings` -- :class:`~nasframe.Settings`: a plugin's settings
  declared once as a frozen dataclass (``nasframe.Settings``, ``nasframe.setting``).

``nasframe.config`` keeps every name it had as one module; plugins get these names from
``nasframe`` (``Config``, ``ConfigSchema``, ``Section``, ``Key``, ``Settings``, ...).
"""

from __future__ import annotations

from nasframe.config.core import COMPONENT_KEYS, component_keys, core_schema
from nasframe.config.loading import (
    Config,
    check_components,
    check_files,
    load_config,
    missing_files,
    template,
)
from nasframe.config.loading import parse_override as parse_override
from nasframe.config.schema import ConfigSchema, Key, Section

__all__ = [
    "COMPONENT_KEYS",
    "Config",
    "ConfigSchema",
    "Key",
    "Section",
    "check_components",
    "check_files",
    "component_keys",
    "core_schema",
    "load_config",
    "missing_files",
    "template",
]
