"""The default ``DatasetHandler.tf_dataset`` and the dataset plugins' import hygiene."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nasframe import ArrayDataset

pytest.importorskip("tensorflow")


@pytest.fixture
def data() -> ArrayDataset:
    """100 train images whose first pixel is their own number."""
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
