"""The exception types of nasframe.

Every error a user can cause (a bad configuration file, an unknown component name, a
malformed NSC string, a missing dataset, ...) is a :class:`NasframeError`. Its message is
one line that names the file, key or value at fault and says what would be valid; the
``nasframe`` command prints exactly that line and exits non-zero, without a traceback.
Programming errors inside nasframe stay ordinary Python exceptions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "DatabaseError",
    "DatasetError",
    "FolderBusyError",
    "NSCError",
    "NasframeError",
    "PluginError",
    "RegistryError",
    "SearchSpaceError",
    "closest",
]


class NasframeError(Exception):
    """An error the user can fix; its message is a single line."""


class ConfigError(NasframeError):
    """A configuration file, section, key or value is wrong."""


class RegistryError(NasframeError):
    """A component name is unknown, or two plugins registered the same name."""


class PluginError(NasframeError):
    """A plugin could not be loaded or broke the plugin contract."""


class NSCError(NasframeError, ValueError):
    """An NSC string or row list is malformed or breaks the NSC rules."""


class SearchSpaceError(NasframeError):
    """A search-space YAML file is malformed or an action is not valid for it."""


class DatasetError(NasframeError):
    """A dataset is missing, corrupt or unknown."""


class DatabaseError(NasframeError):
    """An experiment database file is corrupt, locked or of an unknown schema."""


class FolderBusyError(NasframeError):
    """Another process is writing the output folder (it holds its ``RunFolderLock``)."""


def closest(word: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest candidate, or ``""`` if none is close.

    Used to build the one-line messages of :class:`NasframeError` for typos.
    """
    candidates = list(candidates)
    # Names are case-sensitive, so a different case is the likeliest slip (PPO for ppo).
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    if word.lower() in by_lower:
        return f"; did you mean {by_lower[word.lower()]!r}?"
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[matches[0]]!r}?" if matches else ""
