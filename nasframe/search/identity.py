"""What makes two runs the same run: the configuration less its budget and display keys.

A run's identity is stored in ``run.json``; resuming in an output folder requires the
same identity, and ``summary.json`` names the run by the identity's digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from nasframe.config import Config

__all__ = ["digest", "identity_of"]

#: Keys that may change between a run and its resumption (budget, where, how loud).
_NOT_IDENTITY = {
    ("run", "steps"),
    ("run", "episodes"),
    ("run", "output"),
    ("run", "workers"),
    ("run", "ray_address"),
    ("run", "resume"),
    ("run", "verbosity"),
    ("run", "checkpoint_every"),
    ("run", "plots"),
    ("run", "tensorboard"),
    ("run", "top"),
    ("database", "path"),
}


#: Sections that never change what a search does (``nasframe finalize`` reads them).
_NOT_IDENTITY_SECTIONS = {"finalize"}

#: Keys that count only when set: a run written before they existed keeps its identity.
_ONLY_WHEN_SET = {("run", "play")}


def identity_of(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration values that make two runs the same run (budget keys excluded)."""
    identity: dict[str, dict[str, Any]] = {}
    for section, values in config.values.items():
        if section in _NOT_IDENTITY_SECTIONS:
            continue
        for key, value in values.items():
            if (section, key) in _NOT_IDENTITY:
                continue
            if (section, key) in _ONLY_WHEN_SET and not value:
                continue
            identity.setdefault(section, {})[key] = None if value is None else str(value)
    return identity


def digest(identity: dict[str, dict[str, Any]]) -> str:
    """A short hash of an identity (``run.json``'s ``digest``, ``summary.json``'s ``identity``)."""
    blob = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
