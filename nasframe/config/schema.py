"""The configuration schema: the sections and keys a configuration may hold.

Plain value types with no dependency on the loader (:mod:`nasframe.config.loading`) or
the plugin manager, so the hook specifications can name :class:`ConfigSchema` without
depending on the configuration machinery. Plugins get these names from ``nasframe``
(``ConfigSchema``, ``Section``, ``Key``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.errors import ConfigError, closest

__all__ = ["ConfigSchema", "Key", "Section"]

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


@dataclass(frozen=True)
class Key:
    """One configuration key.

    Attributes:
        name: the key, lower-case.
        type: ``int``, ``float``, ``str``, ``bool`` or ``Path``.
        default: the built-in default (``None`` means "not set").
        description: one line for ``resources/config.ini`` and ``config show``.
        choices: the allowed values, if limited.
        min: the smallest allowed number.
        max: the largest allowed number.
        below: a number the value must stay under (an open upper bound: dropout < 1).
        above: a number the value must stay over (an open lower bound: a fraction > 0).
        optional: ``None`` (an empty value) is allowed.
        component: the component kind the value names (``"builder"``, ...), or ``None``.
            The composition (:mod:`nasframe.compose`) builds the named component and
            passes the instance to the factory instead of the name, and
            :func:`~nasframe.config.check_components` checks that the name is registered.
    """

    name: str
    type: type
    default: Any
    description: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    optional: bool = False
    component: str | None = None
    below: float | None = None
    above: float | None = None

    def convert(self, value: Any, where: str) -> Any:
        """Convert ``value`` (a string from a file, or a Python value) and check it.

        Raises:
            ConfigError: with ``where`` (file, section and key) in the message.
        """
        if value is None or (isinstance(value, str) and value.strip() == "" and self.optional):
            if self.optional or self.default is None:
                return None
            raise ConfigError(f"{where}: a value is required ({self.describe()})")
        try:
            converted = self._convert(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: {value!r} is not a valid {self.type.__name__} ({self.describe()})"
            ) from None
        if self.choices is not None and converted not in self.choices:
            options = ", ".join(map(str, self.choices))
            hint = closest(str(converted), map(str, self.choices))
            raise ConfigError(f"{where}: {converted!r} is not one of {options}{hint}")
        if self.min is not None and converted < self.min:
            raise ConfigError(f"{where}: {converted!r} is below the minimum {self.min:g}")
        if self.max is not None and converted > self.max:
            raise ConfigError(f"{where}: {converted!r} is above the maximum {self.max:g}")
        if self.above is not None and not converted > self.above:
            if self.max is not None:
                raise ConfigError(
                    f"{where}: {converted!r} must be in ({self.above:g}, {self.max:g}]"
                )
            raise ConfigError(f"{where}: {converted!r} must be above {self.above:g}")
        if self.below is not None and not converted < self.below:
            if self.min is not None:
                raise ConfigError(
                    f"{where}: {converted!r} must be in [{self.min:g}, {self.below:g})"
                )
            raise ConfigError(f"{where}: {converted!r} must be below {self.below:g}")
        return converted

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if self.type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if self.type is float:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
            # NaN and infinity mean nothing in a setting; "no limit" is written 0.
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if self.type is Path:
            text = str(value).strip()
            if not text:  # Path("") would silently mean the working folder
                raise ValueError(value)
            return Path(text).expanduser()
        return str(value).strip() if isinstance(value, str) else str(value)

    def describe(self) -> str:
        """What is valid, in words."""
        parts = [self.type.__name__]
        if self.choices is not None:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.below is not None:
            parts.append(f"< {self.below:g}")
        return ", ".join(parts)


@dataclass
class Section:
    """A configuration section and its keys."""

    name: str
    description: str = ""
    keys: dict[str, Key] = field(default_factory=dict)

    def add(
        self,
        name: str,
        type: type,
        default: Any,
        description: str,
        *,
        choices: Sequence[Any] | None = None,
        min: float | None = None,
        max: float | None = None,
        optional: bool = False,
        component: str | None = None,
        below: float | None = None,
        above: float | None = None,
    ) -> Section:
        """Declare a key; returns the section so declarations can chain.

        ``component`` marks a key whose value names a registered component of that kind
        (see :attr:`Key.component`), e.g. ``[keras] builder``.

        Raises:
            ValueError: the key is declared twice (a programming error of a plugin).
        """
        key_name = name.lower()
        if key_name in self.keys:
            raise ValueError(f"config key [{self.name}] {key_name} is declared twice")
        self.keys[key_name] = Key(
            key_name,
            type,
            default,
            description,
            tuple(choices) if choices is not None else None,
            min,
            max,
            optional,
            component,
            below,
            above,
        )
        return self


class ConfigSchema:
    """Every section and key a configuration may hold."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}

    def section(self, name: str, description: str = "") -> Section:
        """The section called ``name``, created on first use."""
        key = name.lower()
        if key not in self.sections:
            self.sections[key] = Section(key, description)
        elif description and not self.sections[key].description:
            self.sections[key].description = description
        return self.sections[key]

    def __iter__(self) -> Iterator[Section]:
        return iter(self.sections.values())

    def defaults(self) -> dict[str, dict[str, Any]]:
        """The built-in default of every key, ``{section: {key: default}}``."""
        return {s.name: {k.name: k.default for k in s.keys.values()} for s in self}
