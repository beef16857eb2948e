"""What a search leaves behind: the step log, summary.json, tables, plots, TensorBoard.

A search writes one row per environment step to ``steps.csv`` in its output folder
(:class:`StepLog`, appended and flushed as it goes, so an interrupted run keeps every
step it took). Everything else is derived from that log:

* ``summary.json`` -- the run's counts, best accuracy and best architectures
  (:func:`summarize`);
* a table of the best architectures (NSC, accuracy, parameters) for the terminal
  (:func:`best_table`);
* ``rewards.png`` -- reward per step and the best accuracy so far (:func:`plot_rewards`);
* ``best_architecture.png`` -- the graph of the best network (:func:`plot_architecture`);
* TensorBoard scalars, optionally (:func:`write_tensorboard`).

The modules: :mod:`~nasframe.results.steplog` (the step log),
:mod:`~nasframe.results.summary` (summary and table) and :mod:`~nasframe.results.plots`
(plots and TensorBoard); every name is importable from ``nasframe.results`` too.

Plots need matplotlib (``pip install 'nasframe[plot]'``); without it they are skipped
with a message, never a failure of the search.
"""

from __future__ import annotations

from nasframe.results.plots import (
    plot_architecture,
    plot_rewards,
    tensorboard_without_tensorflow,
    write_tensorboard,
)
from nasframe.results.steplog import StepLog, StepRow
from nasframe.results.summary import (
    best_architectures,
    best_phrase,
    best_scores,
    best_table,
    summarize,
    write_summary,
)

__all__ = [
    "StepLog",
    "StepRow",
    "best_architectures",
    "best_phrase",
    "best_scores",
    "best_table",
    "plot_architecture",
    "plot_rewards",
    "summarize",
    "tensorboard_without_tensorflow",
    "write_summary",
    "write_tensorboard",
]
