"""Write meta-dataset TFRecord shards, for tests and benchmarks.

:func:`write_shards` writes records exactly as meta-dataset's conversion code does
(``tf.train.Example`` with ``image``: JPEG bytes, ``label``: int64) into
``<root>/<dataset id>/<n>.tfrecords``, so the handler is tested on the real format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["encode_jpeg", "write_shards"]


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of a ``uint8`` image ``(h, w, 3)`` or ``(h, w, 1)``."""
    import tensorflow as tf

    return bytes(tf.io.encode_jpeg(tf.constant(image, dtype=tf.uint8), quality=95).numpy())


def write_shards(
    folder: Path,
    images: Sequence[np.ndarray | bytes],
    labels: Sequence[int],
    *,
    shards: int = 2,
) -> list[Path]:
    """Write ``images`` (arrays are JPEG-encoded, bytes are stored as given) and ``labels``.

    Records are dealt to ``shards`` files in order (the first ``len/shards`` to
    ``0.tfrecords``, and so on), like the per-class shards of the conversion code.

    Returns:
        The shard paths.
    """
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{number}.tfrecords" for number in range(shards)]
    parts = np.array_split(np.arange(len(labels)), shards)
    for path, part in zip(paths, parts, strict=True):
        with tf.io.TFRecordWriter(str(path)) as writer:
            for position in part:
                image = images[position]
                payload = image if isinstance(image, bytes) else encode_jpeg(image)
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "image": tf.train.Feature(
                                bytes_list=tf.train.BytesList(value=[payload])
                            ),
                            "label": tf.train.Feature(
                                int64_list=tf.train.Int64List(value=[int(labels[position])])
                            ),
                        }
                    )
                )
                writer.write(example.SerializeToString())
    return paths
