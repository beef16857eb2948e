"""The SQLite experiment database: ``sqlite-v1`` (:class:`SqliteExperimentDB`).

Reads the ``[database]`` section (``path``, ``lock_timeout``, ``fsync``) that it
declares together with the CSV plugin. See ``docs/database.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nasframe
from nasframe_sqlite.db import APPLICATION_ID, SqliteExperimentDB

__all__ = ["APPLICATION_ID", "SqliteExperimentDB"]


@nasframe.hookimpl(trylast=True)
def nasframe_register_experiment_dbs(registry: nasframe.Registry) -> None:
    """Register ``sqlite-v1``."""
    registry.add(
        "sqlite-v1",
        SqliteExperimentDB,
        summary="SQLite file in WAL mode, keyed by the cache key, safe for several processes",
        section="database",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[database]`` keys (unless the CSV plugin already did)."""
    section = schema.section(
        "database", "The experiment database: where evaluations are stored and cached."
    )
    # The same declarations as the CSV plugin's; plugins never import one another.
    keys: list[tuple[str, type, Any, str, dict[str, Any]]] = [
        (
            "path",
            Path,
            None,
            "database file, .csv or .sqlite (empty: in the search's output folder; "
            "relative: to the current directory)",
            {"optional": True},
        ),
        (
            "lock_timeout",
            float,
            60.0,
            "seconds to wait for another process holding the database before giving up",
            {"min": 0},
        ),
        (
            "fsync",
            bool,
            True,
            "fsync each record (off: a power cut may lose the last ones, a crash never does)",
            {},
        ),
    ]
    for name, kind, default, description, options in keys:
        if name not in section.keys:
            section.add(name, kind, default, description, **options)
