"""``nasframe spaces``: list the search spaces and show the actions of one."""

from __future__ import annotations

from pathlib import Path

import click

from nasframe.cli.options import config_options, load_from_options

__all__ = ["spaces"]


@click.group()
def spaces() -> None:
    """Search spaces: list them, and show the action table of one."""


@spaces.command("list")
def list_spaces() -> None:
    """List the registered search spaces."""
    from nasframe.plugins import get_plugin_manager

    for info in get_plugin_manager().search_spaces():
        click.echo(f"{info.name:<16} {info.summary}  [{info.plugin}]")


@spaces.command("show")
@click.option(
    "--space",
    "space_name",
    default=None,
    help="Search space name, e.g. chained, pointer, absolute (default: [env] search_space).",
)
@click.option(
    "--file",
    "space_file",
    default=None,
    help="Layers YAML: a built-in name (nasenv, chain, multibranch) or a path.",
)
@config_options
def show(
    space_name: str | None,
    space_file: str | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """Print every action of a search space: id, label and kind."""
    from rich.console import Console
    from rich.table import Table

    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager()
    config = load_from_options(
        config_path, overrides, {"search_space": {"file": space_file}}, plugin_manager=manager
    )
    registry = manager.search_spaces()
    info = registry.get(space_name or config.get("env", "search_space"))
    space = registry.create(info.name, **config.component_settings(info))
    spec = getattr(space, "spec", None)
    source = f" from {spec.source}" if spec is not None else ""
    console = Console(width=120)
    console.print(f"{info.name}{source}: {space.action_space.n} actions, depth {space.max_depth}")
    table = Table()
    for column in ("id", "action", "kind"):
        table.add_column(column)
    for action in space.actions():
        table.add_row(str(action.id), action.label, action.kind)
    console.print(table)
