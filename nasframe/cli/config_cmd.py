"""``nasframe config``: show the effective configuration, or a template of every key."""

from __future__ import annotations

from pathlib import Path

import click

from nasframe.cli.options import config_options, load_from_options, write_text

__all__ = ["config"]


@click.group()
def config() -> None:
    """Inspect configurations."""


@config.command("show")
@config_options
def show(config_path: Path | None, overrides: tuple[str, ...]) -> None:
    """Print the effective configuration; each value's comment says where it came from.

    Component names you set (in the file or with --set) are checked against the
    registries of the installed plugins, and every file you name (a search-space YAML,
    a saved agent) must exist; defaults are checked when a run builds them.
    """
    from nasframe.config import check_components, check_files
    from nasframe.plugins import get_plugin_manager

    manager = get_plugin_manager()
    effective = load_from_options(config_path, overrides, plugin_manager=manager)
    check_components(effective, manager, user_set_only=True)
    check_files(effective, user_set_only=True)
    click.echo(effective.to_ini())


@config.command("template")
@click.option(
    "--builtin",
    is_flag=True,
    help="Only the core and the default plugins (ignore third-party plugins); "
    "this is how resources/config.ini is made.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    default=None,
    help="Write to FILE instead of standard output.",
)
def template(builtin: bool, output: Path | None) -> None:
    """Print an INI file documenting every key of every section, set to its default.

    Regenerate the bundled copy with: nasframe config template --builtin -o
    resources/config.ini
    """
    from nasframe.config import ConfigSchema, core_schema
    from nasframe.config import template as render
    from nasframe.plugins import get_plugin_manager

    # --builtin must not depend on the environment, so the bundled copy is reproducible.
    manager = get_plugin_manager(autoload=False, disable=()) if builtin else get_plugin_manager()
    schema = core_schema(ConfigSchema())
    manager.hook.nasframe_add_config(schema=schema)
    text = render(schema)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text(output, text)
