"""``sqlite-v1``: the experiment database in an SQLite file.

Why it is built this way:

* **WAL mode** lets readers read while one process writes, and a writer never blocks
  readers; SQLite's own locking serialises writers of several processes, and the busy
  timeout (``[database] lock_timeout``) makes a writer wait for the lock instead of
  failing at once.
* **The primary key is the cache key** ``(dataset, arch_hash, fingerprint)``; records
  are stored with an upsert that keeps the first record of a key (a concurrent duplicate
  is dropped by the database itself) unless that record is a transient failure
  (``out_of_memory``, ``timeout``, ``error``): a retry supersedes it, as with CSV.
* **Durability**: ``synchronous=FULL`` (with ``fsync``, the default) makes a committed
  record survive a power cut; ``NORMAL`` still survives a crashed process.
* **The schema version** lives in SQLite's ``user_version``, and ``application_id``
  marks the file as a nasframe database, so a foreign SQLite file or one from a newer
  schema is refused with a :class:`~nasframe.DatabaseError` instead of being altered.
  A database of an older schema is upgraded when it is opened, in one write
  transaction (``ALTER TABLE ... ADD COLUMN``: every row kept, the new column NULL).
* Look-ups go to the database every time (an indexed query of a few microseconds), so a
  process always sees what other processes stored.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from nasframe import (
    RECORD_SCHEMA_VERSION,
    CacheKey,
    DatabaseError,
    Evaluation,
    ExperimentDB,
    Record,
    Status,
    check_file_db_settings,
)

__all__ = ["APPLICATION_ID", "SqliteExperimentDB"]

#: ``PRAGMA application_id`` of nasframe databases ("NASF" in ASCII).
APPLICATION_ID = 0x4E415346

_INTEGER = {"seed", "params", "flops", "epochs"}
_REAL = {"accuracy", "density", "seconds"}
_NULLABLE_REAL = {"train_accuracy"}  # NULL: not measured
# Added by a later schema: ALTER TABLE ADD COLUMN needs a default for the existing rows.
_TEXT_DEFAULT_EMPTY = {"measure"}

#: The columns each schema version added to the table (``user_version`` below it lacks them).
_ADDED_IN: dict[int, tuple[str, ...]] = {2: ("train_accuracy",), 3: ("measure",)}

#: The columns, in table order: the record's fields with the evaluation's inlined.
COLUMNS: tuple[str, ...] = tuple(
    [f.name for f in fields(Record) if f.name != "evaluation"]
    + [f.name for f in fields(Evaluation)]
)


def _column_sql(name: str) -> str:
    if name in _INTEGER:
        return f"{name} INTEGER" + ("" if name == "seed" else " NOT NULL")
    if name in _REAL:
        return f"{name} REAL NOT NULL"
    if name in _NULLABLE_REAL:
        return f"{name} REAL"
    if name in _TEXT_DEFAULT_EMPTY:
        return f"{name} TEXT NOT NULL DEFAULT ''"
    return f"{name} TEXT NOT NULL"


_CREATE = (
    "CREATE TABLE IF NOT EXISTS records ("
    + ", ".join(_column_sql(name) for name in COLUMNS)
    + ", PRIMARY KEY (dataset, arch_hash, fingerprint))"
)
# The first record of a key is kept, unless it is a transient failure: then a retry
# supersedes it (in place, so the stored order does not change).
_INSERT = (
    f"INSERT INTO records ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (dataset, arch_hash, fingerprint) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in COLUMNS)
    + " WHERE records.status IN ("
    + ", ".join(f"'{status.value}'" for status in Status if status.transient)
    + ")"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM records"
_GET = _SELECT + " WHERE dataset = ? AND arch_hash = ? AND fingerprint = ?"


class SqliteExperimentDB(ExperimentDB):
    """The experiment database in an SQLite file (see the module docs).

    Args:
        path: the database file; created (with its folder) if missing.
        lock_timeout: seconds a writer waits for another process's write lock.
        fsync: ``synchronous=FULL`` (durable against power cuts) instead of ``NORMAL``.

    Raises:
        DatabaseError: a setting is wrong (see :func:`nasframe.check_file_db_settings`);
            the file cannot be opened, is not an SQLite file or not a nasframe database,
            or was written by a newer schema version.
    """

    name = "sqlite-v1"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        lock_timeout: float = 60.0,
        fsync: bool = True,
    ) -> None:
        settings = check_file_db_settings(
            path, lock_timeout, fsync, suffix=".sqlite", accepts=(".sqlite", ".sqlite3", ".db")
        )
        self.path = settings.path
        self.lock_timeout = settings.lock_timeout
        self.fsync = settings.fsync
        self._mutex = threading.RLock()
        try:
            # isolation_level=None: autocommit; transactions are explicit BEGIN IMMEDIATE.
            self._db = sqlite3.connect(
                self.path, timeout=self.lock_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: cannot open: {exc}") from None
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        try:
            # One read transaction: the three answers come from one snapshot. Read one by
            # one, a process could see the table another process had just created but not
            # yet its application id, and refuse a new database as not nasframe's
            # (found by tests/test_properties_db.py).
            self._db.execute("BEGIN")
            try:
                application_id = self._db.execute("PRAGMA application_id").fetchone()[0]
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            # a damaged schema table can hold bytes that are not UTF-8 text
            raise DatabaseError(f"{self.path}: not an SQLite database ({exc})") from None
        if application_id != APPLICATION_ID and (application_id != 0 or tables):
            raise DatabaseError(
                f"{self.path}: an SQLite file, but not a nasframe experiment database"
            )
        if version > RECORD_SCHEMA_VERSION:
            from nasframe import __version__

            raise DatabaseError(
                f"{self.path}: written with record schema version {version}, but nasframe "
                f"{__version__} reads version {RECORD_SCHEMA_VERSION} at most; upgrade nasframe"
            )
        with self._errors("prepare"):
            mode = self._switch_to_wal()
            if str(mode).lower() != "wal":
                raise DatabaseError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
            self._db.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            if application_id == 0:
                # A new file: create the schema once, whichever process gets here first.
                with self._transaction():
                    self._db.execute(_CREATE)
                    self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    self._db.execute(f"PRAGMA user_version={RECORD_SCHEMA_VERSION}")
            elif version < RECORD_SCHEMA_VERSION:
                self._upgrade()
        with self._errors("read"):
            present = {row[1] for row in self._db.execute("PRAGMA table_info(records)")}
        missing = [name for name in COLUMNS if name not in present]
        if missing:
            raise DatabaseError(f"{self.path}: table 'records' lacks columns {', '.join(missing)}")

    def _upgrade(self) -> None:
        """Add the columns of the newer schema versions; set ``user_version``.

        Everything is read again inside the write transaction: processes that open the
        old database together upgrade it once (the first one; the others find it done).
        """
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version >= RECORD_SCHEMA_VERSION:
                return
            present = {row[1] for row in self._db.execute("PRAGMA table_info(records)")}
            for number in sorted(_ADDED_IN):
                for name in _ADDED_IN[number]:
                    if number > version and name not in present:
                        self._db.execute(f"ALTER TABLE records ADD COLUMN {_column_sql(name)}")
            self._db.execute(f"PRAGMA user_version={RECORD_SCHEMA_VERSION}")

    def _switch_to_wal(self) -> str:
        """``PRAGMA journal_mode=WAL``, retried while another process holds the file.

        Switching the journal mode needs the file to itself, and SQLite answers "database
        is locked" at once, without its busy timeout, when several processes open a new
        file together (found by tests/test_properties_db.py): retry until lock_timeout.
        """
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return str(self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- the ExperimentDB contract -------------------------------------------------------
    def get(self, key: CacheKey) -> Record | None:
        """The first record stored for ``key`` by any process, or ``None``."""
        with self._errors("read"):
            row = self._db.execute(_GET, (key.dataset, key.arch_hash, key.fingerprint)).fetchone()
        return None if row is None else self._records([row])[0]

    def put(self, record: Record) -> None:
        """Store ``record`` durably unless its key is stored with a non-transient status."""
        with self._errors("write"):
            self._db.execute(_INSERT, _row(record))

    def put_many(self, records: Iterable[Record]) -> int:
        """Store every record whose key is not stored yet, in one transaction.

        Returns:
            How many records were added.
        """
        rows = [_row(record) for record in records]
        with self._errors("write"), self._transaction():
            before = self._db.total_changes
            self._db.executemany(_INSERT, rows)
            return self._db.total_changes - before

    def __iter__(self) -> Iterator[Record]:
        """Every record, in the order stored."""
        with self._errors("read"):
            rows = self._db.execute(_SELECT + " ORDER BY rowid").fetchall()
        return iter(self._records(rows))

    def __len__(self) -> int:
        with self._errors("read"):
            count: int = self._db.execute("SELECT count(*) FROM records").fetchone()[0]
        return count

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> SqliteExperimentDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (for Ray workers or multiprocessing) reopens the same file there.
        return (type(self), (str(self.path), self.lock_timeout, self.fsync))

    def __repr__(self) -> str:
        return f"SqliteExperimentDB({str(self.path)!r})"

    # -- internals --------------------------------------------------------------------------
    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _errors(self, what: str) -> _Errors:
        return _Errors(self.path, what, self.lock_timeout, self._mutex)

    def _records(self, rows: list[tuple[Any, ...]]) -> list[Record]:
        try:
            return [_record(row) for row in rows]
        except (ValueError, TypeError, OverflowError) as exc:
            # SQLite checks no value of a damaged file: a stored status may be garbage.
            raise DatabaseError(f"{self.path}: a stored record is damaged ({exc})") from None


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock up front (waiting for it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


class _Errors:
    """Holds the connection's mutex; turns SQLite errors into one-line :class:`DatabaseError`."""

    def __init__(self, path: Path, what: str, timeout: float, mutex: threading.RLock) -> None:
        self.path, self.what, self.timeout, self.mutex = path, what, timeout, mutex

    def __enter__(self) -> None:
        # One connection may be shared by threads (check_same_thread=False): one at a time.
        self.mutex.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        self.mutex.release()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise DatabaseError(
                f"{self.path}: another process held the database for more than "
                f"{self.timeout:g} s ([database] lock_timeout)"
            ) from None
        if isinstance(exc, sqlite3.Error):
            raise DatabaseError(f"{self.path}: cannot {self.what}: {exc}") from None


def _row(record: Record) -> tuple[Any, ...]:
    flat = record.to_flat()
    return tuple(flat[name] for name in COLUMNS)


def _record(row: tuple[Any, ...]) -> Record:
    return Record.from_flat(dict(zip(COLUMNS, row, strict=True)))
