"""One composition path, closing what was built, pluggy-called registration, a neutral core.

Nothing here trains a network; the builder test that builds a Keras model is marked slow.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nasframe
from nasframe import (
    NSC,
    ArrayDataset,
    ConfigError,
    NetworkBuilder,
    PluginError,
    RegistryError,
    get_plugin_manager,
    hookimpl,
    load_config,
    make_env,
)
from nasframe.compose import SCRIPT_DATABASE, component_name, configuration
from nasframe.plugins import DEFAULT_PLUGINS

ROOT = Path(__file__).resolve().parents[1]

EXERCISED_HOOKS = ("nasframe_register_builders", "nasframe_register_estimators")

#: The fingerprint of keras-v1 with its default settings (the nasgym-v1 builder). The
#: NSC-Bench table and users' experiment databases are keyed by it: it must never change
#: by accident (a change of results is a new trainer or estimator version, not a new hash).
#: Trainer version 2 (settled batch-norm statistics, issue 28); ``batch_norm = as-built``
#: keeps trainer 1's fingerprints (keras-1-0f07b01c1283, keras-1-2ac1ba2a65e9).
DEFAULT_KERAS_FINGERPRINT = "keras-1-9c7e276fefe7"
BLOCKQNN_KERAS_FINGERPRINT = "keras-1-7fdc13c2822b"


def _dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.random((24, 8, 8, 1), dtype=np.float32)
    labels = np.arange(24) % 3
    return ArrayDataset(
        "tiny",
        {
            "train": (images[:12], labels[:12]),
            "validation": (images[12:18], labels[12:18]),
            "test": (images[18:], labels[18:]),
        },
    )


def _open_paths() -> set[str]:
    folder = Path("/proc/self/fd")
    paths = set()
    for entry in folder.iterdir():
        try:
            paths.add(str(entry.readlink()))
        except OSError:
            continue
    return paths


# -- closing what was built --------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_make_env_close_closes_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "experiments.csv"
    config = load_config(overrides={"database": {"path": str(path)}})
    env = make_env(estimator="proxy", dataset=_dataset(), database="csv", config=config)
    env.reset(seed=0)
    env.step(0)
    assert str(path) in _open_paths()
    env.close()
    assert str(path) not in _open_paths()
    env.close()  # twice is harmless


def test_make_env_leaves_given_instances_open() -> None:
    closed: list[str] = []

    class Database(nasframe.ExperimentDB):
        name = "given"

        def __init__(self) -> None:
            self.records: dict[Any, Any] = {}

        def get(self, key: Any) -> Any:
            return self.records.get(key)

        def put(self, record: Any) -> None:
            self.records[record.key] = record

        def __iter__(self) -> Any:
            return iter(self.records.values())

        def close(self) -> None:
            closed.append(self.name)

    env = make_env(estimator="proxy", dataset=_dataset(), database=Database())
    env.reset(seed=0)
    env.step(0)
    env.close()
    assert closed == []  # the caller built it, the caller closes it


class _ClosableEstimator(nasframe.PerformanceEstimator):
    """A real estimator (constant accuracy) that records being closed."""

    name = "closable-v1"
    closed: list[str] = []  # noqa: RUF012 -- test record

    def fingerprint(self) -> str:
        return "closable-1"

    def evaluate(self, architecture: NSC, dataset: Any, *, seed: int | None = None) -> Any:
        return nasframe.Evaluation(accuracy=0.5)

    def close(self) -> None:
        self.closed.append(self.name)


class _ClosablePlugin:
    @hookimpl
    def nasframe_register_estimators(self, registry: nasframe.Registry) -> None:
        registry.add("closable-v1", _ClosableEstimator)


def test_make_env_closes_what_it_built() -> None:
    manager = get_plugin_manager(plugins=[("closable", _ClosablePlugin())], autoload=False)
    _ClosableEstimator.closed.clear()
    env = make_env(estimator="closable", dataset=_dataset(), plugin_manager=manager)
    env.reset(seed=0)
    assert env.step(0)[1] == 0.5
    env.close()
    assert _ClosableEstimator.closed == ["closable-v1"]
    # a later part failing closes what was built before it
    with pytest.raises(RegistryError, match="unknown dataset 'no-such-data'"):
        make_env(estimator="closable", dataset="no-such-data", plugin_manager=manager)
    assert _ClosableEstimator.closed == ["closable-v1", "closable-v1"]


def test_the_memory_fallback_is_written_once() -> None:
    manager = get_plugin_manager(autoload=False)
    defaults, configured = configuration(None, manager)
    assert not configured
    assert component_name("database", None, defaults, configured=False) == SCRIPT_DATABASE
    assert component_name("database", None, defaults, configured=True) == "csv"
    assert component_name("database", "sqlite", defaults, configured=False) == "sqlite"
    assert component_name("dataset", None, defaults, configured=False) == "digits"
    env = make_env(estimator="proxy", dataset=_dataset(), plugin_manager=manager)
    assert env.database.name.startswith("memory")
    env.close()


def test_the_env_takes_its_evaluator() -> None:
    first = make_env(estimator="proxy", dataset=_dataset())
    second = make_env(
        estimator=first.estimator,
        dataset=first.dataset,
        database=first.database,
        evaluator=first.evaluator,
    )
    assert second.evaluator is first.evaluator
    second.reset(seed=0)
    second.step(0)
    assert first.evaluator.trainings == 1
    second.close()
    first.close()


# -- registration through pluggy ---------------------------------------------------------


class _WrappingPlain:
    @hookimpl
    def nasframe_register_estimators(self, registry: nasframe.Registry) -> None:
        registry.add("plain-wrapped-v1", lambda **_: None)


def test_a_wrapper_registration_hook_runs_around_its_plugins_registration() -> None:
    class Plugin(_WrappingPlain):
        seen: list[str] = []  # noqa: RUF012

        @hookimpl(wrapper=True)
        def nasframe_register_builders(self, registry: nasframe.Registry) -> Generator[None]:
            self.seen.append("before")
            result = yield
            registry.add("wrapped-builder-v1", lambda **_: None)
            self.seen.append("after")
            return result

    plugin = Plugin()
    manager = get_plugin_manager(plugins=[("wrapping", plugin)], autoload=False)
    assert manager.registry("estimator").get("plain-wrapped").plugin == "wrapping"
    info = manager.registry("builder").get("wrapped-builder")
    assert (info.name, info.plugin) == ("wrapped-builder-v1", "wrapping")
    assert plugin.seen == ["before", "after"]


def test_an_old_style_hookwrapper_registration_hook_works() -> None:
    class Plugin:
        @hookimpl(hookwrapper=True)
        def nasframe_register_datasets(self, registry: nasframe.Registry) -> Generator[None]:
            yield
            registry.add("late-v1", lambda **_: None)

    manager = get_plugin_manager(plugins=[("old", Plugin())], autoload=False)
    assert manager.registry("dataset").get("late").plugin == "old"


def test_a_failing_wrapper_is_named() -> None:
    class Plugin:
        @hookimpl(wrapper=True)
        def nasframe_register_datasets(self, registry: nasframe.Registry) -> Generator[None]:
            yield
            raise RuntimeError("boom")

    manager = get_plugin_manager(plugins=[("bad", Plugin())], autoload=False)
    with pytest.raises(PluginError) as error:
        manager.registries()
    assert str(error.value) == (
        "plugin 'bad' failed in nasframe_register_datasets: RuntimeError: boom"
    )


# -- database backends by suffix ---------------------------------------------------------


def test_backends_declare_their_suffixes() -> None:
    registry = get_plugin_manager(autoload=False).registry("database")
    assert registry.suffixes() == {
        ".csv": "csv-v1",
        ".sqlite": "sqlite-v1",
        ".sqlite3": "sqlite-v1",
        ".db": "sqlite-v1",
    }
    info = registry.by_suffix(".SQLITE")
    assert info is not None and info.name == "sqlite-v1"
    assert registry.by_suffix(".txt") is None
    with pytest.raises(RegistryError, match="suffix 'json' must start with a dot"):
        registry.add("json-v1", dict, suffixes=("json",))


def test_a_plugin_backend_is_opened_by_its_suffix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasframe.plugins as plugins_module
    from nasframe.cli import db_cmd

    class Plugin:
        @hookimpl
        def nasframe_register_experiment_dbs(self, registry: nasframe.Registry) -> None:
            registry.add("memo-v1", _memory_factory, section="database", suffixes=(".memo",))

    manager = get_plugin_manager(plugins=[("memo", Plugin())], autoload=False)
    monkeypatch.setattr(plugins_module, "get_plugin_manager", lambda **_: manager)
    database = db_cmd.open_database(tmp_path / "x.memo", create=True)
    assert type(database).__name__ == type(_memory_factory()).__name__
    with pytest.warns(DeprecationWarning, match="BACKEND_BY_SUFFIX is deprecated"):
        table = db_cmd.BACKEND_BY_SUFFIX
    assert table == {
        ".csv": "csv",
        ".memo": "memo",
        ".sqlite": "sqlite",
        ".sqlite3": "sqlite",
        ".db": "sqlite",
    }


def _memory_factory(**settings: Any) -> Any:
    return get_plugin_manager(autoload=False).registry("database").create("memory")


# -- network builders --------------------------------------------------------------------


class _WideBuilder(NetworkBuilder):
    """A third-party builder: a flat network of ``width`` units (Keras)."""

    framework = "keras"
    built: list[str] = []  # noqa: RUF012 -- test record

    def __init__(self, width: int = 8) -> None:
        self.width = width

    def fingerprint(self) -> str:
        return nasframe.fingerprint_of(self.name, "1", {"width": self.width})

    def build(
        self,
        architecture: NSC,
        input_shape: tuple[int, int, int],
        num_classes: int,
        settings: Mapping[str, Any],
    ) -> Any:
        import keras

        self.built.append(str(architecture))
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(self.width, activation="relu")(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


class _BuilderPlugin:
    @hookimpl
    def nasframe_register_builders(self, registry: nasframe.Registry) -> None:
        registry.add("wide-v1", _WideBuilder, section="wide", summary="a flat network")

    @hookimpl
    def nasframe_add_config(self, schema: nasframe.ConfigSchema) -> None:
        schema.section("wide", "The wide builder.").add("width", int, 8, "hidden units", min=1)


def test_the_default_keras_fingerprint_is_pinned() -> None:
    manager = get_plugin_manager(autoload=False)
    config = load_config(plugin_manager=manager)
    from nasframe import compose

    estimator = compose.create("estimator", "keras", config, manager)
    assert estimator.fingerprint() == DEFAULT_KERAS_FINGERPRINT
    assert estimator.builder.name == "nasgym-v1"
    blockqnn = config.with_overrides({"keras": {"builder": "blockqnn"}})
    estimator = compose.create("estimator", "keras", blockqnn, manager)
    assert estimator.fingerprint() == BLOCKQNN_KERAS_FINGERPRINT
    assert estimator.settings.builder == "blockqnn-v1"
    env = make_env(estimator="keras", dataset=_dataset(), plugin_manager=manager)
    assert env.estimator.fingerprint() == DEFAULT_KERAS_FINGERPRINT
    env.close()


def test_the_builders_are_registered() -> None:
    registry = get_plugin_manager(autoload=False).registry("builder")
    assert [(i.name, i.plugin) for i in registry] == [
        ("blockqnn-v1", "keras"),
        ("nasgym-v1", "keras"),
    ]


def test_a_third_party_builder_changes_the_fingerprint() -> None:
    manager = get_plugin_manager(plugins=[("wide", _BuilderPlugin())], autoload=False)
    config = load_config(overrides={"keras": {"builder": "wide"}}, plugin_manager=manager)
    nasframe.check_components(config, manager)
    env = make_env(
        estimator="keras",
        dataset=_dataset(),
        database="memory",
        config=config,
        plugin_manager=manager,
    )
    estimator = env.estimator
    assert isinstance(estimator.builder, _WideBuilder)
    assert estimator.settings.builder == "wide-v1"
    fingerprint = estimator.fingerprint()
    assert fingerprint != DEFAULT_KERAS_FINGERPRINT
    wider = config.with_overrides({"wide": {"width": 16}})
    other = make_env(
        estimator="keras",
        dataset=_dataset(),
        database="memory",
        config=wider,
        plugin_manager=manager,
    )
    assert other.estimator.builder.width == 16
    assert other.estimator.fingerprint() not in (fingerprint, DEFAULT_KERAS_FINGERPRINT)
    env.close()
    other.close()


def test_a_builder_spec_is_built_on_a_worker() -> None:
    from nasframe.distributed import ComponentSpec

    manager = get_plugin_manager(plugins=[("wide", _BuilderPlugin())], autoload=False)
    estimator = ComponentSpec("estimator", "keras", {"builder": "wide", "epochs": 1}).build(manager)
    assert isinstance(estimator.builder, _WideBuilder)
    assert estimator.fingerprint() != DEFAULT_KERAS_FINGERPRINT


def test_an_unknown_builder_is_one_line() -> None:
    manager = get_plugin_manager(autoload=False)
    config = load_config(overrides={"keras": {"builder": "wdie"}}, plugin_manager=manager)
    with pytest.raises(ConfigError) as error:
        nasframe.check_components(config, manager)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith("[keras] builder (override value): unknown builder 'wdie'")


def test_a_builder_of_another_framework_is_refused() -> None:
    class TorchBuilder(_WideBuilder):
        framework = "torch"

    class Plugin:
        @hookimpl
        def nasframe_register_builders(self, registry: nasframe.Registry) -> None:
            registry.add("torchy-v1", TorchBuilder)

    manager = get_plugin_manager(plugins=[("torchy", Plugin())], autoload=False)
    config = load_config(overrides={"keras": {"builder": "torchy"}}, plugin_manager=manager)
    with pytest.raises(ConfigError) as error:
        make_env(
            estimator="keras",
            dataset=_dataset(),
            database="memory",
            config=config,
            plugin_manager=manager,
        )
    assert str(error.value) == (
        "[keras] builder: 'torchy-v1' builds torch networks; keras-v1 needs a builder of "
        "keras networks"
    )


@pytest.mark.slow
def test_keras_trains_the_network_of_a_third_party_builder() -> None:
    pytest.importorskip("tensorflow")
    manager = get_plugin_manager(plugins=[("wide", _BuilderPlugin())], autoload=False)
    config = load_config(
        overrides={"keras": {"builder": "wide", "epochs": 1, "batch_size": 6}},
        plugin_manager=manager,
    )
    env = make_env(
        estimator="keras",
        dataset=_dataset(),
        database="memory",
        config=config,
        plugin_manager=manager,
    )
    _WideBuilder.built.clear()
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["status"] == "ok", info["message"]
    assert _WideBuilder.built == [info["nsc"]]
    # the wide network: 8*8*1 -> 8 -> 3
    assert info["params"] == 8 * 8 * 8 + 8 + 8 * 3 + 3
    env.close()


# -- a neutral core ----------------------------------------------------------------------


def _imports(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return modules


def test_contracts_import_no_framework() -> None:
    imported = _imports(ROOT / "nasframe" / "contracts.py")
    frameworks = ("tensorflow", "keras", "torch", "jax", "stable_baselines3", "ray")
    assert [m for m in imported if m.split(".")[0] in frameworks] == []
    assert "nasframe.config" not in _imports(ROOT / "nasframe" / "hookspecs.py")


def test_the_core_names_no_plugin() -> None:
    plugin_modules = {module for _, module in DEFAULT_PLUGINS}
    plugin_modules |= {path.name for path in (ROOT / "plugins").glob("nasframe_*")}
    found: list[str] = []
    for path in sorted((ROOT / "nasframe").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exempt: set[int] = set()
        if path.name == "plugins.py":
            # DEFAULT_PLUGINS is the loader's list of the default plugins to load.
            for node in ast.walk(tree):
                if isinstance(node, ast.AnnAssign | ast.Assign):
                    targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                    if any(getattr(t, "id", "") == "DEFAULT_PLUGINS" for t in targets):
                        exempt |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in exempt:
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                hits = [n for n in names if n.split(".")[0] in plugin_modules]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                hits = [m for m in plugin_modules if m in node.value]
            else:
                continue
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)} {hits}")
        # SB3 is the agents plugin's business, not the core's
        if "stable_baselines3" in {m.split(".")[0] for m in _imports(path)}:
            found.append(f"{path.relative_to(ROOT)} imports stable_baselines3")
    assert found == []


def test_hook_payloads_are_public_types() -> None:
    from nasframe import hookspecs

    assert nasframe.Episode is nasframe.env.Episode
    from nasframe.search.run import Run

    assert nasframe.Run is Run
    annotations = {
        name: getattr(hookspecs, name).__annotations__
        for name in ("nasframe_run_started", "nasframe_episode_ended", "nasframe_run_finished")
    }
    assert annotations["nasframe_run_started"]["run"] == "Run"
    assert annotations["nasframe_episode_ended"]["episode"] == "Episode"


def test_the_deprecated_sb3_adapter_still_works() -> None:
    pytest.importorskip("stable_baselines3")
    from nasframe.distributed import make_parallel_env, to_sb3

    vector_env = make_parallel_env(num_envs=2, estimator="proxy", dataset=_dataset())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        venv = to_sb3(vector_env)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert venv.reset().shape[0] == 2
    venv.close()


# -- pluggable training callbacks (keras-v1) ---------------------------------------------


def _half_rate(epoch: int, settings: Any) -> float:
    return 0.01 / (epoch + 1)


def _flip(images: Any, labels: Any) -> tuple[Any, Any]:
    _flip.calls += 1  # type: ignore[attr-defined]
    return images[:, :, ::-1, :], labels


_flip.calls = 0  # type: ignore[attr-defined]


def test_training_callbacks_change_the_fingerprint() -> None:
    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.trainer import TrainingCallbacks

    plain = KerasEstimator()
    with_callbacks = KerasEstimator(callbacks=TrainingCallbacks("halving-v1", _half_rate))
    assert plain.fingerprint() == DEFAULT_KERAS_FINGERPRINT
    assert with_callbacks.fingerprint() != DEFAULT_KERAS_FINGERPRINT
    other = KerasEstimator(callbacks=TrainingCallbacks("halving-v2", _half_rate))
    assert other.fingerprint() != with_callbacks.fingerprint()


@pytest.mark.slow
def test_training_callbacks_schedule_and_augment() -> None:
    pytest.importorskip("tensorflow")
    from nasframe_keras.estimator import KerasEstimator
    from nasframe_keras.settings import KerasSettings
    from nasframe_keras.trainer import TrainingCallbacks

    settings = KerasSettings(epochs=2, batch_size=6, filters=2, fc_units=4)
    callbacks = TrainingCallbacks("flip-halving-v1", _half_rate, _flip)
    estimator = KerasEstimator(settings, callbacks=callbacks)
    _flip.calls = 0  # type: ignore[attr-defined]
    evaluation = estimator.evaluate(NSC.parse("1,1,3,0,0"), _dataset(), seed=0)
    assert evaluation.status == "ok", evaluation.message
    assert estimator.last_train.learning_rates == pytest.approx([0.01, 0.005])
    assert _flip.calls >= 1  # traced into the training pipeline
