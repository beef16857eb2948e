"""The installed version of nasframe, for the core's own modules.

Kept apart from ``nasframe/__init__.py`` so that a core module can read the version
without importing the package's public face from inside itself (an import cycle).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("nasframe")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
