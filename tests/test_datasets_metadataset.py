"""``metadataset-v1`` on small TFRecord shards with real JPEG bytes (no network)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import nasframe_metadataset
from nasframe_metadataset import CLASS_COUNTS, MetaDatasetHandler, UndecodableImagesWarning
from nasframe_metadataset.testing import encode_jpeg, write_shards

import nasframe
from nasframe import DatasetError

N = 60


def _images(n: int, seed: int) -> list[np.ndarray]:
    # Distinct sizes (the handler must resize) and distinct flat colours with noise.
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(20, 50)), int(rng.integers(20, 50)), 3), np.uint8)
        for _ in range(n)
    ]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A meta-dataset root with ``dtd`` (3 shards) and ``vgg_flower`` (2 shards)."""
    base = tmp_path / "records"
    write_shards(base / "dtd", _images(N, 0), [i % 47 for i in range(N)], shards=3)
    write_shards(base / "vgg_flower", _images(30, 1), [i % 102 for i in range(30)], shards=2)
    return base


def _split_hashes(handler: MetaDatasetHandler) -> dict[str, set[str]]:
    return {
        split: {hashlib.sha256(img.tobytes()).hexdigest() for img in handler.arrays(split)[0]}
        for split in ("train", "validation", "test")
    }


def test_loads_resizes_and_splits_67_33(root: Path) -> None:
    handler = MetaDatasetHandler(root=root, tasks="dtd")
    assert handler.input_shape == (84, 84, 3)
    assert handler.num_classes == 47
    assert [handler.num_examples(s) for s in ("train", "validation", "test")] == [40, 20, 0]
    images, labels = handler.arrays("train")
    assert images.shape == (40, 84, 84, 3) and images.dtype == np.float32
    assert labels.dtype == np.int64 and set(labels) <= set(range(47))
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_image_size_setting_and_pixel_values(tmp_path: Path) -> None:
    colour = np.zeros((40, 30, 3), np.uint8)
    colour[...] = (200, 40, 120)
    write_shards(tmp_path / "dtd", [colour] * 9, list(range(9)), shards=1)
    handler = MetaDatasetHandler(root=tmp_path, tasks="dtd", image_size=16)
    images, _ = handler.arrays("validation")
    assert images.shape[1:] == (16, 16, 3)
    # JPEG is lossy: within a few grey levels of the colour written.
    np.testing.assert_allclose(
        images.mean(axis=(0, 1, 2)), np.array([200, 40, 120]) / 255, atol=0.03
    )


def test_test_split_setting(root: Path) -> None:
    handler = MetaDatasetHandler(root=root, tasks="dtd", test=0.2)
    # 12 test records first, then floor(48 * 0.67) = 32 train, 16 validation.
    assert [handler.num_examples(s) for s in ("train", "validation", "test")] == [32, 16, 12]


def test_split_hygiene_no_image_in_two_splits(root: Path) -> None:
    handler = MetaDatasetHandler(root=root, tasks="dtd", test=0.25, image_size=32)
    hashes = _split_hashes(handler)
    assert sum(len(h) for h in hashes.values()) == N
    assert not hashes["train"] & hashes["validation"]
    assert not hashes["test"] & (hashes["train"] | hashes["validation"])


def test_seed_decides_the_split(root: Path) -> None:
    first = MetaDatasetHandler(root=root, tasks="dtd", seed=1, image_size=8)
    again = MetaDatasetHandler(root=root, tasks="dtd", seed=1, image_size=8)
    other = MetaDatasetHandler(root=root, tasks="dtd", seed=2, image_size=8)
    assert _split_hashes(first) == _split_hashes(again)
    assert _split_hashes(first)["validation"] != _split_hashes(other)["validation"]


def test_identity_names_task_and_every_data_setting(root: Path) -> None:
    base = MetaDatasetHandler(root=root, tasks="dtd,vgg_flower")
    assert base.identity == "metadataset/dtd[size=84,train=0.67,test=0.0,seed=0]"
    variants = {
        MetaDatasetHandler(root=root, tasks="dtd", seed=1).identity,
        MetaDatasetHandler(root=root, tasks="dtd", image_size=32).identity,
        MetaDatasetHandler(root=root, tasks="dtd", train=0.5).identity,
        MetaDatasetHandler(root=root, tasks="dtd", test=0.1).identity,
    }
    assert base.identity not in variants and len(variants) == 4
    base.select_task("vgg_flower")
    assert base.identity.startswith("metadataset/vgg_flower[")


def test_tasks_switch_dataset_classes_and_counts(root: Path) -> None:
    handler = MetaDatasetHandler(root=root, tasks=" dtd , vgg_flower ")
    assert handler.tasks == ("dtd", "vgg_flower") and handler.task == "dtd"
    handler.select_task("vgg_flower")
    assert handler.task == "vgg_flower" and handler.num_classes == 102
    assert handler.num_examples("train") == 20  # floor(30 * 0.67)
    assert handler.arrays("validation")[0].shape == (10, 84, 84, 3)
    handler.select_task("dtd")
    assert handler.num_examples("train") == 40


