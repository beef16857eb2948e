"""meta-dataset from converted TFRecord shards (``metadataset-v1``).

Layout (what meta-dataset's conversion code writes, as NASGym read it)::

    <root>/<dataset id>/*.tfrecords     records with features
                                        image: bytes (JPEG), label: int64

The handler holds several datasets as *tasks* (``[metadataset] tasks = omniglot,
vgg_flower``); :meth:`MetaDatasetHandler.select_task` switches between them (the
environment does so on ``reset(options={"task": ...})`` for meta-RL). Each dataset is
scanned once -- records counted, labels read, every image test-decoded -- and the result
is cached in a small JSON index (``.nasframe-index.json`` next to the shards, or under the
data folder when the shard folder is read-only), so a selection costs a file read.

Splits follow NASGym: the usable records are shuffled once with ``seed`` and the first
``floor(n * train)`` (0.67) are train, the rest validation; a ``test`` fraction, taken
first, is held out for final reports (0 by default, NASGym had none). Images are decoded
to RGB, resized bilinearly to ``image_size`` (84) and scaled to [0, 1].

**Undecodable images** (a record whose ``image`` bytes are not a JPEG/PNG image) are
skipped: they belong to no split, and an :class:`UndecodableImagesWarning` says how many
were skipped and in which dataset, each time a dataset is selected. A shard that is not a
TFRecord file, is truncated, or holds records without the two features is an error
naming the shard.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import nasframe
from nasframe import ConfigSchema, DatasetError, DatasetHandler, Registry, Split

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "CLASS_COUNTS",
    "MetaDatasetHandler",
    "UndecodableImagesWarning",
    "make_metadataset",
]

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

_INDEX_NAME = ".nasframe-index.json"
_INDEX_VERSION = 2
_CODES: dict[str, int] = {"train": 0, "validation": 1, "test": 2}
_SKIPPED = -1


class UndecodableImagesWarning(UserWarning):
    """Some records of a dataset hold image bytes that cannot be decoded; they are skipped."""


# -- the index: counts computed once -----------------------------------------------------------


@dataclass
class ShardIndex:
    """What one scan of a dataset folder found (stored as JSON).

    Attributes:
        files: the shard file names, sorted (the reading order).
        stamps: ``[size, mtime_ns]`` per shard; a change invalidates the index.
        counts: the number of records per shard.
        undecodable: reading-order positions of records whose image does not decode.
        max_label: the largest label seen (-1 for no records).
    """

    files: list[str]
    stamps: list[list[int]]
    counts: list[int]
    undecodable: list[int]
    max_label: int
    version: int = _INDEX_VERSION

    @property
    def records(self) -> int:
        """The number of records in all shards."""
        return sum(self.counts)


def _shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.tfrecords") if p.is_file())


def _stamps(files: list[Path]) -> list[list[int]]:
    return [[(st := p.stat()).st_size, st.st_mtime_ns] for p in files]


def _index_paths(folder: Path) -> list[Path]:
    # Next to the shards first; a read-only dataset folder falls back to the data folder.
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return [
        folder / _INDEX_NAME,
        nasframe.default_data_dir() / "metadataset-index" / f"{digest}.json",
    ]


def _read_index(folder: Path, files: list[Path]) -> ShardIndex | None:
    names, stamps = [p.name for p in files], _stamps(files)
    for path in _index_paths(folder):
        try:
            index = ShardIndex(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # missing, unreadable or stale format: scan again
        if index.version == _INDEX_VERSION and index.files == names and index.stamps == stamps:
            return index
    return None


def _write_index(folder: Path, index: ShardIndex) -> None:
    text = json.dumps(asdict(index), separators=(",", ":"))
    for path in _index_paths(folder):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)  # atomic: a concurrent reader sees the old or the new index
            return
        except OSError:
            continue


_FEATURES: dict[str, Any] | None = None


def _features() -> dict[str, Any]:
    import tensorflow as tf

    global _FEATURES
    if _FEATURES is None:
        _FEATURES = {
            "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
        }
    return _FEATURES


def _decode(image_bytes: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.io.decode_image(image_bytes, channels=3, expand_animations=False)


def scan_dataset(folder: Path, files: list[Path], num_classes: int) -> ShardIndex:
    """Read every record of ``files`` once: labels, count, and which images do not decode.

    Raises:
        DatasetError: a shard is truncated or not a TFRecord file, its records lack the
            ``image``/``label`` features, or a label is outside ``0 .. num_classes - 1``.
    """
    import tensorflow as tf

    features = _features()
    counts: list[int] = []
    low, high = 0, -1
    for shard in files:
        # parse_example on whole batches: one op per 8,192 records, not one per record
        records = (
            tf.data.TFRecordDataset(str(shard))
            .batch(8192)
            .map(lambda batch: tf.io.parse_example(batch, features)["label"])
        )
        counts.append(0)
        try:
            for batch in records:
                labels = batch.numpy()
                counts[-1] += len(labels)
                low, high = min(low, int(labels.min())), max(high, int(labels.max()))
        except tf.errors.DataLossError:
            raise DatasetError(
                f"{shard}: truncated or corrupt TFRecord shard; convert it again"
            ) from None
        except tf.errors.InvalidArgumentError:
            raise DatasetError(
                f"{shard}: records lack the features image (bytes) and label (int64); "
                f"not a converted meta-dataset shard"
            ) from None
    if low < 0 or high >= num_classes:
        raise DatasetError(
            f"{folder}: label {low if low < 0 else high} is outside 0..{num_classes - 1}; "
            f"the folder does not hold the dataset {folder.name!r}"
        )
    # Second pass: decode every image; records whose decoding fails are dropped by
    # ignore_errors, so the positions that come through are the decodable ones. Shards
    # are already known to be sound, so decoding is the only error left to ignore.
    positions = (
        tf.data.TFRecordDataset([str(p) for p in files])
        .enumerate()
        .map(
            lambda i, record: (
                i,
                tf.shape(_decode(tf.io.parse_single_example(record, features)["image"])),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ignore_errors()
        .map(lambda i, _shape: i)
        .batch(8192)
    )
    good = np.concatenate([b.numpy() for b in positions] or [np.zeros(0, np.int64)])
    bad = np.setdiff1d(np.arange(sum(counts)), good)
    return ShardIndex(
        files=[p.name for p in files],
        stamps=_stamps(files),
        counts=counts,
        undecodable=[int(v) for v in bad],
        max_label=high,
    )


# -- the handler ---------------------------------------------------------------------------


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


@nasframe.hookimpl(trylast=True)
def nasframe_register_datasets(registry: Registry) -> None:
    """Register ``metadataset-v1``."""
    registry.add(
        "metadataset-v1",
        make_metadataset,
        summary="meta-dataset TFRecord shards (omniglot, vgg_flower, ...) as tasks; 84x84",
        section="metadataset",
        requires=("tensorflow",),
        extra="tensorflow",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: ConfigSchema) -> None:
    """Declare the ``[metadataset]`` section."""
    section = schema.section("metadataset", "meta-dataset from converted TFRecord shards.")
    section.add(
        "root",
        Path,
        None,
        "folder with one folder of shards per dataset id (empty: <data folder>/metadataset)",
        optional=True,
    )
    section.add(
        "tasks", str, "omniglot", "dataset ids, comma-separated: " + ", ".join(CLASS_COUNTS)
    )
    section.add("image_size", int, 84, "side images are resized to (bilinear)", min=1)
    section.add(
        "train", float, 0.67, "fraction of the non-test records for training", min=0.01, max=0.99
    )
    section.add("test", float, 0.0, "fraction of all records held out as test", min=0, max=0.9)
    section.add("seed", int, 0, "seed of the split shuffle", min=0)
    section.add("cache_mb", int, 2048, "keep a decoded split in memory up to this size", min=0)
