"""Components named by their registry entry (:class:`ComponentSpec`), built where used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ComponentSpec:
    """A component named by its registry entry, built where it is used.

    Shipping a spec instead of an instance sends only ``kind``, ``name`` and
    ``settings`` to a Ray worker, which builds the component with its own plugin
    manager (the plugin must be installed there).

    Attributes:
        kind: the component kind: ``"estimator"`` or ``"dataset"``.
        name: the registered name, with or without its version (``"keras"``).
        settings: keyword settings passed to the factory (its configuration section).
    """

    kind: str
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def build(self, plugin_manager: Any = None) -> Any:
        """Build the component with ``plugin_manager`` (default: a fresh one).

        Raises:
            RegistryError: the name is unknown.
            PluginError: the component needs a package that is not installed.
        """
        if plugin_manager is None:
            from nasframe.plugins import get_plugin_manager

            plugin_manager = get_plugin_manager()
        return plugin_manager.registry(self.kind).create(self.name, **dict(self.settings))


def build_component(component: Any, plugin_manager: Any = None) -> Any:
    return component.build(plugin_manager) if isinstance(component, ComponentSpec) else component
