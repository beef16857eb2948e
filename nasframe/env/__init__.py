"""The search environment: NASGym's MDP on Gymnasium, and the wrappers around it.

* :mod:`nasframe.env.environment` -- :class:`NASEnv` (one step: validate and apply an
  action, evaluate through the :class:`~nasframe.evaluation.Evaluator`, reward) and
  :func:`make_env`, which composes it from plugin components;
* :mod:`nasframe.env.wrappers` -- Gymnasium wrappers for meta-reinforcement learning
  (:class:`MetaRLObservation`, :class:`TaskSchedule`, :class:`TrialWrapper`).

The vector env that steps many environments over one (Ray) evaluator is
:class:`nasframe.distributed.NASVectorEnv`. Every name of both modules is importable from
``nasframe.env``; ``nasframe.make_env``, ``nasframe.NASEnv`` and ``nasframe.Episode`` load
this package on first use.
"""

from __future__ import annotations

from nasframe.env.environment import (
    EVALUATE,
    NOT_EVALUATED,
    REWARDS,
    Episode,
    NASEnv,
    StepPlan,
    make_env,
)
from nasframe.env.wrappers import (
    MetaRLObservation,
    Phase,
    TaskSchedule,
    TrialWrapper,
    parse_schedule,
)

__all__ = [
    "EVALUATE",
    "NOT_EVALUATED",
    "REWARDS",
    "Episode",
    "MetaRLObservation",
    "NASEnv",
    "Phase",
    "StepPlan",
    "TaskSchedule",
    "TrialWrapper",
    "make_env",
    "parse_schedule",
]
