"""``nasframe finalize RUN``: retrain a run's best networks fully and test them once.

The module became a package; its code is :mod:`nasframe.finalize.plan` for now, and
every name it had is importable from ``nasframe.finalize``.
"""

from __future__ import annotations

from nasframe.finalize.plan import CARD as CARD
from nasframe.finalize.plan import MODELS as MODELS
from nasframe.finalize.plan import PLOT as PLOT
from nasframe.finalize.plan import ROWS as ROWS
from nasframe.finalize.plan import SEARCH_ONLY_ESTIMATORS as SEARCH_ONLY_ESTIMATORS
from nasframe.finalize.plan import TABLE as TABLE
from nasframe.finalize.plan import (
    FinalPlan,
    FinalResult,
    check_trainer,
    final_settings,
    finalize,
    load_run_config,
    plan_finalize,
    top_networks,
)
from nasframe.finalize.plan import model_path as model_path
from nasframe.finalize.plan import parse_seeds as parse_seeds
from nasframe.finalize.plan import read_run_file as read_run_file
from nasframe.finalize.plan import run_database_path as run_database_path
from nasframe.finalize.plan import train_one as train_one

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
