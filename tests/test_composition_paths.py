"""Every component is built through ``compose.create`` (issues 31 and 32).

A component that builds its own parts (the cascade's fidelities, the zero-cost proxy's
network estimator) gets the configuration and plugin manager building it, so a setting
of the configuration reaches the parts; the default plugins are the loader's list.
No TensorFlow: building these estimators imports none.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import nasframe
from nasframe import compose
from nasframe.bench.testing import write_table
from nasframe.config import load_config
from nasframe.distributed.components import ComponentSpec
from nasframe.plugins import DEFAULT_PLUGINS, get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]


def test_every_default_plugin_is_in_the_loaders_list() -> None:
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "nasframe"
    ]
    assert dict(DEFAULT_PLUGINS) == entry_points
    shipped = {
        path.name for path in (ROOT / "plugins").iterdir() if (path / "__init__.py").exists()
    }
    assert {module for _, module in DEFAULT_PLUGINS} == shipped


def test_the_cascades_fidelities_get_the_configurations_settings() -> None:
    manager = get_plugin_manager()
    config = load_config(
        plugin_manager=manager,
        overrides={"cascade": {"chain": "proxy,keras"}, "keras": {"epochs": 1}},
    )
    cascade = compose.create("estimator", "cascade", config, manager)
    keras = cascade.fidelities[1].estimator
    assert keras.settings.epochs == 1
    expected = compose.create("estimator", "keras", config, manager)
    assert keras.fingerprint() == expected.fingerprint()
    default = compose.create("estimator", "cascade", load_config(plugin_manager=manager), manager)
    assert default.fingerprint() != cascade.fingerprint()


def test_the_zero_cost_network_estimator_gets_the_configurations_settings() -> None:
    manager = get_plugin_manager()
    config = load_config(plugin_manager=manager, overrides={"keras": {"filters": 8}})
    zerocost = compose.create("estimator", "zerocost", config, manager)
    assert zerocost.network.settings.filters == 8


def test_a_spec_builds_what_the_composition_builds() -> None:
    manager = get_plugin_manager()
    config = load_config(plugin_manager=manager, overrides={"keras": {"builder": "blockqnn"}})
    spec = ComponentSpec("estimator", "keras", {"builder": "blockqnn"}).build(manager)
    assert spec.builder.name == "blockqnn-v1"
    assert spec.fingerprint() == compose.create("estimator", "keras", config, manager).fingerprint()


def test_a_cascade_whose_chain_cannot_answer_here_is_refused(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t", depth=1, dataset="shifted-digits")
    cascade = (
        nasframe.get_plugin_manager()
        .registry("estimator")
        .create(
            "cascade",
            estimators=[
                nasframe.get_plugin_manager().registry("estimator").create("proxy"),
                nasframe.get_plugin_manager()
                .registry("estimator")
                .create("table", table=str(table)),
            ],
        )
    )
    with pytest.raises(nasframe.ConfigError, match=r"^\[cascade\] chain: fidelity 2 \(table-v1\)"):
        nasframe.make_env(search_space="chained", estimator=cascade, dataset="digits")
