"""Running a search: :func:`run_search`, the :class:`Run` record, :func:`identity_of`.

The code lives in :mod:`nasframe.search.loop`; this package re-exports its public names.
"""

from __future__ import annotations

from nasframe.search.loop import Run, identity_of, run_search

__all__ = ["Run", "identity_of", "run_search"]
