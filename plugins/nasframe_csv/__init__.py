"""The default experiment database: an append-only CSV file shared safely by processes.

Registers ``csv-v1`` (:class:`CsvExperimentDB`), built from the core's ``[database]``
configuration section (``path``, ``lock_timeout``, ``fsync``). See ``docs/database.md``.
"""

from __future__ import annotations

import nasframe
from nasframe_csv.db import CSV_MAGIC, CorruptLineWarning, CsvExperimentDB

__all__ = ["CSV_MAGIC", "CorruptLineWarning", "CsvExperimentDB"]


@nasframe.hookimpl(trylast=True)
def nasframe_register_experiment_dbs(registry: nasframe.Registry[nasframe.ExperimentDB]) -> None:
    """Register ``csv-v1``, the default experiment database."""
    registry.add(
        "csv-v1",
        CsvExperimentDB,
        summary="append-only CSV file, fsynced, locked for several processes (default)",
        section="database",
        suffixes=(".csv",),
    )
