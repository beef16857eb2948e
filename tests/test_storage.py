"""nasframe.check_file_db_settings: the one check of a file database's settings."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB

import nasframe
from nasframe import DatabaseError, FileDBSettings, check_file_db_settings


def check(path: Any, lock_timeout: Any = 60.0, fsync: Any = True, **kwargs: Any) -> FileDBSettings:
    return check_file_db_settings(path, lock_timeout, fsync, suffix=".csv", **kwargs)


def test_good_settings_are_returned_and_the_folder_is_made(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "e.csv"
    settings = check(str(target), 5, False)
    assert settings == FileDBSettings(path=target, lock_timeout=5.0, fsync=False)
    assert type(settings.lock_timeout) is float
    assert target.parent.is_dir() and not target.exists()  # the file itself is not made


def test_any_path_like_is_a_path(tmp_path: Path) -> None:
    assert check(FsPath(str(tmp_path / "e.csv"))).path == tmp_path / "e.csv"


def test_a_relative_path_stays_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check("runs/e.csv").path == Path("runs/e.csv")
    assert (tmp_path / "runs").is_dir()


def test_numpy_and_other_real_numbers_are_seconds(tmp_path: Path) -> None:
    for value in (np.float32(1.5), np.int64(2), Fraction(1, 2), 0):
        assert check(tmp_path / "e.csv", value).lock_timeout == float(value)


class FsPath:
    """An os.PathLike that is not a pathlib.Path."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __fspath__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"FsPath({self.text!r})"


@pytest.mark.parametrize("value", [None, "", "  ", Path("  "), FsPath(""), FsPath(" ")])
def test_an_empty_path(value: Any) -> None:
    message = (
        "[database] path is empty: set it to a .csv file, e.g. --set database.path=experiments.csv"
    )
    with pytest.raises(DatabaseError) as caught:
        check(value)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [5, 1.5, b"e.csv", ["e.csv"], FsPath(b"e.csv")])
def test_a_path_of_the_wrong_type(value: Any) -> None:
    with pytest.raises(DatabaseError) as caught:
        check(value)
    assert str(caught.value) == (
        f"[database] path: {value!r} is not a file path (a str or os.PathLike)"
    )


def test_a_path_with_a_nul_character() -> None:
    with pytest.raises(DatabaseError, match=r"^\[database\] path: 'a\\x00b' contains a NUL"):
        check("a\0b")


def test_a_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as caught:
        check(tmp_path)
    assert str(caught.value) == (
        f"[database] path: {str(tmp_path)!r} is a folder; set it to a .csv file inside it"
    )


@pytest.mark.parametrize(("under", "reason"), [("", "File exists"), ("sub", "Not a directory")])
def test_a_folder_that_cannot_be_made(tmp_path: Path, under: str, reason: str) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    target = tmp_path / "blocker" / under / "e.csv"
    with pytest.raises(DatabaseError) as caught:
        check(target)
    assert str(caught.value) == (
        f"[database] path: {str(target)!r}: cannot create its folder: {reason}"
    )


@pytest.mark.parametrize("value", ["60", None, True, [1], 1j])
def test_a_lock_timeout_that_is_not_a_number(tmp_path: Path, value: Any) -> None:
    with pytest.raises(DatabaseError) as caught:
        check(tmp_path / "e.csv", value)
    assert str(caught.value) == f"[database] lock_timeout: {value!r} is not a number of seconds"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_lock_timeout_that_is_not_finite(tmp_path: Path, value: float) -> None:
    with pytest.raises(DatabaseError) as caught:
        check(tmp_path / "e.csv", value)
    assert str(caught.value) == (
        f"[database] lock_timeout: {value!r} is not a finite number of seconds"
    )


@pytest.mark.parametrize("value", [-1, -0.5, np.float64(-2)])
def test_a_negative_lock_timeout(tmp_path: Path, value: Any) -> None:
    with pytest.raises(DatabaseError) as caught:
        check(tmp_path / "e.csv", value)
    # The same words as the configuration's own check of [database] lock_timeout.
    assert str(caught.value) == (
        f"[database] lock_timeout: {float(value)!r} is below the minimum 0"
    )


@pytest.mark.parametrize("value", ["no", "false", 0, 1, None, np.bool_(True)])
def test_an_fsync_that_is_not_a_bool(tmp_path: Path, value: Any) -> None:
    with pytest.raises(DatabaseError) as caught:
        check(tmp_path / "e.csv", 60.0, value)
    assert str(caught.value) == f"[database] fsync: {value!r} is not true or false"


def test_nothing_is_made_when_a_setting_is_wrong(tmp_path: Path) -> None:
    target = tmp_path / "new" / "e.csv"
    with pytest.raises(DatabaseError, match="fsync"):
        check(target, 60.0, "yes")
    assert not target.parent.exists()


def test_the_section_and_suffix_name_the_setting() -> None:
    with pytest.raises(DatabaseError) as caught:
        check_file_db_settings("", 1.0, True, suffix=".jsonl", section="mydb")
    assert str(caught.value) == (
        "[mydb] path is empty: set it to a .jsonl file, e.g. --set mydb.path=experiments.jsonl"
    )
    with pytest.raises(DatabaseError, match=r"^\[mydb\] lock_timeout: -1.0 is below"):
        check_file_db_settings("e.jsonl", -1, True, suffix=".jsonl", section="mydb")


def test_every_message_is_one_line(tmp_path: Path) -> None:
    bad: list[tuple[Any, Any, Any]] = [
        (None, 1.0, True),
        (5, 1.0, True),
        (tmp_path, 1.0, True),
        (tmp_path / "e.csv", "1", True),
        (tmp_path / "e.csv", math.nan, True),
        (tmp_path / "e.csv", -1, True),
        (tmp_path / "e.csv", 1.0, "on"),
    ]
    for path, lock_timeout, fsync in bad:
        with pytest.raises(DatabaseError) as caught:
            check(path, lock_timeout, fsync)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("factory", "suffix"), [(CsvExperimentDB, ".csv"), (SqliteExperimentDB, ".sqlite")]
)
@pytest.mark.parametrize(
    ("lock_timeout", "fsync", "match"),
    [
        (-1.0, True, r"^\[database\] lock_timeout: -1.0 is below the minimum 0$"),
        ("5", True, r"^\[database\] lock_timeout: '5' is not a number of seconds$"),
        (5.0, "no", r"^\[database\] fsync: 'no' is not true or false$"),
    ],
)
def test_both_file_backends_use_the_check(
    tmp_path: Path, factory: Any, suffix: str, lock_timeout: Any, fsync: Any, match: str
) -> None:
    with pytest.raises(DatabaseError, match=match):
        factory(tmp_path / f"e{suffix}", lock_timeout, fsync)
    with pytest.raises(DatabaseError, match=rf"is a folder; set it to a \{suffix} file inside"):
        factory(tmp_path)
    assert not list(tmp_path.iterdir())  # nothing was created


def test_exported_from_nasframe() -> None:
    assert {"check_file_db_settings", "FileDBSettings"} <= set(nasframe.__all__)
