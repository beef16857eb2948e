"""Component settings declared once: a frozen dataclass is both the settings and the section.

A plugin's settings were written twice -- the factory's keyword defaults and checks, and
the ``[section]`` keys its ``nasframe_add_config`` declares -- and the copies drifted
(issue 31). Here each setting is one dataclass field made with :func:`setting`: its
default, its one-line description and its bounds. :class:`Settings` turns the fields into
the configuration section (:meth:`Settings.declare`) and validates an instance with the
same keys (so ``KerasSettings(dropout=1.5)`` and ``--set keras.dropout=1.5`` give the same
one-line error)::

    @dataclass(frozen=True)
    class ShapesSettings(nasframe.Settings):
        SECTION: ClassVar[str] = "shapes"
        DESCRIPTION: ClassVar[str] = "The shapes dataset."

        size: int = nasframe.setting(16, "image side in pixels", min=4)
        noise: float = nasframe.setting(0.0, "Gaussian noise", min=0, below=1)

    def nasframe_add_config(schema):
        ShapesSettings.declare(schema)

    def make_shapes(**values):
        settings = ShapesSettings.from_mapping(values)  # unknown keys and bad values: errors
        ...

A field's type (``int``, ``float``, ``str``, ``bool``, or ``X | None`` for an optional
key) is the key's type; ``setting``'s keywords are :meth:`nasframe.Section.add`'s
(``choices``, ``min``, ``max``, ``below``, ``above``, ``component``).
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, field, fields
from typing import Any, ClassVar, TypeVar

from nasframe.config.schema import ConfigSchema, Section
from nasframe.errors import ConfigError, closest

__all__ = ["Settings", "setting"]

_T = TypeVar("_T", bound="Settings")

_KINDS = {int: int, float: float, str: str, bool: bool}


def setting(default: Any, description: str, **spec: Any) -> Any:
    """One setting: a dataclass field with its default, description and bounds.

    Args:
        default: the default value (``None``: the key is optional and unset by default).
        description: one line for ``resources/config.ini`` and ``config show``.
        **spec: the key's ``choices``, ``min``, ``max``, ``below``, ``above``, ``component``.
    """
    return field(default=default, metadata={"description": description, **spec})


class Settings:
    """The base of a component's settings dataclass (declare it ``@dataclass(frozen=True)``).

    Class attributes:
        SECTION: the configuration section's name (``"keras"``).
        DESCRIPTION: its one-line description.

    ``__post_init__`` converts and checks every field with its configuration key; a
    subclass that checks more calls ``super().__post_init__()`` first.
    """

    SECTION: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name, key in self.section().keys.items():
            value = key.convert(getattr(self, name), f"[{self.SECTION}] {name}")
            object.__setattr__(self, name, value)

    @classmethod
    def section(cls) -> Section:
        """The configuration section made from the fields (built once per class)."""
        cached = cls.__dict__.get("_nasframe_section")
        if isinstance(cached, Section):
            return cached
        if not cls.SECTION:
            raise TypeError(f"{cls.__name__}: set SECTION, the configuration section's name")
        section = Section(cls.SECTION, cls.DESCRIPTION)
        hints = typing.get_type_hints(cls)
        for spec in fields(cls):  # type: ignore[arg-type]
            metadata = dict(spec.metadata)
            if "description" not in metadata:
                continue  # a field that is not a setting (made without setting())
            description = metadata.pop("description")
            kind, optional = _kind(hints[spec.name], f"{cls.__name__}.{spec.name}")
            default = None if spec.default is MISSING else spec.default
            section.add(spec.name, kind, default, description, optional=optional, **metadata)
        cls._nasframe_section = section  # type: ignore[attr-defined]
        return section

    @classmethod
    def declare(cls, schema: ConfigSchema) -> None:
        """Declare the section and its keys on ``schema`` (``nasframe_add_config``).

        Raises:
            ValueError: a key is declared twice (a programming error of a plugin).
        """
        own = cls.section()
        target = schema.section(own.name, own.description)
        for key in own.keys.values():
            if key.name in target.keys:
                raise ValueError(f"config key [{own.name}] {key.name} is declared twice")
            target.keys[key.name] = key

    @classmethod
    def from_mapping(cls: type[_T], values: typing.Mapping[str, Any]) -> _T:
        """Settings from keyword values (a configuration section); unknown keys are errors.

        Raises:
            ConfigError: a key is unknown or a value is not valid; the message names the
                section and the key.
        """
        known = set(cls.section().keys)
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"unknown key {key!r} in section [{cls.SECTION}]{closest(key, known)} "
                    f"(known: {', '.join(sorted(known))})"
                )
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name."""
        return {name: getattr(self, name) for name in self.section().keys}


def _kind(hint: Any, where: str) -> tuple[type, bool]:
    """The key type of a field's annotation, and whether ``None`` is allowed."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        if len(members) == 1:
            hint = members[0]
    if hint not in _KINDS:
        raise TypeError(f"{where}: a setting is int, float, str or bool (or X | None)")
    return _KINDS[hint], optional
