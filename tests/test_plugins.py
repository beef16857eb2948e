"""The plugin manager: defaults, entry points, blocking, broken plugins, hook order."""

from __future__ import annotations

import sys

import pytest
from conftest import PluginSandbox

import nasframe
from nasframe import Evaluation, PluginError, Record, RegistryError, get_plugin_manager

#: The hooks this module implements in its test plugins (see test_hooks_meta.py).
EXERCISED_HOOKS = (
    "nasframe_register_search_spaces",
    "nasframe_register_state_encoders",
    "nasframe_register_estimators",
    "nasframe_register_datasets",
    "nasframe_register_experiment_dbs",
    "nasframe_register_agents",
    "nasframe_evaluation_stored",
)

# A default plugin as nasframe's own are written: trylast hooks, one of every kind.
DEFAULT_SOURCE = """
import nasframe

SEEN = []


def build(**settings):
    return ("built", settings)


@nasframe.hookimpl(trylast=True)
def nasframe_register_search_spaces(registry):
    registry.add("grid-v1", build, summary="a grid")
    registry.add("grid-v2", build, summary="a newer grid")


@nasframe.hookimpl(trylast=True)
def nasframe_register_state_encoders(registry):
    registry.add("plain-v1", build)


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(registry):
    registry.add("guess-v1", build)


@nasframe.hookimpl(trylast=True)
def nasframe_register_datasets(registry):
    registry.add("blobs-v1", build)


@nasframe.hookimpl(trylast=True)
def nasframe_register_experiment_dbs(registry):
    registry.add("list-v1", build)


@nasframe.hookimpl(trylast=True)
def nasframe_register_agents(registry):
    registry.add("walk-v1", build)


@nasframe.hookimpl(trylast=True)
def nasframe_evaluation_stored(record):
    SEEN.append(("default", record.arch_hash))
"""

# A third-party plugin: plain hookimpls, it replaces one default on purpose.
THIRD_PARTY_SOURCE = """
import nasframe

SEEN = []


def better(**settings):
    return ("better", settings)


@nasframe.hookimpl
def nasframe_register_estimators(registry):
    registry.add("guess-v1", better, replace=True, summary="a better guess")
    registry.add("oracle-v1", better, requires=("nasframe_no_such_module",), extra="rl")


@nasframe.hookimpl
def nasframe_evaluation_stored(record):
    SEEN.append(("third-party", record.arch_hash))
"""


def _record(arch_hash: str = "abc") -> Record:
    return Record(
        dataset="blobs",
        task="blobs",
        arch_hash=arch_hash,
        nsc="1 1 3 0 0",
        estimator="guess-v1",
        estimator_version="1",
        fingerprint="f",
        evaluation=Evaluation(accuracy=0.5),
    )


def test_every_call_builds_a_fresh_manager(sandbox: PluginSandbox) -> None:
    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    first, second = get_plugin_manager(), get_plugin_manager()
    assert first is not second
    assert first.registry("dataset") is not second.registry("dataset")
    assert first.registry("dataset") is first.registry("dataset")  # filled once
    assert isinstance(first, nasframe.PluginManager)


def test_defaults_register_every_kind(sandbox: PluginSandbox) -> None:
    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    manager = get_plugin_manager()
    status = manager.statuses["base"]
    assert (status.status, status.default, status.version) == ("loaded", True, nasframe.__version__)
    assert status.hooks == sorted(EXERCISED_HOOKS)
    names = {(info.kind, info.name) for info in manager.components()}
    assert names == {
        ("search_space", "grid-v1"),
        ("search_space", "grid-v2"),
        ("state_encoder", "plain-v1"),
        ("estimator", "guess-v1"),
        ("dataset", "blobs-v1"),
        ("database", "list-v1"),
        ("agent", "walk-v1"),
    }
    assert manager.registry("search_space").create("grid", depth=2) == ("built", {"depth": 2})
    assert all(info.plugin == "base" for info in manager.components())
    with pytest.raises(KeyError):
        manager.registry("reward")


def test_entry_point_plugin_runs_before_defaults_and_can_replace(sandbox: PluginSandbox) -> None:
    base = sandbox.module("base", DEFAULT_SOURCE)
    extra = sandbox.module("extra", THIRD_PARTY_SOURCE)
    sandbox.defaults(base=base)
    sandbox.entry_points(base=base, extra=extra)
    manager = get_plugin_manager()
    assert list(manager.statuses) == ["base", "extra"]  # defaults first
    assert manager.statuses["extra"].default is False
    assert manager.statuses["extra"].status == "loaded"
    guess = manager.registry("estimator").get("guess")
    assert (guess.plugin, guess.summary) == ("extra", "a better guess")
    assert manager.registry("estimator").create("guess-v1") == ("better", {})
    # trylast defaults observe events after installed plugins
    manager.hook.nasframe_evaluation_stored(record=_record("h1"))
    assert sys.modules[extra].SEEN == [("third-party", "h1")]
    assert sys.modules[base].SEEN == [("default", "h1")]
    impls = manager.hook.nasframe_evaluation_stored.get_hookimpls()
    assert [impl.plugin_name for impl in reversed(impls)] == ["extra", "base"]
    oracle = manager.registry("estimator").get("oracle")
    assert oracle.install_hint() == "pip install 'nasframe[rl]'"


