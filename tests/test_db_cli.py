"""``nasframe db show|stats|export|merge`` and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB
from test_db_backends import make_record

from nasframe.authoring.records_frame import FRAME_DTYPES
from nasframe.cli import main


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["db", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "runs" / "experiments.csv"
    with CsvExperimentDB(path) as db:
        db.put_many(
            [make_record(i) for i in range(12)]
            + [make_record(50, status="timeout", accuracy=0.99, message="ran out")]
            + [make_record(60, dataset="cifar10", accuracy=0.7)]
        )
    return path


def test_show_ranks_ok_records_by_accuracy(database: Path) -> None:
    code, out, _ = run("show", database, "--top", "3")
    assert code == 0
    assert "top 3 of 13" in out  # the timeout record is not ranked
    assert out.index("0.7000") < out.index("0.3110") < out.index("0.3100")
    assert "hash" not in out and "0.9900" not in out
    code, out, _ = run("show", database, "--all-statuses", "-n", "1")
    assert code == 0 and "0.9900" in out and "timeout" in out
    code, out, _ = run("show", database, "--dataset", "cifar10")
    assert code == 0 and "top 1 of 1" in out


def test_show_has_the_train_accuracy_after_the_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(1, accuracy=0.9, train_accuracy=0.98765), make_record(2)])
    code, out, _ = run("show", path)
    assert code == 0
    header = next(line for line in out.splitlines() if "accuracy" in line)
    assert header.split("┃")[1:4] == [" # ", " accuracy ", " train "]
    measured = next(line for line in out.splitlines() if "0.9000" in line)
    unmeasured = next(line for line in out.splitlines() if "0.3020" in line)
    assert [cell.strip() for cell in measured.split("│")[1:4]] == ["1", "0.9000", "0.988"]
    assert [cell.strip() for cell in unmeasured.split("│")[1:4]] == ["2", "0.3020", "-"]


def test_show_of_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    SqliteExperimentDB(path).close()
    code, out, _ = run("show", path)
    assert code == 0
    assert out.strip() == f"{path}: no evaluations to show"


def test_stats_counts_by_status_dataset_and_estimator(database: Path, tmp_path: Path) -> None:
    code, out, _ = run("stats", database)
    assert code == 0
    assert f"{database}: 14 records, 35.0 s of evaluation stored" in out
    for title in ("by status", "by dataset", "by estimator"):
        assert title in out
    assert "│ timeout │       1 │" in out
    assert "│ digits  │      13 │" in out
    steps = tmp_path / "steps.csv"
    pd.DataFrame({"step": range(8), "cache_hit": [False, True, True, False] * 2}).to_csv(
        steps, index=False
    )
    code, out, _ = run("stats", database, "--steps", steps)
    assert code == 0
    assert f"cache: 4 hits in 8 evaluations of {steps} (hit rate 50.0%, 4 trainings)" in out
    jsonl = tmp_path / "steps.jsonl"
    jsonl.write_text('{"cache_hit": true}\n{"cache_hit": true}\n{"cache_hit": false}\n')
    code, out, _ = run("stats", database, "--steps", jsonl)
    assert code == 0 and "2 hits in 3 evaluations" in out and "66.7%" in out


def test_stats_finds_the_step_log_of_a_run_folder(database: Path, tmp_path: Path) -> None:
    # A search's output folder: the database beside steps.csv (booleans written as 0/1).
    run_folder = database.parent
    steps = run_folder / "steps.csv"
    steps.write_text("step,cache_hit,status\n0,0,ok\n1,1,ok\n2,1,ok\n3,1,invalid\n")
    code, out, _ = run("stats", database)
    assert code == 0
    assert f"cache: 3 hits in 4 evaluations of {steps} (hit rate 75.0%, 1 trainings)" in out
    code, out, _ = run("stats", database, "--steps", run_folder)
    assert code == 0 and f"of {steps} (hit rate 75.0%" in out


def test_stats_step_log_errors(database: Path, tmp_path: Path) -> None:
    code, _, err = run("stats", database, "--steps", tmp_path / "none.csv")
    assert code == 1
    assert err == f"error: {tmp_path / 'none.csv'}: no such step log\n"
    steps = tmp_path / "steps.csv"
    steps.write_text("step,reward\n1,0.5\n")
    code, _, err = run("stats", database, "--steps", steps)
    assert code == 1
    assert (
        err == f"error: {steps}: the step log has no 'cache_hit' column (columns: step, reward)\n"
    )
    steps.write_text("cache_hit\nTrue\nmaybe\n")
    code, _, err = run("stats", database, "--steps", steps)
    assert err == f"error: {steps}: 'cache_hit' must be true or false, found 'maybe'\n"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trips_through_pandas(database: Path, tmp_path: Path, suffix: str) -> None:
    output = tmp_path / "out" / f"table{suffix}"
    code, out, _ = run("export", database, output)
    assert code == 0
    assert out.strip() == f"exported 14 records to {output} ({suffix[1:]})"
    if suffix == ".parquet":
        frame = pd.read_parquet(output)
        assert {c: str(t) for c, t in frame.dtypes.items()} == FRAME_DTYPES
    else:
        frame = pd.read_csv(output)
    assert len(frame) == 14
    assert frame["params"].tolist()[:3] == [1000, 1001, 1002]


def test_export_with_an_explicit_format(database: Path, tmp_path: Path) -> None:
    output = tmp_path / "table.data"
    code, _, _ = run("export", database, output, "--format", "parquet")
    assert code == 0
    assert len(pd.read_parquet(output)) == 14


def test_export_errors(database: Path, tmp_path: Path) -> None:
    code, _, err = run("export", database, tmp_path / "table.xlsx")
    assert code == 1
    assert err == (
        f"error: {tmp_path / 'table.xlsx'}: cannot tell the export format from '.xlsx'; "
        "use .csv or .parquet, or pass --format\n"
    )
    code, _, err = run("export", database, database)
    assert code == 1
    assert err == f"error: {database}: refusing to export a database onto itself\n"


def test_merge_deduplicates_by_cache_key(database: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with SqliteExperimentDB(other) as db:
        db.put_many([make_record(0, accuracy=0.01), make_record(100), make_record(101)])
    target = tmp_path / "merged" / "all.db"
    code, out, _ = run("merge", database, other, "--into", target)
    assert code == 0, out
    assert f"{database}: 14 records added, 0 already in {target}" in out
    assert f"{other}: 2 records added, 1 already in {target}" in out
    assert f"{target}: 16 records" in out
    with SqliteExperimentDB(target) as merged:
        records = list(merged)
        assert merged.get(make_record(0).key) == make_record(0)  # the first listed won
    assert len({r.key for r in records}) == 16
    code, out, _ = run("merge", other, "--into", target)  # merging again adds nothing
    assert code == 0 and f"{other}: 0 records added, 3 already in" in out


def test_merge_into_a_csv_file(database: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.csv"
    code, _, _ = run("merge", database, "--into", target)
    assert code == 0
    with CsvExperimentDB(target) as copy, CsvExperimentDB(database) as source:
        assert list(copy) == list(source)


def test_merge_errors(database: Path, tmp_path: Path) -> None:
    code, _, err = run("merge", database, "--into", database)
    assert code == 1
    assert err == f"error: {database}: a database cannot be merged into itself\n"
    missing = tmp_path / "missing.csv"
    target = tmp_path / "new.csv"
    code, _, err = run("merge", database, missing, "--into", target)
    assert code == 1
    assert err == f"error: {missing}: no such database file\n"
    assert not target.exists()  # nothing is created when a source is bad


@pytest.mark.parametrize("command", ["show", "stats"])
def test_errors_of_paths(command: str, tmp_path: Path) -> None:
    code, _, err = run(command, tmp_path / "x.txt")
    assert code == 1
    assert err == (
        f"error: {tmp_path / 'x.txt'}: unknown database type '.txt' "
        "(known: .csv, .sqlite, .sqlite3, .db)\n"
    )
    code, _, err = run(command, tmp_path / "x.csv")
    assert err == f"error: {tmp_path / 'x.csv'}: no such database file\n"
    future = tmp_path / "future.csv"
    future.write_text("# nasframe experiments schema_version=9\n")
    code, _, err = run(command, future)
    assert code == 1
    assert err.startswith(f"error: {future}: written with record schema version 9, but nasframe")
    assert err.count("\n") == 1  # one line, no traceback


def test_show_of_an_unknown_dataset(database: Path) -> None:
    code, _, err = run("show", database, "--dataset", "digit")
    assert code == 1
    assert err == (
        f"error: {database}: no records of dataset 'digit'; did you mean 'digits'? "
        "(datasets: cifar10, digits)\n"
    )


def test_db_is_listed_in_the_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "db" in result.stdout
    result = CliRunner().invoke(main, ["db", "--help"])
    for command in ("show", "stats", "export", "merge"):
        assert command in result.stdout


def test_skipped_lines_are_reported_as_one_line_warnings(database: Path) -> None:
    text = database.read_text().splitlines()
    text[3] = "garbage"
    database.write_text("\n".join(text) + "\n")
    code, out, err = run("stats", database)
    assert code == 0
    assert f"{database}: 13 records" in out
    assert err == (f"warning: {database}: line 4 is corrupt and ignored (1 fields, expected 20)\n")


def test_show_selects_a_dataset_by_its_short_name(tmp_path: Path) -> None:
    # Records store the handler's identity, which the table shows; `--dataset digits`
    # (the name a user types) selects every identity of that name, and the identity
    # itself is printed whole, not eaten as rich markup.
    identity = "digits[resize=16,validation=0.2,test=0.2,seed=0]"
    path = tmp_path / "experiments.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(1, dataset=identity), make_record(2, dataset="cifar10")])
    for name in ("digits", identity):
        code, out, _ = run("show", path, "--dataset", name)
        assert code == 0, out
        assert "top 1 of 1" in out and "digits[resize=16" in out
    code, _, err = run("show", path, "--dataset", "digit")
    assert code == 1 and "did you mean 'digits'?" in err and err.count("\n") == 1


def test_show_names_the_head_only_network(tmp_path: Path) -> None:
    path = tmp_path / "experiments.csv"
    with CsvExperimentDB(path) as db:
        db.put_many([make_record(0, accuracy=0.9), make_record(1, accuracy=0.5)])
    # an old row: the empty network stored with its terminal row
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"1,1,3,0,0;2,5,0,1,0;3,4,0,2,0"', '"1,7,0,0,0"'), "utf-8")
    code, out, _ = run("show", path)
    assert code == 0, out
    assert "head only" in out and "7,0,0,0" not in out
    assert out.index("head only") < out.index("1,1,3,0,0;2,5,0,1,0;4,4,0,2,0")
