"""``cifar10-v1`` on small archives in the official python format (no network)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from nasframe_cifar10 import (
    ARCHIVE_NAME,
    ARCHIVE_URL,
    BatchUnpickler,
    Cifar10Dataset,
    md5_of,
    read_archive,
)
from nasframe_cifar10.testing import write_archive

import nasframe
from nasframe import DatasetError

N_TRAIN, N_TEST = 300, 100


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.fixture
def source() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The images and labels the small archive holds."""
    return {"train": _images(N_TRAIN, 1), "test": _images(N_TEST, 2)}


@pytest.fixture
def archive(tmp_path: Path, source: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """A 400-image CIFAR-10 python archive in its own folder."""
    folder = tmp_path / "cifar"
    folder.mkdir()
    return write_archive(folder / ARCHIVE_NAME, source["train"], source["test"])


def _load(archive: Path, **settings: object) -> Cifar10Dataset:
    settings.setdefault("md5", md5_of(archive))
    return Cifar10Dataset(data_dir=archive.parent, **settings)  # type: ignore[arg-type]


def _raw(data: Cifar10Dataset, split: str) -> np.ndarray:
    images, _ = data.arrays(split)  # type: ignore[arg-type]
    return np.rint((images * data.std + data.mean) * 255).astype(np.uint8)


def test_loads_shapes_labels_and_split_sizes(archive: Path, source: dict) -> None:
    data = _load(archive)
    assert data.input_shape == (32, 32, 3) and data.num_classes == 10
    assert [data.num_examples(s) for s in ("train", "validation", "test")] == [270, 30, 100]
    images, labels = data.arrays("train")
    assert images.dtype == np.float32 and labels.dtype == np.int64
    # Train + validation are exactly the training batches, test is exactly the test batch.
    train_x, train_y = source["train"]
    by_image = {img.tobytes(): int(y) for img, y in zip(train_x, train_y, strict=True)}
    for split in ("train", "validation"):
        raw, split_labels = _raw(data, split), data.arrays(split)[1]
        assert [by_image[img.tobytes()] for img in raw] == split_labels.tolist()
    np.testing.assert_array_equal(_raw(data, "test"), source["test"][0])
    np.testing.assert_array_equal(data.arrays("test")[1], source["test"][1])


def test_pixels_keep_channel_order(tmp_path: Path) -> None:
    images = np.zeros((10, 32, 32, 3), np.uint8)
    images[:, :, :, 0], images[:, 5, :, 1], images[:, :, 7, 2] = 200, 100, 50
    labels = np.arange(10)
    path = write_archive(tmp_path / ARCHIVE_NAME, (images, labels), (images, labels))
    (train_x, train_y), (test_x, _) = read_archive(path)
    np.testing.assert_array_equal(train_x, images)
    np.testing.assert_array_equal(test_x, images)
    np.testing.assert_array_equal(train_y, labels)


def test_normalised_per_channel_with_train_statistics(archive: Path) -> None:
    data = _load(archive)
    train = data.arrays("train")[0]
    np.testing.assert_allclose(train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    assert data.mean.shape == (3,) and data.std.shape == (3,)


def test_split_hygiene_and_seed(archive: Path) -> None:
    data = _load(archive, seed=4)
    hashes = {
        split: {hashlib.sha256(img.tobytes()).hexdigest() for img in _raw(data, split)}
        for split in ("train", "validation", "test")
    }
    assert len(hashes["train"]) == 270 and len(hashes["validation"]) == 30
    assert not hashes["train"] & hashes["validation"]
    assert not hashes["test"] & (hashes["train"] | hashes["validation"])
    again, other = _load(archive, seed=4), _load(archive, seed=5)
    np.testing.assert_array_equal(again.arrays("validation")[0], data.arrays("validation")[0])
    assert not np.array_equal(other.arrays("validation")[1], data.arrays("validation")[1]) or (
        not np.array_equal(other.arrays("validation")[0], data.arrays("validation")[0])
    )
    assert data.identity == "cifar10[validation=0.1,seed=4]" != other.identity


def test_full_size_split_is_45000_5000() -> None:
    indices = nasframe.split_indices(50_000, validation=0.1, test=0.0, seed=0)
    assert (len(indices["train"]), len(indices["validation"])) == (45_000, 5_000)


def test_default_folder_is_nasframe_data_dir(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASFRAME_DATA_DIR", str(archive.parent))
    data = Cifar10Dataset(md5=md5_of(archive))
    assert data.path == archive


def test_missing_archive_says_where_to_put_it_and_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        Cifar10Dataset(data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / ARCHIVE_NAME) in message and ARCHIVE_URL in message
    assert "download = yes" in message


def test_checksum_mismatch_of_a_local_archive(archive: Path) -> None:
    with pytest.raises(DatasetError, match=r"checksum mismatch \(MD5 [0-9a-f]{32}, expected c58f"):
        Cifar10Dataset(data_dir=archive.parent)  # the published checksum
    assert archive.is_file()  # nothing is deleted


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_archive(archive: Path, cut: float) -> None:
    payload = archive.read_bytes()
    archive.write_bytes(payload[: int(len(payload) * cut)])
    with pytest.raises(DatasetError, match="truncated or corrupt archive"):
        _load(archive, verify=False)


def test_not_an_archive(archive: Path) -> None:
    archive.write_bytes(b"<html>not found</html>")
    with pytest.raises(DatasetError, match=rf"^{archive}: truncated or corrupt archive"):
        _load(archive, verify=False)


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.write_text, (self.marker, "code ran"))


def test_a_pickle_that_would_run_code_does_not_run(
    tmp_path: Path, source: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    marker = tmp_path / "marker"
    evil = pickle.dumps({b"data": _Payload(marker), b"labels": [1]}, protocol=4)
    path = write_archive(
        tmp_path / ARCHIVE_NAME, source["train"], source["test"], replace={"data_batch_3": evil}
    )
    with pytest.raises(DatasetError) as info:
        Cifar10Dataset(data_dir=tmp_path, md5=md5_of(path))
    assert "cifar-10-batches-py/data_batch_3 is not a CIFAR-10 batch" in str(info.value)
    assert "pathlib" in str(info.value) and "not allowed" in str(info.value)
    assert not marker.exists()
    # The payload is live: the plain unpickler would have run it.
    pickle.loads(evil)
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize(
    "batch",
    [
        [1, 2, 3],
        {b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]},
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]},
        {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
    ],
    ids=["list", "float-data", "short-rows", "label-12", "label-count"],
)
def test_wrong_batch_contents(tmp_path: Path, source: dict, batch: object) -> None:
    path = write_archive(
        tmp_path / ARCHIVE_NAME,
        source["train"],
        source["test"],
        replace={"test_batch": pickle.dumps(batch, protocol=4)},
    )
    with pytest.raises(DatasetError, match="test_batch is not a CIFAR-10 batch"):
        Cifar10Dataset(data_dir=tmp_path, md5=md5_of(path))


def test_missing_batch(tmp_path: Path) -> None:
    import tarfile

    path = tmp_path / ARCHIVE_NAME
    with tarfile.open(path, "w:gz") as archive:
        archive.addfile(tarfile.TarInfo("readme.txt"))
    with pytest.raises(DatasetError, match="data_batch_1 is missing; not the CIFAR-10 python"):
        Cifar10Dataset(data_dir=tmp_path, verify=False)


def test_unpickler_admits_the_numpy_names_of_old_and_new_archives() -> None:
    unpickler = BatchUnpickler(__import__("io").BytesIO(b""))
    old = unpickler.find_class("numpy.core.multiarray", "_reconstruct")
    assert old is unpickler.find_class("numpy._core.multiarray", "_reconstruct")
    assert unpickler.find_class("numpy", "ndarray") is np.ndarray
    with pytest.raises(pickle.UnpicklingError, match=r"global builtins\.eval is not allowed"):
        unpickler.find_class("builtins", "eval")


# -- downloading -------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def server(archive: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the archive's folder; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(archive.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_over_http_checks_the_checksum(archive: Path, server: str, tmp_path: Path) -> None:
    target = tmp_path / "downloaded"
    data = Cifar10Dataset(
        data_dir=target, download=True, url=f"{server}/{ARCHIVE_NAME}", md5=md5_of(archive)
    )
    assert data.path == target / ARCHIVE_NAME
    assert data.path.read_bytes() == archive.read_bytes()
    assert data.num_examples("test") == N_TEST


def test_download_from_a_file_url(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "downloaded"
    data = Cifar10Dataset(data_dir=target, download=True, url=archive.as_uri(), md5=md5_of(archive))
    assert data.num_examples("train") == 270


def test_download_with_a_wrong_checksum_keeps_nothing(server: str, tmp_path: Path) -> None:
    target = tmp_path / "downloaded"
    with pytest.raises(
        DatasetError, match=r"^checksum mismatch for http://127\.0\.0\.1:.*expected c58f"
    ):
        Cifar10Dataset(data_dir=target, download=True, url=f"{server}/{ARCHIVE_NAME}")
    assert list(target.iterdir()) == []


def test_download_failure_says_how_to_get_the_file(server: str, tmp_path: Path) -> None:
    target = tmp_path / "downloaded"
    with pytest.raises(DatasetError, match=r"could not download .*missing\.tar\.gz .*by hand"):
        Cifar10Dataset(data_dir=target, download=True, url=f"{server}/missing.tar.gz")
    assert list(target.iterdir()) == []


def test_registered_and_configured(archive: Path, plugin_manager: nasframe.PluginManager) -> None:
    info = plugin_manager.registry("dataset").get("cifar10")
    assert (info.name, info.section) == ("cifar10-v1", "cifar10")
    config = nasframe.load_config(
        overrides={"cifar10": {"data_dir": str(archive.parent), "md5": md5_of(archive)}},
        plugin_manager=plugin_manager,
    )
    assert config.get("cifar10", "download") is False
    data = plugin_manager.registry("dataset").create("cifar10", **config.section("cifar10"))
    assert data.num_examples("validation") == 30


def test_tf_pipeline_reshuffles_every_epoch(archive: Path) -> None:
    pipeline = _load(archive).tf_dataset("train", batch_size=64, shuffle=True, seed=7)
    first = np.concatenate([y.numpy() for _, y in pipeline])
    second = np.concatenate([y.numpy() for _, y in pipeline])
    assert len(first) == 270 and sorted(first) == sorted(second)
    assert not np.array_equal(first, second)


# -- the binary version ----------------------------------------------------------------------


@pytest.fixture
def binary_archive(tmp_path: Path, source: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """The same images as ``archive``, as a binary-version archive."""
    path = tmp_path / "cifar-10-binary.tar.gz"
    return write_archive(path, source["train"], source["test"], binary=True)


def test_binary_archive_holds_the_same_data(binary_archive: Path, archive: Path) -> None:
    binary = Cifar10Dataset(data_dir=binary_archive.parent, archive="binary", verify=False)
    python = _load(archive)
    assert binary.path == binary_archive
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(binary.arrays(split)[0], python.arrays(split)[0])
        np.testing.assert_array_equal(binary.arrays(split)[1], python.arrays(split)[1])
    assert binary.identity == python.identity  # the same images: the same cache entries


def test_binary_archive_missing_names_its_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"put cifar-10-binary\.tar\.gz \(from https://www"):
        Cifar10Dataset(data_dir=tmp_path, archive="binary")


def test_binary_archive_checksum_mismatch(binary_archive: Path) -> None:
    with pytest.raises(DatasetError, match=r"checksum mismatch .*expected c32a1d4ab5d03f"):
        Cifar10Dataset(data_dir=binary_archive.parent, archive="binary")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"\x01" * 3000, "3000 bytes is not a positive multiple of 3073"), (b"\x0c" * 3073, "12")],
    ids=["short", "label-12"],
)
def test_binary_batch_that_is_not_a_batch(
    tmp_path: Path, source: dict, payload: bytes, reason: str
) -> None:
    write_archive(
        tmp_path / "cifar-10-binary.tar.gz",
        source["train"],
        source["test"],
        binary=True,
        replace={"data_batch_2": payload},
    )
    with pytest.raises(
        DatasetError, match=rf"data_batch_2\.bin is not a CIFAR-10 binary .*{reason}"
    ):
        Cifar10Dataset(data_dir=tmp_path, archive="binary", verify=False)


def test_unknown_archive_version(tmp_path: Path, plugin_manager: nasframe.PluginManager) -> None:
    with pytest.raises(DatasetError, match=r"archive = 'zip' is not one of python, binary"):
        Cifar10Dataset(data_dir=tmp_path, archive="zip")
    with pytest.raises(nasframe.ConfigError, match=r"'zip' is not one of python, binary"):
        nasframe.load_config(
            overrides={"cifar10": {"archive": "zip"}}, plugin_manager=plugin_manager
        )


def test_channel_statistics_match_numpy() -> None:
    from nasframe_cifar10 import channel_statistics

    images, _ = _images(50, 9)
    images[..., 2] = 77  # a constant channel keeps a finite (unit) deviation
    mean, std = channel_statistics(images)
    scaled = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std[:2], scaled.std(axis=(0, 1, 2))[:2], rtol=1e-5)
    assert std[2] == 1.0 and mean.dtype == std.dtype == np.float32
