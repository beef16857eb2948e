"""Experiment databases under random interleavings, truncation and corruption (Hypothesis).

* Several processes put and get random records at once (keys overlapping between them):
  afterwards every key put by anyone is stored exactly once, as one of the records put
  for it, every process read back what it had stored, and nothing but documented errors
  was raised (the first record of a key wins; a transient failure is superseded).
* A CSV database truncated at any byte or with any byte range overwritten opens (with a
  warning) or fails with a one-line :class:`DatabaseError`; every record whose line the
  damage did not touch is still there, and the database takes new records afterwards.
  A damaged SQLite file opens or fails with a one-line ``DatabaseError``, nothing else.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB
from properties import examples, one_line

from nasframe import DatabaseError, Evaluation, Record, Status

BACKENDS = {"csv": CsvExperimentDB, "sqlite": SqliteExperimentDB}
STATUSES = [Status.OK, Status.OK, Status.INVALID, Status.TIMEOUT, Status.ERROR]


def record(number: int, version: int = 0, status: Status = Status.OK) -> Record:
    """Record ``number`` (its key), as put by writer ``version``; hashes far apart."""
    arch_hash = f"{number * 7919 + 13:05d}".rjust(20, "abcdef0123456789abcdef"[number % 7])
    return Record(
        dataset="digits",
        task="digits",
        arch_hash=arch_hash,
        nsc="1,1,3,0,0;2,2,2,1,0",
        estimator="proxy",
        estimator_version="1",
        fingerprint="proxy-1-abc",
        evaluation=Evaluation(
            status=status,
            accuracy=(number % 97) / 97 + version / 1000,
            params=1000 + number,
            flops=10_000 + version,
            density=1.25,
            seconds=0.5,
            epochs=version,
            message=f'writer {version}, a comma, "quotes"' if number % 3 == 0 else "",
        ),
        seed=number % 4 or None,
        timestamp="2026-01-01T00:00:00Z",
        nasframe_version="0.1.0",
    )


# -- several processes ---------------------------------------------------------------------

Operation = tuple[str, int, int]  # ("put"|"get", record number, status index)


def _worker(
    backend: str, path: str, writer: int, operations: list[Operation], start: Any, out: Any
) -> None:
    """Run ``operations`` on a fresh connection; report (puts, gets seen, error) on ``out``."""
    stored: list[tuple[int, int]] = []
    problems: list[str] = []
    try:
        start.wait(30)
        with BACKENDS[backend](path, lock_timeout=30, fsync=False) as db:
            for kind, number, status in operations:
                if kind == "put":
                    db.put(record(number, writer, STATUSES[status]))
                    stored.append((number, status))
                else:
                    got = db.get(record(number).key)
                    mine = [n for n, _ in stored if n == number]
                    if mine and got is None:
                        problems.append(f"record {number} stored here but not found")
    except DatabaseError as exc:  # documented, but nothing here should cause one
        problems.append(f"DatabaseError: {exc}")
    except BaseException as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    out.put((writer, stored, problems))


operations = st.lists(
    st.tuples(st.sampled_from(["put", "put", "get"]), st.integers(0, 11), st.integers(0, 4)),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@settings(max_examples=examples(20))
@given(plans=st.lists(operations, min_size=2, max_size=3))
def test_processes_interleaving_lose_nothing(backend: str, plans: list[list[Operation]]) -> None:
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / f"db.{backend}")
        start, out = context.Event(), context.Queue()
        workers = [
            context.Process(target=_worker, args=(backend, path, writer, plan, start, out))
            for writer, plan in enumerate(plans)
        ]
        for worker in workers:
            worker.start()
        start.set()
        results = [out.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(60)
        assert [problems for _, _, problems in results] == [[]] * len(workers)
        put: dict[int, set[tuple[int, Status]]] = {}
        for writer, stored, _ in results:
            for number, status in stored:
                put.setdefault(number, set()).add((writer, STATUSES[status]))
        with BACKENDS[backend](path, fsync=False) as db:
            records = list(db)
            assert len(records) == len({r.key for r in records}) == len(put)
            for number, candidates in put.items():
                found = db.get(record(number).key)
                assert found is not None
                writer, status = found.evaluation.epochs, found.evaluation.status
                assert (writer, status) in candidates
                assert found == record(number, writer, status)
                # a final (non-transient) result is never replaced by a later put
                if any(not stored.transient for _, stored in candidates):
                    assert not status.transient


# -- damaged files -------------------------------------------------------------------------

damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(b"")),
    st.tuples(st.just("overwrite"), st.floats(0, 1), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=12)),
)


def damaged(data: bytes, kind: str, where: float, payload: bytes) -> tuple[bytes, int, int]:
    """``data`` damaged; returns it with the first and last original byte touched."""
    at = min(len(data), int(where * len(data)))
    if kind == "truncate":
        return data[:at], at, len(data)
    if kind == "overwrite":
        end = min(len(data), at + len(payload))
        return data[:at] + payload + data[end:], at, max(at, end - 1)
    return data[:at] + payload + data[at:], at, at


@settings(max_examples=examples(200))
@given(count=st.integers(0, 25), how=damage)
def test_a_damaged_csv_file_keeps_every_untouched_record(
    count: int, how: tuple[str, float, bytes]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "db.csv"
        with CsvExperimentDB(path, fsync=False) as db:
            db.put_many(record(n) for n in range(count))
        original = path.read_bytes()
        data, first, last = damaged(original, *how)
        path.write_bytes(data)
        # each record's line: [start, end] including its newline; the line before ends
        # at start - 1, so a line survives when neither it nor that newline was touched
        lines, position = [], 0
        for line in original.splitlines(keepends=True):
            lines.append((position, position + len(line) - 1))
            position += len(line)
        header_end = lines[1][1] + 1 if len(lines) > 1 else len(original)
        kind = how[0]
        untouched = [
            n
            for n, (start, end) in enumerate(lines[2:])
            if first >= header_end
            and (end < first or (start > first if kind == "insert" else start - 1 > last))
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torn and corrupt lines warn: expected here
            try:
                db = CsvExperimentDB(path, fsync=False)
            except DatabaseError as exc:
                one_line(exc)
                assert first < header_end  # only a damaged header may refuse the file
                return
            with db:
                for n in untouched:
                    assert db.get(record(n).key) == record(n), f"record {n} lost"
                db.put(record(1000))
            with CsvExperimentDB(path, fsync=False) as again:
                assert again.get(record(1000).key) == record(1000)
                for n in untouched:
                    assert again.get(record(n).key) == record(n)


@settings(max_examples=examples(100))
@given(count=st.integers(0, 25), how=damage)
def test_a_damaged_sqlite_file_fails_only_with_database_error(
    count: int, how: tuple[str, float, bytes]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "db.sqlite"
        with SqliteExperimentDB(path, fsync=False) as db:
            db.put_many(record(n) for n in range(count))
        path.write_bytes(damaged(path.read_bytes(), *how)[0])
        try:
            with SqliteExperimentDB(path, fsync=False) as db:
                list(db)
                db.get(record(0).key)
                db.put(record(1000))
        except DatabaseError as exc:
            one_line(exc)
