"""Reading the CIFAR-10 archives: safe unpickling, the binary format, download and checksum."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nasframe import DatasetError

__all__ = [
    "ARCHIVE_MD5",
    "ARCHIVE_NAME",
    "ARCHIVE_URL",
    "FORMATS",
    "ArchiveFormat",
    "BatchUnpickler",
    "download_archive",
    "locate_archive",
    "md5_of",
    "read_archive",
]

ARCHIVE_NAME = "cifar-10-python.tar.gz"
#: Where the archive is published (https://www.cs.toronto.edu/~kriz/cifar.html).
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: The published MD5 checksum of the archive.
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"

_PIXELS = 32 * 32 * 3
_CHUNK = 1 << 20


# -- safe unpickling -------------------------------------------------------------------------


def _array_reconstructor() -> Any:
    # numpy's pickles name the array reconstructor by module path, and that path moved
    # (numpy.core -> numpy._core in numpy 2); ask numpy which function it uses today.
    return np.ndarray.__reduce__(np.zeros(1))[0]


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that admits only what a CIFAR-10 batch holds.

    A batch is a dict of byte-string keys whose values are lists (labels, file names),
    byte strings and one numpy ``uint8`` array. Loading those needs exactly three globals:
    numpy's array reconstructor, ``numpy.ndarray`` and ``numpy.dtype``; any other global
    (``os.system``, ``builtins.eval``, a class with a ``__reduce__``) is refused before it is
    looked up, so nothing in the file can run code.
    """

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        """Return one of the three admitted globals; refuse every other one."""
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        if name == "_reconstruct":
            return _array_reconstructor()
        return np.ndarray if name == "ndarray" else np.dtype


