"""``nasframe finalize RUN``: retrain a run's best networks fully and test them once.

A search ranks networks by a short training's validation accuracy. Finalizing takes the
``[finalize] top_k`` best networks of a finished (or interrupted) run from its experiment
database, retrains each once per seed with the final-training configuration (the
``[finalize]`` section: more epochs, another builder, augmentation, any estimator
setting), and measures every trained network on the dataset's **test** split -- the only
place in nasframe that reads it (:meth:`nasframe.PerformanceEstimator.measure` with
``test=True``; a search never asks for it).

The results folder (``[finalize] output``, default ``<run>/final``) holds:

* ``rows.csv`` -- one line per trained (network, seed), in the NSC-Bench row format
  (:class:`nasframe.bench.TableRow`: validation curve, test accuracy, params, FLOPs,
  seconds), appended, flushed and fsync'ed: a ``kill -9`` loses at most the trainings
  in flight, and the same command trains only what is missing;
* ``models/<arch_hash>-seed<S>.keras`` -- each trained network (for ``keras-v1``; load
  it with ``keras.models.load_model`` after importing the Keras plugin's builder module,
  which registers its custom layers -- see ``docs/estimator.md``);
* ``final.json`` -- per network the validation and test accuracy as mean and standard
  deviation over the seeds, params, FLOPs, the model files, and the configuration;
* ``final.csv`` -- the same as a flat table; ``final.png`` -- a bar plot (extra: plot).

``--workers N`` trains on N Ray actors (``[ray]`` num_cpus, num_gpus, max_retries), the
back end of ``nasframe search --workers``.

The modules of this package:

* :mod:`~nasframe.finalize.plan` -- :func:`plan_finalize`: the run's configuration, its
  best networks and the final-training components, as a :class:`FinalPlan`;
* :mod:`~nasframe.finalize.train` -- :func:`finalize`: every (network, seed) trained and
  tested, resumably, here or on Ray actors;
* :mod:`~nasframe.finalize.report` -- ``final.json``, ``final.csv``, ``final.png`` and the
  printed table.

Every public name of the modules is importable from ``nasframe.finalize``.
"""

from __future__ import annotations

# importable from here as from the one module before, outside ``__all__`` as they were
from nasframe.finalize.plan import CARD as CARD
from nasframe.finalize.plan import MODELS as MODELS
from nasframe.finalize.plan import PLOT as PLOT
from nasframe.finalize.plan import ROWS as ROWS
from nasframe.finalize.plan import SEARCH_ONLY_ESTIMATORS as SEARCH_ONLY_ESTIMATORS
from nasframe.finalize.plan import TABLE as TABLE
from nasframe.finalize.plan import (
    FinalPlan,
    check_trainer,
    final_settings,
    load_run_config,
    plan_finalize,
    top_networks,
)
from nasframe.finalize.plan import model_path as model_path
from nasframe.finalize.plan import parse_seeds as parse_seeds
from nasframe.finalize.plan import read_run_file as read_run_file
from nasframe.finalize.plan import run_database_path as run_database_path
from nasframe.finalize.train import FinalResult, finalize
from nasframe.finalize.train import train_one as train_one

__all__ = [
    "FinalPlan",
    "FinalResult",
    "check_trainer",
    "final_settings",
    "finalize",
    "load_run_config",
    "plan_finalize",
    "top_networks",
]
