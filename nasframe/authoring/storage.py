"""What every file-backed experiment database checks before it opens its file.

``csv-v1`` and ``sqlite-v1`` (and a third-party database that keeps its records in one
file) take the same three settings from the ``[database]`` section: ``path``,
``lock_timeout`` and ``fsync``. :func:`check_file_db_settings` checks them in one place,
so every such backend refuses the same bad values with the same one-line message.

The configuration already converts and bounds these values when they come from a file or
``--set`` (a finite ``lock_timeout >= 0``, a boolean ``fsync``); this check is for the
constructor, which a script may call directly.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nasframe.errors import DatabaseError

if TYPE_CHECKING:
    from nasframe.contracts import ExperimentDB

__all__ = ["DB_SUFFIXES", "FileDBSettings", "check_file_db_settings", "open_database"]

#: File suffixes of experiment databases that ``nasframe db`` tells apart: a backend
#: refuses a path ending in one that is not its own (see :func:`check_file_db_settings`).
DB_SUFFIXES = frozenset({".csv", ".sqlite", ".sqlite3", ".db"})


@dataclass(frozen=True)
class FileDBSettings:
    """The checked settings of a file-backed experiment database.

    Attributes:
        path: the database file (its folder exists).
        lock_timeout: seconds to wait for another process holding the database, finite
            and ``>= 0``.
        fsync: whether every record is forced to disk before ``put`` returns.
    """

    path: Path
    lock_timeout: float
    fsync: bool


def check_file_db_settings(
    path: str | os.PathLike[str] | None,
    lock_timeout: float,
    fsync: bool,
    *,
    suffix: str,
    section: str = "database",
    accepts: Sequence[str] = (),
) -> FileDBSettings:
    """Check the settings of a file-backed experiment database and create the file's folder.

    The checks, in order, each failing with a :class:`~nasframe.DatabaseError` whose
    message is one line naming the setting and its value:

    * ``path`` is ``None``, empty or blank:
      ``[database] path is empty: set it to a .csv file, e.g.
      --set database.path=experiments.csv`` (with ``suffix`` in place of ``.csv``).
    * ``path`` is not a ``str`` or ``os.PathLike``:
      ``[database] path: 5 is not a file path (a str or os.PathLike)``.
    * ``path`` contains a NUL character:
      ``[database] path: 'a\\x00b' contains a NUL character``.
    * ``path`` ends in the suffix of another database file type (:data:`DB_SUFFIXES`) that
      is not in ``accepts`` -- an SQLite file named ``.csv`` would be misread by every
      tool: ``[database] path: 'x.csv' is another kind of database file (.csv); use a
      .db or .sqlite or .sqlite3 file``.
    * ``path`` is an existing folder:
      ``[database] path: 'runs' is a folder; set it to a .csv file inside it``.
    * ``lock_timeout`` is not a real number (``int``, ``float``, a NumPy number; ``bool``
      and ``str`` are refused):
      ``[database] lock_timeout: '60' is not a number of seconds``.
    * ``lock_timeout`` is NaN or infinite:
      ``[database] lock_timeout: inf is not a finite number of seconds``.
    * ``lock_timeout`` is negative:
      ``[database] lock_timeout: -1.0 is below the minimum 0``.
    * ``fsync`` is not a ``bool`` (``1`` and ``"yes"`` are refused):
      ``[database] fsync: 'no' is not true or false``.
    * the folder of ``path`` cannot be created (a file is in the way, no permission):
      ``[database] path: 'a/b/e.csv': cannot create its folder: Not a directory``.

    ``[database]`` stands for ``[section]`` throughout. A relative ``path`` stays relative
    (to the current directory); it is not resolved.

    Args:
        path: the database file.
        lock_timeout: seconds to wait for another process holding the database.
        fsync: force every record to disk before ``put`` returns.
        suffix: the backend's usual file suffix, e.g. ``".csv"``; used only in messages.
        section: the configuration section the settings come from; used only in messages.
        accepts: the suffixes of this backend's files; empty: any suffix.

    Returns:
        The settings as :class:`FileDBSettings`, ``lock_timeout`` as a ``float``.

    Raises:
        DatabaseError: a setting is wrong, or the folder of ``path`` cannot be created.
    """
    where = f"[{section}]"
    empty = DatabaseError(
        f"{where} path is empty: set it to a {suffix} file, e.g. "
        f"--set {section}.path=experiments{suffix}"
    )
    if path is None:
        raise empty
    text = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    if not isinstance(text, str):
        raise DatabaseError(f"{where} path: {path!r} is not a file path (a str or os.PathLike)")
    if not text.strip():
        raise empty
    if "\0" in text:
        raise DatabaseError(f"{where} path: {text!r} contains a NUL character")
    file = Path(text)
    accepted = {s.lower() for s in accepts}
    if accepted and file.suffix.lower() in DB_SUFFIXES - accepted:
        raise DatabaseError(
            f"{where} path: {str(file)!r} is another kind of database file "
            f"({file.suffix}); use a {' or '.join(sorted(accepted))} file"
        )
    if file.is_dir():
        raise DatabaseError(
            f"{where} path: {str(file)!r} is a folder; set it to a {suffix} file inside it"
        )
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, numbers.Real):
        raise DatabaseError(f"{where} lock_timeout: {lock_timeout!r} is not a number of seconds")
    if not math.isfinite(lock_timeout):
        raise DatabaseError(
            f"{where} lock_timeout: {lock_timeout!r} is not a finite number of seconds"
        )
    if lock_timeout < 0:
        raise DatabaseError(f"{where} lock_timeout: {float(lock_timeout)!r} is below the minimum 0")
    if not isinstance(fsync, bool):
        raise DatabaseError(f"{where} fsync: {fsync!r} is not true or false")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DatabaseError(
            f"{where} path: {str(file)!r}: cannot create its folder: {reason}"
        ) from None
    return FileDBSettings(path=file, lock_timeout=float(lock_timeout), fsync=fsync)


def open_database(path: Path, *, create: bool = False) -> ExperimentDB:
    """Open the database at ``path`` with the registered backend its extension names.

    What ``nasframe db`` and ``nasframe finalize`` open a file with.

    Args:
        path: a ``.csv``, ``.sqlite``, ``.sqlite3`` or ``.db`` file (or another suffix a
            registered backend declares).
        create: create the file if it does not exist (else that is an error).

    Raises:
        DatabaseError: the extension is unknown, or the file is missing and ``create``
            is false (and every error of the backend itself).
    """
    from nasframe.plugins import get_plugin_manager

    registry = get_plugin_manager().databases()
    backend = registry.by_suffix(path.suffix)
    if backend is None:
        known = ", ".join(registry.suffixes()) or "none registered"
        raise DatabaseError(
            f"{path}: unknown database type {path.suffix or '(no extension)'!r} (known: {known})"
        )
    if not create and not path.is_file():
        raise DatabaseError(f"{path}: no such database file")
    database: ExperimentDB = registry.create(backend.name, path=path)
    return database