def test_select_unknown_task_lists_the_configured_ones(root: Path) -> None:
    handler = MetaDatasetHandler(root=root, tasks="dtd,vgg_flower")
    with pytest.raises(DatasetError, match=r"unknown task 'vgg_flowers'.*known: dtd, vgg_flower\)"):
        handler.select_task("vgg_flowers")
    assert handler.task == "dtd"


def test_unknown_dataset_id_lists_the_known_ids(root: Path) -> None:
    with pytest.raises(DatasetError) as info:
        MetaDatasetHandler(root=root, tasks="dtd,omniglott")
    message = str(info.value)
    assert message.startswith("unknown meta-dataset id 'omniglott'; did you mean 'omniglot'?")
    assert all(name in message for name in CLASS_COUNTS)


def test_class_counts_of_nasgym() -> None:
    assert CLASS_COUNTS == {
        "aircraft": 100,
        "cu_birds": 200,
        "dtd": 47,
        "fungi": 1394,
        "omniglot": 1623,
        "quickdraw": 345,
        "traffic_sign": 43,
        "vgg_flower": 102,
    }


def test_missing_dataset_folder(root: Path) -> None:
    with pytest.raises(DatasetError, match=rf"meta-dataset folder {root}/omniglot does not exist"):
        MetaDatasetHandler(root=root, tasks="omniglot")
    handler = MetaDatasetHandler(root=root, tasks="dtd,aircraft")
    with pytest.raises(DatasetError, match=r"aircraft does not exist; convert 'aircraft'"):
        handler.select_task("aircraft")
    assert handler.task == "dtd"


def test_folder_without_shards(tmp_path: Path) -> None:
    (tmp_path / "dtd").mkdir()
    with pytest.raises(DatasetError, match=r"dtd holds no \*\.tfrecords shards"):
        MetaDatasetHandler(root=tmp_path, tasks="dtd")


def test_undecodable_image_is_skipped_and_counted(tmp_path: Path) -> None:
    images: list[np.ndarray | bytes] = list(_images(12, 3))
    images[4] = b"\xff\xd8 this is not a JPEG"
    images[9] = encode_jpeg(_images(1, 4)[0])[:40]  # a truncated JPEG
    write_shards(tmp_path / "dtd", images, list(range(12)), shards=2)
    with pytest.warns(UndecodableImagesWarning, match=r"'dtd' .*skipped 2 of 12 records"):
        handler = MetaDatasetHandler(root=tmp_path, tasks="dtd")
    labels = np.concatenate([handler.arrays(s)[1] for s in ("train", "validation")])
    assert sorted(labels.tolist()) == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]
    # The cached index remembers them: the warning repeats without a new scan.
    with pytest.warns(UndecodableImagesWarning, match="skipped 2 of 12"):
        MetaDatasetHandler(root=tmp_path, tasks="dtd")


