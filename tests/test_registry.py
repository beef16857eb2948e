"""The versioned component registry: names, versions, lookups, duplicates, extras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nasframe import ComponentInfo, PluginError, Registry, RegistryError


def _factory(*args: Any, **settings: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, settings


def _registry(*names: str, plugin: str = "alpha") -> Registry:
    registry = Registry("search_space")
    registry.current_plugin = plugin
    for name in names:
        registry.add(name, _factory, summary=f"{name} space")
    return registry


def test_add_returns_info_with_metadata() -> None:
    registry = Registry("dataset")
    registry.current_plugin = "shapes"
    info = registry.add(
        "shapes-v2", _factory, summary="procedural shapes", section="shapes", extra="plot"
    )
    assert isinstance(info, ComponentInfo)
    assert (info.kind, info.name, info.plugin, info.section) == (
        "dataset",
        "shapes-v2",
        "shapes",
        "shapes",
    )
    assert (info.base_name, info.version, info.summary) == ("shapes", 2, "procedural shapes")
    assert registry.get("shapes-v2") is info
    assert registry.label == "dataset"


def test_lookup_without_version_picks_the_highest() -> None:
    registry = _registry("chained-v1", "chained-v10", "chained-v2", "absolute-v1")
    assert registry.get("chained").name == "chained-v10"
    assert registry.get("chained-v2").name == "chained-v2"
    assert registry.names() == ["absolute-v1", "chained-v1", "chained-v10", "chained-v2"]
    assert [info.name for info in registry] == registry.names()
    assert len(registry) == 4
    assert "chained" in registry and "chained-v1" in registry
    assert "chained-v3" not in registry and 3 not in registry


def test_create_passes_arguments_and_settings() -> None:
    registry = _registry("chained-v1")
    assert registry.create("chained", "space", depth=3) == (("space",), {"depth": 3})


@pytest.mark.parametrize("name", ["Chained-v1", "chained", "chained-v", "-v1", "chained v1", ""])
def test_malformed_name_is_rejected(name: str) -> None:
    with pytest.raises(RegistryError) as info:
        Registry("search_space").add(name, _factory)
    message = str(info.value)
    assert f"component name {name!r}" in message
    assert "end in a version, like 'chained-v1'" in message
    assert "\n" not in message


def test_unknown_name_lists_available_and_closest() -> None:
    registry = _registry("chained-v1", "absolute-v1", "pointer-v1")
    with pytest.raises(RegistryError) as info:
        registry.get("chaned")
    assert str(info.value) == (
        "unknown search space 'chaned'; did you mean 'chained'? "
        "(available: absolute-v1, chained-v1, pointer-v1)"
    )


def test_unknown_name_without_close_match_or_entries() -> None:
    with pytest.raises(RegistryError, match=r"unknown search space 'zzz' \(available: a-v1\)$"):
        _registry("a-v1").get("zzz")
    with pytest.raises(RegistryError, match=r"\(available: none registered\)$"):
        Registry("search_space").get("chained")
    with pytest.raises(RegistryError, match="unknown search space 'nope'"):
        _registry("chained-v1").create("nope")


def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    registry = _registry("chained-v1", plugin="alpha")
    registry.current_plugin = "beta"
    with pytest.raises(RegistryError) as info:
        registry.add("chained-v1", _factory)
    assert str(info.value) == (
        "search space 'chained-v1' is registered by both plugin 'alpha' and plugin 'beta'; "
        "block one with NASFRAME_DISABLE_PLUGINS, or pass replace=True in one to override"
    )
    assert registry.get("chained-v1").plugin == "alpha"  # nothing was lost


def test_a_registry_names_plugins_as_its_describe_says() -> None:
    registry = Registry("estimator", describe=lambda name: f"plugin {name!r} (dist-{name} 1.0)")
    registry.current_plugin = "alpha"
    registry.add("proxy-v1", _factory)
    registry.current_plugin = "beta"
    with pytest.raises(RegistryError) as info:
        registry.add("proxy-v1", _factory)
    assert str(info.value).startswith(
        "estimator 'proxy-v1' is registered by both plugin 'alpha' (dist-alpha 1.0) and "
        "plugin 'beta' (dist-beta 1.0); "
    )


def test_one_plugin_registering_a_name_twice_is_an_error() -> None:
    registry = _registry("chained-v1", plugin="alpha")
    with pytest.raises(RegistryError, match="'chained-v1' is registered twice by plugin 'alpha'"):
        registry.add("chained-v1", _factory, replace=True)
    outside = Registry("agent")
    outside.add("random-v1", _factory)
    with pytest.raises(RegistryError, match="twice by code outside a plugin"):
        outside.add("random-v1", _factory)


@pytest.mark.parametrize("override_first", [True, False], ids=["override-first", "override-last"])
def test_replace_wins_in_either_order(override_first: bool) -> None:
    def default_factory() -> str:
        return "default"

    def override_factory() -> str:
        return "override"

    registry = Registry("estimator")
    order = [("mine", override_factory, True), ("keras", default_factory, False)]
    for plugin, factory, replace in order if override_first else reversed(order):
        registry.current_plugin = plugin
        registry.add("keras-v1", factory, replace=replace)
    info = registry.get("keras-v1")
    assert (info.plugin, info.replace) == ("mine", True)
    assert registry.create("keras-v1") == "override"
    assert len(registry) == 1


def test_two_replacements_of_one_name_are_an_error() -> None:
    registry = Registry("estimator")
    registry.current_plugin = "mine"
    registry.add("keras-v1", _factory, replace=True)
    registry.current_plugin = "yours"
    with pytest.raises(RegistryError) as info:
        registry.add("keras-v1", _factory, replace=True)
    assert str(info.value) == (
        "estimator 'keras-v1' is replaced by both plugin 'mine' and plugin 'yours'; "
        "block one with NASFRAME_DISABLE_PLUGINS"
    )


def test_missing_requirement_gives_the_install_hint() -> None:
    registry = Registry("estimator")
    registry.current_plugin = "torchy"
    info = registry.add(
        "torchy-v1", _factory, extra="rl", requires=("json", "nasframe_no_such_module")
    )
    assert info.missing == ("nasframe_no_such_module",)
    assert not info.available
    assert info.install_hint() == "pip install 'nasframe[rl]'"
    with pytest.raises(PluginError) as raised:
        registry.create("torchy")
    assert str(raised.value) == (
        "estimator 'torchy-v1' needs nasframe_no_such_module, which is not installed; "
        "run: pip install 'nasframe[rl]'"
    )


def test_missing_requirement_without_extra_names_the_module() -> None:
    info = Registry("dataset").add("x-v1", _factory, requires=("nasframe_no_such_module",))
    assert info.install_hint() == "pip install nasframe_no_such_module"
    available = Registry("dataset").add("y-v1", _factory, requires=("json",))
    assert available.available and available.install_hint() == ""


_TYPED_REGISTRIES = """
from typing import assert_type

import nasframe
from nasframe import DatasetHandler, ExperimentDB, PerformanceEstimator, Registry, SearchSpace


def make_digits() -> DatasetHandler:
    raise NotImplementedError


@nasframe.hookimpl
def nasframe_register_estimators(registry: Registry[PerformanceEstimator]) -> None:
    registry.add("wrong-v1", make_digits)  # line 14: a dataset factory, estimator registry


def built(manager: nasframe.PluginManager) -> None:
    assert_type(manager.estimators().create("keras"), PerformanceEstimator)
    assert_type(manager.datasets().create("digits"), DatasetHandler)
    assert_type(manager.search_spaces().create("chained"), SearchSpace)
    assert_type(manager.databases().create("memory"), ExperimentDB)
"""


def test_typed_registries_let_mypy_check_registrations_and_creations(tmp_path: Path) -> None:
    """What a plugin registers and what the core builds are checked by mypy (issue 31)."""
    snippet = tmp_path / "typed_registries.py"
    snippet.write_text(_TYPED_REGISTRIES, encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"), str(snippet)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr  # every assert_type holds
    assert f'{snippet.name}:14: error: Argument 2 to "add"' in errors[0]
    assert 'expected "Callable[..., PerformanceEstimator]"' in errors[0]
