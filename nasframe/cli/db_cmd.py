"""``nasframe db``: look into, export and merge experiment databases.

A path's backend is chosen by its extension, from the suffixes the backends declare
when they register (``suffixes=``): ``.csv`` is ``csv``, ``.sqlite``, ``.sqlite3`` and
``.db`` are ``sqlite``. The backends come from the plugin registry,
exactly as a search builds them, so an installed plugin that replaces one is used here
too.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nasframe.authoring.storage import open_database
from nasframe.errors import DatabaseError

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["db", "open_database"]


def __getattr__(name: str) -> Any:
    # Deprecated: the table was written here; the backends now declare their suffixes.
    if name == "BACKEND_BY_SUFFIX":
        from nasframe.plugins import get_plugin_manager

        warnings.warn(
            "nasframe.cli.db_cmd.BACKEND_BY_SUFFIX is deprecated; use "
            "plugin_manager.registry('database').suffixes() (backends declare suffixes=)",
            DeprecationWarning,
            stacklevel=2,
        )
        table = get_plugin_manager().databases().suffixes()
        return {suffix: name.rsplit("-v", 1)[0] for suffix, name in table.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Columns of the tables that hold text (left-aligned; numbers are right-aligned).
_TEXT_COLUMNS = {"status", "dataset", "fingerprint", "nsc"}

#: The step log a search writes into its output folder (``nasframe.results``).
_STEP_LOG = "steps.csv"

_EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _frame(path: Path) -> pd.DataFrame:
    database = open_database(path)
    try:
        return database.to_frame()
    finally:
        database.close()


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in _TEXT_COLUMNS else "right")
    for row in rows:
        # Escaped: a dataset identity such as "digits[resize=16,...]" is not rich markup.
        table.add_row(*(escape(str(value)) for value in row))
    Console(width=160).print(table)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    # A backend reports skipped lines as Python warnings; a command-line user wants one
    # line each, "warning: <message>", not the source location of the warning.
    def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
        click.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


@click.group()
@click.pass_context
def db(ctx: click.Context) -> None:
    """Look into, export and merge experiment databases (.csv, .sqlite, .db)."""
    ctx.with_resource(_warnings_as_lines())


def _dataset_matches(identities: Any, dataset: str, path: Path) -> Any:
    """Rows whose dataset is ``dataset``: a whole identity or its name (``digits``).

    An identity is the handler's name with its data settings,
    ``digits[resize=16,validation=0.2,test=0.2,seed=0]``; the short name selects every
    identity of that name. A name with no record is a one-line error listing what is there.
    """
    names = identities.fillna("").str.split("[", n=1, regex=False).str[0]
    selected = (identities == dataset) | (names == dataset)
    if not selected.any():
        from nasframe.errors import closest

        known = sorted({*identities.dropna().unique(), *names[names != ""].unique()})
        raise DatabaseError(
            f"{path}: no records of dataset {dataset!r}{closest(dataset, known)} "
            f"(datasets: {', '.join(known) or 'none'})"
        )
    return selected


@db.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--top", "-n", default=10, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--dataset",
    default=None,
    help="Only records of this dataset: a name (digits) or a whole identity.",
)
@click.option(
    "--all-statuses",
    is_flag=True,
    help="Rank failed evaluations too (by default only status 'ok' is shown).",
)
def show(path: Path, top: int, dataset: str | None, all_statuses: bool) -> None:
    """Show the top architectures by validation accuracy as a table.

    Records whose value is not a validation accuracy (a zero-cost score, a cascade's
    low fidelity) rank after the accuracies, and a ``measure`` column names them.
    """
    from nasframe.nsc import network_label

    frame = _frame(path)
    if dataset is not None:
        frame = frame[_dataset_matches(frame["dataset"], dataset, path)]
    if not all_statuses:
        frame = frame[frame["status"] == "ok"]
    if frame.empty:
        click.echo(f"{path}: no evaluations to show")
        return
    frame = frame.assign(_scored=frame["measure"].fillna("") != "")
    measured = bool(frame["_scored"].any())
    order = ["_scored", "accuracy", "params"]
    best = frame.sort_values(order, ascending=[True, False, True]).head(top)
    rows = [
        (
            rank,
            f"{row.accuracy:.4f}",
            *([str(row.measure) or "accuracy"] if measured else []),
            "-" if math.isnan(row.train_accuracy) else f"{row.train_accuracy:.3f}",
            row.status,
            row.dataset,
            f"{row.params:,}",
            f"{row.flops:,}",
            f"{row.density:.3f}",
            f"{row.seconds:.1f}",
            network_label(str(row.nsc)),
        )
        for rank, row in enumerate(best.itertuples(), start=1)
    ]
    columns = (
        "#",
        *(("value", "measure") if measured else ("accuracy",)),
        "train",
        "status",
        "dataset",
        "params",
        "flops",
        "density",
        "s",
        "nsc",
    )
    _print_table(f"top {len(rows)} of {len(frame)} in {path}", columns, rows)


@db.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--steps",
    "steps_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A run's step log (.csv or .jsonl with a boolean 'cache_hit' column) or its "
    "output folder (its steps.csv): report the run's cache hit rate. Default: the "
    "steps.csv beside the database, if there is one.",
)
def stats(path: Path, steps_path: Path | None) -> None:
    """Counts by status, dataset and estimator, and a run's cache hit rate.

    The database does not know how often it was hit; a search's step log does. A
    database inside a search's output folder finds the log (steps.csv) by itself.
    """
    frame = _frame(path)
    click.echo(f"{path}: {len(frame)} records, {frame['seconds'].sum():.1f} s of evaluation stored")
    measured = not frame.empty and bool((frame["measure"].fillna("") != "").any())
    groupings = [("status", "by status"), ("dataset", "by dataset")]
    groupings.append(("fingerprint", "by estimator"))
    if measured:  # scores beside accuracies: "best" is per measure, never mixed
        frame = frame.assign(measure=frame["measure"].fillna("").replace("", "accuracy"))
        groupings.append(("measure", "by measure"))
    for column, title in groupings:
        if frame.empty:
            break
        groups = frame.groupby(column, observed=True)
        summary = groups.agg(
            records=("arch_hash", "size"),
            best=("accuracy", "max"),
            seconds=("seconds", "sum"),
        )
        rows = [
            (name, int(r.records), f"{r.best:.4f}", f"{r.seconds:.1f}")
            for name, r in summary.iterrows()
        ]
        best_name = "best value" if measured else "best accuracy"
        _print_table(title, (column, "records", best_name, "seconds"), rows)
    if steps_path is None and (path.parent / _STEP_LOG).is_file():
        steps_path = path.parent / _STEP_LOG
    elif steps_path is not None and steps_path.is_dir():
        steps_path = steps_path / _STEP_LOG
    if steps_path is not None:
        hits, steps = _cache_hits(steps_path)
        rate = hits / steps if steps else 0.0
        click.echo(
            f"cache: {hits} hits in {steps} evaluations of {steps_path} "
            f"(hit rate {rate:.1%}, {steps - hits} trainings)"
        )


def _cache_hits(path: Path) -> tuple[int, int]:
    import pandas as pd

    if not path.is_file():
        raise DatabaseError(f"{path}: no such step log")
    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            steps = pd.read_json(path, lines=path.suffix.lower() == ".jsonl")
        else:
            steps = pd.read_csv(path)
    except ValueError as exc:
        raise DatabaseError(f"{path}: cannot read the step log: {exc}") from None
    if "cache_hit" not in steps.columns:
        raise DatabaseError(
            f"{path}: the step log has no 'cache_hit' column "
            f"(columns: {', '.join(map(str, steps.columns)) or 'none'})"
        )
    flags = steps["cache_hit"].dropna().astype(str).str.lower()
    valid = flags.isin(["true", "false", "1", "0"])
    if not valid.all():
        bad = flags[~valid].iloc[0]
        raise DatabaseError(f"{path}: 'cache_hit' must be true or false, found {bad!r}")
    return int(flags.isin(["true", "1"]).sum()), len(flags)


@db.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="Output format (default: from OUTPUT's extension, .csv or .parquet).",
)
def export(path: Path, output: Path, fmt: str | None) -> None:
    """Export the database at PATH to OUTPUT as a plain CSV table or Parquet file."""
    if fmt is None:
        fmt = _EXPORT_FORMATS.get(output.suffix.lower())
        if fmt is None:
            raise DatabaseError(
                f"{output}: cannot tell the export format from {output.suffix or 'no extension'!r}"
                "; use .csv or .parquet, or pass --format"
            )
    if output.resolve() == path.resolve():
        raise DatabaseError(f"{output}: refusing to export a database onto itself")
    frame = _frame(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        try:
            frame.to_parquet(output, index=False)
        except ImportError:
            raise DatabaseError(
                "Parquet export needs pyarrow, which is not installed; "
                "run: pip install 'nasframe[parquet]'"
            ) from None
    else:
        frame.to_csv(output, index=False)
    click.echo(f"exported {len(frame)} records to {output} ({fmt})")


@db.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--into",
    "target",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The database to merge into (created if missing; any backend).",
)
def merge(sources: tuple[Path, ...], target: Path) -> None:
    """Merge the databases SOURCES into --into, one record per cache key.

    A key already in the target keeps the target's record; among the sources the first
    one listed wins.
    """
    for source in sources:
        if source.resolve() == target.resolve():
            raise DatabaseError(f"{source}: a database cannot be merged into itself")
    # Open every source before the target is created, so a bad source changes nothing.
    opened = [open_database(source) for source in sources]
    destination = open_database(target, create=True)
    try:
        for source, database in zip(sources, opened, strict=True):
            records = list(database)
            put_many = getattr(destination, "put_many", None)
            if put_many is not None:
                added = int(put_many(records))
            else:  # a third-party backend without bulk insert
                before = len(destination)
                for record in records:
                    destination.put(record)
                added = len(destination) - before
            click.echo(
                f"{source}: {added} records added, {len(records) - added} already in {target}"
            )
        click.echo(f"{target}: {len(destination)} records")
    finally:
        for database in (*opened, destination):
            database.close()
