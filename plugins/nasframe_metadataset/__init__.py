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

The package holds the shard reading (:mod:`nasframe_metadataset.shards`), the handler
(:mod:`nasframe_metadataset.handler`) and, here, the hooks and the ``[metadataset]``
section.
"""

from __future__ import annotations

from pathlib import Path

import nasframe
from nasframe import ConfigSchema, DatasetHandler, Registry
from nasframe_metadataset.handler import (
    CLASS_COUNTS,
    MetaDatasetHandler,
    make_metadataset,
    parse_tasks,
)
from nasframe_metadataset.shards import ShardIndex, UndecodableImagesWarning, scan_dataset

__all__ = [
    "CLASS_COUNTS",
    "MetaDatasetHandler",
    "ShardIndex",
    "UndecodableImagesWarning",
    "make_metadataset",
    "parse_tasks",
    "scan_dataset",
]


@nasframe.hookimpl(trylast=True)
def nasframe_register_datasets(registry: Registry[DatasetHandler]) -> None:
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
