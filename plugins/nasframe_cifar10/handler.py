"""The CIFAR-10 dataset handler: splits, normalisation, the ``cifar10-v1`` factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import nasframe
from nasframe import ArrayDataset
from nasframe_cifar10.archive import locate_archive, read_archive

__all__ = ["Cifar10Dataset", "channel_statistics", "make_cifar10"]


def channel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of ``uint8`` images, on the [0, 1] scale.

    Exact and cheap: a 256-bin histogram per channel instead of float copies of the
    images. A constant channel gets a standard deviation of 1 so normalising stays finite.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = np.zeros(3), np.ones(3)
    for channel in range(3):
        counts = np.bincount(images[..., channel].ravel(), minlength=256)
        total = counts.sum()
        if total:
            mean[channel] = counts @ values / total
            variance = counts @ values**2 / total - mean[channel] ** 2
            std[channel] = np.sqrt(variance) if variance > 1e-12 else 1.0
    return mean.astype(np.float32), std.astype(np.float32)


# -- the handler ------------------------------------------------------------------------------


class Cifar10Dataset(ArrayDataset):
    """CIFAR-10: 45,000 train / 5,000 validation by seed, the official 10,000 test images.

    Args:
        data_dir: the folder holding the archive (default: :func:`nasframe.default_data_dir`).
        download: download the archive into ``data_dir`` when it is missing.
        validation: the fraction of the training batches held out for validation.
        seed: the seed of the train/validation split.
        archive: ``python`` (``cifar-10-python.tar.gz``) or ``binary``
            (``cifar-10-binary.tar.gz``); both hold the same images.
        url: where to download the archive from (empty: the published URL).
        md5: the expected MD5 of the archive (empty: the published checksum).
        verify: check the MD5; without it a python archive is still read with the
            restricted unpickler.

    Attributes:
        path: the archive read.
        mean: per-channel mean of the train split, on the [0, 1] scale.
        std: per-channel standard deviation of the train split, on the [0, 1] scale.

    Raises:
        DatasetError: the archive is missing, corrupt, fails the checksum or holds
            something that is not a CIFAR-10 batch.
    """

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        download: bool = False,
        validation: float = 0.1,
        seed: int = 0,
        archive: str = "python",
        url: str = "",
        md5: str = "",
        verify: bool = True,
    ) -> None:
        folder = Path(data_dir).expanduser() if data_dir else nasframe.default_data_dir()
        path = locate_archive(
            folder, download=download, archive=archive, url=url, md5=md5, verify=verify
        )
        (train_x, train_y), (test_x, test_y) = read_archive(path, archive)
        indices = nasframe.split_indices(len(train_y), validation=validation, test=0.0, seed=seed)
        fit_x = train_x[indices["train"]]
        #: per-channel mean and standard deviation of the train split, on the [0, 1] scale
        self.mean, self.std = channel_statistics(fit_x)
        # Pixels are bytes, so normalising is a lookup in a 3 x 256 table: no float64
        # temporaries of the whole split (45,000 images would need 1 GB each).
        table = (np.arange(256, dtype=np.float64)[None, :] / 255.0 - self.mean[:, None]) / (
            self.std[:, None]
        )
        table = table.astype(np.float32)
        channels = np.arange(3)

        def normalise(images: np.ndarray) -> np.ndarray:
            normalised: np.ndarray = table[channels, images]
            return normalised

        super().__init__(
            "cifar10",
            {
                "train": (normalise(fit_x), train_y[indices["train"]]),
                "validation": (
                    normalise(train_x[indices["validation"]]),
                    train_y[indices["validation"]],
                ),
                "test": (normalise(test_x), test_y),
            },
            num_classes=10,
            identity=f"cifar10[validation={validation},seed={seed}]",
        )
        self.path = path


def make_cifar10(**settings: Any) -> Cifar10Dataset:
    """The ``cifar10-v1`` factory: builds :class:`Cifar10Dataset` from ``[cifar10]``."""
    return Cifar10Dataset(**settings)
