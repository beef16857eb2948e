"""Options and helpers shared by the subcommands: ``--config`` and ``--set``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from nasframe.config import Config, load_config, parse_override
from nasframe.errors import NasframeError

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["config_options", "load_from_options", "write_text"]

F = TypeVar("F", bound=Callable[..., Any])


def config_options(function: F) -> F:
    """Add ``--config FILE`` and repeatable ``--set section.key=value`` to a command."""
    function = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="SECTION.KEY=VALUE",
        help="Override one configuration value (repeatable); wins over the file.",
    )(function)
    function = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="An INI configuration file (see resources/config.ini).",
    )(function)
    return function


def load_from_options(
    config_path: Path | None,
    overrides: Sequence[str],
    extra: dict[str, dict[str, Any]] | None = None,
    plugin_manager: PluginManager | None = None,
) -> Config:
    """Load the configuration: defaults < ``--config`` file < ``extra`` < ``--set`` values."""
    merged: dict[str, dict[str, Any]] = {}
    for section, values in (extra or {}).items():
        merged.setdefault(section, {}).update(
            {key: value for key, value in values.items() if value is not None}
        )
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    return load_config(config_path, merged, plugin_manager=plugin_manager)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` for an ``--output`` option and say so on stderr.

    Raises:
        NasframeError: the file cannot be written (a missing folder, no permission).
    """
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NasframeError(f"{path}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"wrote {path}", err=True)
