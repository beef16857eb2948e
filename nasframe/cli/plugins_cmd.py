"""``nasframe plugins``: every plugin, its version, status, hooks and components."""

from __future__ import annotations

import click

__all__ = ["plugins"]


@click.command()
@click.option("--hooks", "show_hooks", is_flag=True, help="Also list each plugin's hooks.")
def plugins(show_hooks: bool) -> None:
    """List the plugins: name, version, status and the components each registered.

    Below the table, one line per plugin that failed to load or was blocked says why
    (and the pip command that fixes a missing extra), and one line per component whose
    dependencies are missing gives its pip command. Those lines are never wrapped, so
    they can be copied. A broken plugin is listed as ``failed``, not an error: the
    command exits 0 so that it always shows what broke (when a registration hook
    fails, the components are left out and its one-line error is printed below).
    """
    from rich.console import Console
    from rich.table import Table

    from nasframe.errors import NasframeError
    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager(strict=False)
    by_plugin: dict[str, list[str]] = {}
    plugin_notes: list[str] = []
    component_notes: list[str] = []
    try:
        components = manager.components()
    except NasframeError as exc:  # a registration hook raised, or two plugins share a name
        components = []
        component_notes.append(f"components not listed: {exc}")
    for info in components:
        mark = "" if info.available else " (unavailable)"
        by_plugin.setdefault(info.plugin, []).append(f"{info.kind}: {info.name}{mark}")
        if not info.available:
            component_notes.append(
                f"{info.kind} {info.name} needs {', '.join(info.missing)}; "
                f"run: {info.install_hint()}"
            )
    table = Table(title="nasframe plugins", show_lines=True)
    for column in ("plugin", "version", "status", "components"):
        table.add_column(column, overflow="fold")
    if show_hooks:
        table.add_column("hooks")
    ordered = sorted(manager.statuses.items(), key=lambda kv: (not kv[1].default, kv[0]))
    for name, status in ordered:
        row = [name, status.version, status.status, "\n".join(by_plugin.get(name, [])) or "-"]
        if show_hooks:
            row.append("\n".join(status.hooks))
        table.add_row(*row)
        if status.reason:
            plugin_notes.append(f"{name} {status.status}: {status.reason}")
    Console().print(table)
    for note in plugin_notes + component_notes:
        click.echo(note)
