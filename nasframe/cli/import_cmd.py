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
@click.option(
    "--skip-bad",
    is_flag=True,
    help="Skip (and count) database rows with a bad value instead of refusing the file.",
)
def import_nasgym(
    config_path: Path | None,
    db_path: Path | None,
    output: Path,
    database_name: str,
    skip_bad: bool,
) -> None:
    """Translate NASGym's config.ini and import its experiment database.

    The configuration becomes OUTPUT/nasframe.ini (pass it to nasframe search --config),
    with the search-space file NASGym's ConfigFile names (relative to its config.ini's
    folder, else the current one) copied next to it; each NASGym key without a nasframe
    equivalent is named in one line on stderr. The database's rows (architecture,
    accuracy, density, FLOPs, training time, validity, dataset) become records of
    OUTPUT/experiments.csv. A row with a bad value (an accuracy outside [0, 1], a
    negative or non-finite number) refuses the import, naming its line; --skip-bad
    imports the other rows and names and counts the skipped ones.
    See docs/from-nasgym.md.
    """
    from nasframe.authoring.storage import open_database
    from nasframe.errors import ConfigError
    from nasframe.nasgym import (
        describe,
        nasgym_trainer,
        read_database,
        store_records,
        translate_config,
    )
    from nasframe.runlock import check_folder_path

    if config_path is None and db_path is None:
        raise ConfigError("give --config (NASGym's config.ini), --db (its CSV database) or both")
    check_folder_path(output, "--output")
    # Everything is read and checked before anything is written.
    translation = translate_config(config_path) if config_path is not None else None
    read = None
    if db_path is not None:
        trainer, epochs = nasgym_trainer(config_path)
        read = read_database(db_path, trainer=trainer, epochs=epochs, skip_bad=skip_bad)
    output.mkdir(parents=True, exist_ok=True)
    if translation is not None:
        target = translation.write(output)
        for line in translation.unmapped:
            click.echo(f"not translated: {line}", err=True)
        translated = sum(len(values) for values in translation.values.values())
        click.echo(f"{translated} keys translated, {len(translation.unmapped)} not: wrote {target}")
    if read is not None:
        records, result = read
        database = open_database(output / database_name, create=True)
        try:
            store_records(database, records, result)
        finally:
            database.close()
        for line in result.skipped:
            click.echo(line, err=True)
        click.echo(f"{describe(result)}: wrote {output / database_name}")
