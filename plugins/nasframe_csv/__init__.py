"""The default experiment database: an append-only CSV file shared safely by processes.

Registers ``csv-v1`` (:class:`CsvExperimentDB`) and declares the ``[database]``
configuration section (``path``, ``lock_timeout``, ``fsync``), which every database
backend reads. See ``docs/database.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nasframe
from nasframe_csv.db import CSV_MAGIC, CorruptLineWarning, CsvExperimentDB

__all__ = ["CSV_MAGIC", "CorruptLineWarning", "CsvExperimentDB", "declare_database_section"]


def declare_database_section(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[database]`` keys on ``schema`` unless another backend already did.

    The SQLite plugin declares the same keys the same way: whichever runs first declares
    them, so either plugin works when the other is disabled.
    """
    section = schema.section(
        "database", "The experiment database: where evaluations are stored and cached."
    )
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


@nasframe.hookimpl(trylast=True)
def nasframe_register_experiment_dbs(registry: nasframe.Registry) -> None:
    """Register ``csv-v1``, the default experiment database."""
    registry.add(
        "csv-v1",
        CsvExperimentDB,
        summary="append-only CSV file, fsynced, locked for several processes (default)",
        section="database",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[database]`` section."""
    declare_database_section(schema)
