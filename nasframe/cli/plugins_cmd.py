"""``nasframe plugins``: every plugin, its version, status, hooks and components."""

from __future__ import annotations

import click

__all__ = ["plugins"]


@click.command()
@click.option("--hooks", "show_hooks", is_flag=True, help="Also list each plugin's hooks.")
def plugins(show_hooks: bool) -> None:
    """List the plugins: name, version, status and the components each registered."""
    from rich.console import Console
    from rich.table import Table

    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager()
    by_plugin: dict[str, list[str]] = {}
    for info in manager.components():
        mark = "" if info.available else f" (needs {info.install_hint()})"
        by_plugin.setdefault(info.plugin, []).append(f"{info.kind}: {info.name}{mark}")
    table = Table(title="nasframe plugins", show_lines=True)
    for column in ("plugin", "version", "status", "components"):
        table.add_column(column)
    if show_hooks:
        table.add_column("hooks")
    for name, status in sorted(manager.statuses.items(), key=lambda kv: (not kv[1].default, kv[0])):
        state = status.status if not status.reason else f"{status.status}: {status.reason}"
        row = [name, status.version, state, "\n".join(by_plugin.get(name, [])) or "-"]
        if show_hooks:
            row.append("\n".join(status.hooks))
        table.add_row(*row)
    Console(width=160).print(table)
