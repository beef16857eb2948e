"""CIFAR-10 from the official archive (``cifar10-v1``).

Reads ``cifar-10-python.tar.gz`` (the python version published at
https://www.cs.toronto.edu/~kriz/cifar.html), or with ``[cifar10] archive = binary`` the
binary version ``cifar-10-binary.tar.gz``, from a data folder, or downloads it there
when ``[cifar10] download = yes``, checking its MD5 checksum. The python batches are
pickles; they are read with :class:`BatchUnpickler`, which admits only the types a
CIFAR-10 batch holds, so a crafted archive cannot run code. The binary batches are fixed
3,073-byte records and are parsed, never unpickled.

Splits: the 50,000 training images are split by seed into 45,000 train / 5,000
validation (``validation = 0.1``); the 10,000 official test images are the test split.
Images are normalised per channel with the mean and standard deviation of the train
split. NASGym validated (and so rewarded) on the official test set and its handler broke
every evaluation; both are fixed here. See ``docs/datasets.md``.

The package holds the archive reading (:mod:`nasframe_cifar10.archive`), the handler
(:mod:`nasframe_cifar10.handler`) and, here, the hooks and the ``[cifar10]`` section.
"""

from __future__ import annotations

from pathlib import Path

import nasframe
from nasframe import ConfigSchema, DatasetHandler, Registry
from nasframe_cifar10.archive import (
    ARCHIVE_MD5,
    ARCHIVE_NAME,
    ARCHIVE_URL,
    FORMATS,
    ArchiveFormat,
    BatchUnpickler,
    download_archive,
    locate_archive,
    md5_of,
    read_archive,
)
from nasframe_cifar10.handler import Cifar10Dataset, channel_statistics, make_cifar10

__all__ = [
    "ARCHIVE_MD5",
    "ARCHIVE_NAME",
    "ARCHIVE_URL",
    "FORMATS",
    "ArchiveFormat",
    "BatchUnpickler",
    "Cifar10Dataset",
    "channel_statistics",
    "download_archive",
    "locate_archive",
    "make_cifar10",
    "md5_of",
    "read_archive",
]


@nasframe.hookimpl(trylast=True)
def nasframe_register_datasets(registry: Registry[DatasetHandler]) -> None:
    """Register ``cifar10-v1``."""
    registry.add(
        "cifar10-v1",
        make_cifar10,
        summary="CIFAR-10 from the official archive; 45k/5k/10k split, per-channel normalised",
        section="cifar10",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: ConfigSchema) -> None:
    """Declare the ``[cifar10]`` section."""
    section = schema.section("cifar10", "CIFAR-10 from the official archive.")
    section.add(
        "data_dir",
        Path,
        None,
        "folder of the archive (empty: $NASFRAME_DATA_DIR or ~/.cache/nasframe/data)",
        optional=True,
    )
    section.add(
        "archive",
        str,
        "python",
        "python (cifar-10-python.tar.gz) or binary (cifar-10-binary.tar.gz)",
        choices=tuple(FORMATS),
    )
    section.add("download", bool, False, "download the archive when it is missing")
    section.add(
        "validation",
        float,
        0.1,
        "fraction of the 50,000 training images for validation",
        min=0.0,
        max=0.9,
    )
    section.add("seed", int, 0, "seed of the train/validation split", min=0)
    section.add("url", str, "", "where to download the archive from (empty: the published URL)")
    section.add("md5", str, "", "expected MD5 of the archive (empty: the published checksum)")
    section.add("verify", bool, True, "check the archive's MD5 checksum")
