"""Translated digits (``shifted-digits-v1``): the benchmark dataset of NSC-Bench.

The bundled 8x8 digits are nearly linearly separable: on them the head-only network (no
layer at all) already reaches 0.83 after three epochs, so architectures barely differ.
Here every digit is resized and pasted at a random position on a larger black canvas.
A dense head on raw pixels must then learn each digit at every position, while a
convolution shares its weights over positions and a pooling layer tolerates the shift:
the architecture matters, which is what a benchmark of architectures needs.

The split is made by *source* digit (scikit-learn's 1,797 images) before any placement,
so no handwritten digit appears in two splits. Each training digit is placed
``placements`` times (data augmentation by translation), each validation and test digit
``eval_placements`` times, all from one seeded generator: the arrays are a pure function
of the settings, and the identity names every one of them.

Needs numpy and scipy only (both come with scikit-learn).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import nasframe
from nasframe import ArrayDataset, DatasetError
from nasframe_digits.images import load_digits_images

__all__ = ["ShiftedDigitsDataset", "make_shifted_digits", "place_on_canvas"]


def place_on_canvas(
    digits: np.ndarray, canvas: int, copies: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paste each ``(n, s, s, 1)`` digit ``copies`` times at random positions on a canvas.

    Returns:
        The ``(n * copies, canvas, canvas, 1)`` images (digit-major: the copies of digit
        0 first) and the index of the source digit of each image.
    """
    n, size = len(digits), digits.shape[1]
    images = np.zeros((n * copies, canvas, canvas, 1), dtype=np.float32)
    rows = rng.integers(0, canvas - size + 1, size=n * copies)
    cols = rng.integers(0, canvas - size + 1, size=n * copies)
    source = np.repeat(np.arange(n), copies)
    for i, (k, r, c) in enumerate(zip(source, rows, cols, strict=True)):
        images[i, r : r + size, c : c + size] = digits[k]
    return images, source


class ShiftedDigitsDataset(ArrayDataset):
    """scikit-learn's digits, resized to ``digit`` pixels, at random places on a canvas.

    Args:
        canvas: the side of the images.
        digit: the side a digit is resized to before it is placed (8 = native).
        placements: random placements of every training digit.
        eval_placements: random placements of every validation and test digit.
        validation: the fraction of source digits in the validation split.
        test: the fraction of source digits in the test split.
        seed: the seed of the split and of the placements.

    Raises:
        DatasetError: the digit does not fit the canvas, a count is below 1, or the
            fractions leave no training digits; the message names ``[shifted_digits]``
            and the key.
    """

    def __init__(
        self,
        *,
        canvas: int = 20,
        digit: int = 12,
        placements: int = 2,
        eval_placements: int = 2,
        validation: float = 0.2,
        test: float = 0.2,
        seed: int = 0,
    ) -> None:
        if digit > canvas:
            raise DatasetError(
                f"[shifted_digits] digit = {digit} is larger than canvas = {canvas}: "
                "a digit must fit on the canvas"
            )
        for key, value in (("placements", placements), ("eval_placements", eval_placements)):
            if value < 1:
                raise DatasetError(f"[shifted_digits] {key} = {value}: must be at least 1")
        try:
            indices = nasframe.split_indices(1797, validation=validation, test=test, seed=seed)
        except DatasetError as exc:
            raise DatasetError(f"[shifted_digits] {exc}") from None
        digits, labels = load_digits_images(digit)
        rng = np.random.default_rng(seed)
        splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in ("train", "validation", "test"):
            copies = placements if split == "train" else eval_placements
            idx = indices[split]
            images, source = place_on_canvas(digits[idx], canvas, copies, rng)
            splits[split] = (images, labels[idx][source])
        self.settings = {
            "canvas": canvas,
            "digit": digit,
            "placements": placements,
            "eval_placements": eval_placements,
            "validation": validation,
            "test": test,
            "seed": seed,
        }
        identity = ",".join(f"{key}={value}" for key, value in self.settings.items())
        super().__init__(
            "shifted-digits", splits, num_classes=10, identity=f"shifted-digits[{identity}]"
        )


def make_shifted_digits(**settings: Any) -> ShiftedDigitsDataset:
    """The ``shifted-digits-v1`` factory, from the ``[shifted_digits]`` section."""
    return ShiftedDigitsDataset(**settings)
