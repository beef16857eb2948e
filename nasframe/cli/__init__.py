"""The ``nasframe`` command.

Subcommands live in modules of this package and are imported only when used, so
``nasframe --help`` and ``nasframe plugins`` stay fast and never import TensorFlow.
A user's error (:class:`~nasframe.errors.NasframeError`) prints one line,
``error: <message>``, and exits 1 with no traceback; ``--debug`` shows the traceback.
The command sets ``TF_CPP_MIN_LOG_LEVEL=1`` unless it is set (:data:`TF_LOG_LEVEL`).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from nasframe.errors import NasframeError

__all__ = ["SUBCOMMANDS", "TF_LOG_LEVEL", "main"]

#: Subcommand name -> ``module:attribute`` of its click command.
SUBCOMMANDS = {
    "plugins": "nasframe.cli.plugins_cmd:plugins",
    "config": "nasframe.cli.config_cmd:config",
    "spaces": "nasframe.cli.spaces_cmd:spaces",
    "db": "nasframe.cli.db_cmd:db",
    "hooks": "nasframe.cli.hooks_cmd:hooks",
    "evaluate": "nasframe.cli.evaluate_cmd:evaluate",
    "search": "nasframe.cli.search_cmd:search",
    "bench": "nasframe.cli.bench_cmd:bench",
    "finalize": "nasframe.cli.finalize_cmd:finalize",
    "play": "nasframe.cli.play_cmd:play",
    "import-nasgym": "nasframe.cli.import_cmd:import_nasgym",
}


#: ``TF_CPP_MIN_LOG_LEVEL`` the command sets unless the user has set it: ``1`` hides
#: TensorFlow's C++ INFO lines (the CPU-feature banner) and keeps its warnings and errors.
#: The lines absl prints before TensorFlow initialises its logging (``WARNING: All log
#: messages before absl::InitializeLog() ...`` and the ``oneDNN custom operations are on``
#: line) ignore this variable and still show.
TF_LOG_LEVEL = "1"


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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the subcommands with their whole one-line summaries (click cuts them at ~45)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; first quiet TensorFlow's C++ INFO logging (see :data:`TF_LOG_LEVEL`).

        Set here, before click resolves (and imports) a subcommand, so it is in place before
        anything can import TensorFlow. Only the command does this: ``import nasframe``
        leaves the environment alone.
        """
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NasframeError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def _version() -> str:
    from nasframe._version import __version__

    return __version__


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=_version(), prog_name="nasframe")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def main(debug: bool) -> None:
    """nasframe: neural architecture search by reinforcement learning, with plugins."""
