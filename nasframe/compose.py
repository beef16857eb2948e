"""The one composition path: plugin manager -> configuration -> registry -> settings -> create.

Every entry point that builds components -- :func:`nasframe.make_env`,
:func:`nasframe.make_agent`, :func:`nasframe.distributed.make_parallel_env`, a
:class:`~nasframe.distributed.ComponentSpec` built on a Ray worker, the search command --
calls these functions, so a rule of composition is written once:

* no plugin manager given: a fresh one (:func:`manager`);
* no configuration given: the built-in defaults, and then -- the only special case --
  the in-memory ``memory`` database instead of ``[env] database``, so a quick script
  writes nothing to disk (:func:`component_name`);
* a component named by name is looked up in its registry (with or without its version),
  and built by its factory with the values of its configuration section; a key declared
  with ``component=`` (``[keras] builder``) names another component, which is built the
  same way and passed to the factory as an instance (:func:`settings_for`).

Whoever builds a component closes it: :func:`build` says whether it built the component
(given by name) or was handed an instance (which stays its owner's).

A factory that builds other components itself (a cascade its fidelities, a zero-cost
proxy its network estimator, a table estimator a database) declares a keyword parameter
``composition``: :func:`create` then passes it a :class:`Composition` -- the
configuration and the plugin manager that are building it -- so its parts come from the
same configuration (``--set keras.epochs=1`` reaches a cascade's keras fidelity) and the
same plugins, never from a fresh plugin manager and the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasframe.config import Config, load_config

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager
    from nasframe.registry import ComponentInfo

__all__ = [
    "ENV_COMPONENTS",
    "SCRIPT_DATABASE",
    "Composition",
    "build",
    "component_name",
    "configuration",
    "create",
    "manager",
    "settings_for",
]

#: The components of an environment, in the order they are built (``[env]`` keys).
ENV_COMPONENTS = ("search_space", "state_encoder", "estimator", "dataset", "database")

#: The database of a composition without a configuration: nothing is written to disk.
SCRIPT_DATABASE = "memory"


@dataclass(frozen=True)
class Composition:
    """What a factory that builds its own parts is built with (its ``composition`` keyword).

    Attributes:
        config: the configuration building the component.
        plugin_manager: the plugin manager building it.
    """

    config: Config
    plugin_manager: PluginManager

    @classmethod
    def default(cls, plugin_manager: PluginManager | None = None) -> Composition:
        """The built-in defaults and ``plugin_manager`` (a fresh one if ``None``).

        What a factory falls back to when it is called directly, not by :func:`create`.
        """
        manager_ = manager(plugin_manager)
        return cls(load_config(plugin_manager=manager_), manager_)

    def create(
        self, kind: str, name: str, *args: Any, overrides: Mapping[str, Any] | None = None
    ) -> Any:
        """Build the component ``kind`` called ``name`` from this configuration (:func:`create`)."""
        return create(kind, name, self.config, self.plugin_manager, *args, overrides=overrides)


def manager(plugin_manager: PluginManager | None = None) -> PluginManager:
    """``plugin_manager``, or a fresh one with the default and installed plugins."""
    if plugin_manager is not None:
        return plugin_manager
    from nasframe.plugins import get_plugin_manager

    return get_plugin_manager()


def configuration(
    config: Config | str | Path | None, plugin_manager: PluginManager
) -> tuple[Config, bool]:
    """The configuration to compose from, and whether the caller gave one.

    Args:
        config: a loaded :class:`~nasframe.Config`, the path of an INI file, or ``None``
            for the built-in defaults.
        plugin_manager: declares the plugins' sections.

    Raises:
        ConfigError: the file or a value in it is not valid.
    """
    if isinstance(config, Config):
        return config, True
    return load_config(config, plugin_manager=plugin_manager), config is not None


def component_name(kind: str, given: str | None, config: Config, *, configured: bool) -> str:
    """The name of the ``[env]`` component ``kind``: ``given``, else the configuration's.

    Without a configuration (``configured`` false) the database is :data:`SCRIPT_DATABASE`.
    """
    if given is not None:
        return given
    if kind == "database" and not configured:
        return SCRIPT_DATABASE
    return str(config.get("env", kind))


def settings_for(
    info: ComponentInfo,
    config: Config,
    plugin_manager: PluginManager,
    *,
    undeclared_ok: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword settings of component ``info``: its section, components built.

    The unset (``None``) values are left out so the factory's defaults apply;
    ``overrides`` win over the section's values; then a key declared with
    ``component=<kind>`` whose value is a name is replaced by that component, built by
    :func:`create` from the same configuration.

    Args:
        info: the registry entry.
        config: the configuration holding its section.
        plugin_manager: builds the named components.
        undeclared_ok: a section no plugin declared gives no settings (else an error).
        overrides: settings that win over the section's (names of components included).

    Raises:
        ConfigError: the section is not declared (unless ``undeclared_ok``).
    """
    if not info.section or (undeclared_ok and info.section not in config.schema.sections):
        return dict(overrides or {})
    settings = {**config.component_settings(info), **(overrides or {})}
    for key in config.schema.sections[info.section].keys.values():
        value = settings.get(key.name)
        if key.component is not None and isinstance(value, str):
            settings[key.name] = create(key.component, value, config, plugin_manager)
    return settings


