"""``nasframe import-nasgym``: carry a NASGym configuration and experiment database over."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["import_nasgym"]


@click.command("import-nasgym")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="NASGym's config.ini to translate.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="NASGym's CSV experiment database (db_experiments.csv) to import.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("nasgym-import"),
    show_default=True,
    help="Folder for the translated nasframe.ini and the imported experiments database.",
)
@click.option(
    "--database",
    "database_name",
    default="experiments.csv",
    show_default=True,
    help="File name of the nasframe database in --output (.csv or .sqlite).",
)
def import_nasgym(
    config_path: Path | None, db_path: Path | None, output: Path, database_name: str
) -> None:
    """Translate NASGym's config.ini and import its experiment database.

    The configuration becomes OUTPUT/nasframe.ini (pass it to nasframe search --config);
    each NASGym key without a nasframe equivalent is named in one line on stderr. The
    database's rows (architecture, accuracy, density, FLOPs, training time, validity,
    dataset) become records of OUTPUT/experiments.csv. See docs/from-nasgym.md.
    """
    from nasframe.cli.db_cmd import open_database
    from nasframe.errors import ConfigError
    from nasframe.nasgym import describe, import_database, nasgym_trainer, translate_config

    if config_path is None and db_path is None:
        raise ConfigError("give --config (NASGym's config.ini), --db (its CSV database) or both")
    output.mkdir(parents=True, exist_ok=True)
    if config_path is not None:
        translation = translate_config(config_path)
        target = output / "nasframe.ini"
        target.write_text(translation.to_ini(), encoding="utf-8")
        for line in translation.unmapped:
            click.echo(f"not translated: {line}", err=True)
        translated = sum(len(values) for values in translation.values.values())
        click.echo(f"{translated} keys translated, {len(translation.unmapped)} not: wrote {target}")
    if db_path is not None:
        trainer, epochs = nasgym_trainer(config_path)
        database = open_database(output / database_name, create=True)
        try:
            result = import_database(db_path, database, trainer=trainer, epochs=epochs)
        finally:
            database.close()
        for line in result.skipped:
            click.echo(line, err=True)
        click.echo(f"{describe(result)}: wrote {output / database_name}")
