"""Behaviour both experiment databases share: storage, first-wins, sharing, errors, frames."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import filelock
import pandas as pd
import pytest
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB

import nasframe
from nasframe import CacheKey, DatabaseError, Evaluation, ExperimentDB, Record, Status
from nasframe.authoring.records_frame import FRAME_DTYPES

Factory = Callable[..., ExperimentDB]
BACKENDS: dict[str, tuple[Factory, str]] = {
    "csv": (CsvExperimentDB, ".csv"),
    "sqlite": (SqliteExperimentDB, ".sqlite"),
}


def make_record(i: int, *, dataset: str = "digits", **evaluation: object) -> Record:
    """A record with varied, exactly representable and awkward values."""
    values: dict[str, object] = {
        "status": Status.OK,
        "accuracy": 0.1 + 0.2 + i / 1000,  # not exactly representable: must round-trip
        "params": 1000 + i,
        "flops": 10**12 + i,
        "density": 1 / 3,
        "seconds": 2.5,
        "epochs": 3,
        "message": "",
    }
    values.update(evaluation)
    return Record(
        dataset=dataset,
        task=dataset,
        arch_hash=f"hash{i:05d}",
        nsc=f"1,1,3,0,0;2,5,0,1,0;{i + 3},4,0,2,0",
        estimator="proxy",
        estimator_version="1",
        fingerprint="proxy-1-abc",
        evaluation=Evaluation(**values),
        seed=None if i % 2 else i,
        timestamp="2026-01-01T00:00:00Z",
        nasframe_version="0.1.0",
    )


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Factory, Path]:
    factory, suffix = BACKENDS[request.param]
    return factory, tmp_path / "sub" / f"experiments{suffix}"


def test_put_get_round_trip_and_persistence(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    records = [make_record(i) for i in range(5)]
    records.append(
        make_record(
            5, status=Status.TIMEOUT, message='ran out, after "3" epochs; ünïcode', accuracy=0.25
        )
    )
    with factory(path) as db:
        assert db.get(records[0].key) is None
        for record in records:
            db.put(record)
        assert db.get(records[3].key) == records[3]
        assert len(db) == 6
    with factory(path) as db:
        assert list(db) == records  # in the order stored, every value exact
        assert records[5].key in db
        assert CacheKey("other", "hash00000", "proxy-1-abc") not in db


def test_put_of_a_stored_key_keeps_the_first(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    first = make_record(1, accuracy=0.5)
    second = make_record(1, accuracy=0.9)
    with factory(path) as db:
        db.put(first)
        db.put(second)
        assert db.get(first.key) == first
        assert len(db) == 1
        assert db.put_many([second, make_record(2), make_record(2)]) == 1
        assert len(db) == 2


def test_a_reader_sees_what_another_handle_stored_since_it_opened(
    backend: tuple[Factory, Path],
) -> None:
    factory, path = backend
    with factory(path) as reader, factory(path) as writer:
        record = make_record(7)
        writer.put(record)
        assert reader.get(record.key) == record
        assert len(reader) == 1
        # The reader does not store a second copy of a key the writer stored first.
        reader.put(make_record(7, accuracy=0.01))
        assert list(factory(path)) == [record]


def test_to_frame_is_typed(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    with factory(path) as db:
        empty = db.to_frame()
        assert list(empty.columns) == list(FRAME_DTYPES)
        assert empty.empty
        db.put_many([make_record(i) for i in range(3)] + [make_record(3, status="diverged")])
        frame = db.to_frame()
    assert {c: str(t) for c, t in frame.dtypes.items()} == FRAME_DTYPES
    assert frame["params"].tolist() == [1000, 1001, 1002, 1003]
    assert frame["seed"].isna().tolist() == [False, True, False, True]
    assert frame["status"].tolist() == ["ok", "ok", "ok", "diverged"]
    assert frame["accuracy"].iloc[0] == pytest.approx(0.3)


def test_pickling_reopens_the_same_file(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    with factory(path, 5.0, False) as db:
        db.put(make_record(1))
        copy = pickle.loads(pickle.dumps(db))
    assert copy.path == path
    assert copy.lock_timeout == 5.0
    assert copy.get(make_record(1).key) == make_record(1)
    copy.close()


@pytest.mark.parametrize("value", [None, "", "  "])
def test_an_empty_path_is_refused(backend: tuple[Factory, Path], value: str | None) -> None:
    factory, _ = backend
    with pytest.raises(DatabaseError, match=r"^\[database\] path is empty: set it to a \."):
        factory(value)


def test_a_folder_that_cannot_be_made_is_reported(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    path.parent.parent.joinpath("blocker").write_text("a file, not a folder")
    target = path.parent.parent / "blocker" / path.name
    with pytest.raises(DatabaseError, match=r"blocker.*cannot create its folder"):
        factory(target)


def test_registered_with_the_database_section(tmp_path: Path) -> None:
    manager = nasframe.get_plugin_manager()
    registry = manager.registry("database")
    assert {"csv-v1", "sqlite-v1"} <= set(registry.names())
    config = nasframe.load_config(
        overrides={"database": {"path": str(tmp_path / "e.sqlite"), "lock_timeout": "2.5"}},
        plugin_manager=manager,
    )
    settings = config.section("database")
    assert settings == {"path": tmp_path / "e.sqlite", "lock_timeout": 2.5, "fsync": True}
    db = registry.create("sqlite", **settings)
    assert isinstance(db, SqliteExperimentDB)
    assert db.lock_timeout == 2.5
    db.close()
    assert registry.get("csv").section == "database"


@pytest.mark.parametrize("disabled", ["csv", "sqlite"])
def test_either_plugin_declares_the_section_alone(disabled: str) -> None:
    manager = nasframe.get_plugin_manager(disable=[disabled])
    config = nasframe.load_config(plugin_manager=manager)
    assert config.section("database") == {"path": None, "lock_timeout": 60.0, "fsync": True}


def test_bad_database_settings_are_config_errors() -> None:
    with pytest.raises(nasframe.ConfigError, match=r"\[database\] lock_timeout: -1.0 is below"):
        nasframe.load_config(overrides={"database": {"lock_timeout": "-1"}})
    with pytest.raises(nasframe.ConfigError, match=r"\[database\] fsync: 'maybe' is not a valid"):
        nasframe.load_config(overrides={"database": {"fsync": "maybe"}})


# -- errors of the SQLite backend ---------------------------------------------------------


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    SqliteExperimentDB(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version=4")
    with pytest.raises(
        DatabaseError, match=r"written with record schema version 4, .* reads version 3 at most"
    ):
        SqliteExperimentDB(path)
    with sqlite3.connect(path) as connection:  # refused, not upgraded
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 4


def test_sqlite_refuses_other_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_bytes(b"this is not a database at all, just some text " * 40)
    with pytest.raises(DatabaseError, match=r"notes.db: not an SQLite database"):
        SqliteExperimentDB(text)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(DatabaseError, match=r"foreign.db: an SQLite file, but not a nasframe"):
        SqliteExperimentDB(foreign)


def test_sqlite_lock_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite"
    db = SqliteExperimentDB(path, lock_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        with pytest.raises(DatabaseError, match=r"held the database for more than 0.2 s"):
            db.put(make_record(1))
        assert db.get(make_record(1).key) is None  # readers are not blocked in WAL mode
    finally:
        other.execute("ROLLBACK")
        other.close()
    db.put(make_record(1))
    assert len(db) == 1
    db.close()


def test_sqlite_uses_wal_and_the_cache_key_as_primary_key(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    SqliteExperimentDB(path).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        info = connection.execute("PRAGMA table_info(records)").fetchall()
    primary = [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]
    assert primary == ["dataset", "arch_hash", "fingerprint"]


def test_csv_lock_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.csv"
    db = CsvExperimentDB(path, lock_timeout=0.2)
    other = filelock.FileLock(f"{path}.lock")
    with other:
        with pytest.raises(DatabaseError, match=r"busy.csv: another process has held the lock"):
            db.put(make_record(1))
        assert db.get(make_record(1).key) is None  # reading needs no lock
    db.put(make_record(1))
    assert len(db) == 1
    db.close()


def test_frames_match_between_backends(tmp_path: Path) -> None:
    records = [make_record(i) for i in range(4)]
    frames = []
    for factory, suffix in BACKENDS.values():
        with factory(tmp_path / f"e{suffix}") as db:
            db.put_many(records)
            frames.append(db.to_frame())
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.parametrize("status", ["out_of_memory", "timeout", "error"])
def test_a_transient_failure_is_superseded_by_the_next_record(
    backend: tuple[Factory, Path], status: str
) -> None:
    factory, path = backend
    failed = make_record(1, status=status, message="try again")
    retried = make_record(1, accuracy=0.75)
    later = make_record(1, accuracy=0.1)
    with factory(path) as db:
        db.put_many([make_record(0), failed, make_record(2)])
        db.put(retried)
        db.put(later)  # the retry was not transient: it is final
        assert db.get(failed.key) == retried
        assert [r.evaluation.accuracy for r in db][1] == 0.75  # in the failure's place
    with factory(path) as db:
        assert list(db) == [make_record(0), retried, make_record(2)]


def test_a_final_failure_is_never_superseded(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    invalid = make_record(1, status="invalid", message="cannot be built")
    with factory(path) as db:
        db.put(invalid)
        db.put(make_record(1))
        assert db.get(invalid.key) == invalid


def test_one_object_may_be_shared_by_threads(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    db = factory(path, fsync=False)

    def write(worker: int) -> None:
        for i in range(worker * 100, worker * 100 + 100):
            db.put(make_record(i))
            assert db.get(make_record(i).key) is not None
            assert len(db) >= 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))
    assert sorted(r.arch_hash for r in db) == [f"hash{i:05d}" for i in range(400)]
    db.close()


def _head_only(i: int) -> Record:
    """A record of the head-only network, stored under a placeholder NSC to rewrite."""
    record = make_record(i)
    return Record(**{**vars(record), "nsc": "9,1,9,0,0"})


def test_an_old_row_of_the_head_only_network_reads_as_the_empty_string(
    backend: tuple[Factory, Path],
) -> None:
    # Rows once stored the empty network with its terminal row; they read as "" now.
    factory, path = backend
    with factory(path) as db:
        db.put_many([_head_only(0), make_record(1)])
    if path.suffix == ".csv":
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"9,1,9,0,0"', '"1,7,0,0,0"'), encoding="utf-8")
    else:
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE records SET nsc = '1,7,0,0,0' WHERE nsc = '9,1,9,0,0'")
    with factory(path) as db:
        assert next(iter(db)).nsc == ""
        assert db.get(_head_only(0).key).nsc == ""  # type: ignore[union-attr]
        assert db.to_frame()["nsc"].iloc[0] == ""


def test_a_record_drops_a_terminal_row_whoever_builds_it() -> None:
    assert Record(**{**vars(make_record(0)), "nsc": "1,7,0,0,0"}).nsc == ""
    assert Record(**{**vars(make_record(0)), "nsc": "1,1,3,0,0;2,7,0,0,0"}).nsc == "1,1,3,0,0"
    assert make_record(0).nsc == "1,1,3,0,0;2,5,0,1,0;3,4,0,2,0"


# -- schema version 2: train_accuracy ------------------------------------------------------


def test_train_accuracy_round_trips_measured_or_not(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    measured = make_record(0, train_accuracy=0.1 + 0.7)  # not exactly representable
    unmeasured = make_record(1)
    perfect = make_record(2, train_accuracy=1.0)
    zero = make_record(3, train_accuracy=0.0)  # measured as 0.0: not the same as None
    records = [measured, unmeasured, perfect, zero]
    with factory(path) as db:
        db.put_many(records)
        assert db.get(measured.key).evaluation.train_accuracy == 0.1 + 0.7
    with factory(path) as db:
        assert list(db) == records
        assert [r.evaluation.train_accuracy for r in db] == [0.1 + 0.7, None, 1.0, 0.0]
        frame = db.to_frame()
    assert str(frame["train_accuracy"].dtype) == "float64"
    assert frame["train_accuracy"].isna().tolist() == [False, True, False, False]
    assert frame["train_accuracy"].iloc[0] == 0.1 + 0.7


def test_measure_round_trips_and_defaults_to_an_accuracy(backend: tuple[Factory, Path]) -> None:
    factory, path = backend
    scored = make_record(0, measure="synflow score")
    low = make_record(1, measure="cascade 1/2: accuracy after 1 epoch")
    accuracy = make_record(2)
    with factory(path) as db:
        db.put_many([scored, low, accuracy])
    with factory(path) as db:
        assert list(db) == [scored, low, accuracy]
        assert [r.evaluation.measure for r in db] == [
            "synflow score",
            "cascade 1/2: accuracy after 1 epoch",
            "",
        ]
        assert [r.evaluation.label for r in db] == [
            "synflow score",
            "cascade 1/2: accuracy after 1 epoch",
            "accuracy",
        ]
        frame = db.to_frame()
    assert frame["measure"].tolist() == ["synflow score", "cascade 1/2: accuracy after 1 epoch", ""]
    flat = accuracy.to_flat()
    without = {name: value for name, value in flat.items() if name != "measure"}
    assert Record.from_flat(without) == accuracy  # an older row: an accuracy


def test_record_from_flat_keeps_an_unmeasured_train_accuracy_none() -> None:
    flat = make_record(0).to_flat()
    assert flat["train_accuracy"] is None
    for empty in (None, "", float("nan")):
        assert Record.from_flat({**flat, "train_accuracy": empty}).evaluation.train_accuracy is None
    without = {name: value for name, value in flat.items() if name != "train_accuracy"}
    assert Record.from_flat(without) == make_record(0)
    assert Record.from_flat({**flat, "train_accuracy": "0.5"}).evaluation.train_accuracy == 0.5
    assert Record.from_flat({**flat, "accuracy": ""}).evaluation.accuracy == 0.0  # unchanged


#: The table of record schema version 1, exactly as nasframe created it.
SQLITE_V1_CREATE = (
    "CREATE TABLE IF NOT EXISTS records (dataset TEXT NOT NULL, task TEXT NOT NULL, "
    "arch_hash TEXT NOT NULL, nsc TEXT NOT NULL, estimator TEXT NOT NULL, "
    "estimator_version TEXT NOT NULL, fingerprint TEXT NOT NULL, seed INTEGER, "
    "timestamp TEXT NOT NULL, nasframe_version TEXT NOT NULL, status TEXT NOT NULL, "
    "accuracy REAL NOT NULL, params INTEGER NOT NULL, flops INTEGER NOT NULL, "
    "density REAL NOT NULL, seconds REAL NOT NULL, epochs INTEGER NOT NULL, "
    "message TEXT NOT NULL, PRIMARY KEY (dataset, arch_hash, fingerprint))"
)


def write_sqlite_v1(path: Path, records: list[Record]) -> None:
    """A database as nasframe's record schema version 1 wrote it."""
    from nasframe_sqlite.db import APPLICATION_ID

    columns = [
        name for name in make_record(0).to_flat() if name not in ("train_accuracy", "measure")
    ]
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(SQLITE_V1_CREATE)
        connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
        connection.execute("PRAGMA user_version=1")
        for record in records:
            flat = record.to_flat()
            connection.execute(
                f"INSERT INTO records ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [flat[name] for name in columns],
            )
    finally:
        connection.close()