def create(
    kind: str,
    name: str,
    config: Config,
    plugin_manager: PluginManager,
    *args: Any,
    overrides: Mapping[str, Any] | None = None,
    undeclared_ok: bool = False,
) -> Any:
    """Build the component ``kind`` called ``name`` with its configured settings.

    Args:
        kind: the component kind (``"estimator"``, ``"builder"``, ...).
        name: the registered name, with or without its version.
        config: the configuration holding the component's section.
        plugin_manager: the plugin manager whose registries hold the component.
        *args: what the kind's factory takes first (the search space of an encoder,
            the environment of an agent).
        overrides: settings that win over the section's.
        undeclared_ok: see :func:`settings_for`.

    Raises:
        RegistryError: the name is unknown.
        PluginError: the component needs an extra that is not installed.
        ConfigError: a setting is not valid.
    """
    registry = plugin_manager.registry(kind)
    info = registry.get(name)
    settings = settings_for(
        info, config, plugin_manager, undeclared_ok=undeclared_ok, overrides=overrides
    )
    if kind == "database" and info.section == "database" and not settings.get("path"):
        # The command puts the file in its output folder; a Python caller has none.
        from nasframe.errors import DatabaseError

        source = f" of {config.path}" if config.path else ""
        raise DatabaseError(
            f"make_env: [database] path{source} is empty, so the {info.name} database has "
            "no file; pass database='memory' to keep results in memory, or a file: "
            "load_config(..., {'database': {'path': 'experiments.csv'}})"
        )
    if info.wants_composition:
        settings["composition"] = Composition(config, plugin_manager)
    component = registry.create(info.name, *args, **settings)
    if kind == "builder" and not getattr(component, "name", ""):
        component.name = info.name  # the fingerprint of a builder is its name by default
    return component


def build(
    kind: str,
    given: Any,
    config: Config,
    plugin_manager: PluginManager,
    *args: Any,
    configured: bool = True,
) -> tuple[Any, bool]:
    """The ``[env]`` component ``kind``: ``given`` itself, or built by name.

    Args:
        kind: one of :data:`ENV_COMPONENTS`.
        given: an instance (used as it is), a name, or ``None`` (the configuration's).
        config: the configuration.
        plugin_manager: the plugin manager.
        *args: see :func:`create`.
        configured: whether the caller gave a configuration (see :func:`component_name`).

    Returns:
        The component, and whether it was built here (then the caller owns and closes it).
    """
    if given is not None and not isinstance(given, str):
        return given, False
    name = component_name(kind, given, config, configured=configured)
    return create(kind, name, config, plugin_manager, *args), True
