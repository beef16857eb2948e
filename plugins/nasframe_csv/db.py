"""``csv-v1``: the experiment database as an append-only CSV file.

File format (UTF-8)::

    # nasframe experiments schema_version=3
    dataset,task,arch_hash,nsc,...,message,train_accuracy,measure   <- the column names
    digits,digits,3f2a...,"1,1,3,0,0",...,,0.93              <- one line per record

Why it is built this way:

* **Append-only, one line per record.** A record is one ``write`` of one line, flushed
  and (by default) fsynced before :meth:`CsvExperimentDB.put` returns, so a stored
  record survives a crash of the process (and, with ``fsync``, of the machine). Adding a
  row never rewrites the file: the cost of a ``put`` does not grow with the file.
* **A file lock** (``<file>.lock``, from the ``filelock`` library) serialises writers of
  several processes. Under the lock a writer first reads the rows other processes
  appended since it last looked, so a key stored elsewhere is never stored twice.
  Readers need no lock: they only ever consume complete lines (up to the last newline).
  The operating system releases the lock of a killed process, so a crash never leaves
  the database locked.
* **A crash mid-write** can leave a torn last line. Opening the file ignores it with a
  warning naming the line; the next ``put`` cuts it off (under the lock, where no writer
  can be active) before appending. A corrupt line in the middle (edited by hand, a disk
  error) is skipped with a warning naming its line number; all other rows are kept.
* **The schema version** is in the first line; a file from a newer schema is refused
  with a :class:`~nasframe.DatabaseError` rather than misread. A file from an older
  schema is upgraded when it is opened, under the lock: rewritten into a temporary file
  beside it (the new header, the added columns empty in every line; a torn last line
  kept as it was), fsynced, and moved over the old one with ``os.replace``, so a crash
  leaves either the old file or the new one, never a mix. This is the one rewrite of a
  file; a process that has the old file open notices it (the path's inode is no longer
  that of its descriptor) and reopens the file before it reads or appends again.
* **An in-memory index** of every record answers cache look-ups; a miss first re-reads
  the tail of the file (one ``stat`` and one ``fstat`` when nothing was appended), so a
  process sees records other processes stored after it opened the file.

``put`` of a key that is already stored keeps the first record and ignores the new one:
a cache entry is never replaced, so every process sees the same value for a key. The one
exception is a stored *transient* failure (``out_of_memory``, ``timeout``, ``error``):
the next record of its key supersedes it (appended as a new line; the later line wins
when the file is read), so a retry (the Evaluator's ``retry_transient``) is cached.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import filelock

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

__all__ = ["COLUMNS", "CSV_MAGIC", "CorruptLineWarning", "CsvExperimentDB"]

#: The start of the first line of every file; the schema version follows it.
CSV_MAGIC = "# nasframe experiments"

#: The columns, in file order: the record's fields with the evaluation's inlined.
_RECORD_FIELDS = tuple(f.name for f in fields(Record) if f.name != "evaluation")
_EVALUATION_FIELDS = tuple(f.name for f in fields(Evaluation))
COLUMNS: tuple[str, ...] = _RECORD_FIELDS + _EVALUATION_FIELDS
_STATUS = COLUMNS.index("status")
_AT = {name: number for number, name in enumerate(COLUMNS)}
_DATASET, _ARCH_HASH, _FINGERPRINT = _AT["dataset"], _AT["arch_hash"], _AT["fingerprint"]
_INTS = tuple(_AT[name] for name in ("params", "flops", "epochs", "seed"))
# Checked as floats; empty is allowed (it reads as 0.0, or as None for train_accuracy).
_FLOATS = tuple(_AT[name] for name in ("accuracy", "density", "seconds", "train_accuracy"))
_STATUSES = frozenset(status.value for status in Status)
_TRANSIENT = frozenset(status.value for status in Status if status.transient)

#: A cache key as a plain tuple (dataset, arch_hash, fingerprint): cheaper to build than
#: a CacheKey for every row of a large file.
_Key = tuple[str, str, str]


def _key(record: Record) -> _Key:
    return (record.dataset, record.arch_hash, record.fingerprint)


_HEADER = re.compile(r"^# nasframe experiments schema_version=(?P<version>\d+)\s*$")

#: The columns each schema version added (appended, in this order, to the column line).
_ADDED_IN: dict[int, tuple[str, ...]] = {2: ("train_accuracy",), 3: ("measure",)}


class CorruptLineWarning(UserWarning):
    """A line of a CSV experiment database was torn or corrupt and is ignored."""


class CsvExperimentDB(ExperimentDB):
    """The experiment database in an append-only CSV file (see the module docs).

    Args:
        path: the CSV file; created (with its folder) if missing. A relative path is
            relative to the current directory.
        lock_timeout: seconds to wait for another process that holds the file lock.
        fsync: fsync after every record (durable against power cuts, about a
            millisecond or more per record); without it a crashed process still loses
            nothing, a crashed machine may lose the last records.

    Raises:
        DatabaseError: a setting is wrong (see :func:`nasframe.check_file_db_settings`);
            the file cannot be created or read, is not a nasframe database, or was
            written by a newer schema version; the lock is not free within
            ``lock_timeout``.
    """

    name = "csv-v1"

    _write_fd: int  # appends (O_APPEND): a bare descriptor, so one write is one record
    _read: io.BufferedReader

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        lock_timeout: float = 60.0,
        fsync: bool = True,
    ) -> None:
        settings = check_file_db_settings(
            path, lock_timeout, fsync, suffix=".csv", accepts=(".csv",)
        )
        self.path = settings.path
        self.lock_timeout = settings.lock_timeout
        self.fsync = settings.fsync
        # Every record, in the order stored: decoded, or its checked cells until first use.
        self._records: list[Record | list[str]] = []
        self._index: dict[_Key, int] = {}  # cache key -> position in _records
        self._transient: set[_Key] = set()  # keys whose stored status is transient
        self._offset = 0  # bytes consumed: always just after a newline
        self._lines = 0  # lines consumed
        self._positions: list[int] = []  # file column of each of COLUMNS
        self._width = len(COLUMNS)  # columns in the file's header
        self._in_order = True  # the header is COLUMNS, in order
        self._warned_torn: int | None = None
        self._closed = False
        # One object may be shared by threads: the file lock orders processes, this
        # mutex orders the threads of one process.
        self._mutex = threading.RLock()
        self._lock = filelock.FileLock(
            f"{self.path}.lock", timeout=self.lock_timeout, poll_interval=0.002
        )
        with self._locked():
            self._open()
            try:
                self._load()
            except BaseException:
                self.close()
                raise

    # -- the ExperimentDB contract -------------------------------------------------------
    def get(self, key: CacheKey) -> Record | None:
        """The first record stored for ``key`` by any process, or ``None``."""
        with self._mutex:
            wanted = (key.dataset, key.arch_hash, key.fingerprint)
            position = self._index.get(wanted)
            if position is None:
                self._refresh()
                position = self._index.get(wanted)
            return None if position is None else self._record(position)

    def put(self, record: Record) -> None:
        """Append ``record`` durably unless its key is stored with a non-transient status."""
        self.put_many([record])

    def put_many(self, records: Iterable[Record]) -> int:
        """Append every record whose key is not stored yet, under one lock and one fsync.

        Returns:
            How many records were added (duplicates, also within ``records``, are not;
            a record superseding a stored transient failure is).

        Raises:
            DatabaseError: the lock is not free in time, or the disk refused the write.
        """
        with self._mutex:
            return self._put_many(list(records))

    def _put_many(self, records: list[Record]) -> int:
        self._check_open()
        pending = [record for record in records if self._storable(_key(record))]
        if not pending:
            return 0
        with self._locked():
            self._check_same_file()
            tail = self._scan()
            fresh: dict[_Key, Record] = {}
            for record in pending:
                key = _key(record)
                if self._storable(key) and (
                    key not in fresh or fresh[key].evaluation.status.transient
                ):
                    fresh[key] = record
            if not fresh:
                return 0
            if tail:
                # Under the lock no writer is active, so an unterminated tail is what a
                # crashed writer left: cut it off so the new line starts on its own.
                self._warn_torn(len(tail))
                os.truncate(self.path, self._offset)
            data = b"".join(self._line(record) for record in fresh.values())
            self._append(data)
            self._offset += len(data)
            self._lines += len(fresh)
            for key, record in fresh.items():
                self._add(key, record, record.evaluation.status.transient)
        return len(fresh)

    def __iter__(self) -> Iterator[Record]:
        """Every record, in the order stored (rows other processes appended included)."""
        with self._mutex:
            self._refresh()
            return iter([self._record(position) for position in range(len(self._records))])

    def __len__(self) -> int:
        with self._mutex:
            self._refresh()
            return len(self._records)

    def close(self) -> None:
        """Close the file; the object cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self._close_files()

    def _close_files(self) -> None:
        # Each is closed once and forgotten: a failed reopen leaves none to close twice.
        read = self.__dict__.pop("_read", None)
        if read is not None:
            read.close()
        write_fd = self.__dict__.pop("_write_fd", None)
        if write_fd is not None:
            os.close(write_fd)

    def __del__(self) -> None:
        # The write descriptor is a bare fd: close it even if close() was forgotten.
        if not getattr(self, "_closed", True):
            self.close()

    def __enter__(self) -> CsvExperimentDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (for Ray workers or multiprocessing) reopens the same file there.
        return (type(self), (str(self.path), self.lock_timeout, self.fsync))

    def __repr__(self) -> str:
        return f"CsvExperimentDB({str(self.path)!r})"

    # -- internals --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise DatabaseError(
                f"{self.path}: another process has held the lock {self._lock.lock_file} for "
                f"more than {self.lock_timeout:g} s ([database] lock_timeout)"
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    def _load(self) -> None:
        """Read or write the header, then every record (called under the lock)."""
        size = os.fstat(self._read.fileno()).st_size
        if size == 0:
            header = f"{CSV_MAGIC} schema_version={RECORD_SCHEMA_VERSION}\n"
            header += _csv_line(COLUMNS)
            self._append(header.encode())
            self._sync_folder()
        data = self._read.read()
        first, _, rest = data.partition(b"\n")
        text = first.decode("utf-8", "replace")
        match = _HEADER.match(text)
        if match is None:
            raise DatabaseError(
                f"{self.path}: not a nasframe experiment database (line 1 is {text[:60]!r}, "
                f"expected '{CSV_MAGIC} schema_version=N')"
            )
        version = int(match["version"])
        if version > RECORD_SCHEMA_VERSION:
            from nasframe import __version__

            raise DatabaseError(
                f"{self.path}: written with record schema version {version}, but nasframe "
                f"{__version__} reads version {RECORD_SCHEMA_VERSION} at most; upgrade nasframe"
            )
        if version < 1:
            raise DatabaseError(f"{self.path}: schema version {version} does not exist")
        second, newline, _ = rest.partition(b"\n")
        if not newline:
            raise DatabaseError(f"{self.path}: line 2 (the column names) is missing or torn")
        names = _parse_line(second.decode("utf-8", "replace"))
        added = [name for number in _ADDED_IN if number > version for name in _ADDED_IN[number]]
        missing = [name for name in COLUMNS if name not in names and name not in added]
        if missing:
            raise DatabaseError(f"{self.path}: line 2 lacks the columns {', '.join(missing)}")
        if version < RECORD_SCHEMA_VERSION:
            self._upgrade(data, [name for name in added if name not in names])
            self._load()
            return
        self._positions = [names.index(name) for name in COLUMNS]
        self._width = len(names)
        self._in_order = tuple(names) == COLUMNS
        self._offset = len(first) + len(second) + 2
        self._lines = 2
        tail = self._scan()
        if tail:
            self._warn_torn(len(tail))

    def _open(self) -> None:
        """Open the file at the path (creating it): its append and read descriptors."""
        try:
            write_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DatabaseError(f"{self.path}: cannot open: {exc.strerror}") from None
        try:
            read = self.path.open("rb")
        except OSError as exc:
            os.close(write_fd)
            raise DatabaseError(f"{self.path}: cannot open: {exc.strerror}") from None
        self._write_fd, self._read = write_fd, read

    def _upgrade(self, data: bytes, added: list[str]) -> None:
        """Rewrite the file (all of it, ``data``) in the current schema; reopen it.

        Called under the lock. Every line is kept: the header names the current version,
        the column line and every complete line after it get one empty cell per column
        in ``added``; an unterminated last line (a torn write) is kept as it was, to be
        warned about and cut off as always. The new file is written beside the old one,
        fsynced and moved over it atomically, so a crash leaves one of the two whole.
        """
        lines = data.split(b"\n")
        body, torn = lines[2:-1], lines[-1]
        names = b"," + _csv_line(added).rstrip("\n").encode() if added else b""
        empty = b"," * len(added)
        out = io.BytesIO()
        out.write(f"{CSV_MAGIC} schema_version={RECORD_SCHEMA_VERSION}\n".encode())
        out.write(_appended(lines[1], names) + b"\n")
        for line in body:
            # A blank line is not a record (it is warned about either way): kept blank.
            out.write((_appended(line, empty) if line.strip() else line) + b"\n")
        out.write(torn)
        folder = self.path.parent
        try:
            mode = os.fstat(self._read.fileno()).st_mode & 0o7777
            handle, temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".upgrade", dir=folder
            )
        except OSError as exc:
            raise DatabaseError(
                f"{self.path}: cannot upgrade it to schema version {RECORD_SCHEMA_VERSION} "
                f"(a temporary file in {folder}: {exc.strerror})"
            ) from None
        try:
            try:
                view = memoryview(out.getvalue())
                while view:
                    view = view[os.write(handle, view) :]
                os.fchmod(handle, mode)
                os.fsync(handle)  # always: the old file is gone once this one replaces it
            finally:
                os.close(handle)
            Path(temporary).replace(self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
            raise DatabaseError(
                f"{self.path}: cannot upgrade it to schema version {RECORD_SCHEMA_VERSION}: "
                f"{exc.strerror}"
            ) from None
        self._sync_folder(always=True)
        self._close_files()
        self._open()

    def _scan(self) -> bytes:
        """Consume the complete lines after ``_offset``; return the unterminated rest."""
        self._read.seek(self._offset)
        data = self._read.read()
        end = data.rfind(b"\n") + 1
        if end:
            raws = data[:end].split(b"\n")[:-1]
            self._ingest_lines(raws, self._lines + 1)
            self._lines += len(raws)
            self._offset += end
        return data[end:]

    def _ingest_lines(self, raws: list[bytes], first: int) -> None:
        """Ingest complete lines numbered from ``first``, parsing them in bulk.

        One csv reader over many lines is much faster than one per line, but a stray
        quote would make it read on into the next lines: when the reader fails or a row
        spans lines, that row's first line is handled alone (and reported) and the bulk
        parse resumes after it.
        """
        try:
            texts = b"\n".join(raws).decode("utf-8").split("\n")
        except UnicodeDecodeError:
            texts = []
        if len(texts) != len(raws):  # undecodable bytes: line by line, to name the line
            for number, raw in enumerate(raws, start=first):
                self._ingest(raw, number)
            return
        start = 0
        while start < len(texts):
            reader = csv.reader(texts[start:], strict=True)
            done = 0
            try:
                for row in reader:
                    if reader.line_num != done + 1:
                        break
                    self._ingest_row(row, first + start + done)
                    done += 1
                else:
                    return
            except csv.Error:
                pass
            bad = start + done
            self._ingest(raws[bad], first + bad)
            start = bad + 1

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseError(f"{self.path}: the database is closed")

    def _check_same_file(self) -> None:
        """Follow a replaced file (called under the lock, before appending).

        Appending to a file that was deleted or replaced under us would lose records: a
        deleted file is an error; a replaced one (another process upgraded its schema) is
        reopened and read again.
        """
        try:
            current = self.path.stat().st_ino
        except OSError:
            current = None
        if current is None:
            raise DatabaseError(
                f"{self.path}: the file was deleted or replaced while open; reopen the database"
            )
        if current != os.fstat(self._write_fd).st_ino:
            self._reload()

    def _reload(self) -> None:
        """Reopen the file at the path and read it from the start (under the lock).

        Raises:
            DatabaseError: the new file lacks a record this process had read (it is not
                an upgrade of the old one); the database is closed.
        """
        known = set(self._index)
        self._close_files()
        self._records, self._index, self._transient = [], {}, set()
        self._offset = self._lines = 0
        self._warned_torn = None
        try:
            self._open()
            self._load()
        except BaseException:
            self.close()
            raise
        lost = len(known - self._index.keys())
        if lost:
            self.close()
            raise DatabaseError(
                f"{self.path}: the file was deleted or replaced while open (the new file lacks "
                f"{lost} of the records read before); reopen the database"
            )

    def _refresh(self) -> None:
        self._check_open()
        try:
            replaced = self.path.stat().st_ino != os.fstat(self._read.fileno()).st_ino
        except OSError:  # deleted: keep reading what is left; a put reports it
            replaced = False
        if replaced:
            with self._locked():
                self._check_same_file()
        size = os.fstat(self._read.fileno()).st_size
        if size < self._offset:
            raise DatabaseError(
                f"{self.path}: the file shrank from {self._offset} to {size} bytes while open; "
                "another program rewrote it"
            )
        if size > self._offset:
            self._scan()

    def _ingest(self, raw: bytes, number: int) -> None:
        try:
            row = _parse_line(raw.decode("utf-8"))
        except (ValueError, csv.Error) as exc:
            self._warn_corrupt(number, exc)
            return
        self._ingest_row(row, number)

    def _warn_corrupt(self, number: int, exc: Exception) -> None:
        warnings.warn(
            f"{self.path}: line {number} is corrupt and ignored ({exc})",
            CorruptLineWarning,
            stacklevel=5,
        )

    def _ingest_row(self, row: list[str], number: int) -> None:
        try:
            cells = self._check(row)
        except (ValueError, OverflowError) as exc:
            self._warn_corrupt(number, exc)
            return
        # Kept as text and decoded into a Record on first use: building frozen
        # dataclasses is most of the cost of opening a large file.
        key = (cells[_DATASET], cells[_ARCH_HASH], cells[_FINGERPRINT])
        self._add(key, cells, cells[_STATUS] in _TRANSIENT)

    def _check(self, row: list[str]) -> list[str]:
        """The cells of a row in :data:`COLUMNS` order, if every value is valid."""
        if len(row) != self._width:
            raise ValueError(f"{len(row)} fields, expected {self._width}")
        cells = row if self._in_order else [row[position] for position in self._positions]
        if not (cells[_DATASET] and cells[_ARCH_HASH] and cells[_FINGERPRINT]):
            empty = [
                name for name in ("dataset", "arch_hash", "fingerprint") if not cells[_AT[name]]
            ]
            raise ValueError(f"{', '.join(empty)} empty")
        if cells[_STATUS] not in _STATUSES:
            raise ValueError(f"{cells[_STATUS]!r} is not a valid Status")
        for number in _INTS:
            _int(cells[number])
        for number in _FLOATS:
            _float(cells[number])
        return cells

    @staticmethod
    def _decode(cells: list[str]) -> Record:
        # Record.from_flat, specialised to checked cells in COLUMNS order.
        evaluation = Evaluation(
            status=Status(cells[_STATUS]),
            accuracy=_float(cells[_AT["accuracy"]]),
            params=_int(cells[_AT["params"]]),
            flops=_int(cells[_AT["flops"]]),
            density=_float(cells[_AT["density"]]),
            seconds=_float(cells[_AT["seconds"]]),
            epochs=_int(cells[_AT["epochs"]]),
            message=cells[_AT["message"]],
            train_accuracy=_optional_float(cells[_AT["train_accuracy"]]),
            measure=cells[_AT["measure"]],
        )
        seed = cells[_AT["seed"]]
        return Record(
            dataset=cells[_DATASET],
            task=cells[_AT["task"]],
            arch_hash=cells[_ARCH_HASH],
            nsc=cells[_AT["nsc"]],
            estimator=cells[_AT["estimator"]],
            estimator_version=cells[_AT["estimator_version"]],
            fingerprint=cells[_FINGERPRINT],
            evaluation=evaluation,
            seed=_int(seed) if seed else None,
            timestamp=cells[_AT["timestamp"]],
            nasframe_version=cells[_AT["nasframe_version"]],
        )

    def _record(self, position: int) -> Record:
        entry = self._records[position]
        if isinstance(entry, Record):
            return entry
        record = self._decode(entry)
        self._records[position] = record
        return record

    def _add(self, key: _Key, entry: Record | list[str], transient: bool) -> None:
        position = self._index.get(key)
        if position is None:
            self._index[key] = len(self._records)
            self._records.append(entry)
            if transient:
                self._transient.add(key)
        elif key in self._transient:
            self._records[position] = entry  # a retry supersedes a transient failure
            if not transient:
                self._transient.discard(key)

    def _storable(self, key: _Key) -> bool:
        return key not in self._index or key in self._transient

    def _warn_torn(self, length: int) -> None:
        if self._warned_torn == self._offset:
            return
        self._warned_torn = self._offset
        warnings.warn(
            f"{self.path}: line {self._lines + 1} is incomplete ({length} bytes without a "
            "newline, left by a crash mid-write) and ignored",
            CorruptLineWarning,
            stacklevel=4,
        )

    def _append(self, data: bytes) -> None:
        start = os.fstat(self._write_fd).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._write_fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._write_fd)
        except OSError as exc:
            # Never leave a half line behind for the next writer.
            os.truncate(self.path, start)
            raise DatabaseError(f"{self.path}: cannot append: {exc.strerror}") from None

    def _sync_folder(self, always: bool = False) -> None:
        # A new file is durable only once its directory entry is.
        if not (self.fsync or always):
            return
        try:
            folder = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(folder)
        except OSError:  # some file systems cannot fsync a directory
            pass
        finally:
            os.close(folder)

    @staticmethod
    def _encode(record: Record) -> bytes:
        """The line of ``record`` in a file whose columns are :data:`COLUMNS`, in order."""
        return _csv_line(_cell(value) for value in _values(record)).encode()

    def _line(self, record: Record) -> bytes:
        """The line of ``record`` in this file: in the order of its column line."""
        if self._in_order:
            return self._encode(record)
        cells = [""] * self._width  # a column the file has and COLUMNS lacks stays empty
        for position, value in zip(self._positions, _values(record), strict=True):
            cells[position] = _cell(value)
        return _csv_line(cells).encode()


def _values(record: Record) -> list[Any]:
    """The cells of ``record`` in :data:`COLUMNS` order (``Record.to_flat`` without a dict)."""
    values = [getattr(record, name) for name in _RECORD_FIELDS]
    values += [getattr(record.evaluation, name) for name in _EVALUATION_FIELDS]
    values[_STATUS] = str(record.evaluation.status)
    return values


def _int(text: str) -> int:
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:  # "12.0", as a spreadsheet or pandas may have saved it
        return int(float(text))


def _float(text: str) -> float:
    return float(text) if text else 0.0


def _optional_float(text: str) -> float | None:
    return float(text) if text else None


def _appended(line: bytes, cells: bytes) -> bytes:
    """``line`` with ``cells`` (``,a,b``) appended, before a carriage return ending it."""
    if line.endswith(b"\r"):
        return line[:-1] + cells + b"\r"
    return line + cells


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    # One record is one line: line breaks inside a value become spaces.
    return " ".join(str(value).splitlines()) if isinstance(value, str) else str(value)


def _csv_line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(cells))
    return buffer.getvalue()


def _parse_line(text: str) -> list[str]:
    # Each line is parsed on its own so a stray quote cannot swallow the lines after it.
    return next(csv.reader([text], strict=True), [])
