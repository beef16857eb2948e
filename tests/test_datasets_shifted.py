"""``shifted-digits-v1``: the digits at random places on a canvas (NSC-Bench's dataset)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from nasframe_digits import ShiftedDigitsDataset
from nasframe_digits.shifted import place_on_canvas

import nasframe


def test_shapes_counts_and_value_range() -> None:
    data = ShiftedDigitsDataset(canvas=16, digit=8, placements=3, eval_placements=1)
    assert data.input_shape == (16, 16, 1) and data.num_classes == 10
    sources = {"train": 1797 - 359 - 359, "validation": 359, "test": 359}
    assert data.num_examples("train") == 3 * sources["train"]
    assert data.num_examples("validation") == sources["validation"]
    images, labels = data.arrays("train")
    assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    assert set(np.unique(labels)) == set(range(10))


def test_every_image_holds_one_whole_digit_inside_the_canvas() -> None:
    rng = np.random.default_rng(0)
    digits = rng.uniform(0.5, 1.0, size=(5, 4, 4, 1)).astype(np.float32)
    images, source = place_on_canvas(digits, canvas=9, copies=7, rng=rng)
    assert images.shape == (35, 9, 9, 1) and list(source) == [i // 7 for i in range(35)]
    for image, k in zip(images, source, strict=True):
        rows, cols = np.nonzero(image[..., 0])
        top, left = rows.min(), cols.min()
        assert rows.max() - top == 3 and cols.max() - left == 3
        np.testing.assert_array_equal(image[top : top + 4, left : left + 4], digits[k])


def test_placements_vary_and_a_split_never_shares_a_source_digit() -> None:
    data = ShiftedDigitsDataset(canvas=20, digit=12, placements=2, eval_placements=2)
    train, _ = data.arrays("train")
    # the two copies of a digit are the same digit at (almost always) another place
    moved = sum(not np.array_equal(train[2 * i], train[2 * i + 1]) for i in range(100))
    assert moved >= 90
    seen = {
        split: {arr.tobytes() for arr in data.arrays(split)[0]}  # type: ignore[arg-type]
        for split in ("train", "validation", "test")
    }
    assert not seen["train"] & seen["validation"] and not seen["train"] & seen["test"]


def test_the_same_settings_give_the_same_arrays() -> None:
    a, b = ShiftedDigitsDataset(seed=3), ShiftedDigitsDataset(seed=3)
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(a.arrays(split)[0], b.arrays(split)[0])  # type: ignore[arg-type]
    assert a.identity == b.identity


@pytest.mark.parametrize(
    "change",
    [
        {"canvas": 22},
        {"digit": 10},
        {"placements": 3},
        {"eval_placements": 1},
        {"validation": 0.25},
        {"test": 0.1},
        {"seed": 1},
    ],
)
def test_every_data_changing_setting_changes_the_identity(change: dict[str, Any]) -> None:
    assert ShiftedDigitsDataset(**change).identity != ShiftedDigitsDataset().identity


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"canvas": 10, "digit": 12}, r"\[shifted_digits\] digit = 12 is larger than canvas = 10"),
        ({"placements": 0}, r"\[shifted_digits\] placements = 0: must be at least 1"),
        ({"eval_placements": 0}, r"\[shifted_digits\] eval_placements = 0"),
        ({"validation": 0.6, "test": 0.6}, r"\[shifted_digits\] split fractions"),
    ],
)
def test_bad_settings_name_the_section_and_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(nasframe.DatasetError, match=message):
        ShiftedDigitsDataset(**settings)


def test_registered_with_its_own_section(plugin_manager: nasframe.PluginManager) -> None:
    info = plugin_manager.registry("dataset").get("shifted-digits")
    assert info.name == "shifted-digits-v1" and info.section == "shifted_digits"
    config = nasframe.load_config(
        overrides={"shifted_digits": {"canvas": "16", "digit": "8"}},
        plugin_manager=plugin_manager,
    )
    data = plugin_manager.registry("dataset").create(
        "shifted-digits", **config.component_settings(info)
    )
    assert data.input_shape == (16, 16, 1) and "canvas=16" in data.identity
