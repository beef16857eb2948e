"""The bundled offline dataset: scikit-learn's 8x8 handwritten digits (``digits-v1``).

scikit-learn ships the 1,797 images inside its wheel, so the quick start and the tests
run without a network. The images are 8x8 grey levels 0..16; with NASGym's valid-padding
convolutions and stride-k pooling an 8x8 input leaves room for very few layers, so the
handler resizes them (bilinear, ``[digits] resize``, default 16) to give the search space
room for non-trivial networks. See ``docs/datasets.md``.

The handler needs numpy and scipy only (both come with scikit-learn); TensorFlow is
imported only when an estimator asks for a ``tf.data`` pipeline.
"""

from __future__ import annotations

from typing import Any

import nasframe
from nasframe import ArrayDataset, ConfigSchema, DatasetHandler, Registry
from nasframe_digits.images import NATIVE_SIZE, load_digits_images
from nasframe_digits.shifted import ShiftedDigitsDataset, make_shifted_digits
from nasframe_digits.tasks import TASKS, DigitTask, DigitTaskDataset, make_digit_tasks

__all__ = [
    "NATIVE_SIZE",
    "TASKS",
    "DigitTask",
    "DigitTaskDataset",
    "DigitsDataset",
    "ShiftedDigitsDataset",
    "load_digits_images",
    "make_digit_tasks",
    "make_digits",
    "make_shifted_digits",
]


class DigitsDataset(ArrayDataset):
    """scikit-learn's digits split by seed into train / validation / test.

    Args:
        resize: the side of the images (8 = native; default 16).
        validation: the fraction of images in the validation split.
        test: the fraction of images in the test split.
        seed: the seed of the split.

    Raises:
        DatasetError: ``resize`` is below 8 or the fractions leave no training images.
    """

    def __init__(
        self, *, resize: int = 16, validation: float = 0.2, test: float = 0.2, seed: int = 0
    ) -> None:
        images, labels = load_digits_images(resize)
        indices = nasframe.split_indices(
            len(labels), validation=validation, test=test, seed=seed, section="digits"
        )
        super().__init__(
            "digits",
            {split: (images[idx], labels[idx]) for split, idx in indices.items()},
            num_classes=10,
            identity=f"digits[resize={resize},validation={validation},test={test},seed={seed}]",
        )
        self.settings = {"resize": resize, "validation": validation, "test": test, "seed": seed}


def make_digits(**settings: Any) -> DigitsDataset:
    """The ``digits-v1`` factory: builds :class:`DigitsDataset` from the ``[digits]`` section."""
    return DigitsDataset(**settings)


@nasframe.hookimpl(trylast=True)
def nasframe_register_datasets(registry: Registry[DatasetHandler]) -> None:
    """Register ``digits-v1``, ``shifted-digits-v1`` and ``digit-tasks-v1``."""
    registry.add(
        "digits-v1",
        make_digits,
        summary="scikit-learn's 8x8 digits (bundled, offline), resized; seeded split",
        section="digits",
    )
    registry.add(
        "shifted-digits-v1",
        make_shifted_digits,
        summary="the digits at random places on a larger canvas (NSC-Bench's dataset; offline)",
        section="shifted_digits",
    )
    registry.add(
        "digit-tasks-v1",
        make_digit_tasks,
        summary="offline tasks for meta-learning: the shifted digits varied in what pays "
        f"({', '.join(TASKS)})",
        section="digit_tasks",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: ConfigSchema) -> None:
    """Declare the ``[digits]`` section."""
    section = schema.section("digits", "The bundled dataset: scikit-learn's 8x8 digits.")
    section.add("resize", int, 16, "side of the images after bilinear resizing (8: native)", min=8)
    section.add(
        "validation", float, 0.2, "fraction of images in the validation split", min=0, max=0.9
    )
    section.add("test", float, 0.2, "fraction of images in the test split", min=0, max=0.9)
    section.add("seed", int, 0, "seed of the train/validation/test split", min=0)
    section = schema.section(
        "shifted_digits",
        "Translated digits (NSC-Bench): the bundled digits at random places on a canvas.",
    )
    section.add("canvas", int, 20, "side of the images", min=8)
    section.add("digit", int, 12, "side a digit is resized to before it is placed", min=8)
    section.add("placements", int, 2, "random placements of every training digit", min=1)
    section.add(
        "eval_placements", int, 2, "random placements of every validation/test digit", min=1
    )
    section.add(
        "validation",
        float,
        0.2,
        "fraction of source digits in the validation split",
        min=0,
        max=0.9,
    )
    section.add("test", float, 0.2, "fraction of source digits in the test split", min=0, max=0.9)
    section.add("seed", int, 0, "seed of the split and of the placements", min=0)
    section = schema.section(
        "digit_tasks",
        "Offline tasks for meta-learning: the shifted digits, varied in what pays (docs/tasks.md).",
    )
    section.add("task", str, "base", "the named task", choices=tuple(TASKS))
    section.add("placements", int, 4, "random placements of every training digit", min=1)
    section.add(
        "eval_placements", int, 2, "random placements of every validation/test digit", min=1
    )
    section.add(
        "validation",
        float,
        0.2,
        "fraction of source digits in the validation split",
        min=0,
        max=0.9,
    )
    section.add("test", float, 0.2, "fraction of source digits in the test split", min=0, max=0.9)
    section.add("seed", int, 0, "seed of the split, the placements and the transformations", min=0)
    # every DigitTask field, empty by default: the named task's own value
    section.add("canvas", int, None, "side of the images (empty: the task's)", min=8, optional=True)
    section.add(
        "digit", int, None, "side a digit is resized to (empty: the task's)", min=8, optional=True
    )
    section.add(
        "rotation",
        float,
        None,
        "largest rotation, degrees (empty: the task's)",
        min=0,
        optional=True,
    )
    section.add(
        "clutter",
        int,
        None,
        "fragments of other digits per image (empty: the task's)",
        min=0,
        optional=True,
    )
    section.add(
        "occlusion",
        int,
        None,
        "side of a black square over each digit (empty: the task's)",
        min=0,
        optional=True,
    )
    section.add("invert", bool, None, "dark digits on light (empty: the task's)", optional=True)
    section.add(
        "noise", float, None, "Gaussian pixel noise, std (empty: the task's)", min=0, optional=True
    )
    section.add(
        "salt",
        float,
        None,
        "fraction of pixels set white (empty: the task's)",
        min=0,
        below=1,
        optional=True,
    )
    section.add(
        "train_fraction",
        float,
        None,
        "fraction of training source digits kept (empty: the task's)",
        above=0,
        max=1,
        optional=True,
    )
