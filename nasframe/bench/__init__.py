"""NSC-Bench: exhaustive tables of an NSC search space, built once and queried cheaply.

``nasframe bench build`` trains every network of a search space up to a depth and stores
each one's learning curve, test accuracy, size and cost (:mod:`nasframe.bench.build`);
:mod:`nasframe.bench.table` reads such a table. See ``docs/nsc-bench.md``.
"""

from __future__ import annotations

from nasframe.bench.networks import enumerate_networks
from nasframe.bench.table import BenchTable, TableRow, read_rows

__all__ = ["BenchTable", "TableRow", "enumerate_networks", "read_rows"]