def test_counts_are_computed_once_and_cached(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[Path] = []
    real_scan = nasframe_metadataset.scan_dataset

    def counting_scan(folder: Path, *args: object) -> nasframe_metadataset.ShardIndex:
        scans.append(folder)
        return real_scan(folder, *args)  # type: ignore[arg-type]

    # the handler looks the scan up in its own module
    monkeypatch.setattr(nasframe_metadataset.handler, "scan_dataset", counting_scan)
    handler = MetaDatasetHandler(root=root, tasks="dtd,vgg_flower")
    handler.select_task("vgg_flower")
    handler.select_task("dtd")
    handler.select_task("vgg_flower")
    assert scans == [root / "dtd", root / "vgg_flower"]
    assert (root / "dtd" / ".nasframe-index.json").is_file()
    MetaDatasetHandler(root=root, tasks="dtd").num_examples("train")
    assert len(scans) == 2  # a new handler reads the index
    # A changed shard invalidates the index.
    write_shards(root / "dtd", _images(N + 3, 5), [0] * (N + 3), shards=3)
    assert MetaDatasetHandler(root=root, tasks="dtd").num_examples("validation") == 21
    assert scans[-1] == root / "dtd" and len(scans) == 3


def test_index_falls_back_to_the_data_folder(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only")

    original = Path.write_text
    monkeypatch.setattr(
        Path,
        "write_text",
        lambda self, *a, **k: (
            read_only() if self.parent == root / "dtd" else original(self, *a, **k)
        ),
    )
    MetaDatasetHandler(root=root, tasks="dtd")
    assert not (root / "dtd" / ".nasframe-index.json").exists()
    assert len(list((nasframe.default_data_dir() / "metadataset-index").glob("*.json"))) == 1


def test_truncated_shard_is_named(root: Path) -> None:
    shard = root / "dtd" / "1.tfrecords"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=rf"^{shard}: truncated or corrupt TFRecord shard"):
        MetaDatasetHandler(root=root, tasks="dtd")


def test_garbage_shard_is_named(root: Path) -> None:
    shard = root / "dtd" / "0.tfrecords"
    shard.write_bytes(b"this is not a TFRecord file at all" * 10)
    with pytest.raises(DatasetError, match=rf"^{shard}: truncated or corrupt TFRecord shard"):
        MetaDatasetHandler(root=root, tasks="dtd")


def test_records_without_the_features(tmp_path: Path) -> None:
    import tensorflow as tf

    folder = tmp_path / "dtd"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "0.tfrecords")) as writer:
        feature = {"img": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))}
        writer.write(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    with pytest.raises(DatasetError, match=r"lack the features image \(bytes\) and label"):
        MetaDatasetHandler(root=tmp_path, tasks="dtd")


def test_label_outside_the_class_count(tmp_path: Path) -> None:
    write_shards(tmp_path / "traffic_sign", _images(6, 0), [0, 1, 2, 3, 4, 43], shards=1)
    with pytest.raises(DatasetError, match=r"label 43 is outside 0\.\.42"):
        MetaDatasetHandler(root=tmp_path, tasks="traffic_sign")


def test_bad_fractions(root: Path) -> None:
    with pytest.raises(DatasetError, match=r"train = 1.0 must be in \(0, 1\)"):
        MetaDatasetHandler(root=root, tasks="dtd", train=1.0)


@pytest.mark.parametrize(
    ("image_size", "cache_mb"),
    [(16, 2048), (84, 1), (16, 0)],
    ids=["decoded-in-memory", "raw-records-in-memory", "streamed"],
)
def test_pipeline_covers_split_and_reshuffles_each_epoch(
    root: Path, image_size: int, cache_mb: int
) -> None:
    handler = MetaDatasetHandler(root=root, tasks="dtd", image_size=image_size, cache_mb=cache_mb)
    # 40 decoded 84x84 images (3.4 MB) exceed 1 MB; their JPEG records do not.
    pipeline = handler.tf_dataset("train", batch_size=16, shuffle=True, seed=3)
    epochs = [[(x.numpy(), y.numpy()) for x, y in pipeline] for _ in range(2)]
    assert [len(y) for _, y in epochs[0]] == [16, 16, 8]
    labels = [np.concatenate([y for _, y in epoch]) for epoch in epochs]
    assert sorted(labels[0]) == sorted(labels[1]) == sorted(handler.arrays("train")[1])
    assert not np.array_equal(labels[0], labels[1])
    again = handler.tf_dataset("train", batch_size=16, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([y for _, y in again]), labels[0])
    ordered = np.concatenate([y for _, y in handler.tf_dataset("validation", batch_size=8)])
    np.testing.assert_array_equal(ordered, handler.arrays("validation")[1])


def test_registered_with_tensorflow_requirement(
    root: Path, plugin_manager: nasframe.PluginManager
) -> None:
    info = plugin_manager.registry("dataset").get("metadataset")
    assert (info.name, info.section, info.requires) == (
        "metadataset-v1",
        "metadataset",
        ("tensorflow",),
    )
    config = nasframe.load_config(
        overrides={"metadataset": {"root": str(root), "tasks": "vgg_flower,dtd"}},
        plugin_manager=plugin_manager,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handler = plugin_manager.registry("dataset").create(
            "metadataset", **config.section("metadataset")
        )
    assert handler.task == "vgg_flower" and handler.input_shape == (84, 84, 3)


def test_pickled_handler_leaves_decoded_images_behind(root: Path) -> None:
    import pickle

    handler = MetaDatasetHandler(root=root, tasks="dtd")
    decoded = handler.arrays("train")[0]
    payload = pickle.dumps(handler)
    assert len(payload) < decoded.nbytes / 10
    clone = pickle.loads(payload)
    np.testing.assert_array_equal(clone.arrays("train")[0], decoded)


def test_env_reset_switches_the_task(root: Path) -> None:
    handler = MetaDatasetHandler(root=root, tasks="dtd,vgg_flower", image_size=16)
    env = nasframe.make_env(dataset=handler, estimator="proxy", search_space="chained")
    env.reset(seed=0, options={"task": "vgg_flower"})
    _obs, _reward, _term, _trunc, info = env.step(0)
    assert handler.task == "vgg_flower" and handler.num_classes == 102
    assert info["dataset"] == handler.identity
    assert info["dataset"].startswith("metadataset/vgg_flower[")
    with pytest.raises(DatasetError, match="unknown task 'omniglot'"):
        env.reset(options={"task": "omniglot"})
    env.close()
