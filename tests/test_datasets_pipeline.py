"""The default ``DatasetHandler.tf_dataset`` and the dataset plugins' import hygiene."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nasframe_digits import DigitsDataset

import nasframe
from nasframe import ArrayDataset, Split

pytest.importorskip("tensorflow")


@pytest.fixture(params=["slices", "gather"])
def data(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ArrayDataset:
    """100 train images whose first pixel is their own number, through either pipeline.

    Small splits use slice-shuffle-batch and large ones index-gather; a zero size limit
    sends these small test splits down the large-split path.
    """
    if request.param == "gather":
        import nasframe.authoring.tf_data

        monkeypatch.setattr(nasframe.authoring.tf_data, "SLICE_LIMIT", 0)
    images = np.zeros((130, 4, 4, 1), np.float32)
    images[:, 0, 0, 0] = np.arange(130)
    labels = np.arange(130) % 7
    return ArrayDataset(
        "numbers",
        {
            "train": (images[:100], labels[:100]),
            "validation": (images[100:120], labels[100:120]),
            "test": (images[120:], labels[120:]),
        },
    )


def _epoch(pipeline: object) -> tuple[np.ndarray, list[int]]:
    ids, sizes = [], []
    for images, labels in pipeline:  # type: ignore[attr-defined]
        ids.append(images.numpy()[:, 0, 0, 0].astype(int))
        sizes.append(len(labels))
        # labels travel with their images
        np.testing.assert_array_equal(labels.numpy(), ids[-1] % 7)
    return np.concatenate(ids), sizes


def test_unshuffled_pipeline_keeps_order_and_batches(data: ArrayDataset) -> None:
    ids, sizes = _epoch(data.tf_dataset("validation", batch_size=8))
    np.testing.assert_array_equal(ids, np.arange(100, 120))
    assert sizes == [8, 8, 4]


def test_shuffled_pipeline_reshuffles_each_epoch_reproducibly(data: ArrayDataset) -> None:
    pipeline = data.tf_dataset("train", batch_size=32, shuffle=True, seed=11)
    first, sizes = _epoch(pipeline)
    second, _ = _epoch(pipeline)
    assert sizes == [32, 32, 32, 4]
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)
    again = data.tf_dataset("train", batch_size=32, shuffle=True, seed=11)
    np.testing.assert_array_equal(_epoch(again)[0], first)
    np.testing.assert_array_equal(_epoch(again)[0], second)
    other, _ = _epoch(data.tf_dataset("train", batch_size=32, shuffle=True, seed=12))
    assert not np.array_equal(other, first)


def test_pipeline_dtypes(data: ArrayDataset) -> None:
    images, labels = next(iter(data.tf_dataset("test", batch_size=4)))
    assert images.dtype.name == "float32" and labels.dtype.name == "int64"
    assert tuple(images.shape) == (4, 4, 4, 1)


def test_dataset_plugins_import_without_tensorflow() -> None:
    code = (
        "import sys, nasframe\n"
        "import nasframe_digits, nasframe_cifar10, nasframe_metadataset\n"
        "nasframe.get_plugin_manager().registries()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


class _RecordingDigits(DigitsDataset):
    """The real digits handler, noting every split an estimator asks for."""

    def __init__(self) -> None:
        super().__init__(resize=16)
        self.requested: set[str] = set()

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        self.requested.add(split)
        return super().arrays(split)

    def num_examples(self, split: Split) -> int:
        self.requested.add(split)
        return super().num_examples(split)


def _estimators() -> list[str]:
    # table-v1 and surrogate-v1 answer from a table or a fitted surrogate and read no split
    # at all; they refuse any dataset but their own (tests/test_table_estimator.py,
    # tests/test_surrogate.py), so they cannot run on these digits.
    registry = nasframe.get_plugin_manager().registry("estimator")
    lookups = ("table-v1", "surrogate-v1")
    return [info.name for info in registry if info.available and info.name not in lookups]


@pytest.mark.slow
@pytest.mark.parametrize("estimator", _estimators())
def test_estimators_never_see_the_test_split(estimator: str) -> None:
    data = _RecordingDigits()
    env = nasframe.make_env(dataset=data, estimator=estimator, search_space="chained", seed=0)
    env.reset(seed=0)
    for action in (1, 3):  # conv k3, then max pool k2 (chained space)
        env.step(action)
    assert "test" not in data.requested
    env.close()


def test_handlers_survive_pickling_for_worker_processes(tmp_path: Path) -> None:
    from nasframe_cifar10 import Cifar10Dataset, md5_of
    from nasframe_cifar10.testing import write_archive
    from nasframe_metadataset import MetaDatasetHandler
    from nasframe_metadataset.testing import write_shards

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 32, 32, 3), np.uint8)
    path = write_archive(
        tmp_path / "cifar-10-python.tar.gz",
        (images, np.arange(50) % 10),
        (images[:10], np.arange(10)),
    )
    write_shards(tmp_path / "meta" / "dtd", list(images[:12]), list(range(12)), shards=2)
    meta = MetaDatasetHandler(root=tmp_path / "meta", tasks="dtd", image_size=8)
    meta.tf_dataset("train", batch_size=4)  # caches decoded arrays on the handler
    for handler in (DigitsDataset(), Cifar10Dataset(data_dir=tmp_path, md5=md5_of(path)), meta):
        clone = pickle.loads(pickle.dumps(handler))
        assert clone.identity == handler.identity
        assert clone.num_examples("validation") == handler.num_examples("validation")
        np.testing.assert_array_equal(clone.arrays("train")[0], handler.arrays("train")[0])


class _Swappable(nasframe.DatasetHandler):
    """A handler whose arrays a test can replace (like a task switch does)."""

    name = "swappable"

    def __init__(self, value: float) -> None:
        self.set(value)

    def set(self, value: float) -> None:
        self.images = np.full((6, 2, 2, 1), value, np.float32)
        self.labels = np.zeros(6, np.int64)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (2, 2, 1)

    @property
    def num_classes(self) -> int:
        return 1

    def num_examples(self, split: Split) -> int:
        return 6

    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        return self.images, self.labels


def test_pipeline_follows_new_arrays_and_pickles_after_use() -> None:
    data = _Swappable(1.0)
    first = next(iter(data.tf_dataset("train", batch_size=6)))[0].numpy()
    again = next(iter(data.tf_dataset("train", batch_size=6)))[0].numpy()
    data.set(2.0)
    changed = next(iter(data.tf_dataset("train", batch_size=6)))[0].numpy()
    assert first.max() == again.max() == 1.0 and changed.min() == 2.0
    clone = pickle.loads(pickle.dumps(data))
    assert next(iter(clone.tf_dataset("train", batch_size=3)))[0].numpy().max() == 2.0
