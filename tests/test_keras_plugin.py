"""The Keras estimator plugin without TensorFlow: registration, settings, fingerprint."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from nasframe_keras.estimator import KerasEstimator
from nasframe_keras.settings import RESULT_SETTINGS, KerasSettings

import nasframe
from nasframe import ConfigError, load_config


def test_registered_with_its_section_and_extra(plugin_manager: nasframe.PluginManager) -> None:
    info = plugin_manager.registry("estimator").get("keras")
    assert info.name == "keras-v1"
    assert info.section == "keras"
    assert info.requires == ("tensorflow",)
    assert info.extra == "tensorflow"
    assert plugin_manager.statuses["keras"].status == "loaded"


def test_plugin_listing_building_and_closing_do_not_import_tensorflow() -> None:
    code = (
        "import sys, nasframe, nasframe_keras\n"
        "pm = nasframe.get_plugin_manager()\n"
        "pm.registries(); nasframe.load_config(plugin_manager=pm)\n"
        "est = pm.registry('estimator').create('keras-v1')\n"
        "est.fingerprint()\n"
        "est.close()  # what a Ray driver does at the end of a search\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_config_defaults_are_nasgyms(plugin_manager: nasframe.PluginManager) -> None:
    section = load_config(plugin_manager=plugin_manager).section("keras")
    assert section["epochs"] == 12
    assert section["batch_size"] == 128
    assert section["learning_rate"] == pytest.approx(1e-3)
    assert (section["beta1"], section["beta2"], section["epsilon"]) == (0.9, 0.999, 1e-8)
    assert (section["lr_decay"], section["lr_decay_epochs"]) == (0.2, 5)
    assert (section["filters"], section["fc_units"], section["dropout"]) == (32, 1024, 0.4)
    assert (section["padding"], section["builder"]) == ("valid", "nasgym-v1")
    assert (section["patience"], section["time_budget"]) == (0, 0.0)
    assert not (section["mixed_precision"] or section["jit_compile"] or section["memory_growth"])
    # the configuration section builds exactly the default settings
    estimator = plugin_manager.registry("estimator").create("keras-v1", **section)
    assert estimator.settings == KerasSettings()


def test_bad_config_value_is_one_line(plugin_manager: nasframe.PluginManager) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(overrides={"keras": {"padding": "vaild"}}, plugin_manager=plugin_manager)
    assert (
        str(error.value)
        == "[keras] padding: 'vaild' is not one of valid, same; did you mean 'valid'?"
    )
    with pytest.raises(ConfigError, match=r"\[keras\] epochs: 0 is below the minimum 1"):
        load_config(overrides={"keras": {"epochs": "0"}}, plugin_manager=plugin_manager)
    # [keras] builder names a registered builder: checked against the builder registry
    config = load_config(overrides={"keras": {"builder": "nasgymm"}}, plugin_manager=plugin_manager)
    with pytest.raises(ConfigError) as error:
        nasframe.check_components(config, plugin_manager)
    assert str(error.value).startswith(
        "[keras] builder (override value): unknown builder 'nasgymm'; did you mean 'nasgym"
    )


def test_bad_keyword_settings_are_one_line() -> None:
    with pytest.raises(ConfigError) as error:
        KerasSettings.from_mapping({"epoch": 3})
    assert "unknown key 'epoch' in section [keras]; did you mean 'epochs'?" in str(error.value)
    with pytest.raises(ConfigError, match=r"\[keras\] padding: 'full' is not one of valid, same"):
        KerasSettings(padding="full")
    with pytest.raises(ConfigError, match=r"\[keras\] dropout: 1.5 must be in \[0, 1\)"):
        KerasSettings(dropout=1.5)
    with pytest.raises(ConfigError, match=r"\[keras\] builder: 'x' is not one of"):
        KerasSettings(builder="x")


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5 + 0.01
    changes = {"valid": "same", "nasgym-v1": "blockqnn-v1", "none": "shift"}
    return {**changes, "recompute": "momentum"}[str(value)]


@pytest.mark.parametrize("name", RESULT_SETTINGS)
def test_fingerprint_changes_with_every_result_setting(name: str) -> None:
    # The stacked builder's settings count only when that builder is used.
    base = KerasSettings(builder="blockqnn-v1") if name in ("stages", "blocks_per_stage") else None
    # the momentum counts only when it is the batch-norm mechanism
    base = base or KerasSettings(
        batch_norm="momentum" if name == "batch_norm_momentum" else "recompute"
    )
    other = dataclasses.replace(base, **{name: _changed(getattr(base, name))})
    assert KerasEstimator(base).fingerprint() != KerasEstimator(other).fingerprint()


def test_fingerprint_ignores_what_cannot_change_a_result() -> None:
    base = KerasEstimator().fingerprint()
    assert KerasEstimator(KerasSettings(memory_growth=True)).fingerprint() == base
    # the NASGym builder does not stack, so the stacking settings do not split its cache
    assert KerasEstimator(KerasSettings(stages=5)).fingerprint() == base
    assert base == KerasEstimator(KerasSettings()).fingerprint()
    assert base.startswith("keras-1-")


def test_deterministic_unless_xla() -> None:
    assert KerasEstimator().deterministic
    assert not KerasEstimator(KerasSettings(deterministic=False)).deterministic
    # XLA has no deterministic max-pooling gradient: no op determinism with jit_compile
    assert not KerasEstimator(KerasSettings(jit_compile=True)).deterministic


def test_fingerprint_of_the_defaults_is_pinned() -> None:
    # Settings added later (augmentation) enter the fingerprint only when used, so every
    # cache written before them stays valid. Trainer 2 (settled batch-norm statistics)
    # changed the defaults' fingerprint; batch_norm = as-built is trainer 1, whose
    # fingerprints are the values before it existed.
    assert KerasEstimator().fingerprint() == "keras-1-9c7e276fefe7"
    old = KerasSettings(batch_norm="as-built")
    assert KerasEstimator(old).fingerprint() == "keras-1-0f07b01c1283"
    stacked = KerasSettings(builder="blockqnn-v1", epochs=3, batch_norm="as-built")
    assert KerasEstimator(stacked).fingerprint() == "keras-1-446e5a4c459e"
    assert "batch_norm" not in old.result_settings()
    assert "augmentation" not in KerasSettings().result_settings()
    shifted = KerasSettings(augmentation="shift")
    assert KerasEstimator(shifted).fingerprint() != KerasEstimator().fingerprint()


def test_augmentation_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"\[keras\] augmentation: 'shfit' is not one of"):
        KerasSettings(augmentation="shfit")
