"""Named, versioned component registries handed to the registration hooks.

A plugin adds factories to a :class:`Registry` in its registration hook::

    @nasframe.hookimpl
    def nasframe_register_search_spaces(registry):
        registry.add("chained-v1", ChainedSearchSpace, summary="one layer after another")

Names end in a version, ``-v<N>``. A behaviour change of a component is a new version;
the old one stays until it is retired. Looking up a name without its version picks the
highest version (``"chained"`` -> ``"chained-v2"`` if both ``v1`` and ``v2`` exist).

**Two plugins registering one name** is an error naming both plugins, unless one of them
registers with ``replace=True``: then that one wins, whichever plugin's hook runs first.
Both passing ``replace=True`` is an error naming both, and so is one plugin registering
a name twice. Default plugins never pass ``replace``, so an installed plugin can replace a
default by name on purpose but never by accident. The plugin manager describes each plugin
in these messages with the distribution it comes from (``plugin 'spaces' (nasframe
0.1.0)``), so a user who installed two plugins that clash knows what to remove.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nasframe.errors import PluginError, RegistryError, closest

__all__ = ["COMPONENT_KINDS", "ComponentInfo", "Registry"]

#: The component kinds, each with the registration hook that fills its registry.
COMPONENT_KINDS = {
    "search_space": "nasframe_register_search_spaces",
    "state_encoder": "nasframe_register_state_encoders",
    "estimator": "nasframe_register_estimators",
    "dataset": "nasframe_register_datasets",
    "database": "nasframe_register_experiment_dbs",
    "agent": "nasframe_register_agents",
    "builder": "nasframe_register_builders",
}

#: What a registry's factories build (``Registry[PerformanceEstimator]``, ...).
T = TypeVar("T")

_VERSIONED = re.compile(r"^(?P<base>[a-z0-9][a-z0-9_.-]*?)-v(?P<version>[0-9]+)$")


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component: its factory and metadata.

    Attributes:
        kind: the component kind (a key of :data:`COMPONENT_KINDS`).
        name: the full versioned name, e.g. ``chained-v1``.
        factory: a callable that builds the component from keyword settings.
        summary: one line saying what it is.
        plugin: the name of the plugin that registered it.
        section: the configuration section whose values are passed to ``factory``
            (``None``: no settings).
        extra: the ``nasframe[extra]`` it needs, if any (for messages).
        replace: whether it replaced a component of the same name.
        requires: top-level modules the factory imports (checked by :attr:`available`).
        suffixes: file suffixes (``".csv"``) the component reads and writes, lower-case;
            ``nasframe db`` picks a database backend by the suffix of a path from these.
        wants_composition: the factory takes a ``composition`` keyword
            (:class:`nasframe.compose.Composition`): :func:`nasframe.compose.create`
            passes the configuration and plugin manager building it, for the parts it
            builds itself.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    summary: str = ""
    plugin: str = ""
    section: str | None = None
    extra: str | None = None
    replace: bool = False
    requires: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    wants_composition: bool = False

    @property
    def missing(self) -> tuple[str, ...]:
        """The modules of :attr:`requires` that are not installed."""
        import importlib.util

        return tuple(m for m in self.requires if importlib.util.find_spec(m) is None)

    @property
    def available(self) -> bool:
        """Whether every module the component needs is installed."""
        return not self.missing

    def install_hint(self) -> str:
        """The pip command that makes the component available (empty if it is)."""
        if self.available:
            return ""
        if self.extra:
            return f"pip install 'nasframe[{self.extra}]'"
        return "pip install " + " ".join(self.missing)

    @property
    def base_name(self) -> str:
        """The name without its version suffix."""
        return _split(self.name)[0]

    @property
    def version(self) -> int:
        """The version number from the name."""
        return _split(self.name)[1]


def _who(plugin: str) -> str:
    return f"plugin {plugin!r}" if plugin else "code outside a plugin"


#: What a clash of two plugins tells the user to do (an author passes ``replace=True``).
_CLASH_FIX = "block one with NASFRAME_DISABLE_PLUGINS"


def _split(name: str) -> tuple[str, int]:
    match = _VERSIONED.match(name)
    if match is None:
        raise RegistryError(
            f"component name {name!r} must be lower-case and end in a version, like 'chained-v1'"
        )
    return match["base"], int(match["version"])


class Registry(Generic[T]):
    """The components of one kind, by name.

    Generic in what its factories build: the registration hooks receive a
    ``Registry[SearchSpace]``, ``Registry[PerformanceEstimator]``, ... (see
    :mod:`nasframe.hookspecs`), so mypy checks that a plugin registers a factory of the
    right kind, and the plugin manager's typed accessors
    (:meth:`nasframe.PluginManager.estimators`, ...) give what :meth:`create` builds its
    type.

    Args:
        kind: the component kind, for messages (``"search_space"``, ...).
        describe: names a plugin in messages, given its name (the plugin manager adds
            the distribution: ``plugin 'spaces' (nasframe 0.1.0)``); by default
            ``plugin 'spaces'``.
    """

    def __init__(self, kind: str, *, describe: Callable[[str], str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, ComponentInfo] = {}
        self._describe = describe
        #: set by the plugin manager while a plugin's registration hook runs
        self.current_plugin = ""

    def _who(self, plugin: str) -> str:
        if plugin and self._describe is not None:
            return self._describe(plugin)
        return _who(plugin)

    @property
    def label(self) -> str:
        """The kind in words, for messages (``"search space"``)."""
        return self.kind.replace("_", " ")

    def add(
        self,
        name: str,
        factory: Callable[..., T],
        *,
        summary: str = "",
        section: str | None = None,
        extra: str | None = None,
        replace: bool = False,
        requires: tuple[str, ...] = (),
        suffixes: tuple[str, ...] = (),
    ) -> ComponentInfo:
        """Register ``factory`` under the versioned ``name``.

        Args:
            name: lower-case name ending in ``-v<N>``.
            factory: builds the component; called with the settings of ``section`` as
                keyword arguments (plus the context the kind needs, see the hook docs).
            summary: one line for ``nasframe plugins``.
            section: the configuration section holding this component's settings.
            extra: the ``nasframe[extra]`` the component needs, for messages.
            replace: replace a component of the same name registered by another plugin.
            requires: modules the factory imports; import them inside the factory, not at
                module level, so ``import nasframe`` stays fast and works without them.
            suffixes: file suffixes the component stores its data in (``(".csv",)``),
                for components chosen by a file's name (``nasframe db``).

        Raises:
            RegistryError: the name is malformed, a suffix does not start with a dot, or
                another plugin registered it and neither registration passed
                ``replace=True``.
        """
        _split(name)
        for suffix in suffixes:
            if not (isinstance(suffix, str) and suffix.startswith(".") and len(suffix) > 1):
                raise RegistryError(
                    f"{self.label} {name!r}: suffix {suffix!r} must start with a dot, like '.csv'"
                )
        info = ComponentInfo(
            kind=self.kind,
            name=name,
            factory=factory,
            summary=summary,
            plugin=self.current_plugin,
            section=section,
            extra=extra,
            replace=replace,
            requires=tuple(requires),
            suffixes=tuple(suffix.lower() for suffix in suffixes),
            wants_composition=_takes_keyword(factory, "composition"),
        )
        existing = self._entries.get(name)
        if existing is not None:
            if existing.plugin == info.plugin:
                raise RegistryError(
                    f"{self.label} {name!r} is registered twice by {self._who(info.plugin)}"
                )
            if existing.replace and replace:
                # Two overrides of one name: neither may silently win.
                raise RegistryError(
                    f"{self.label} {name!r} is replaced by both {self._who(existing.plugin)} "
                    f"and {self._who(info.plugin)}; {_CLASH_FIX}"
                )
            if existing.replace:
                return existing
            if not replace:
                raise RegistryError(
                    f"{self.label} {name!r} is registered by both "
                    f"{self._who(existing.plugin)} and {self._who(info.plugin)}; {_CLASH_FIX}, "
                    "or pass replace=True in one to override"
                )
        self._entries[name] = info
        return info

    def get(self, name: str) -> ComponentInfo:
        """The component called ``name`` (with or without its version suffix).

        Raises:
            RegistryError: no such component; the message lists the available names and
                the closest match.
        """
        if name in self._entries:
            return self._entries[name]
        versions = [info for info in self._entries.values() if info.base_name == name]
        if versions:
            return max(versions, key=lambda info: info.version)
        names = sorted(self._entries)
        candidates = names + sorted({info.base_name for info in self._entries.values()})
        available = ", ".join(names) if names else "none registered"
        raise RegistryError(
            f"unknown {self.label} {name!r}{closest(name, candidates)} (available: {available})"
        )

    def create(self, name: str, *args: Any, **settings: Any) -> T:
        """Build the component called ``name`` with ``args`` and ``settings``.

        Raises:
            RegistryError: the name is unknown.
            PluginError: the component needs a package that is not installed; the message
                gives the pip command.
        """
        info = self.get(name)
        if not info.available:
            raise PluginError(
                f"{self.label} {info.name!r} needs {', '.join(info.missing)}, which is not "
                f"installed; run: {info.install_hint()}"
            )
        return info.factory(*args, **settings)

    def by_suffix(self, suffix: str) -> ComponentInfo | None:
        """The component that declared file ``suffix`` (``".csv"``), or ``None``.

        Case does not matter. A suffix two components declare goes to the one with the
        earlier name, so the answer does not depend on the order plugins loaded in.
        """
        wanted = suffix.lower()
        for info in self:
            if wanted in info.suffixes:
                return info
        return None

    def suffixes(self) -> dict[str, str]:
        """Every declared file suffix and the component it selects, ``{".csv": "csv-v1"}``."""
        table: dict[str, str] = {}
        for info in self:
            for suffix in info.suffixes:
                table.setdefault(suffix, info.name)
        return table

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __iter__(self) -> Iterator[ComponentInfo]:
        return iter(sorted(self._entries.values(), key=lambda info: info.name))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get(name)
        except RegistryError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._entries)


def _takes_keyword(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` declares a parameter ``name`` (a class: its ``__init__``)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
    parameter = parameters.get(name)
    return parameter is not None and parameter.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
