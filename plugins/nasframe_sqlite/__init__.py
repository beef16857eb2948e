"""The SQLite experiment database: ``sqlite-v1`` (:class:`SqliteExperimentDB`).

Built from the core's ``[database]`` section (``path``, ``lock_timeout``, ``fsync``).
See ``docs/database.md``.
"""

from __future__ import annotations

import nasframe
from nasframe_sqlite.db import APPLICATION_ID, SqliteExperimentDB

__all__ = ["APPLICATION_ID", "SqliteExperimentDB"]


@nasframe.hookimpl(trylast=True)
def nasframe_register_experiment_dbs(registry: nasframe.Registry[nasframe.ExperimentDB]) -> None:
    """Register ``sqlite-v1``."""
    registry.add(
        "sqlite-v1",
        SqliteExperimentDB,
        summary="SQLite file in WAL mode, keyed by the cache key, safe for several processes",
        section="database",
        suffixes=(".sqlite", ".sqlite3", ".db"),
    )
