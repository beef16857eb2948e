"""Conversion of :class:`~nasframe.contracts.Record` lists to typed pandas frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from nasframe.contracts import Record

__all__ = ["FRAME_DTYPES", "records_to_frame"]

#: The column dtypes of :func:`records_to_frame`.
FRAME_DTYPES = {
    "dataset": "string",
    "task": "string",
    "arch_hash": "string",
    "nsc": "string",
    "estimator": "string",
    "estimator_version": "string",
    "fingerprint": "string",
    "seed": "Int64",
    "timestamp": "string",
    "nasframe_version": "string",
    "status": "category",
    "accuracy": "float64",
    "params": "int64",
    "flops": "int64",
    "density": "float64",
    "seconds": "float64",
    "epochs": "int64",
    "message": "string",
    "train_accuracy": "float64",  # NaN: not measured
    "measure": "string",  # "": a validation accuracy
}


def records_to_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per record, evaluation fields inlined, with :data:`FRAME_DTYPES`."""
    import pandas as pd

    # The columns are the keys of FRAME_DTYPES (the flat fields of a Record, in order), so
    # this module needs nothing of nasframe.contracts at run time: no import cycle.
    frame = pd.DataFrame([record.to_flat() for record in records], columns=list(FRAME_DTYPES))
    return frame.astype(FRAME_DTYPES)
