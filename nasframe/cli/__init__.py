"""The ``nasframe`` command.

Subcommands live in modules of this package and are imported only when used, so
``nasframe --help`` and ``nasframe plugins`` stay fast and never import TensorFlow.
A user's error (:class:`~nasframe.errors.NasframeError`) prints one line,
``error: <message>``, and exits 1 with no traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from nasframe.errors import NasframeError

__all__ = ["SUBCOMMANDS", "main"]

#: Subcommand name -> ``module:attribute`` of its click command.
SUBCOMMANDS = {
    "plugins": "nasframe.cli.plugins_cmd:plugins",
    "config": "nasframe.cli.config_cmd:config",
    "spaces": "nasframe.cli.spaces_cmd:spaces",
    "db": "nasframe.cli.db_cmd:db",
    "hooks": "nasframe.cli.hooks_cmd:hooks",
    "evaluate": "nasframe.cli.evaluate_cmd:evaluate",
    "search": "nasframe.cli.search_cmd:search",
}


class _LazyGroup(click.Group):
    """A group that imports subcommands on demand and turns user errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NasframeError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def _version() -> str:
    from nasframe import __version__

    return __version__


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=_version(), prog_name="nasframe")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def main(debug: bool) -> None:
    """nasframe: neural architecture search by reinforcement learning, with plugins."""
