"""Reading meta-dataset's TFRecord shards: the scan, its JSON index, image decoding."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import nasframe
from nasframe import DatasetError

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["ShardIndex", "UndecodableImagesWarning", "scan_dataset"]


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
