"""Components named by their registry entry (:class:`ComponentSpec`), built where used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager


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

    def build(self, plugin_manager: PluginManager | None = None) -> Any:
        """Build the component with ``plugin_manager`` (default: a fresh one).

        The composition of :mod:`nasframe.compose`: ``settings`` win over the defaults of
        the component's configuration section, and a setting naming another component
        (``builder = nasgym``) is built the same way.

        Raises:
            RegistryError: the name is unknown.
            PluginError: the component needs a package that is not installed.
        """
        from nasframe import compose

        manager = compose.manager(plugin_manager)
        config, _ = compose.configuration(None, manager)
        return compose.create(
            self.kind, self.name, config, manager, overrides=self.settings, undeclared_ok=True
        )


def build_component(component: Any, plugin_manager: PluginManager | None = None) -> Any:
    """``component`` itself, or the component a :class:`ComponentSpec` names, built."""
    return component.build(plugin_manager) if isinstance(component, ComponentSpec) else component
