"""Dataset helpers for handler authors: an in-memory handler and a seeded split.

:class:`ArrayDataset` is a complete :class:`~nasframe.contracts.DatasetHandler` over
numpy arrays. Handlers whose data fits in memory (the bundled digits, CIFAR-10) build on
it; a user can also pass one straight to :func:`nasframe.make_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nasframe.contracts import DatasetHandler, Split
from nasframe.errors import DatasetError

__all__ = ["SPLITS", "ArrayDataset", "default_data_dir", "split_indices"]

#: The split names, in order.
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


def default_data_dir() -> Path:
    """The folder datasets live in: ``$NASFRAME_DATA_DIR``, else ``~/.cache/nasframe/data``.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache`` where it is set. Dataset plugins that read
    or download files default to a folder below this one.
    """
    explicit = os.environ.get("NASFRAME_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "nasframe" / "data"


def split_indices(
    n: int, *, validation: float, test: float, seed: int, section: str = ""
) -> dict[Split, np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into disjoint train/validation/test.

    ``section`` names the configuration section of the fractions in the error message.

    Raises:
        DatasetError: the fractions are negative or leave no training examples.
    """
    if validation < 0 or test < 0 or validation + test >= 1:
        where = f"[{section}] " if section else ""
        raise DatasetError(
            f"{where}split fractions validation={validation} and test={test} must be >= 0 "
            "and sum to < 1"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * validation), round(n * test)
    return {
        "validation": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
        "train": np.sort(order[n_val + n_test :]),
    }


class ArrayDataset(DatasetHandler):
    """A dataset held in memory as numpy arrays, one ``(images, labels)`` pair per split.

    Args:
        name: the dataset's name (and its only task).
        splits: ``{"train": (x, y), "validation": (x, y), "test": (x, y)}``; images are
            ``(n, h, w, c)`` or ``(n, h, w)`` (a channel is added) and become ``float32``,
            labels become ``int64`` in ``0 .. classes-1``.
        num_classes: the number of classes; by default one more than the largest label.
        identity: the cache identity of the data (default: ``name``). Include every
            setting that changes the arrays (split seed, resize, normalisation).

    Raises:
        DatasetError: a split is missing or empty, or shapes do not agree.
    """

    def __init__(
        self,
        name: str,
        splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
        *,
        num_classes: int | None = None,
        identity: str | None = None,
    ) -> None:
        self.name = name
        self._identity = identity or name
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in SPLITS:
            if split not in splits:
                raise DatasetError(f"dataset {name!r} has no {split!r} split")
            images, labels = splits[split]
            images = np.asarray(images, dtype=np.float32)
            if images.ndim == 3:
                images = images[..., np.newaxis]
            labels = np.asarray(labels).astype(np.int64).reshape(-1)
            if images.ndim != 4 or len(images) != len(labels):
                raise DatasetError(
                    f"dataset {name!r} split {split!r}: images {images.shape} and labels "
                    f"{labels.shape} do not match (need (n, h, w, c) and (n,))"
                )
            if split != "test" and len(labels) == 0:
                raise DatasetError(f"dataset {name!r} split {split!r} is empty")
            self._splits[split] = (images, labels)
        shapes = {images.shape[1:] for images, _ in self._splits.values() if len(images)}
        if len(shapes) != 1:
            raise DatasetError(f"dataset {name!r}: splits have different image shapes {shapes}")
        self._shape = tuple(int(v) for v in shapes.pop())
        top = max(int(labels.max()) for _, labels in self._splits.values() if len(labels))
        self._classes = num_classes if num_classes is not None else top + 1
        if top >= self._classes:
            raise DatasetError(f"dataset {name!r}: label {top} >= num_classes {self._classes}")

    @classmethod
    def from_arrays(
        cls,
        name: str,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        validation: float = 0.2,
        test: float = 0.2,
        seed: int = 0,
        num_classes: int | None = None,
    ) -> ArrayDataset:
        """Split one pair of arrays by ``seed`` into train / validation / test."""
        indices = split_indices(len(labels), validation=validation, test=test, seed=seed)
        images, labels = np.asarray(images), np.asarray(labels)
        return cls(
            name,
            {split: (images[idx], labels[idx]) for split, idx in indices.items()},
            num_classes=num_classes,
            identity=f"{name}[val={validation},test={test},seed={seed}]",
        )

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w, c = self._shape
        return (h, w, c)

    @property
    def num_classes(self) -> int:
        return self._classes

    def num_examples(self, split: Split) -> int:
        return len(self._split(split)[1])

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        return self._split(split)

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._splits:
            raise DatasetError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
        return self._splits[split]
