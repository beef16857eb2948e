"""``digit-tasks-v1``: offline task variants of the shifted digits (issue 29)."""

from __future__ import annotations

import numpy as np
import pytest
from nasframe_digits import TASKS, DigitTask, DigitTaskDataset, ShiftedDigitsDataset
from nasframe_digits.tasks import distort

import nasframe
from nasframe import DatasetError


def _small(task: str = "base", **settings: object) -> DigitTaskDataset:
    return DigitTaskDataset(task=task, placements=1, eval_placements=1, **settings)  # type: ignore[arg-type]


def test_the_base_task_is_exactly_nsc_bench_v3s_dataset() -> None:
    task = DigitTaskDataset(task="base")
    v3 = ShiftedDigitsDataset(canvas=20, digit=12, placements=4, eval_placements=2)
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(task.arrays(split)[0], v3.arrays(split)[0])
        np.testing.assert_array_equal(task.arrays(split)[1], v3.arrays(split)[1])


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_is_deterministic_in_range_and_split_by_source(name: str) -> None:
    a, b = _small(name), _small(name)
    spec = TASKS[name]
    assert a.input_shape == (spec.canvas, spec.canvas, 1) and a.num_classes == 10
    for split in ("train", "validation", "test"):
        xa, ya = a.arrays(split)
        xb, yb = b.arrays(split)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert xa.dtype == np.float32 and xa.min() >= 0 and xa.max() <= 1
        assert set(np.unique(ya)) == set(range(10))
    # split by source digit: the validation split is the same 359 source digits as
    # the shifted digits' with the same seed, whatever the task does to them
    assert a.num_examples("validation") == 359 and a.num_examples("test") == 359
    expected_train = round((1797 - 2 * 359) * spec.train_fraction)
    assert a.num_examples("train") == expected_train


def test_the_identity_names_the_task_and_changes_with_every_setting() -> None:
    base = _small().identity
    assert base.startswith("digit-tasks[task=base,canvas=20,digit=12,")
    changed = {
        _small(**{key: value}).identity  # type: ignore[arg-type]
        for key, value in [
            ("canvas", 22),
            ("digit", 10),
            ("rotation", 10.0),
            ("clutter", 1),
            ("occlusion", 2),
            ("invert", True),
            ("noise", 0.1),
            ("salt", 0.05),
            ("train_fraction", 0.5),
            ("seed", 1),
            ("validation", 0.25),
        ]
    }
    assert base not in changed and len(changed) == 11
    assert len({_small(name).identity for name in TASKS}) == len(TASKS)


def test_the_tasks_differ_in_their_images() -> None:
    means = {name: float(_small(name).arrays("train")[0].mean()) for name in TASKS}
    assert len({round(m, 4) for m in means.values()}) == len(TASKS)
    assert means["salt"] > means["base"]  # white pixels everywhere


def test_transformations_do_what_they_say() -> None:
    rng = np.random.default_rng(0)
    digits = np.ones((3, 8, 8, 1), dtype=np.float32)
    plain, source = distort(digits, DigitTask(canvas=12, digit=8), 2, rng)
    assert plain.shape == (6, 12, 12, 1) and list(source) == [0, 0, 1, 1, 2, 2]
    assert all(image.sum() == 64 for image in plain)  # one whole digit each
    occluded, _ = distort(digits, DigitTask(canvas=12, digit=8, occlusion=3), 2, rng)
    assert all(image.sum() == 64 - 9 for image in occluded)
    inverted, _ = distort(digits, DigitTask(canvas=12, digit=8, invert=True), 1, rng)
    assert all(image.sum() == 144 - 64 for image in inverted)
    cluttered, _ = distort(digits, DigitTask(canvas=20, digit=8, clutter=3), 1, rng)
    assert all(image.sum() > 64 for image in cluttered)  # fragments outside the digit
    salted, _ = distort(digits, DigitTask(canvas=12, digit=8, salt=0.5), 1, rng)
    background = salted[plain[:3] == 0]
    assert set(np.unique(background)) == {0.0, 1.0} and 0.3 < background.mean() < 0.7
    noisy, _ = distort(digits, DigitTask(canvas=12, digit=8, noise=0.2), 1, rng)
    assert noisy.min() >= 0 and noisy.max() <= 1 and 0 < (noisy[plain[:3] == 0] > 0).mean() < 1


def test_the_dataset_is_registered_with_its_section() -> None:
    manager = nasframe.get_plugin_manager()
    info = manager.registry("dataset").get("digit-tasks")
    assert (info.name, info.section) == ("digit-tasks-v1", "digit_tasks")
    config = nasframe.load_config(
        overrides={
            "digit_tasks": {"task": "base", "canvas": "14", "placements": "1", "rotation": "5"}
        },
        plugin_manager=manager,
    )
    assert config.get("digit_tasks", "digit") is None  # empty: the task's own
    data = manager.registry("dataset").create("digit-tasks", **config.section("digit_tasks"))
    assert isinstance(data, DigitTaskDataset) and data.input_shape == (14, 14, 1)
    assert data.spec == DigitTask(canvas=14, digit=12, rotation=5.0)
    with pytest.raises(nasframe.ConfigError, match=r"\[digit_tasks\] task"):
        nasframe.load_config(overrides={"digit_tasks": {"task": "nope"}}, plugin_manager=manager)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"task": "nope"}, "[digit_tasks] task = 'nope': unknown; the tasks are base, small"),
        ({"digit": 30}, "[digit_tasks] digit = 30, canvas = 20: need 8 <= digit <= canvas"),
        ({"occlusion": 13}, "[digit_tasks] occlusion = 13: larger than digit = 12"),
        ({"noise": -1.0}, "[digit_tasks] noise = -1.0: must be >= 0"),
        ({"salt": 1.0}, "[digit_tasks] salt = 1.0: must be below 1"),
        ({"train_fraction": 0.0}, "[digit_tasks] train_fraction = 0.0: must be in (0, 1]"),
        ({"placements": 0}, "[digit_tasks] placements = 0: must be at least 1"),
        ({"colour": 1}, "[digit_tasks] colour: not a task setting (canvas, clutter, digit"),
        ({"validation": 0.6, "test": 0.5}, "[digit_tasks] split fractions"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(settings: dict, message: str) -> None:
    with pytest.raises(DatasetError) as error:
        DigitTaskDataset(**settings)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