def test_entry_point_named_like_a_default_is_loaded_once(sandbox: PluginSandbox) -> None:
    base = sandbox.module("base", DEFAULT_SOURCE)
    sandbox.defaults(base=base)
    sandbox.entry_points(base=base)
    manager = get_plugin_manager()
    assert list(manager.statuses) == ["base"]
    assert len(manager.registry("search_space")) == 2


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_autoload_can_be_disabled_by_environment(
    sandbox: PluginSandbox, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    base = sandbox.module("base", DEFAULT_SOURCE)
    sandbox.defaults(base=base)
    sandbox.entry_points(extra=sandbox.module("extra", THIRD_PARTY_SOURCE))
    monkeypatch.setenv("NASFRAME_DISABLE_PLUGIN_AUTOLOAD", value)
    manager = get_plugin_manager()
    assert list(manager.statuses) == ["base"]  # defaults still load
    assert manager.registry("estimator").get("guess").plugin == "base"
    # an explicit argument wins over the environment
    assert "extra" in get_plugin_manager(autoload=True).statuses
    monkeypatch.setenv("NASFRAME_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert "extra" in get_plugin_manager().statuses
    assert "extra" not in get_plugin_manager(autoload=False).statuses


def test_plugins_blocked_by_environment(
    sandbox: PluginSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    sandbox.entry_points(
        extra=sandbox.module("extra", THIRD_PARTY_SOURCE),
        broken=sandbox.module("broken", "raise RuntimeError('should never be imported')"),
    )
    monkeypatch.setenv("NASFRAME_DISABLE_PLUGINS", "base, broken")
    manager = get_plugin_manager()
    for name in ("base", "broken"):
        status = manager.statuses[name]
        assert (status.status, status.reason) == ("blocked", "disabled by NASFRAME_DISABLE_PLUGINS")
    assert manager.statuses["extra"].status == "loaded"
    assert manager.registry("search_space").names() == []
    # the registered name is the replacement now that the default is gone
    assert manager.registry("estimator").names() == ["guess-v1", "oracle-v1"]


def test_disable_argument_blocks_explicit_plugins_too(sandbox: PluginSandbox) -> None:
    import types

    plugin = types.ModuleType("inline")
    manager = get_plugin_manager(plugins=[("inline", plugin)], disable=["inline"])
    assert manager.statuses["inline"].status == "blocked"
    assert manager.get_plugin("inline") is None


def test_plugin_that_raises_on_import_is_reported_and_others_work(sandbox: PluginSandbox) -> None:
    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    broken = sandbox.module("broken", "raise RuntimeError('cannot find\\n  the licence file')")
    sandbox.entry_points(broken=broken, extra=sandbox.module("extra", THIRD_PARTY_SOURCE))
    manager = get_plugin_manager()
    status = manager.statuses["broken"]
    assert status.status == "failed"
    assert status.reason == f"import of {broken} raised RuntimeError: cannot find the licence file"
    assert manager.statuses["extra"].status == "loaded"
    assert manager.registry("estimator").get("guess").plugin == "extra"
    assert "blobs-v1" in manager.registry("dataset")


def test_plugin_missing_an_extra_gives_the_pip_command(
    sandbox: PluginSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes ``import ray`` fail exactly as if Ray were not installed.
    monkeypatch.setitem(sys.modules, "ray", None)
    needs_ray = sandbox.module("needs_ray", "import ray\n")
    missing = sandbox.module("missing_dep", "import nasframe_no_such_module\n")
    sandbox.entry_points(cluster=needs_ray, other=missing, absent="nasframe_no_such_plugin")
    manager = get_plugin_manager()
    assert manager.statuses["cluster"].reason == (
        "needs ray, which is not installed; run: pip install 'nasframe[ray]'"
    )
    assert manager.statuses["other"].reason == (
        "cannot import nasframe_no_such_module: No module named 'nasframe_no_such_module'"
    )
    assert manager.statuses["absent"].status == "failed"
    assert "nasframe_no_such_plugin" in manager.statuses["absent"].reason


def test_misspelled_hook_is_an_error_naming_the_plugin(sandbox: PluginSandbox) -> None:
    typo = sandbox.module(
        "typo",
        """
        import nasframe

        @nasframe.hookimpl
        def nasframe_register_dataset(registry):
            registry.add("x-v1", dict)
        """,
    )
    sandbox.entry_points(typo=typo)
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    assert str(info.value) == (
        "plugin 'typo' implements unknown hook 'nasframe_register_dataset'; did you mean "
        "'nasframe_register_datasets'?; fix the plugin or block it with "
        "NASFRAME_DISABLE_PLUGINS=typo"
    )
    # blocking it, as the message says, makes everything else work again
    assert get_plugin_manager(disable=["typo"]).statuses["typo"].status == "blocked"


def test_optional_unknown_hook_is_allowed(sandbox: PluginSandbox) -> None:
    optional = sandbox.module(
        "optional",
        """
        import nasframe

        @nasframe.hookimpl(optionalhook=True)
        def nasframe_future_hook(thing):
            return thing
        """,
    )
    sandbox.entry_points(optional=optional)
    assert get_plugin_manager().statuses["optional"].status == "loaded"


def test_hook_with_an_argument_the_spec_lacks_is_an_error(sandbox: PluginSandbox) -> None:
    wrong = sandbox.module(
        "wrong",
        """
        import nasframe

        @nasframe.hookimpl
        def nasframe_register_datasets(registry, colour):
            pass
        """,
    )
    sandbox.entry_points(wrong=wrong)
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    message = str(info.value)
    assert message.startswith("plugin 'wrong': ")
    assert "colour" in message and "nasframe_register_datasets" in message
    assert message.endswith("block it with NASFRAME_DISABLE_PLUGINS=wrong")
    assert "\n" not in message


def test_registration_hook_that_raises_names_plugin_and_hook(sandbox: PluginSandbox) -> None:
    crash = sandbox.module(
        "crash",
        """
        import nasframe

        @nasframe.hookimpl
        def nasframe_register_agents(registry):
            raise ValueError("no agents today")
        """,
    )
    sandbox.entry_points(crash=crash)
    manager = get_plugin_manager()  # loading is fine; the hook runs on first use
    with pytest.raises(PluginError) as info:
        manager.registries()
    assert str(info.value) == (
        "plugin 'crash' failed in nasframe_register_agents: ValueError: no agents today"
    )


def test_two_plugins_registering_one_name_fail_with_both_names(sandbox: PluginSandbox) -> None:
    source = """
    import nasframe

    @nasframe.hookimpl
    def nasframe_register_datasets(registry):
        registry.add("blobs-v1", dict)
    """
    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    sandbox.entry_points(copycat=sandbox.module("copycat", source))
    manager = get_plugin_manager()
    with pytest.raises(RegistryError) as info:
        manager.registry("dataset")
    version = manager.statuses["base"].version
    assert str(info.value) == (
        "dataset 'blobs-v1' is registered by both plugin 'copycat' and plugin 'base' "
        f"(nasframe {version}); block one with NASFRAME_DISABLE_PLUGINS, or pass "
        "replace=True in one to override"
    )


def test_a_plugin_is_described_with_its_distribution(sandbox: PluginSandbox) -> None:
    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    manager = get_plugin_manager(plugins=[("inline", object())])
    base = manager.statuses["base"]
    assert (base.distribution, manager.describe("base")) == (
        "nasframe",
        f"plugin 'base' (nasframe {base.version})",
    )
    assert manager.statuses["inline"].distribution == ""
    assert manager.describe("inline") == "plugin 'inline'"
    assert manager.describe("nobody") == "plugin 'nobody'"


def test_explicit_plugin_objects_register_after_defaults(sandbox: PluginSandbox) -> None:
    class InlinePlugin:
        """A plugin under development, passed as an object."""

        @nasframe.hookimpl
        def nasframe_register_datasets(self, registry: nasframe.Registry) -> None:
            registry.add("inline-v1", dict, summary="inline")

    sandbox.defaults(base=sandbox.module("base", DEFAULT_SOURCE))
    manager = get_plugin_manager(plugins=[("inline", InlinePlugin())])
    assert list(manager.statuses) == ["base", "inline"]
    assert manager.statuses["inline"].hooks == ["nasframe_register_datasets"]
    assert manager.registry("dataset").get("inline").plugin == "inline"


def test_malformed_component_name_names_the_plugin(sandbox: PluginSandbox) -> None:
    sandbox.entry_points(
        sloppy=sandbox.module(
            "sloppy",
            """
            import nasframe

            @nasframe.hookimpl
            def nasframe_register_datasets(registry):
                registry.add("Shapes", dict)
            """,
        )
    )
    with pytest.raises(RegistryError) as info:
        get_plugin_manager().registries()
    assert str(info.value) == (
        "plugin 'sloppy': component name 'Shapes' must be lower-case and end in a version, "
        "like 'chained-v1'"
    )


def test_explicit_plugin_with_a_taken_name_or_module_is_an_error(sandbox: PluginSandbox) -> None:
    base = sandbox.module("base", DEFAULT_SOURCE)
    sandbox.defaults(base=base)
    with pytest.raises(
        PluginError, match=r"^plugin 'base' cannot be registered: the name is taken$"
    ):
        get_plugin_manager(plugins=[("base", object())])
    __import__(base)
    with pytest.raises(PluginError) as info:
        get_plugin_manager(plugins=[("again", sys.modules[base])])
    assert str(info.value) == (
        "plugin 'again' cannot be registered: the module is already plugin 'base'"
    )
