"""Shared fixtures: a fresh plugin manager per test, and no user configuration leaking in."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nasframe
import nasframe.plugins


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Tests must never see a developer's plugin settings or data folder, nor download.
    for name in ("NASFRAME_DISABLE_PLUGINS", "NASFRAME_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NASFRAME_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    # Stable-Baselines3 models built by tests without a logger of their own write
    # SB3-<time> folders; keep them in pytest's temporary tree, not the system's.
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))


@pytest.fixture
def plugin_manager() -> nasframe.PluginManager:
    """A fresh plugin manager with the default and installed plugins."""
    return nasframe.get_plugin_manager()


class PluginSandbox:
    """Writes real plugin modules to a temporary folder and fakes their entry points.

    Unit tests use it instead of installing distributions: ``module()`` writes an
    importable module, ``entry_points()`` makes ``importlib.metadata.entry_points`` (as
    :mod:`nasframe.plugins` calls it) return the given group ``nasframe`` entries, and
    ``defaults()`` replaces the default plugins, so a test does not depend on which
    default plugins exist yet.
    """

    _counter = 0

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.modules: list[str] = []
        monkeypatch.syspath_prepend(str(root))

    def module(self, stem: str, source: str) -> str:
        """Write ``source`` as a fresh module; returns its (unique) import name."""
        PluginSandbox._counter += 1
        name = f"{stem}_{PluginSandbox._counter}"
        (self.root / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        self.modules.append(name)
        return name

    def entry_points(self, **targets: str) -> None:
        """Fake the installed entry points of group ``nasframe``: ``name=module``."""
        eps = importlib.metadata.EntryPoints(
            importlib.metadata.EntryPoint(name, value, "nasframe")
            for name, value in targets.items()
        )

        def entry_points(**params: Any) -> importlib.metadata.EntryPoints:
            return eps.select(**params)

        self.monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    def defaults(self, **targets: str) -> None:
        """Replace the default plugins with ``name=module`` (in this order)."""
        self.monkeypatch.setattr(nasframe.plugins, "DEFAULT_PLUGINS", tuple(targets.items()))

    def cleanup(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSandbox]:
    """A :class:`PluginSandbox` with no default plugins and no entry points to start with."""
    box = PluginSandbox(tmp_path / "plugins", monkeypatch)
    box.root.mkdir()
    box.defaults()
    box.entry_points()
    yield box
    box.cleanup()


# -- Hypothesis (property-based tests, tests/test_properties_*.py) ---------------------------
# "ci", the default: a fixed budget of examples, derandomized so every CI run tries the same
# examples (a red main is then always reproducible), no example database written. "thorough"
# (HYPOTHESIS_PROFILE=thorough): ten times the examples, fresh random ones each run, for
# hunting bugs locally. Each property sizes its own budget with properties_examples().
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        max_examples=200,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    )
    settings.register_profile(
        "thorough", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False
    )
    import os as _os

    settings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # the test extra is not installed: the property tests are not collected
    pass
