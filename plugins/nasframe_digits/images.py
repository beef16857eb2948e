"""Loading scikit-learn's 8x8 digits as float images, resized."""

from __future__ import annotations

import numpy as np

from nasframe import DatasetError

__all__ = ["NATIVE_SIZE", "load_digits_images"]

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
