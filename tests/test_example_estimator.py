"""The third-party example estimator plugin: in-process, then installed with pip and searched.

``docs/examples/nasframe-example-estimator`` registers a network builder and an estimator,
each with a configuration section of its own; the estimator names its builder in a
component key (``[probe] builder``), as ``keras-v1`` does with ``[keras] builder``.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nasframe import (
    NSC,
    ArrayDataset,
    ConfigError,
    PluginManager,
    Status,
    check_components,
    get_plugin_manager,
    load_config,
    make_env,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "nasframe-example-estimator"


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example plugin's module, imported from its source folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import nasframe_probe

    return nasframe_probe


def _manager(module: ModuleType) -> PluginManager:
    return get_plugin_manager(plugins=[("probe", module)], autoload=False)


def _dataset() -> ArrayDataset:
    import numpy as np

    rng = np.random.default_rng(1)
    labels = np.arange(60) % 3
    images = rng.normal(0, 0.3, (60, 6, 6, 1)).astype(np.float32)
    images[:, :2, :2, 0] += labels[:, None, None]  # a learnable signal in one corner
    return ArrayDataset(
        "corners",
        {
            "train": (images[:36], labels[:36]),
            "validation": (images[36:48], labels[36:48]),
            "test": (images[48:], labels[48:]),
        },
    )


def test_registers_a_builder_and_an_estimator_with_sections(probe: ModuleType) -> None:
    manager = _manager(probe)
    builder = manager.registry("builder").get("random-features")
    estimator = manager.registry("estimator").get("probe")
    assert (builder.name, builder.plugin, builder.section) == (
        "random-features-v1",
        "probe",
        "random_features",
    )
    assert (estimator.name, estimator.plugin, estimator.section) == ("probe-v1", "probe", "probe")
    config = load_config(plugin_manager=manager)
    assert config.section("probe") == {"builder": "random-features", "samples": 500}
    assert config.section("random_features") == {"width": 8}
    assert config.schema.sections["probe"].keys["builder"].component == "builder"


def test_the_estimator_gets_its_builder_and_scores(probe: ModuleType) -> None:
    manager = _manager(probe)
    env = make_env(estimator="probe", dataset=_dataset(), plugin_manager=manager, max_steps=3)
    assert isinstance(env.estimator.builder, probe.RandomFeatureBuilder)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert info["status"] == "ok" and 0.0 <= reward <= 1.0
    again = env.estimator.evaluate(NSC.parse(info["nsc"]), env.dataset, seed=0)
    assert again.accuracy == info["accuracy"]  # deterministic for a seed
    env.close()


def test_the_builder_settings_change_the_fingerprint(probe: ModuleType) -> None:
    manager = _manager(probe)
    narrow = load_config(plugin_manager=manager)
    wide = load_config(overrides={"random_features": {"width": 16}}, plugin_manager=manager)
    fingerprints = set()
    for config in (narrow, wide):
        env = make_env(
            estimator="probe",
            dataset=_dataset(),
            config=config,
            plugin_manager=manager,
            database="memory",
        )
        fingerprints.add(env.estimator.fingerprint())
        env.close()
    assert len(fingerprints) == 2


def test_failures_are_statuses_and_bad_settings_are_config_errors(probe: ModuleType) -> None:
    estimator = probe.ProbeEstimator()
    merged = estimator.evaluate(NSC.parse("1,5,0,0,0"), _dataset(), seed=0)
    assert merged.status is Status.INVALID
    assert merged.message == "1,5,0,0,0: layer 1 merges the raw input"
    manager = _manager(probe)
    with pytest.raises(ConfigError, match=r"^\[random_features\] width: 0 is below the minimum 1$"):
        load_config(overrides={"random_features": {"width": 0}}, plugin_manager=manager)
    config = load_config(overrides={"probe": {"builder": "nasgym"}}, plugin_manager=manager)
    check_components(config, manager)  # a registered builder, but of Keras networks
    with pytest.raises(ConfigError) as error:
        make_env(
            estimator="probe",
            dataset=_dataset(),
            config=config,
            plugin_manager=manager,
            database="memory",
        )
    assert str(error.value) == (
        "[probe] builder: 'nasgym-v1' builds keras networks; probe-v1 needs a builder of "
        "numpy networks"
    )


def _installer() -> list[str]:
    """``pip install`` of this interpreter, or uv's equivalent where pip is absent."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is needed to build the example offline")
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("neither pip nor uv is available to install the example")
    return [uv, "pip", "install", "--offline", "-p", sys.executable]


@pytest.mark.slow
def test_installed_with_pip_it_runs_a_search(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp_path / "site"
    command = [*_installer(), "--no-deps", "--no-build-isolation", "--target", str(site)]
    installed = subprocess.run(
        [*command, str(source)], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env = {key: value for key, value in os.environ.items() if not key.startswith("NASFRAME_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    output = tmp_path / "run"
    args = ["--estimator", "probe", "--dataset", "digits", "--steps", "6", "--seed", "0"]
    args += ["--set", f"run.output={output}", "--set", "run.plots=false"]
    args += ["--set", "random_features.width=4", "--set", "run.verbosity=0"]
    search = subprocess.run(
        [sys.executable, "-m", "nasframe", "search", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert search.returncode == 0, search.stdout + search.stderr
    with (output / "steps.csv").open(encoding="utf-8") as handle:
        steps = list(csv.DictReader(row for row in handle if not row.startswith("#")))
    assert len(steps) == 6
    databases = [
        p for p in output.iterdir() if p.suffix in (".csv", ".sqlite") and p.name != "steps.csv"
    ]
    assert databases, sorted(p.name for p in output.iterdir())
    text = databases[0].read_text(encoding="utf-8")
    assert "probe-v1" in text and "probe-1-" in text  # records of the example estimator
    assert all(row["status"] in ("ok", "invalid", "out_of_range") for row in steps)