def sqlite_schema(path: Path) -> tuple[int, list[tuple[str, str, int]]]:
    """``user_version`` and (name, type, notnull) of every column of the records table."""
    with sqlite3.connect(path) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        info = connection.execute("PRAGMA table_info(records)").fetchall()
    return version, [(row[1], row[2], row[3]) for row in info]


def test_sqlite_upgrades_a_schema_1_database_keeping_every_record(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = [make_record(1), make_record(2, status="timeout", message="ran out", accuracy=0.25)]
    write_sqlite_v1(path, old)
    version, columns = sqlite_schema(path)
    assert version == 1 and "train_accuracy" not in [name for name, _, _ in columns]
    with SqliteExperimentDB(path) as db:
        assert list(db) == old
        assert [r.evaluation.train_accuracy for r in db] == [None, None]
        assert [r.evaluation.measure for r in db] == ["", ""]
        version, columns = sqlite_schema(path)
        assert version == 3
        assert columns[-2] == ("train_accuracy", "REAL", 0)  # nullable
        assert columns[-1] == ("measure", "TEXT", 1)  # NOT NULL, '' for the old records
        assert [name for name, _, _ in columns] == [
            *(n for n in make_record(0).to_flat() if n not in ("train_accuracy", "measure")),
            "train_accuracy",
            "measure",
        ]
        new = make_record(3, train_accuracy=0.875)
        db.put(new)
        assert db.get(new.key) == new
        # A second upgrade (a process that read user_version 1 before this one upgraded)
        # checks inside its transaction and does nothing.
        db._upgrade()
        assert sqlite_schema(path) == (version, columns)
    with SqliteExperimentDB(path) as db, SqliteExperimentDB(path) as other:
        assert list(db) == [*old, new] == list(other)
        assert db.get(old[0].key).evaluation.train_accuracy is None  # type: ignore[union-attr]


def test_sqlite_schema_1_databases_opened_by_several_handles_upgrade_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    write_sqlite_v1(path, [make_record(i) for i in range(3)])
    with ThreadPoolExecutor(max_workers=4) as pool:
        handles = list(pool.map(lambda _: SqliteExperimentDB(path), range(4)))
    try:
        for handle in handles:
            assert [r.evaluation.train_accuracy for r in handle] == [None] * 3
        handles[0].put(make_record(9, train_accuracy=0.5))
        assert handles[3].get(make_record(9).key).evaluation.train_accuracy == 0.5  # type: ignore[union-attr]
    finally:
        for handle in handles:
            handle.close()
    version, columns = sqlite_schema(path)
    assert version == 3
    assert [name for name, _, _ in columns].count("train_accuracy") == 1
    assert [name for name, _, _ in columns].count("measure") == 1
