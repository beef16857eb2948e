"""Kept for scripts written against earlier releases: the meta-RL wrappers moved.

The wrappers are :mod:`nasframe.env.wrappers` now (also importable from
``nasframe.env``); ``from nasframe.wrappers import MetaRLObservation`` still works and
gives the same classes.
"""

from __future__ import annotations

from nasframe.env.wrappers import (
    MetaRLObservation,
    Phase,
    TaskSchedule,
    TrialWrapper,
    parse_schedule,
)

__all__ = ["MetaRLObservation", "Phase", "TaskSchedule", "TrialWrapper", "parse_schedule"]
