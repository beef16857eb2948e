"""``nasframe config``: show the effective configuration."""

from __future__ import annotations

from pathlib import Path

import click

from nasframe.cli.options import config_options, load_from_options

__all__ = ["config"]


@click.group()
def config() -> None:
    """Inspect configurations."""


@config.command("show")
@config_options
def show(config_path: Path | None, overrides: tuple[str, ...]) -> None:
    """Print the effective configuration; each value's comment says where it came from."""
    click.echo(load_from_options(config_path, overrides).to_ini())
