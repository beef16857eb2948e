"""Several processes share one database; a killed writer loses nothing complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB
from test_db_backends import make_record

from nasframe import ExperimentDB

# A writer process: opens the database named on the command line and stores `count`
# records whose keys start at `start` (a negative count writes until killed). It waits
# for the file `go` so that every writer starts at the same moment.
WRITER = r"""
import os, sys, time
from nasframe import Evaluation, Record
backend, path, start, count, go = sys.argv[1:6]
if backend == "csv":
    from nasframe_csv import CsvExperimentDB as Database
else:
    from nasframe_sqlite import SqliteExperimentDB as Database
db = Database(path)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
start, count = int(start), int(count)
i = start
while count < 0 or i < start + count:
    db.put(Record(
        dataset="digits", task="digits", arch_hash=f"hash{i:07d}", nsc="1,1,3,0,0",
        estimator="proxy", estimator_version="1", fingerprint="fp",
        evaluation=Evaluation(accuracy=i / 1e6, params=i, message=f"writer {os.getpid()}"),
        seed=i,
    ))
    i += 1
db.close()
"""

BACKENDS = {"csv": (CsvExperimentDB, "csv"), "sqlite": (SqliteExperimentDB, "sqlite")}


def start_writers(
    backend: str, path: Path, ranges: list[tuple[int, int]], go: Path
) -> list[subprocess.Popen[str]]:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, backend, str(path), str(s), str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s, n in ranges
    ]
    for writer in writers:  # every writer has opened the database before any writes
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready", writer.communicate()[1]
    go.touch()
    return writers


def finish(writers: list[subprocess.Popen[str]]) -> None:
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err


def open_db(backend: str, path: Path) -> ExperimentDB:
    database: ExperimentDB = BACKENDS[backend][0](path)
    return database


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_four_processes_write_2000_distinct_complete_rows(backend: str, tmp_path: Path) -> None:
    path = tmp_path / f"shared.{BACKENDS[backend][1]}"
    open_db(backend, path).close()
    writers = start_writers(backend, path, [(w * 500, 500) for w in range(4)], tmp_path / "go")
    finish(writers)
    with open_db(backend, path) as db:
        records = list(db)
    assert len(records) == 2000
    assert sorted(r.arch_hash for r in records) == [f"hash{i:07d}" for i in range(2000)]
    assert all(r.evaluation.params == int(r.arch_hash[4:]) for r in records)
    assert len({r.evaluation.message for r in records}) == 4  # all four wrote
    if backend == "csv":
        text = path.read_text().splitlines()
        assert len(text) == 2 + 2000 and path.read_bytes().endswith(b"\n")


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_processes_racing_for_the_same_keys_store_each_once(backend: str, tmp_path: Path) -> None:
    path = tmp_path / f"shared.{BACKENDS[backend][1]}"
    writers = start_writers(backend, path, [(0, 200)] * 3, tmp_path / "go")
    finish(writers)
    with open_db(backend, path) as db:
        records = list(db)
    assert sorted(r.arch_hash for r in records) == [f"hash{i:07d}" for i in range(200)]
    if backend == "csv":
        assert len(path.read_text().splitlines()) == 2 + 200


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_writer_killed_mid_run_leaves_a_usable_file(backend: str, tmp_path: Path) -> None:
    path = tmp_path / f"killed.{BACKENDS[backend][1]}"
    open_db(backend, path).close()
    (writer,) = start_writers(backend, path, [(0, -1)], tmp_path / "go")
    deadline = time.monotonic() + 120
    with open_db(backend, path) as watcher:
        while len(watcher) < 100:
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)  # no clean-up of any kind runs
    writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    # It opens (the lock died with the process), keeps every complete row ...
    db = open_db(backend, path)
    stored = [r.arch_hash for r in db]
    assert len(stored) >= 100
    assert stored == [f"hash{i:07d}" for i in range(len(stored))]
    if backend == "csv":
        complete = path.read_bytes().count(b"\n") - 2
        assert len(stored) == complete
    # ... and appends again.
    db.put(make_record(1, dataset="after-crash"))
    db.close()
    with open_db(backend, path) as again:
        assert len(again) == len(stored) + 1
        assert again.get(make_record(1, dataset="after-crash").key) is not None
