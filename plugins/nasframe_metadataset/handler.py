"""The meta-dataset handler: tasks, splits, caching, the ``metadataset-v1`` factory."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import nasframe
from nasframe import DatasetError, DatasetHandler, Split

if TYPE_CHECKING:
    import tensorflow as tf
from nasframe_metadataset.shards import (
    _CODES,
    _SKIPPED,
    ShardIndex,
    UndecodableImagesWarning,
    _decode,
    _features,
    _read_index,
    _shards,
    _write_index,
    scan_dataset,
)

__all__ = ["CLASS_COUNTS", "MetaDatasetHandler", "make_metadataset", "parse_tasks"]

#: The datasets NASGym supported and their numbers of classes (SEED-BEHAVIOUR.md §5).
CLASS_COUNTS: dict[str, int] = {
    "aircraft": 100,
    "cu_birds": 200,
    "dtd": 47,
    "fungi": 1394,
    "omniglot": 1623,
    "quickdraw": 345,
    "traffic_sign": 43,
    "vgg_flower": 102,
}


def parse_tasks(tasks: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The dataset ids of ``tasks`` (a comma-separated string or a sequence).

    Raises:
        DatasetError: an id is unknown (the message lists the known ones) or none is given.
    """
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    ids = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not ids:
        raise DatasetError(
            f"[metadataset] tasks is empty; name one or more of: {', '.join(CLASS_COUNTS)}"
        )
    for task in ids:
        if task not in CLASS_COUNTS:
            raise DatasetError(
                f"unknown meta-dataset id {task!r}{nasframe.closest(task, CLASS_COUNTS)} "
                f"(known: {', '.join(CLASS_COUNTS)})"
            )
    return ids


