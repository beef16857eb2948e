"""Deprecated: the Stable-Baselines3 adapter moved into the agents plugin.

``to_sb3`` is kept as a deprecated name; it asks the loaded ``agents`` plugin for its
adapter, so the core names no SB3 code. A Stable-Baselines3 agent adapts a vector env
itself now.
"""

from __future__ import annotations

import warnings
from typing import Any

from nasframe.errors import PluginError

__all__ = ["to_sb3"]


def to_sb3(vector_env: Any) -> Any:
    """Deprecated: Stable-Baselines3's ``VecEnv`` view of ``vector_env``.

    Stable-Baselines3 agents adapt a vector env themselves; scripts that want the view
    call the ``to_sb3`` of the plugin that provides the SB3 agents.

    Raises:
        PluginError: no loaded plugin provides the adapter.
    """
    from nasframe.plugins import get_plugin_manager

    warnings.warn(
        "nasframe.distributed.to_sb3 is deprecated: Stable-Baselines3 agents adapt a "
        "vector env themselves; use the agents plugin's to_sb3",
        DeprecationWarning,
        stacklevel=2,
    )
    manager = get_plugin_manager()
    for _, plugin in manager.list_name_plugin():
        adapter = getattr(plugin, "to_sb3", None)
        if callable(adapter):
            return adapter(vector_env)
    raise PluginError("no loaded plugin provides a Stable-Baselines3 adapter (to_sb3)")
