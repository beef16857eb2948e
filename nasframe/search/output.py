"""The output folder: claiming it, resuming in it, and the run files written there.

:func:`prepare_output` checks the folder's ``run.json`` against the configuration's
identity: the same run is resumed, a different one refused unless ``force`` (its files
are then moved aside into ``replaced-<time>/``, nothing is deleted).
:func:`write_state` keeps ``state.json`` current; :func:`attach_log_file` sends the
``nasframe`` loggers to ``search.log``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path
from typing import Any

from nasframe.errors import ConfigError, NasframeError
from nasframe.results import StepLog
from nasframe.runlock import move_aside
from nasframe.search.identity import digest, identity_of
from nasframe.search.run import Run

__all__ = ["attach_log_file", "prepare_output", "utc_now", "write_state"]

#: The files that make up a run in its output folder (moved aside by ``force``).
_RUN_FILES = (
    "run.json",
    "state.json",
    "steps.csv",
    "agent.zip",
    "agent.replay.pkl",
    "agent.json",
    "search.log",
    "summary.json",
    "rewards.png",
    "best_architecture.png",
    "tensorboard",
)


def prepare_output(run: Run, force: bool, resume: bool) -> bool:
    """Check or claim the output folder; return whether an earlier run is resumed."""
    output = run.output
    if output.exists() and not output.is_dir():
        raise ConfigError(f"[run] output: {output} exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    run_file = output / "run.json"
    identity = identity_of(run.config)
    if run_file.is_file():
        try:
            stored = json.loads(run_file.read_text(encoding="utf-8"))
            old_identity = stored["identity"]
        except (ValueError, KeyError, TypeError):
            raise NasframeError(
                f"{run_file}: not a nasframe run file; choose another --output folder"
            ) from None
        same = old_identity == identity
        if same and resume and not force:
            return True
        # A run that never took a step (e.g. its agent rejected a setting) holds nothing
        # to protect: a corrected configuration simply takes the folder over.
        empty = not StepLog(output / "steps.csv").read()
        if not same and not force and not empty:
            raise ConfigError(
                f"output folder {output} holds a run with a different configuration "
                f"({_difference(old_identity, identity)}); resume it with its own "
                "configuration, choose another --output, or pass --force to start over "
                "(the old run is moved aside)"
            )
        move_aside(output, _RUN_FILES)
    run_file.write_text(
        json.dumps(
            {
                "identity": identity,
                "digest": digest(identity),
                "created": utc_now(),
                "config": run.config.to_ini(),
                # finalize resolves the relative paths of "config" against this folder
                "cwd": str(Path.cwd()),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return False


def discard_if_empty(output: Path) -> None:
    """Remove the run files of a run that failed before its first step.

    Such a run holds nothing to resume, so the next start must not find a run there (and
    move it aside); ``search.log``, which records the failure, stays.
    """
    if StepLog(output / "steps.csv").read():
        return
    for name in ("run.json", "steps.csv", "state.json"):
        (output / name).unlink(missing_ok=True)


def _difference(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    """The first three differences between two identities, for the refusal message."""
    changes = []
    for section in sorted(set(old) | set(new)):
        keys = set(old.get(section, {})) | set(new.get(section, {}))
        for key in sorted(keys):
            before = old.get(section, {}).get(key)
            after = new.get(section, {}).get(key)
            if before != after:
                changes.append(f"[{section}] {key}: {before!r} there, {after!r} now")
    shown = "; ".join(changes[:3])
    return shown + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the second (``2024-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_state(run: Run) -> None:
    """Write ``state.json``: the run's counters and outcome so far."""
    state = {
        "steps": run.steps,
        "episodes": run.episodes,
        "trainings": run.trainings,
        "best_accuracy": run.best_accuracy,
        "best_scores": run.best_scores,
        "outcome": run.outcome,
        "updated": utc_now(),
    }
    path = run.output / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash leaves the old state or the new one


def attach_log_file(output: Path, verbosity: int) -> logging.Handler:
    """Send the ``nasframe`` loggers to ``search.log`` in ``output``; return the handler."""
    handler = logging.FileHandler(output / "search.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s | %(name)s | %(levelname)s | %(message)s"))
    handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    root = logging.getLogger("nasframe")
    root.addHandler(handler)
    # Below verbose, per-step records are not even created (they cost per step).
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    return handler