class MetaDatasetHandler(DatasetHandler):
    """One or more meta-dataset datasets as tasks, read from converted TFRecord shards.

    Args:
        root: the folder holding one sub-folder of shards per dataset id (default:
            ``<data folder>/metadataset``).
        tasks: the dataset ids (comma-separated or a sequence); the first is selected.
        image_size: the side images are resized to.
        train: the fraction of the non-test records used for training (NASGym: 0.67).
        test: the fraction of all records held out as the test split.
        seed: the seed of the split shuffle.
        cache_mb: a split whose decoded images fit in this many MB is decoded once and
            kept in memory; larger splits are decoded on the fly every epoch (0: never).

    Raises:
        DatasetError: an id is unknown, the first dataset's folder is missing or empty,
            or a shard is broken.
    """

    name = "metadataset"

    def __init__(
        self,
        *,
        root: Path | str | None = None,
        tasks: str | list[str] | tuple[str, ...] = "omniglot",
        image_size: int = 84,
        train: float = 0.67,
        test: float = 0.0,
        seed: int = 0,
        cache_mb: int = 2048,
    ) -> None:
        if not 0 < train < 1 or not 0 <= test < 1:
            raise DatasetError(
                f"[metadataset] train = {train} must be in (0, 1) and test = {test} in [0, 1)"
            )
        if image_size < 1:
            raise DatasetError(f"[metadataset] image_size = {image_size} must be at least 1")
        self.root = Path(root).expanduser() if root else nasframe.default_data_dir() / "metadataset"
        self._tasks = parse_tasks(tasks)
        self.image_size, self.train_fraction, self.test_fraction = image_size, train, test
        self.seed, self.cache_mb = seed, cache_mb
        self._task = self._tasks[0]
        self._indexes: dict[str, ShardIndex] = {}
        self._codes: dict[str, np.ndarray] = {}
        self._memory: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._load(self._task)

    # -- tasks ---------------------------------------------------------------------------
    @property
    def tasks(self) -> tuple[str, ...]:
        """The dataset ids this handler switches between."""
        return self._tasks

    @property
    def task(self) -> str:
        """The selected dataset id."""
        return self._task

    def select_task(self, task: str) -> None:
        """Select dataset ``task``; its index is read (or built, once) on first selection.

        Raises:
            DatasetError: ``task`` is not one of :attr:`tasks`, or its folder is missing.
        """
        super().select_task(task)
        self._load(task)
        self._task = task

    @property
    def identity(self) -> str:
        """``metadataset/<id>[...]`` with every setting that changes the data."""
        return (
            f"metadataset/{self._task}[size={self.image_size},train={self.train_fraction},"
            f"test={self.test_fraction},seed={self.seed}]"
        )

    # -- shape and counts ------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(image_size, image_size, 3)``."""
        return (self.image_size, self.image_size, 3)

    @property
    def num_classes(self) -> int:
        """The number of classes of the selected dataset (SEED-BEHAVIOUR.md §5)."""
        return CLASS_COUNTS[self._task]

    def num_examples(self, split: Split) -> int:
        """The number of records of ``split`` (from the cached index; reads no record)."""
        return int(np.count_nonzero(self._codes[self._task] == _code(split)))

    def folder(self, task: str | None = None) -> Path:
        """The shard folder of ``task`` (default: the selected one)."""
        return self.root / (task or self._task)

    # -- data ------------------------------------------------------------------------------
    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """``split`` decoded into memory (kept when it fits in ``cache_mb``)."""
        key = (self._task, split)
        if key in self._memory:
            return self._memory[key]
        images, labels = [], []
        for x, y in self._stream(split, shuffle=False, seed=None).batch(512):
            images.append(x.numpy())
            labels.append(y.numpy())
        size = self.image_size
        result = (
            np.concatenate(images) if images else np.zeros((0, size, size, 3), np.float32),
            np.concatenate(labels) if labels else np.zeros(0, np.int64),
        )
        if self._fits(split):
            self._memory[key] = result
        return result

    def tf_dataset(
        self,
        split: Split,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> tf.data.Dataset:
        """``split`` as a batched, prefetched pipeline, reshuffled every epoch from ``seed``.

        A split that fits in ``cache_mb`` is decoded once and served from memory; a larger
        one is shuffled as raw records and decoded on every epoch (its raw records are
        kept in memory after the first epoch when they fit in ``cache_mb``).
        """
        import tensorflow as tf

        if self._fits(split):
            return super().tf_dataset(split, batch_size=batch_size, shuffle=shuffle, seed=seed)
        data = self._stream(split, shuffle=shuffle, seed=seed)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def __getstate__(self) -> dict[str, Any]:
        # A copy sent to a worker process re-decodes what it needs from the shards rather
        # than carrying up to cache_mb of decoded images through the pickle.
        state = super().__getstate__()
        state["_memory"] = {}
        return state

    # -- internals -------------------------------------------------------------------------
    def _fits(self, split: Split) -> bool:
        size = self.num_examples(split) * self.image_size**2 * 3 * 4
        return size <= self.cache_mb * 2**20

    def _raw_fits(self, split: Split) -> bool:
        index = self._indexes[self._task]
        shard_bytes = sum(size for size, _mtime in index.stamps)
        share = self.num_examples(split) / max(index.records, 1)
        return shard_bytes * share <= self.cache_mb * 2**20

    def _load(self, task: str) -> None:
        if task in self._indexes:
            return
        folder = self.folder(task)
        if not folder.is_dir():
            raise DatasetError(
                f"meta-dataset folder {folder} does not exist; convert {task!r} with "
                f"meta-dataset's conversion code into {folder}/*.tfrecords, or set "
                f"[metadataset] root"
            )
        files = _shards(folder)
        if not files:
            raise DatasetError(f"meta-dataset folder {folder} holds no *.tfrecords shards")
        index = _read_index(folder, files)
        if index is None:
            index = scan_dataset(folder, files, CLASS_COUNTS[task])
            _write_index(folder, index)
        if index.undecodable:
            warnings.warn(
                f"meta-dataset {task!r} ({folder}): skipped {len(index.undecodable)} of "
                f"{index.records} records whose image could not be decoded",
                UndecodableImagesWarning,
                stacklevel=3,
            )
        codes = self._split_codes(index)
        for split in ("train", "validation"):
            if not np.any(codes == _CODES[split]):
                raise DatasetError(
                    f"meta-dataset {task!r} ({folder}) has too few decodable records "
                    f"({index.records - len(index.undecodable)}) for a {split} split"
                )
        self._indexes[task], self._codes[task] = index, codes

    def _split_codes(self, index: ShardIndex) -> np.ndarray:
        # NASGym: shuffle once by seed, first floor(n * 0.67) train, the rest validation.
        # int8: one byte per record keeps the lookup table small for large datasets.
        codes = np.full(index.records, _SKIPPED, dtype=np.int8)
        usable = np.setdiff1d(np.arange(index.records), np.asarray(index.undecodable, np.int64))
        order = np.random.default_rng(self.seed).permutation(usable)
        n_test = round(len(order) * self.test_fraction)
        rest = order[n_test:]
        n_train = math.floor(len(rest) * self.train_fraction)
        codes[order[:n_test]] = _CODES["test"]
        codes[rest[:n_train]] = _CODES["train"]
        codes[rest[n_train:]] = _CODES["validation"]
        return codes

    def _stream(self, split: Split, *, shuffle: bool, seed: int | None) -> tf.data.Dataset:
        import tensorflow as tf

        code = _code(split)
        codes = tf.constant(self._codes[self._task])
        files = [str(self.folder() / name) for name in self._indexes[self._task].files]
        features, size = _features(), self.image_size

        def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            example = tf.io.parse_single_example(record, features)
            image = tf.image.resize(_decode(example["image"]), [size, size], method="bilinear")
            return tf.cast(image, tf.float32) / 255.0, example["label"]

        # Files in sorted order, read sequentially: the reading position is the index's
        # record number, which the split codes are keyed by.
        data = (
            tf.data.TFRecordDataset(files)
            .enumerate()
            .filter(lambda i, _record: tf.gather(codes, i) == tf.constant(code, tf.int8))
            .map(lambda _i, record: record)
        )
        if self._raw_fits(split):
            # The raw records (a few KB of JPEG each) fit where the decoded images do not:
            # keep them after the first epoch, so later epochs neither read the shards nor
            # filter again, and only decode.
            data = data.cache()
        if shuffle:
            # Raw records are small (a few KB of JPEG): shuffle all of them before decoding.
            count = max(self.num_examples(split), 1)
            data = data.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        return data.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _code(split: str) -> int:
    if split not in _CODES:
        raise DatasetError(f"unknown split {split!r} (known: {', '.join(_CODES)})")
    return _CODES[split]


def make_metadataset(**settings: Any) -> MetaDatasetHandler:
    """The ``metadataset-v1`` factory: builds the handler from ``[metadataset]``."""
    return MetaDatasetHandler(**settings)
