"""The third-party example plugin: its dataset in-process, then installed for real with pip."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nasframe import ConfigError, PluginManager, get_plugin_manager, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "nasframe-example-plugin"


@pytest.fixture
def shapes(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example plugin's module, imported from its source folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import nasframe_shapes

    return nasframe_shapes


def _manager(module: ModuleType) -> PluginManager:
    return get_plugin_manager(plugins=[("shapes", module)], autoload=False)


def test_registers_the_dataset_and_its_section(shapes: ModuleType) -> None:
    manager = _manager(shapes)
    info = manager.registry("dataset").get("shapes")
    assert (info.name, info.plugin, info.section) == ("shapes-v1", "shapes", "shapes")
    config = load_config(plugin_manager=manager)
    assert config.section("shapes") == {
        "size": 16,
        "per_class": 200,
        "noise": 0.1,
        "seed": 0,
        "validation": 0.2,
        "test": 0.2,
    }


def test_builds_from_the_configuration(shapes: ModuleType) -> None:
    manager = _manager(shapes)
    config = load_config(
        overrides={"shapes": {"size": "12", "per_class": "10", "noise": "0"}},
        plugin_manager=manager,
    )
    dataset = manager.registry("dataset").create("shapes", **config.section("shapes"))
    assert dataset.input_shape == (12, 12, 1)
    assert dataset.num_classes == 4
    sizes = {split: dataset.num_examples(split) for split in ("train", "validation", "test")}
    assert sizes == {"train": 24, "validation": 8, "test": 8}
    labels = np.concatenate([dataset.arrays(split)[1] for split in sizes])
    assert np.bincount(labels).tolist() == [10, 10, 10, 10]
    images, train_labels = dataset.arrays("train")
    assert images.dtype == np.float32 and train_labels.dtype == np.int64
    assert set(np.unique(images)) <= {0.0, 1.0}  # no noise: binary shapes
    assert (images.reshape(len(images), -1).sum(axis=1) > 4).all()  # every image has a shape


def test_same_seed_same_data_and_identity_tracks_settings(shapes: ModuleType) -> None:
    first = shapes.make_shapes(size=10, per_class=6, seed=3)
    again = shapes.make_shapes(size=10, per_class=6, seed=3)
    other = shapes.make_shapes(size=10, per_class=6, seed=4)
    noisier = shapes.make_shapes(size=10, per_class=6, seed=3, noise=0.3)
    np.testing.assert_array_equal(first.arrays("train")[0], again.arrays("train")[0])
    assert not np.array_equal(first.arrays("train")[0], other.arrays("train")[0])
    assert first.identity == again.identity
    assert len({first.identity, other.identity, noisier.identity}) == 3
    pixels = noisier.arrays("validation")[0]
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0


def test_classes_are_different_shapes(shapes: ModuleType) -> None:
    drawn = [shapes.draw(label, 32, np.random.default_rng(0)) for label in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(drawn[i], drawn[j]), (shapes.CLASSES[i], shapes.CLASSES[j])


def test_bad_settings_are_config_errors(shapes: ModuleType) -> None:
    manager = _manager(shapes)
    with pytest.raises(ConfigError, match=r"^\[shapes\] size: 4 is below the minimum 8$"):
        load_config(overrides={"shapes": {"size": 4}}, plugin_manager=manager)
    with pytest.raises(ConfigError, match=r"unknown key 'sise' in section \[shapes\]; did you"):
        load_config(overrides={"shapes": {"sise": 20}}, plugin_manager=manager)


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


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed for real into a fresh target folder (no network)."""
    work = tmp_path_factory.mktemp("example")
    source = work / "source"
    # Build from a copy so the build leaves nothing in the repository.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    command = [*_installer(), "--no-deps", "--no-build-isolation", "--target", str(target)]
    result = subprocess.run(
        [*command, str(source)], capture_output=True, text=True, check=False, cwd=work
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "nasframe_shapes" / "__init__.py").is_file()
    return target


def _nasframe(site: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NASFRAME_")}
    env["COLUMNS"] = "200"
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "nasframe", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=site.parent if site else ROOT,
    )


def test_installed_plugin_is_listed_beside_the_defaults(installed: Path) -> None:
    result = _nasframe(installed, "plugins")
    assert result.returncode == 0, result.stderr
    rows = {
        cells[0]: cells
        for line in result.stdout.splitlines()
        if line.startswith("│")
        for cells in [[cell.strip() for cell in line.strip("│").split("│")]]
        if cells[0]
    }
    assert rows["shapes"] == ["shapes", "0.1.0", "loaded", "dataset: shapes-v1"]
    assert {"spaces", "keras", "digits", "csv"} <= set(rows)  # the defaults, whatever state
    without = _nasframe(None, "plugins")
    assert "shapes" not in without.stdout  # nothing but the installation made the difference


def test_installed_plugin_is_selected_by_name_in_the_config(installed: Path) -> None:
    config = installed.parent / "run.ini"
    config.write_text("[env]\ndataset = shapes\n\n[shapes]\nsize = 24\n", encoding="utf-8")
    shown = _nasframe(installed, "config", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert f"dataset = shapes  # {config}\n" in shown.stdout
    assert f"[shapes]\nsize = 24  # {config}\nper_class = 200  # default\n" in shown.stdout
    by_flag = _nasframe(installed, "config", "show", "--set", "env.dataset=shapes-v1")
    assert by_flag.returncode == 0, by_flag.stderr
    assert "dataset = shapes-v1  # override\n" in by_flag.stdout
    typo = _nasframe(installed, "config", "show", "--set", "env.dataset=shapez")
    assert typo.returncode == 1
    assert typo.stderr.startswith(
        "error: [env] dataset (override value): unknown dataset 'shapez'; did you mean "
        "'shapes'? (available: "
    )
    assert "shapes-v1" in typo.stderr and typo.stderr.count("\n") == 1
    bad = _nasframe(installed, "config", "show", "--set", "shapes.noise=2")
    assert (bad.returncode, bad.stderr) == (
        1,
        "error: [shapes] noise: 2.0 is above the maximum 1\n",
    )
