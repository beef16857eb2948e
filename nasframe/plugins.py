"""The plugin manager: hook specs, default plugins, entry points, blocking.

:func:`get_plugin_manager` builds a fresh manager every call -- there is no import-time
global -- so every test, env and command gets its own. Loading order:

1. the hook specs of :mod:`nasframe.hookspecs`;
2. the default plugins (:data:`DEFAULT_PLUGINS`), registered first; their hooks are
   ``trylast=True`` so an installed plugin's hooks run before them;
3. every other entry point of the group ``nasframe`` (skipped with
   ``NASFRAME_DISABLE_PLUGIN_AUTOLOAD=1``);
4. ``check_pending()``: a plugin implementing a hook that does not exist (a typo) is a
   :class:`~nasframe.errors.PluginError`.

``NASFRAME_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name, defaults included.

A plugin that fails to import is recorded with its reason (and the ``pip install
'nasframe[extra]'`` that fixes it when a missing extra is the cause) in
:attr:`PluginManager.statuses`; every other plugin keeps working.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from nasframe import hookspecs
from nasframe.errors import NasframeError, PluginError, closest
from nasframe.registry import COMPONENT_KINDS, ComponentInfo, Registry

if TYPE_CHECKING:
    from nasframe.agents import Agent
    from nasframe.contracts import (
        DatasetHandler,
        ExperimentDB,
        NetworkBuilder,
        PerformanceEstimator,
        SearchSpace,
        StateEncoder,
    )

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginManager",
    "PluginStatus",
    "get_plugin_manager",
    "hookimpl",
]

#: The marker plugins use for hook implementations.
hookimpl = pluggy.HookimplMarker("nasframe")

#: The entry-point group plugins are registered under.
ENTRY_POINT_GROUP = "nasframe"

#: The default plugins: (entry-point name, module). They are also entry points of the
#: nasframe distribution, exactly like a third-party plugin; listing them here fixes
#: their order and keeps them loadable when the package metadata is missing.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("spaces", "nasframe_spaces"),
    ("proxy", "nasframe_proxy"),
    ("memory", "nasframe_memory"),
    ("keras", "nasframe_keras"),
    ("digits", "nasframe_digits"),
    ("cifar10", "nasframe_cifar10"),
    ("metadataset", "nasframe_metadataset"),
    ("csv", "nasframe_csv"),
    ("sqlite", "nasframe_sqlite"),
    ("agents", "nasframe_agents"),
    ("table", "nasframe_table"),
    ("zerocost", "nasframe_zerocost"),
    ("cascade", "nasframe_cascade"),
    ("surrogate", "nasframe_surrogate"),
)

#: Modules whose absence an extra of nasframe fixes.
_EXTRA_FOR_MODULE = {
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "torch": "rl",
    "stable_baselines3": "rl",
    "sb3_contrib": "rl",
    "ray": "ray",
    "matplotlib": "plot",
}


@dataclass
class PluginStatus:
    """What happened to one plugin.

    Attributes:
        name: the entry-point (or registration) name.
        module: the module it comes from.
        version: the version of the distribution that provides it.
        distribution: the name of that distribution (``""``: a plugin object passed to
            :func:`get_plugin_manager`, or an entry point without package metadata).
        status: ``"loaded"``, ``"failed"`` or ``"blocked"``.
        reason: why it failed or was blocked.
        default: whether it is one of nasframe's default plugins.
        hooks: the hooks it implements.
    """

    name: str
    module: str
    version: str = ""
    distribution: str = ""
    status: str = "loaded"
    reason: str = ""
    default: bool = False
    hooks: list[str] = field(default_factory=list)


#: The hooks that observe a run; a plugin failing in one is named (PluginManager.register).
EVENT_HOOKS = frozenset(
    {
        "nasframe_run_started",
        "nasframe_evaluation_stored",
        "nasframe_episode_ended",
        "nasframe_run_finished",
    }
)


def _reporting(function: Any, plugin: str, hook: str) -> Any:
    """``function`` raising a one-line PluginError naming ``plugin`` and ``hook``."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise PluginError(
                f"plugin {plugin!r} failed in {hook}: {type(exc).__name__}"
                + (f": {text}" if text else "")
                + f" (block it with NASFRAME_DISABLE_PLUGINS={plugin})"
            ) from exc

    return call


