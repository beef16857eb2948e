"""The bundled dataset ``digits-v1``: offline, seeded splits, resize, registration."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from nasframe_digits import DigitsDataset, load_digits_images

import nasframe
from nasframe import ConfigError, DatasetError


def _hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha256(image.tobytes()).hexdigest() for image in images}


def test_loads_offline_with_seeded_split_sizes_and_types() -> None:
    data = DigitsDataset()
    sizes = {split: data.num_examples(split) for split in ("train", "validation", "test")}
    assert sizes == {"train": 1079, "validation": 359, "test": 359}
    assert data.input_shape == (16, 16, 1)
    assert data.num_classes == 10
    images, labels = data.arrays("train")
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.shape == (1079, 16, 16, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(10))


def test_native_size_keeps_scikit_learn_pixels() -> None:
    from sklearn.datasets import load_digits

    images, labels = load_digits_images(8)
    assert images.shape == (1797, 8, 8, 1)
    np.testing.assert_allclose(images[..., 0], load_digits().images / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(labels, load_digits().target)


def test_resize_upsamples_and_keeps_the_picture() -> None:
    small, _ = load_digits_images(8)
    large, _ = load_digits_images(32)
    assert large.shape == (1797, 32, 32, 1)
    # Averaging 4x4 blocks of the upsampled image gives back (a smoothed) original.
    pooled = large[..., 0].reshape(1797, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.corrcoef(pooled.ravel(), small[..., 0].ravel())[0, 1] > 0.95
    assert np.abs(pooled - small[..., 0]).mean() < 0.1


def test_split_hygiene_no_image_in_two_splits() -> None:
    data = DigitsDataset(resize=8, seed=3)
    hashes = {split: _hashes(data.arrays(split)[0]) for split in ("train", "validation", "test")}
    assert sum(len(h) for h in hashes.values()) == 1797
    assert not hashes["train"] & hashes["validation"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["validation"] & hashes["test"]


def test_seed_decides_the_split_reproducibly() -> None:
    a, b, c = DigitsDataset(seed=1), DigitsDataset(seed=1), DigitsDataset(seed=2)
    np.testing.assert_array_equal(a.arrays("validation")[1], b.arrays("validation")[1])
    assert _hashes(a.arrays("validation")[0]) != _hashes(c.arrays("validation")[0])


def test_identity_names_every_setting_that_changes_the_data() -> None:
    base = DigitsDataset().identity
    others = {
        DigitsDataset(seed=1).identity,
        DigitsDataset(resize=32).identity,
        DigitsDataset(validation=0.3).identity,
        DigitsDataset(test=0.1).identity,
    }
    assert base not in others and len(others) == 4


def test_resize_below_native_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match=r"^\[digits\] resize = 4: must be at least 8"):
        DigitsDataset(resize=4)


def test_bad_split_fractions_are_a_clear_error() -> None:
    with pytest.raises(DatasetError, match="must be >= 0 and sum to < 1"):
        DigitsDataset(validation=0.6, test=0.5)


def test_registered_with_its_config_section(plugin_manager: nasframe.PluginManager) -> None:
    info = plugin_manager.registry("dataset").get("digits")
    assert info.name == "digits-v1" and info.section == "digits" and info.requires == ()
    config = nasframe.load_config(
        overrides={"digits": {"resize": "8", "seed": "5"}}, plugin_manager=plugin_manager
    )
    data = plugin_manager.registry("dataset").create("digits", **config.section("digits"))
    assert data.input_shape == (8, 8, 1)
    assert data.identity == "digits[resize=8,validation=0.2,test=0.2,seed=5]"


def test_config_rejects_a_too_small_resize(plugin_manager: nasframe.PluginManager) -> None:
    with pytest.raises(ConfigError, match=r"\[digits\] resize: 4 is below the minimum 8"):
        nasframe.load_config(overrides={"digits": {"resize": 4}}, plugin_manager=plugin_manager)


def test_arrays_do_not_import_tensorflow() -> None:
    code = (
        "import sys, nasframe_digits\n"
        "nasframe_digits.DigitsDataset().arrays('train')\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tf_pipeline_batches_the_train_split() -> None:
    data = DigitsDataset()
    batches = list(data.tf_dataset("train", batch_size=256, shuffle=True, seed=0))
    assert [len(y) for _, y in batches] == [256, 256, 256, 256, 55]
    assert batches[0][0].shape == (256, 16, 16, 1)
