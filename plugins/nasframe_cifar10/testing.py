"""Write CIFAR-10 archives in the official formats, for tests and benchmarks.

:func:`write_archive` produces a ``cifar-10-python.tar.gz`` laid out exactly like the
published one (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``;
each batch a pickled dict with ``data`` as an ``n x 3072`` ``uint8`` array in channel-major
order and ``labels`` as a list), or the binary version (``cifar-10-batches-bin/
data_batch_1..5.bin``, ``test_batch.bin``: records of one label byte and 3,072 pixel
bytes), so the loader is tested on the real formats without the 163 MB download.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

__all__ = ["CLASS_NAMES", "write_archive"]

#: The class names of CIFAR-10, as ``batches.meta`` lists them.
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _add(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


def write_archive(
    path: Path,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    replace: dict[str, bytes] | None = None,
    binary: bool = False,
) -> Path:
    """Write ``train`` (split into five batches) and ``test`` as a CIFAR-10 python archive.

    Args:
        path: the ``.tar.gz`` file to write.
        train: ``uint8`` images ``(n, 32, 32, 3)`` and labels ``(n,)`` in 0..9.
        test: the same for the test batch.
        replace: raw bytes to store instead of a batch, by batch name (to build
            malicious or broken archives in tests).
        binary: write the binary version (``cifar-10-binary.tar.gz``'s layout).

    Returns:
        ``path``.
    """
    replace = replace or {}
    images, labels = train
    batches = {
        f"data_batch_{i + 1}": part
        for i, part in enumerate(
            zip(np.array_split(images, 5), np.array_split(labels, 5), strict=True)
        )
    }
    batches["test_batch"] = test
    with tarfile.open(path, "w:gz") as archive:
        if binary:
            names = "".join(f"{n}\n" for n in CLASS_NAMES).encode()
            _add(archive, "cifar-10-batches-bin/batches.meta.txt", names)
            for name, (x, y) in batches.items():
                x = np.asarray(x, dtype=np.uint8).transpose(0, 3, 1, 2).reshape(len(x), -1)
                rows = np.concatenate([np.asarray(y, np.uint8)[:, None], x], axis=1)
                payload = replace.get(name, rows.tobytes())
                _add(archive, f"cifar-10-batches-bin/{name}.bin", payload)
            return path
        meta = {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072}
        _add(archive, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=4))
        for number, (name, (x, y)) in enumerate(batches.items()):
            x = np.asarray(x, dtype=np.uint8)
            batch = {
                b"batch_label": f"batch {number + 1}".encode(),
                b"labels": [int(v) for v in y],
                b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
                b"filenames": [f"{name}_{i}.png".encode() for i in range(len(x))],
            }
            payload = replace.get(name, pickle.dumps(batch, protocol=4))
            _add(archive, f"cifar-10-batches-py/{name}", payload)
    return path