class PluginManager(pluggy.PluginManager):
    """A pluggy manager with nasframe's registries and plugin statuses."""

    def __init__(self) -> None:
        super().__init__("nasframe")
        self.add_hookspecs(hookspecs)
        self.statuses: dict[str, PluginStatus] = {}
        self._registries: dict[str, Registry[Any]] | None = None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` (pluggy's ``register``); its event hooks report who failed.

        An exception in an implementation of an event hook (``nasframe_run_started``,
        ``nasframe_evaluation_stored``, ``nasframe_episode_ended``,
        ``nasframe_run_finished``) becomes a one-line :class:`PluginError` naming the
        plugin, the hook and the exception, raised from it (``--debug`` shows the
        traceback).
        """
        registered = super().register(plugin, name=name)
        if registered is not None:
            for caller in self.get_hookcallers(plugin) or []:
                if caller.name in EVENT_HOOKS:
                    for impl in caller.get_hookimpls():
                        if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                            wrapped = _reporting(impl.function, registered, caller.name)
                            impl.function = wrapped  # type: ignore[misc]
        return registered

    # -- loading -------------------------------------------------------------------------
    def load_plugin(
        self,
        name: str,
        module_name: str,
        *,
        version: str = "",
        default: bool = False,
        distribution: str = "",
    ) -> PluginStatus:
        """Import ``module_name`` and register it as plugin ``name``, recording the outcome.

        An import failure is recorded (never raised), with the extra to install where a
        missing optional dependency is the cause.
        """
        status = PluginStatus(
            name=name,
            module=module_name,
            version=version,
            default=default,
            distribution=distribution,
        )
        self.statuses[name] = status
        if self.is_blocked(name):
            status.status, status.reason = "blocked", "disabled by NASFRAME_DISABLE_PLUGINS"
            return status
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            status.status, status.reason = "failed", _import_reason(exc)
            return status
        except Exception as exc:  # a plugin may fail in any way; the others keep working
            status.status = "failed"
            message = " ".join(str(exc).split())  # one line, whatever the plugin raised
            status.reason = f"import of {module_name} raised {type(exc).__name__}: {message}"
            return status
        self.register_module(name, module, status)
        return status

    def register_module(self, name: str, module: ModuleType | object, status: PluginStatus) -> None:
        """Register an imported plugin object and note its hooks in ``status``.

        Raises:
            PluginError: a hook implementation does not fit its spec (an argument the
                spec does not have, a generator where none is allowed); names the plugin.
        """
        if self.is_blocked(name):
            status.status, status.reason = "blocked", "disabled by NASFRAME_DISABLE_PLUGINS"
            return
        other = self.get_name(module) if self.is_registered(module) else None
        if other is not None or self.has_plugin(name):
            # pluggy would raise a bare ValueError; say which plugins collide instead
            taken = f"the module is already plugin {other!r}" if other else "the name is taken"
            raise PluginError(f"plugin {name!r} cannot be registered: {taken}")
        try:
            self.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {name!r}: {' '.join(str(exc).split())}; fix the plugin or block it "
                f"with NASFRAME_DISABLE_PLUGINS={name}"
            ) from None
        status.hooks = sorted(caller.name for caller in self.get_hookcallers(module) or [])

    def check(self, *, strict: bool = True) -> None:
        """Reject hooks no spec declares (a typo in a plugin) with a :class:`PluginError`.

        The message names the plugin, the unknown hook and the closest real hook. With
        ``strict=False`` (``nasframe plugins``) the plugin is unregistered and its status
        becomes ``failed`` with that message instead, so the others can be listed.
        """
        if not strict:
            while True:
                try:
                    self.check()
                    return
                except PluginError as exc:
                    name = _culprit(exc, self.statuses)
                    if name is None:
                        raise
                    plugin = self.get_plugin(name)
                    if plugin is not None:
                        self.unregister(plugin)
                    status = self.statuses[name]
                    status.status, status.reason = "failed", str(exc)
        known = sorted(name for name in vars(self.hook) if not name.startswith("_"))
        known = [name for name in known if getattr(self.hook, name).has_spec()]
        for name, caller in sorted(vars(self.hook).items()):
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} implements unknown hook {name!r}"
                        f"{closest(name, known)}; fix the plugin or block it with "
                        f"NASFRAME_DISABLE_PLUGINS={impl.plugin_name}"
                    )
        self.check_pending()  # pluggy's own check, for anything the loop above missed

    # -- registries ------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry[Any]:
        """The registry of component ``kind`` (filled by the registration hooks on first use).

        Untyped (``kind`` is a string); the typed accessors below give mypy what each
        registry's :meth:`~nasframe.registry.Registry.create` builds.

        Raises:
            KeyError: ``kind`` is not a component kind.
        """
        return self.registries()[kind]

    # -- typed registries: one accessor per component kind --------------------------------
    def search_spaces(self) -> Registry[SearchSpace]:
        """The search-space registry (``registry("search_space")``, typed)."""
        return self.registries()["search_space"]

    def state_encoders(self) -> Registry[StateEncoder]:
        """The state-encoder registry (``registry("state_encoder")``, typed)."""
        return self.registries()["state_encoder"]

    def estimators(self) -> Registry[PerformanceEstimator]:
        """The performance-estimator registry (``registry("estimator")``, typed)."""
        return self.registries()["estimator"]

    def datasets(self) -> Registry[DatasetHandler]:
        """The dataset-handler registry (``registry("dataset")``, typed)."""
        return self.registries()["dataset"]

    def databases(self) -> Registry[ExperimentDB]:
        """The experiment-database registry (``registry("database")``, typed)."""
        return self.registries()["database"]

    def agents(self) -> Registry[Agent]:
        """The search-agent registry (``registry("agent")``, typed)."""
        return self.registries()["agent"]

    def builders(self) -> Registry[NetworkBuilder]:
        """The network-builder registry (``registry("builder")``, typed)."""
        return self.registries()["builder"]

    def registries(self) -> dict[str, Registry[Any]]:
        """Every registry, by kind; the registration hooks run on the first call."""
        if self._registries is None:
            registries: dict[str, Registry[Any]] = {
                kind: Registry(kind, describe=self.describe) for kind in COMPONENT_KINDS
            }
            for kind, hook_name in COMPONENT_KINDS.items():
                self._fill(registries[kind], hook_name)
            self._registries = registries
        return self._registries

    def describe(self, name: str) -> str:
        """Plugin ``name`` in words for messages, with the distribution that provides it.

        ``plugin 'spaces' (nasframe 0.1.0)``; just ``plugin 'mine'`` for a plugin object
        passed to :func:`get_plugin_manager` or an entry point without package metadata.
        """
        status = self.statuses.get(name)
        if status is None or not status.distribution:
            return f"plugin {name!r}"
        return f"plugin {name!r} ({' '.join(filter(None, (status.distribution, status.version)))})"

    def _fill(self, registry: Registry[Any], hook_name: str) -> None:
        # The hook is called through pluggy one plugin at a time, so the registry knows
        # which plugin adds what and pluggy runs each plugin's wrappers (new-style
        # ``wrapper=True`` and old-style ``hookwrapper=True``) around its own
        # implementations; the order is pluggy's call order (tryfirst ... trylast).
        caller = getattr(self.hook, hook_name)
        order: list[str] = []
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin_name not in order:
                order.append(impl.plugin_name)
        for plugin_name in order:
            others = [
                plugin
                for name, plugin in self.list_name_plugin()
                if name != plugin_name and plugin is not None
            ]
            registry.current_plugin = plugin_name
            try:
                self.subset_hook_caller(hook_name, remove_plugins=others)(registry=registry)
            except NasframeError as exc:
                # Already one line saying what is wrong; make sure it names the plugin.
                if repr(plugin_name) in str(exc):
                    raise
                raise type(exc)(f"plugin {plugin_name!r}: {exc}") from None
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                registry.current_plugin = ""

    def components(self) -> list[ComponentInfo]:
        """Every registered component of every kind."""
        return [info for registry in self.registries().values() for info in registry]


def _import_reason(exc: ModuleNotFoundError) -> str:
    missing = (exc.name or "").split(".")[0]
    extra = _EXTRA_FOR_MODULE.get(missing)
    if extra:
        return f"needs {missing}, which is not installed; run: pip install 'nasframe[{extra}]'"
    return f"cannot import {missing or exc}: {exc}"


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def _distribution(
    entry_point: importlib.metadata.EntryPoint | None, cache: dict[int, tuple[str, str]]
) -> tuple[str, str]:
    """The name and version of the distribution providing ``entry_point`` (``""`` unknown)."""
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "", ""
    # Reading metadata parses the distribution's METADATA file; the entry points of one
    # distribution share one dist object, so parse it once per manager, not per plugin.
    if id(dist) not in cache:
        metadata = dist.metadata  # read once: each access parses the file again
        cache[id(dist)] = (str(metadata["Name"] or ""), str(metadata["Version"] or ""))
    return cache[id(dist)]


def get_plugin_manager(
    *,
    plugins: Iterable[tuple[str, object]] = (),
    autoload: bool | None = None,
    disable: Iterable[str] | None = None,
    strict: bool = True,
) -> PluginManager:
    """Build a fresh plugin manager with the default and installed plugins.

    Args:
        plugins: extra ``(name, plugin object)`` pairs to register after the defaults,
            e.g. a module or class of a plugin under development, or a test's plugin.
        autoload: load third-party entry points; default: unless
            ``NASFRAME_DISABLE_PLUGIN_AUTOLOAD`` is ``1``/``true``/``yes``.
        disable: plugin names to block; default: ``NASFRAME_DISABLE_PLUGINS`` (comma
            separated).
        strict: raise for a plugin that implements a hook that does not exist; with
            ``False`` that plugin is left out and listed as ``failed`` instead (what
            ``nasframe plugins`` uses, to show everything).

    Raises:
        PluginError: a plugin implements a hook that does not exist (``strict``).
    """
    manager = PluginManager()
    if disable is None:
        disable = [n.strip() for n in os.environ.get("NASFRAME_DISABLE_PLUGINS", "").split(",")]
    for name in disable:
        if name:
            manager.set_blocked(name)
    if autoload is None:
        autoload = os.environ.get("NASFRAME_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in (
            "1",
            "true",
            "yes",
        )
    entry_points = {ep.name: ep for ep in _entry_points()}
    dists: dict[int, tuple[str, str]] = {}
    for name, module_name in DEFAULT_PLUGINS:
        dist, version = _distribution(entry_points.get(name), dists)
        manager.load_plugin(
            name,
            module_name,
            version=version or _own_version(),
            default=True,
            distribution=dist or "nasframe",
        )
    for name, plugin in plugins:
        status = PluginStatus(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        manager.statuses[name] = status
        manager.register_module(name, plugin, status)
    if autoload:
        for name, ep in sorted(entry_points.items()):
            if name in manager.statuses:
                continue
            dist, version = _distribution(ep, dists)
            manager.load_plugin(name, ep.value.split(":")[0], version=version, distribution=dist)
    manager.check(strict=strict)
    return manager


def _culprit(exc: PluginError, statuses: dict[str, PluginStatus]) -> str | None:
    """The plugin a :class:`PluginError` message names (``plugin 'x' ...``), if known."""
    text = str(exc)
    for name in statuses:
        if f"plugin {name!r}" in text:
            return name
    return None


def _own_version() -> str:
    from nasframe._version import __version__

    return __version__
