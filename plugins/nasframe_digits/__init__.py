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

import numpy as np

import nasframe
from nasframe import ArrayDataset, ConfigSchema, DatasetError, Registry

__all__ = ["DigitsDataset", "load_digits_images", "make_digits"]

#: The side of the images as scikit-learn ships them.
NATIVE_SIZE = 8


def load_digits_images(resize: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``float32`` images ``(n, resize, resize, 1)`` in [0, 1], and labels.

    Args:
        resize: the side of the returned images; 8 keeps the originals, larger values
            are bilinear upsampling (``scipy.ndimage.zoom``, order 1).

    Raises:
        DatasetError: ``resize`` is smaller than 8.
    """
    from scipy import ndimage  # type: ignore[import-untyped]  # scikit-learn depends on scipy
    from sklearn.datasets import load_digits

    if resize < NATIVE_SIZE:
        raise DatasetError(
            f"[digits] resize = {resize}: must be at least {NATIVE_SIZE} (the native size)"
        )
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0  # grey levels 0..16
    if resize != NATIVE_SIZE:
        factor = resize / NATIVE_SIZE
        # grid_mode scales pixel areas (not pixel centres), so the output is exactly
        # resize x resize and the border pixels are not stretched.
        images = ndimage.zoom(images, (1, factor, factor), order=1, grid_mode=True, mode="nearest")
        images = np.clip(images, 0.0, 1.0).astype(np.float32)
    return images[..., np.newaxis], np.asarray(bunch.target, dtype=np.int64)


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
        indices = nasframe.split_indices(len(labels), validation=validation, test=test, seed=seed)
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
def nasframe_register_datasets(registry: Registry) -> None:
    """Register ``digits-v1``."""
    registry.add(
        "digits-v1",
        make_digits,
        summary="scikit-learn's 8x8 digits (bundled, offline), resized; seeded split",
        section="digits",
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
