"""The CSV experiment database: its file format, torn and corrupt lines, schema checks."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import pytest
from nasframe_csv import CorruptLineWarning, CsvExperimentDB
from nasframe_csv.db import COLUMNS
from test_db_backends import make_record

from nasframe import DatabaseError, Record


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_file_format_header_and_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put(make_record(1, message="two\nlines, with a comma"))
        db.put(make_record(2))
    text = lines(path)
    assert text[0] == "# nasframe experiments schema_version=3"
    assert text[1].startswith("dataset,task,arch_hash,nsc,estimator,")
    assert len(text) == 4  # a line break inside a value never splits a record
    assert '"two lines, with a comma"' in text[2]
    with CsvExperimentDB(path) as db:
        assert db.get(make_record(1).key).evaluation.message == "two lines, with a comma"


def test_put_appends_and_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put(make_record(1))
        before = path.read_bytes()
        inode = path.stat().st_ino
        db.put(make_record(2))
    after = path.read_bytes()
    assert after.startswith(before)  # the old bytes are untouched
    assert path.stat().st_ino == inode  # the same file, not a replaced one


def test_a_torn_last_line_is_ignored_with_a_warning_then_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(i) for i in range(3)])
    full = CsvExperimentDB._encode(make_record(3))
    with path.open("ab") as handle:
        handle.write(full[: len(full) // 2])  # a crash mid-write
    with pytest.warns(CorruptLineWarning, match=r"e.csv: line 6 is incomplete .* ignored"):
        db = CsvExperimentDB(path)
    assert [r.arch_hash for r in db] == ["hash00000", "hash00001", "hash00002"]
    db.put(make_record(4))  # cuts the torn tail off, then appends on a line of its own
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = CsvExperimentDB(path)
    assert [r.arch_hash for r in reopened] == ["hash00000", "hash00001", "hash00002", "hash00004"]
    assert len(lines(path)) == 6
    reopened.close()


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('digits,"unterminated quote,3', "unexpected end of data"),
        ("digits,too,few,fields", "4 fields, expected 20"),
        (None, "'exploded' is not a valid Status"),
        ("", "0 fields"),
        ("inf-params", "cannot convert float infinity to integer"),
        ("no-hash", "arch_hash empty"),
    ],
    ids=["quote", "fields", "status", "blank", "inf", "key"],
)
def test_a_corrupt_middle_line_is_skipped_with_its_number(
    tmp_path: Path, bad_line: str | None, reason: str
) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(i) for i in range(5)])
    text = lines(path)
    good = text[4]
    if bad_line == "inf-params":
        bad_line = good.replace(",1002,", ",inf,")
    elif bad_line == "no-hash":
        bad_line = good.replace(",hash00002,", ",,")
    text[4] = bad_line if bad_line is not None else good.replace(",ok,", ",exploded,")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.warns(
        CorruptLineWarning, match=rf"e.csv: line 5 is corrupt and ignored \(.*{reason}"
    ):
        db = CsvExperimentDB(path)
    assert [r.arch_hash for r in db] == ["hash00000", "hash00001", "hash00003", "hash00004"]
    db.put(make_record(2))  # the skipped key can be stored again
    assert len(db) == 5
    db.close()


def test_a_line_appended_by_another_program_later_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    db = CsvExperimentDB(path)
    db.put(make_record(1))
    with path.open("a", encoding="utf-8") as handle:
        handle.write("garbage\n")
    with pytest.warns(CorruptLineWarning, match=r"line 4 is corrupt"):
        assert db.get(make_record(2).key) is None
    db.close()


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.csv"
    with CsvExperimentDB(path) as db:
        db.put(make_record(1))
    path.write_text(path.read_text().replace("schema_version=3", "schema_version=4"))
    before = path.read_bytes()
    with pytest.raises(
        DatabaseError,
        match=r"future.csv: written with record schema version 4, but nasframe .* reads "
        r"version 3 at most; upgrade nasframe$",
    ):
        CsvExperimentDB(path)
    assert path.read_bytes() == before  # refused, not upgraded or otherwise touched


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,age\nann,3\n", r"not a nasframe experiment database \(line 1 is 'name,age'"),
        ("# nasframe experiments schema_version=0\n", r"schema version 0 does not exist"),
        ("# nasframe experiments schema_version=1\n", r"line 2 \(the column names\) is missing"),
        (
            "# nasframe experiments schema_version=1\ndataset,arch_hash\n",
            r"line 2 lacks the columns task, nsc, estimator",
        ),
    ],
    ids=["foreign", "version0", "no-columns", "few-columns"],
)
def test_files_that_are_not_databases_are_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(DatabaseError, match=message):
        CsvExperimentDB(path)


def test_columns_may_come_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put(make_record(1))
    import pandas as pd

    frame = pd.read_csv(path, skiprows=1, dtype=str, keep_default_na=False)
    header = "# nasframe experiments schema_version=3\n"
    path.write_text(header + frame[frame.columns[::-1]].to_csv(index=False))
    with CsvExperimentDB(path) as db:
        assert list(db) == [make_record(1)]
        db.put(make_record(2, train_accuracy=0.5))  # written in the file's column order
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = CsvExperimentDB(path)
    assert list(reopened) == [make_record(1), make_record(2, train_accuracy=0.5)]
    assert lines(path)[-1].startswith(",0.5,,3,")  # measure, train_accuracy, message, ...
    reopened.close()


def test_a_file_rewritten_while_open_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    db = CsvExperimentDB(path)
    db.put_many([make_record(i) for i in range(3)])
    with path.open("r+b") as handle:
        handle.truncate(200)
    with pytest.raises(DatabaseError, match=r"the file shrank from \d+ to 200 bytes while open"):
        db.get(make_record(9).key)
    db.close()
    with pytest.raises(DatabaseError, match=r"the database is closed"):
        db.get(make_record(9).key)


def test_a_file_deleted_while_open_is_reported_not_written_into_the_void(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    db = CsvExperimentDB(path)
    db.put(make_record(1))
    path.unlink()
    with pytest.raises(DatabaseError, match=r"e.csv: the file was deleted or replaced while open"):
        db.put(make_record(2))
    db.close()
    with pytest.raises(DatabaseError, match=r"e.csv: the database is closed"):
        db.put(make_record(3))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(b'digits,"open quote to the end\n', "unexpected end of data"), (b"\xff\xfe,x\n", "utf-8")],
    ids=["quote-last", "not-utf8"],
)
def test_a_bad_last_complete_line_or_bad_bytes(tmp_path: Path, bad: bytes, reason: str) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(i) for i in range(3)])
    text = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*text[:3], bad, *text[3:]]))  # as line 4 of 6
    with pytest.warns(CorruptLineWarning, match=rf"line 4 is corrupt and ignored \(.*{reason}"):
        db = CsvExperimentDB(path)
    assert [r.arch_hash for r in db] == ["hash00000", "hash00001", "hash00002"]
    with path.open("ab") as handle:
        handle.write(bad)
    with pytest.warns(CorruptLineWarning, match=rf"line 7 is corrupt and ignored \(.*{reason}"):
        assert len(db) == 3
    db.close()


# -- record schema version 1: upgraded in place -------------------------------------------

V1_HEADER = "# nasframe experiments schema_version=1"
V1_COLUMNS = [name for name in COLUMNS if name not in ("train_accuracy", "measure")]


def v1_line(record: Record) -> str:
    """A line of ``record`` as record schema version 1 wrote it (no train_accuracy)."""
    flat = record.to_flat()
    cells = [
        "" if flat[name] is None else repr(v) if isinstance(v := flat[name], float) else str(v)
        for name in V1_COLUMNS
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def write_v1(path: Path, records: list[Record], tail: str = "") -> None:
    text = f"{V1_HEADER}\n{','.join(V1_COLUMNS)}\n"
    path.write_text(text + "".join(v1_line(record) for record in records) + tail)


OLD = [
    make_record(1),
    make_record(2, status="timeout", message="ran out, at epoch 2", accuracy=0.25),
]


def test_a_schema_1_file_is_upgraded_in_place_keeping_every_record(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    write_v1(path, OLD)
    old_lines = lines(path)
    assert old_lines[1] == ",".join(COLUMNS[:-2])  # the exact old column line
    inode = path.stat().st_ino
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db = CsvExperimentDB(path)
    assert list(db) == OLD
    assert [r.evaluation.train_accuracy for r in db] == [None, None]
    text = lines(path)
    assert text[0] == "# nasframe experiments schema_version=3"
    assert text[1] == ",".join(COLUMNS) == old_lines[1] + ",train_accuracy,measure"
    assert text[2:] == [line + ",," for line in old_lines[2:]]  # two empty last cells each
    assert path.stat().st_ino != inode  # a new file, moved over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv", "old.csv.lock"]
    new = make_record(3, train_accuracy=0.875)
    db.put(new)
    assert db.get(new.key) == new
    assert lines(path)[-1].endswith(",0.875,")
    db.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = CsvExperimentDB(path)
    assert list(reopened) == [*OLD, new]
    assert [r.evaluation.train_accuracy for r in reopened] == [None, None, 0.875]
    reopened.close()


def test_a_schema_2_file_gets_an_empty_measure_for_every_record(tmp_path: Path) -> None:
    # schema 2 had train_accuracy but no measure: a zero-cost score stored then reads as
    # what it was stored as (its estimator column says which records those are)
    path = tmp_path / "two.csv"
    measured = make_record(1, train_accuracy=0.5)
    columns = [name for name in COLUMNS if name != "measure"]
    flat = measured.to_flat()
    cells = [
        "" if flat[name] is None else repr(v) if isinstance(v := flat[name], float) else str(v)
        for name in columns
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    header = "# nasframe experiments schema_version=2"
    path.write_text(f"{header}\n{','.join(columns)}\n{buffer.getvalue()}")
    with CsvExperimentDB(path) as db:
        assert list(db) == [measured]
        assert [r.evaluation.measure for r in db] == [""]
        scored = make_record(2, measure="synflow score")
        db.put(scored)
    text = lines(path)
    assert text[0] == "# nasframe experiments schema_version=3"
    assert text[1] == ",".join(COLUMNS)
    assert text[-1].endswith(",synflow score")
    with CsvExperimentDB(path) as reopened:
        assert [r.evaluation.measure for r in reopened] == ["", "synflow score"]


def test_a_schema_1_file_keeps_its_torn_last_line_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    torn = v1_line(make_record(7))[:40]  # a crash mid-write, no newline
    write_v1(path, OLD, tail=torn)
    with pytest.warns(CorruptLineWarning, match=r"old.csv: line 5 is incomplete .* ignored"):
        db = CsvExperimentDB(path)
    assert path.read_text().endswith("\n" + torn)  # unchanged, not given a cell
    assert list(db) == OLD
    db.put(make_record(3))  # cuts the torn tail off, as always
    db.close()
    assert path.read_text().endswith("\n")
    with CsvExperimentDB(path) as reopened:
        assert list(reopened) == [*OLD, make_record(3)]


def test_a_schema_1_file_with_columns_in_another_order_or_a_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    columns = V1_COLUMNS[::-1]
    rows = []
    for record in OLD:
        reader = next(csv.reader([v1_line(record)]))
        cells = dict(zip(V1_COLUMNS, reader, strict=True))
        rows.append(",".join(f'"{cells[name]}"' for name in columns))
    path.write_text(f"{V1_HEADER}\n{','.join(columns)}\n{rows[0]}\n\n{rows[1]}\n")
    with pytest.warns(CorruptLineWarning, match=r"line 4 is corrupt and ignored \(0 fields"):
        db = CsvExperimentDB(path)
    assert list(db) == OLD
    assert lines(path)[1] == ",".join(columns) + ",train_accuracy,measure"
    assert lines(path)[3] == ""  # a blank line stays blank
    db.put(make_record(3, train_accuracy=0.5))
    db.close()
    with pytest.warns(CorruptLineWarning):
        reopened = CsvExperimentDB(path)
    assert list(reopened) == [*OLD, make_record(3, train_accuracy=0.5)]
    reopened.close()


def test_a_schema_1_file_lacking_other_columns_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text(f"{V1_HEADER}\n{','.join(V1_COLUMNS[:-1])}\n")
    with pytest.raises(DatabaseError, match=r"old.csv: line 2 lacks the columns message$"):
        CsvExperimentDB(path)
    assert lines(path)[0] == V1_HEADER


@pytest.mark.parametrize("replacement", ["v1", "v2"])
def test_an_open_database_follows_the_file_replaced_by_an_upgrade(
    tmp_path: Path, replacement: str
) -> None:
    # What another process's upgrade does to a process that has the file open: the path
    # names a new file holding every record (and here one more, stored meanwhile).
    path = tmp_path / "e.csv"
    db = CsvExperimentDB(path)
    db.put(make_record(1))
    staged = tmp_path / "staged.csv"
    if replacement == "v1":
        write_v1(staged, [make_record(1), make_record(2)])
    else:
        with CsvExperimentDB(staged) as other:
            other.put_many([make_record(1), make_record(2)])
    staged.replace(path)
    if replacement == "v1":  # a put first: it must land in the new file, not the old inode
        db.put(make_record(3))
        assert db.get(make_record(2).key) == make_record(2)
    else:  # a read first: a look-up that misses rereads the new file
        assert db.get(make_record(2).key) == make_record(2)
        db.put(make_record(3))
    assert len(db) == 3
    db.close()
    assert lines(path)[0] == "# nasframe experiments schema_version=3"
    with CsvExperimentDB(path) as reopened:
        assert [r.arch_hash for r in reopened] == ["hash00001", "hash00002", "hash00003"]


def test_a_file_replaced_by_one_lacking_records_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    db = CsvExperimentDB(path)
    db.put_many([make_record(1), make_record(2)])
    staged = tmp_path / "staged.csv"
    with CsvExperimentDB(staged) as other:
        other.put(make_record(2))
    staged.replace(path)
    with pytest.raises(
        DatabaseError,
        match=r"e.csv: the file was deleted or replaced while open \(the new "
        r"file lacks 1 of the records read before\); reopen the database",
    ):
        db.put(make_record(3))
    with pytest.raises(DatabaseError, match=r"the database is closed"):
        db.get(make_record(3).key)
    with CsvExperimentDB(path) as reopened:
        assert list(reopened) == [make_record(2)]  # nothing was appended


def test_train_accuracy_and_measure_are_the_last_columns_empty_when_not_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(1, train_accuracy=0.1 + 0.7), make_record(2)])
    text = lines(path)
    assert text[1].endswith(",epochs,message,train_accuracy,measure")
    assert text[2].endswith(f",3,,{0.1 + 0.7!r},")
    assert text[3].endswith(",3,,,")  # message, train_accuracy and measure empty
    text[3] = text[3][:-1] + "not-a-number,"
    path.write_text("\n".join(text) + "\n")
    with pytest.warns(CorruptLineWarning, match=r"line 4 is corrupt .*could not convert"):
        db = CsvExperimentDB(path)
    assert [r.evaluation.train_accuracy for r in db] == [0.1 + 0.7]
    db.close()
