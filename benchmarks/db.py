"""Experiment database: cost of one put + get, ours against NASGym's rewrite-on-save.

Run: ``python benchmarks/db.py`` (about two minutes; ``--sizes 1000,10000`` for less).

For each database size N (records already stored) it measures the mean wall time of one
``put`` of a new record plus one ``get`` of a stored one, for:

* ``csv-v1`` (nasframe's default), with ``fsync`` on (the default: durable against power
  cuts) and off (durable against crashed processes only, like NASGym's file at best);
* ``sqlite-v1``, ``synchronous=FULL`` (its ``fsync`` default);
* NASGym's approach: the table lives in a pandas DataFrame; a put appends a row and
  saves by rewriting the whole CSV file (``DataFrame.to_csv``), a get selects the row
  by its key column. Its columns are NASGym's nine, fewer than ours, which only favours
  it. Almost all of its cost is the rewrite.

It prints one table with the ratios ``NASGym / ours`` (higher is better for nasframe).
It also reports the one-off cost of opening a database of N records.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from nasframe_csv import CsvExperimentDB
from nasframe_sqlite import SqliteExperimentDB

from nasframe import Evaluation, ExperimentDB, Record


def record(i: int) -> Record:
    """A realistic record: a 5-layer NSC, a 20-hex-digit hash, a real fingerprint."""
    return Record(
        dataset="cifar10",
        task="cifar10",
        arch_hash=f"{i:020x}",  # nasframe's canonical hash: 20 hex digits
        nsc="1,1,3,0,0;2,1,5,1,0;3,2,2,1,0;4,5,0,2,3;5,6,0,4,1",
        estimator="keras",
        estimator_version="1",
        fingerprint="keras-1-0123456789ab",
        evaluation=Evaluation(
            accuracy=0.5 + (i % 1000) / 2000,
            params=123_456 + i,
            flops=98_765_432 + i,
            density=1.4,
            seconds=37.25,
            epochs=12,
        ),
        seed=0,
        timestamp="2026-01-01T00:00:00Z",
        nasframe_version="0.1.0",
    )


def nasgym_row(r: Record) -> dict[str, object]:
    """The record in NASGym's nine columns (section 6 of SEED-BEHAVIOUR.md)."""
    e = r.evaluation
    return {
        "dataset-nethash": f"{r.dataset}-{int(r.arch_hash, 16):032x}",  # NASGym: an md5
        "netstring": r.nsc,
        "reward": e.accuracy * 100,
        "accuracy": e.accuracy,
        "density": e.density,
        "flops": e.flops,
        "timestamp": "2026-01-01 00:00:00",
        "running_time": int(e.seconds),
        "is_valid": True,
    }


class NasgymDB:
    """NASGym's experiments DB: a DataFrame in memory, the whole CSV rewritten per save.

    ``add`` appends a row (``pd.concat``, the successor of ``DataFrame.append``), ``save``
    rewrites the file; ``exists``/``get_row`` select the row by its key column.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frame = pd.read_csv(path)

    def put(self, r: Record) -> None:
        self.frame = pd.concat([self.frame, pd.DataFrame([nasgym_row(r)])], ignore_index=True)
        self.frame.to_csv(self.path, index=False)

    def get(self, key: str) -> dict[str, object] | None:
        rows = self.frame[self.frame["dataset-nethash"] == key]
        return None if rows.empty else dict(rows.iloc[0])


def time_ops(
    put: Callable[[Record], None], get: Callable[[int], object], start: int, ops: int, n: int
) -> float:
    """Mean seconds of one put of a new record plus one get of a random stored one."""
    rng = random.Random(0)
    samples = []
    for i in range(start, start + ops):
        new = record(i)
        t0 = time.perf_counter()
        put(new)
        found = get(rng.randrange(n))
        samples.append(time.perf_counter() - t0)
        assert found is not None
    return statistics.mean(samples)


def bench_ours(
    factory: Callable[..., ExperimentDB], path: Path, n: int, ops: int, **options: object
) -> tuple[float, float]:
    """(open seconds, seconds per put+get) of one of our backends at ``n`` records."""
    with factory(path, fsync=False) as db:  # type: ignore[attr-defined]
        db.put_many(record(i) for i in range(n))
    t0 = time.perf_counter()
    db = factory(path, **options)
    opened = time.perf_counter() - t0
    keys = [record(i).key for i in range(n)]
    per_op = time_ops(db.put, lambda i: db.get(keys[i]), n, ops, n)
    assert len(db) == n + ops
    db.close()
    return opened, per_op


def bench_nasgym(path: Path, n: int, ops: int) -> tuple[float, float]:
    """(open seconds, seconds per put+get) of NASGym's approach at ``n`` records."""
    pd.DataFrame([nasgym_row(record(i)) for i in range(n)]).to_csv(path, index=False)
    t0 = time.perf_counter()
    db = NasgymDB(path)
    opened = time.perf_counter() - t0
    keys = [str(nasgym_row(record(i))["dataset-nethash"]) for i in range(n)]
    per_op = time_ops(db.put, lambda i: db.get(keys[i]), n, ops, n)
    assert len(pd.read_csv(path)) == n + ops
    return opened, per_op


def fsync_floor(folder: Path, appends: int = 50) -> float:
    """Mean seconds of one 200-byte append plus fsync on this disk: csv-v1's floor."""
    path = folder / "floor.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        t0 = time.perf_counter()
        for _ in range(appends):
            os.write(fd, b"x" * 199 + b"\n")
            os.fsync(fd)
        return (time.perf_counter() - t0) / appends
    finally:
        os.close(fd)
        path.unlink()


def main() -> None:
    """Run every size and print the table of figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="database sizes")
    parser.add_argument("--ops", type=int, default=200, help="put+get pairs per nasframe case")
    parser.add_argument("--nasgym-ops", type=int, default=8, help="put+get pairs for NASGym")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    header = (
        f"{'records':>8} | {'csv fsync':>10} {'csv no-fsync':>12} {'sqlite':>10} {'NASGym':>10}"
        f" | {'NASGym/csv':>10} {'/csv no-fs':>10} {'/sqlite':>8} | open ms: csv sqlite NASGym"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        root = Path(folder)
        floor = fsync_floor(root)
        print(f"this disk: one append + fsync takes {floor * 1e3:.3f} ms (csv-v1's floor)")
        print("mean milliseconds per put + get (lower is better); ratios: NASGym / ours")
        print(header)
        print("-" * len(header))
        for n in sizes:
            csv_open, csv_op = bench_ours(CsvExperimentDB, root / f"a{n}.csv", n, args.ops)
            _, csv_nofsync = bench_ours(
                CsvExperimentDB, root / f"b{n}.csv", n, args.ops, fsync=False
            )
            sql_open, sql_op = bench_ours(SqliteExperimentDB, root / f"c{n}.sqlite", n, args.ops)
            gym_open, gym_op = bench_nasgym(root / f"d{n}.csv", n, args.nasgym_ops)
            print(
                f"{n:>8} | {csv_op * 1e3:>10.3f} {csv_nofsync * 1e3:>12.3f} {sql_op * 1e3:>10.3f}"
                f" {gym_op * 1e3:>10.2f} | {gym_op / csv_op:>9.0f}x {gym_op / csv_nofsync:>9.0f}x"
                f" {gym_op / sql_op:>7.0f}x | {csv_open * 1e3:.0f} {sql_open * 1e3:.0f}"
                f" {gym_open * 1e3:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
