"""Shared fixtures: a fresh plugin manager per test, and no user configuration leaking in."""

from __future__ import annotations

import pytest

import nasframe


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Tests must never see a developer's plugin settings or data folder, nor download.
    for name in ("NASFRAME_DISABLE_PLUGINS", "NASFRAME_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NASFRAME_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def plugin_manager() -> nasframe.PluginManager:
    """A fresh plugin manager with the default and installed plugins."""
    return nasframe.get_plugin_manager()
