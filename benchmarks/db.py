"""Experiment database: cost of one put + get, ours against NASGym's rewrite-on-save.

Run: ``python benchmarks/db.py`` (under a minute; ``--sizes 1000,10000`` for less;
``--smoke``: 50 records, a few operations, seconds; the test suite runs it).

For each database size N (records already stored) it measures the median wall time of
one ``put`` of a new record plus one ``get`` of a stored one, for the contenders below,
in alternating rounds so that load from other jobs hits all of them alike:

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
from dataclasses import dataclass, field
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


@dataclass
class Contender:
    """One database under test: how to put and get, and the per-operation samples."""

    name: str
    put: Callable[[Record], None]
    get: Callable[[int], object]
    opened: float  # seconds to open it with n records stored
    next_id: int
    samples: list[float] = field(default_factory=list)
    close: Callable[[], None] = lambda: None

    def run(self, ops: int, n: int, rng: random.Random) -> None:
        """Time ``ops`` pairs of a put of a new record and a get of a stored one."""
        for _ in range(ops):
            new = record(self.next_id)
            self.next_id += 1
            t0 = time.perf_counter()
            self.put(new)
            found = self.get(rng.randrange(n))
            self.samples.append(time.perf_counter() - t0)
            assert found is not None

    @property
    def per_op(self) -> float:
        """Median seconds of one put + get."""
        return statistics.median(self.samples)


def ours(
    name: str, factory: Callable[..., ExperimentDB], path: Path, n: int, **options: object
) -> Contender:
    """One of our backends holding ``n`` records, opened as a run would open it."""
    with factory(path, fsync=False) as db:  # type: ignore[attr-defined]
        db.put_many(record(i) for i in range(n))
    t0 = time.perf_counter()
    db = factory(path, **options)
    opened = time.perf_counter() - t0
    keys = [record(i).key for i in range(n)]
    return Contender(name, db.put, lambda i: db.get(keys[i]), opened, n, close=db.close)


def nasgym(path: Path, n: int) -> Contender:
    """NASGym's approach holding ``n`` records."""
    pd.DataFrame([nasgym_row(record(i)) for i in range(n)]).to_csv(path, index=False)
    t0 = time.perf_counter()
    db = NasgymDB(path)
    opened = time.perf_counter() - t0
    keys = [str(nasgym_row(record(i))["dataset-nethash"]) for i in range(n)]
    return Contender("NASGym", db.put, lambda i: db.get(keys[i]), opened, n)


def bench_size(root: Path, n: int, ops: int, nasgym_ops: int, rounds: int) -> list[Contender]:
    """Every contender at ``n`` records, in alternating rounds so load hits all alike."""
    contenders = [
        ours("csv", CsvExperimentDB, root / f"a{n}.csv", n),
        ours("csv no-fsync", CsvExperimentDB, root / f"b{n}.csv", n, fsync=False),
        ours("sqlite", SqliteExperimentDB, root / f"c{n}.sqlite", n),
        nasgym(root / f"d{n}.csv", n),
    ]
    rng = random.Random(0)
    for _ in range(rounds):
        for contender in contenders:
            share = nasgym_ops if contender.name == "NASGym" else ops
            contender.run(max(1, share // rounds), n, rng)
    for contender in contenders:
        contender.close()
    return contenders


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
    parser.add_argument("--nasgym-ops", type=int, default=10, help="put+get pairs for NASGym")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per size")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.ops, args.nasgym_ops, args.rounds = "50", 4, 2, 2
    sizes = [int(s) for s in args.sizes.split(",")]
    header = (
        f"{'records':>8} | {'csv fsync':>10} {'csv no-fsync':>12} {'sqlite':>10} {'NASGym':>10}"
        f" | {'NASGym/csv':>10} {'/csv no-fs':>10} {'/sqlite':>8} | open ms: csv sqlite NASGym"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        root = Path(folder)
        floor = fsync_floor(root, appends=5 if args.smoke else 50)
        print(f"this disk: one append + fsync takes {floor * 1e3:.3f} ms (csv-v1's floor)")
        print("median milliseconds per put + get (lower is better); ratios: NASGym / ours")
        print(header)
        print("-" * len(header))
        ratios = ""
        for n in sizes:
            csv, nofsync, sql, gym = bench_size(root, n, args.ops, args.nasgym_ops, args.rounds)
            g = gym.per_op
            ratios = (
                f"ratio NASGym/ours at {n} records: csv {g / csv.per_op:.0f}x, csv no-fsync "
                f"{g / nofsync.per_op:.0f}x, sqlite {g / sql.per_op:.0f}x"
            )
            print(
                f"{n:>8} | {csv.per_op * 1e3:>10.3f} {nofsync.per_op * 1e3:>12.3f}"
                f" {sql.per_op * 1e3:>10.3f} {g * 1e3:>10.2f} | {g / csv.per_op:>9.0f}x"
                f" {g / nofsync.per_op:>9.0f}x {g / sql.per_op:>7.0f}x |"
                f" {csv.opened * 1e3:.0f} {sql.opened * 1e3:.0f} {gym.opened * 1e3:.0f}",
                flush=True,
            )
        print(ratios)


if __name__ == "__main__":
    main()