def _load_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 32, 32, 3) uint8`` and labels ``(n,) int64`` of one pickled batch."""
    not_batch = f"{where} is not a CIFAR-10 batch"
    try:
        # The batches were pickled by Python 2: its str values are bytes.
        batch = BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any failure of an untrusted pickle means "not a batch"
        raise DatasetError(f"{not_batch} ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{not_batch} (it holds a {type(batch).__name__}, not a dict)")
    pixels = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise DatasetError(f"{not_batch} (no uint8 'data' array)")
    if pixels.shape[1] != _PIXELS or not isinstance(labels, list):
        raise DatasetError(f"{not_batch} ('data' is not n x 3072 or 'labels' is not a list)")
    if len(labels) != len(pixels) or not all(type(v) is int and 0 <= v < 10 for v in labels):
        raise DatasetError(f"{not_batch} (labels are not {len(pixels)} integers in 0..9)")
    # Stored channel-major (3 x 32 x 32 per row); Keras wants channels last.
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def _load_binary_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one batch of the binary version (label byte + 3,072 pixels)."""
    record = 1 + _PIXELS
    if not data or len(data) % record:
        raise DatasetError(
            f"{where} is not a CIFAR-10 binary batch ({len(data)} bytes is not a positive "
            f"multiple of {record})"
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DatasetError(f"{where} is not a CIFAR-10 binary batch (label {labels.max()} > 9)")
    images = rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


@dataclass(frozen=True)
class ArchiveFormat:
    """One published version of the CIFAR-10 archive.

    Attributes:
        name: ``python`` or ``binary`` (the ``[cifar10] archive`` setting).
        filename: the archive's file name.
        url: where it is published.
        md5: its published MD5 checksum.
        folder: the folder inside the archive.
        train: the member names of the five training batches.
        test: the member name of the test batch.
        load: parses one member into ``uint8`` images ``(n, 32, 32, 3)`` and labels.
    """

    name: str
    filename: str
    url: str
    md5: str
    folder: str
    train: tuple[str, ...]
    test: str
    load: Callable[[bytes, str], tuple[np.ndarray, np.ndarray]]


#: The two published versions of the archive, by ``[cifar10] archive`` value.
FORMATS: dict[str, ArchiveFormat] = {
    "python": ArchiveFormat(
        "python",
        ARCHIVE_NAME,
        ARCHIVE_URL,
        ARCHIVE_MD5,
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        _load_batch,
    ),
    "binary": ArchiveFormat(
        "binary",
        "cifar-10-binary.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530",
        "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        "test_batch.bin",
        _load_binary_batch,
    ),
}


def _format(archive: str) -> ArchiveFormat:
    if archive not in FORMATS:
        raise DatasetError(f"[cifar10] archive = {archive!r} is not one of {', '.join(FORMATS)}")
    return FORMATS[archive]


def read_archive(
    path: Path, archive: str = "python"
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The training batches (concatenated) and the test batch of the archive at ``path``.

    The archive is read in memory; nothing is extracted to disk.

    Args:
        path: the ``.tar.gz`` file.
        archive: its version, ``python`` or ``binary``.

    Raises:
        DatasetError: the file is not a readable gzip tar archive, a batch is missing, or
            a batch is not a CIFAR-10 batch.
    """
    fmt = _format(archive)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for name in (*fmt.train, fmt.test):
                member_name = f"{fmt.folder}/{name}"
                try:
                    member = tar.getmember(member_name)
                except KeyError:
                    raise DatasetError(
                        f"{path}: {member_name} is missing; not the CIFAR-10 {fmt.name} "
                        f"archive ({fmt.url})"
                    ) from None
                handle = tar.extractfile(member)
                if handle is None:
                    raise DatasetError(f"{path}: {member_name} is not a regular file")
                batches[name] = fmt.load(handle.read(), f"{path}: {member_name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(
            f"{path}: truncated or corrupt archive ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); delete it and download it again from {fmt.url}"
        ) from None
    train_x = np.concatenate([batches[n][0] for n in fmt.train])
    train_y = np.concatenate([batches[n][1] for n in fmt.train])
    return (train_x, train_y), batches[fmt.test]


# -- finding and downloading the archive ------------------------------------------------------


def md5_of(path: Path) -> str:
    """The hex MD5 digest of the file at ``path``."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_archive(url: str, target: Path, *, md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target``, checking its MD5; ``target`` appears only if it matches.

    The download goes to a temporary file in the same folder and is renamed into place
    only after the checksum matched, so an interrupted or wrong download never replaces
    or imitates a good archive.

    Raises:
        DatasetError: the download failed or its checksum is not ``md5``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if md5 and digest.hexdigest() != md5.lower():
            raise DatasetError(
                f"checksum mismatch for {url}: MD5 {digest.hexdigest()}, expected {md5}; "
                f"nothing was saved to {target}"
            )
        tmp.replace(target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(
            f"could not download {url} ({' '.join(str(reason).split())}); download it by hand "
            f"and put it at {target}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def locate_archive(
    data_dir: Path,
    *,
    download: bool,
    archive: str = "python",
    url: str = "",
    md5: str = "",
    verify: bool = True,
) -> Path:
    """The path of the archive in ``data_dir``, downloading it first if allowed and missing.

    Args:
        data_dir: the folder the archive is (or is to be) in.
        download: download the archive when it is missing.
        archive: ``python`` or ``binary``.
        url: where to download from (empty: the published URL).
        md5: the expected checksum (empty: the published one).
        verify: check the checksum (of a local archive and of a download).

    Raises:
        DatasetError: the archive is missing and ``download`` is off (the message says
            where to put it and where to get it), the download failed, or the archive's
            checksum is not ``md5``.
    """
    fmt = _format(archive)
    url, md5 = url or fmt.url, (md5 or fmt.md5) if verify else ""
    path = data_dir / fmt.filename
    if not path.is_file():
        if not download:
            raise DatasetError(
                f"CIFAR-10 archive not found: put {fmt.filename} (from {url}) at {path}, "
                f"or set [cifar10] download = yes"
            )
        return download_archive(url, path, md5=md5)
    if md5 and (actual := md5_of(path)) != md5.lower():
        raise DatasetError(
            f"{path}: checksum mismatch (MD5 {actual}, expected {md5}); the file is "
            f"truncated or not the CIFAR-10 python archive; delete it and get it from {url}"
        )
    return path
