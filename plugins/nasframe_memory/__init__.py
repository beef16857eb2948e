"""Default plugin ``memory``: ``memory-v1``, an in-process experiment database.

A dict keyed by :class:`~nasframe.CacheKey` that keeps insertion order. It is the cache
:func:`nasframe.make_env` uses when neither a database nor a configuration is given:
smoke runs, tests and benchmarks get the full cache policy without touching a disk.
Nothing survives the process; use ``csv`` or ``sqlite`` for a search worth keeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import nasframe

__all__ = ["MemoryDB"]


class MemoryDB(nasframe.ExperimentDB):
    """Records in a dict, in the order stored; ``put`` never replaces a stored record.

    Args:
        records: records to start with (e.g. copied from another database).
        path: accepted and ignored, so a run can hand its database path to any backend.
    """

    name = "memory-v1"

    def __init__(
        self, records: Iterable[nasframe.Record] = (), *, path: str | Path | None = None
    ) -> None:
        self._records: dict[nasframe.CacheKey, nasframe.Record] = {}
        for record in records:
            self.put(record)

    def get(self, key: nasframe.CacheKey) -> nasframe.Record | None:
        """The stored record for ``key``, or ``None``."""
        return self._records.get(key)

    def put(self, record: nasframe.Record) -> None:
        """Store ``record`` unless its key is stored already (first wins).

        A stored transient failure (``out_of_memory``, ``timeout``, ``error``) is replaced,
        as in the file backends, so ``retry_transient`` caches the retried result.
        """
        stored = self._records.get(record.key)
        if stored is None or stored.evaluation.status.transient:
            self._records[record.key] = record

    def __iter__(self) -> Iterator[nasframe.Record]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)


@nasframe.hookimpl(trylast=True)
def nasframe_register_experiment_dbs(registry: nasframe.Registry[nasframe.ExperimentDB]) -> None:
    """Register ``memory-v1``."""
    registry.add("memory-v1", MemoryDB, summary="in-process dict; nothing is written to disk")
