"""The proxy estimator (analytic, deterministic) and the in-memory database."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from nasframe_memory import MemoryDB
from nasframe_proxy import ProxyEstimator

import nasframe
from nasframe import NSC, ArrayDataset, ConfigError, Evaluation, Record, Status
from nasframe.evaluation import make_record


def _dataset(shape: tuple[int, int, int] = (8, 8, 1), classes: int = 4) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.random((40, *shape))
    return ArrayDataset.from_arrays("d", images, np.arange(40) % classes)


def test_counts_follow_the_documented_network() -> None:
    evaluation = ProxyEstimator().evaluate(NSC.parse("1,1,3,0,0"), _dataset())
    assert evaluation.status is Status.OK
    # conv 3x3, 32 filters on 8x8x1 -> 6x6x32; head Dense(1024) -> Dense(4)
    conv_params = 9 * 1 * 32 + 5 * 32
    head_params = (6 * 6 * 32) * 1024 + 1024 + 1024 * 4 + 4
    assert evaluation.params == conv_params + head_params
    conv_flops = 2 * 9 * 32 * 6 * 6
    head_flops = 2 * (6 * 6 * 32 * 1024 + 1024 * 4)
    assert evaluation.flops == conv_flops + head_flops
    assert evaluation.density == pytest.approx(2 / 3)
    coverage = 1 - math.exp(-2 * 3 / 8)
    capacity = 1 - 0.5 * math.exp(-1 / 2)
    expected = 0.25 + 0.75 * 0.9 * coverage * capacity
    assert evaluation.accuracy == pytest.approx(expected, abs=1e-6)


def test_merges_pooling_and_leaves() -> None:
    proxy = ProxyEstimator(filters=4, dense_units=8)
    # conv5 on 8x8 -> 4x4x4; maxpool2 of the input -> 4x4x1; concat pads channels as
    # keras-v1's builder does: both to 4 -> 4x4x8
    evaluation = proxy.evaluate(NSC.parse("1,1,5,0,0;2,2,2,0,0;3,6,0,1,2"), _dataset())
    flat = 4 * 4 * 8
    block = 25 * 4 + 5 * 4
    assert evaluation.params == block + flat * 8 + 8 + 8 * 4 + 4
    # two unused branches are concatenated into the output: 6x6x4 conv and the 4x4x1 pool
    # of the input, padded to 6x6x4 -> 6x6x8
    two_leaves = proxy.evaluate(NSC.parse("1,1,3,0,0;2,3,2,0,0"), _dataset())
    assert two_leaves.params == 9 * 4 + 5 * 4 + (6 * 6 * 8) * 8 + 8 + 8 * 4 + 4


def test_a_merge_of_the_input_is_invalid_as_in_keras_v1() -> None:
    evaluation = ProxyEstimator().evaluate(NSC.parse("1,1,3,0,0;2,5,0,1,0"), _dataset())
    assert evaluation.status is Status.INVALID
    assert "layer 2 (add) merges the raw input" in evaluation.message


def test_invalid_when_the_spatial_size_runs_out() -> None:
    evaluation = ProxyEstimator().evaluate(NSC.parse("1,2,3,0,0;2,2,3,1,0"), _dataset())
    assert evaluation.status is Status.INVALID and evaluation.accuracy == 0.0
    assert evaluation.message == "layer 2 (maxpooling 3x3) needs an input of at least 3x3, got 2x2"


def test_deterministic_bounded_and_input_dependent() -> None:
    proxy = ProxyEstimator()
    rng = np.random.default_rng(5)
    space_nets = [NSC(), NSC.parse("1,1,5,0,0;2,1,5,1,0;3,1,5,2,0;4,7,0,0,0")]
    for _ in range(50):
        rows = [(i, 1, int(rng.choice([1, 3])), i - 1, 0) for i in range(1, rng.integers(1, 5))]
        space_nets.append(NSC.from_rows(rows))
    big = _dataset((32, 32, 3), classes=10)
    for nsc in space_nets:
        a = proxy.evaluate(nsc, big, seed=1)
        b = proxy.evaluate(nsc, big, seed=2)
        assert (a.accuracy, a.params, a.flops) == (b.accuracy, b.params, b.flops)
        assert 0.1 <= a.accuracy <= 0.91
    small = proxy.evaluate(space_nets[1].without_terminal(), _dataset())
    assert small.accuracy != proxy.evaluate(space_nets[1], big).accuracy


def test_fingerprint_covers_settings() -> None:
    same = ProxyEstimator(filters=32, dense_units=1024)
    assert ProxyEstimator().fingerprint() == same.fingerprint()
    assert ProxyEstimator().fingerprint().startswith("proxy-2-")
    assert ProxyEstimator(filters=16).fingerprint() != ProxyEstimator().fingerprint()
    assert ProxyEstimator(dense_units=16).fingerprint() != ProxyEstimator().fingerprint()
    # the settings are the [proxy] section's keys: the same one-line errors as --set
    with pytest.raises(ConfigError, match=r"^\[proxy\] filters: 0 is below the minimum 1$"):
        ProxyEstimator(filters=0)
    with pytest.raises(ConfigError, match=r"^unknown key 'filter' in section \[proxy\]"):
        ProxyEstimator(filter=8)


def test_registered_with_its_section(plugin_manager: nasframe.PluginManager) -> None:
    info = plugin_manager.registry("estimator").get("proxy")
    assert info.name == "proxy-v1" and info.section == "proxy" and info.available
    config = nasframe.load_config(plugin_manager=plugin_manager)
    assert config.section("proxy") == {"filters": 32, "dense_units": 1024}
    with pytest.raises(ConfigError, match=r"\[proxy\] filters: 0 is below the minimum 1"):
        nasframe.load_config(overrides={"proxy": {"filters": 0}}, plugin_manager=plugin_manager)


# -- memory-v1 -----------------------------------------------------------------------------
def _record(text: str, accuracy: float, status: Status = Status.OK) -> Record:
    return make_record(
        NSC.parse(text),
        Evaluation(status=status, accuracy=accuracy),
        estimator=ProxyEstimator(),
        dataset=_dataset(),
        seed=0,
    )


def test_memory_db_stores_in_order_and_keeps_the_first() -> None:
    db = MemoryDB(path="ignored.csv")
    first = _record("1,1,3,0,0", 0.5)
    db.put(first)
    db.put(_record("1,1,1,0,0", 0.4))
    db.put(_record("1,1,3,0,0;2,7,0,0,0", 0.9))  # same network (terminal ignored)
    assert len(db) == 2
    assert db.get(first.key) == first and first.key in db
    assert [r.nsc for r in db] == ["1,1,3,0,0", "1,1,1,0,0"]
    frame = db.to_frame()
    assert list(frame["accuracy"]) == [0.5, 0.4]
    assert MemoryDB(db).get(first.key) == first


def test_memory_db_replaces_only_transient_failures() -> None:
    db = MemoryDB()
    timed_out = _record("1,1,3,0,0", 0.2, status=Status.TIMEOUT)
    db.put(timed_out)
    retried = _record("1,1,3,0,0", 0.7)
    db.put(retried)  # the retry of a transient failure supersedes it
    assert db.get(timed_out.key) == retried
    invalid = _record("1,2,3,0,0", 0.0, status=Status.INVALID)
    db.put(invalid)
    db.put(_record("1,2,3,0,0", 0.9))  # a permanent failure stays: first wins
    assert db.get(invalid.key) == invalid
    assert len(db) == 2


def test_memory_db_is_registered(plugin_manager: nasframe.PluginManager) -> None:
    db = plugin_manager.registry("database").create("memory")
    assert isinstance(db, MemoryDB) and len(db) == 0


def test_settings_declared_once_make_the_section_and_check_values() -> None:
    @dataclass(frozen=True)
    class Shapes(nasframe.Settings):
        SECTION: ClassVar[str] = "shapes"
        DESCRIPTION: ClassVar[str] = "shapes"

        size: int = nasframe.setting(16, "image side", min=4)
        noise: float = nasframe.setting(0.0, "noise", min=0, below=1)
        mode: str = nasframe.setting("a", "mode", choices=("a", "b"))
        label: str | None = nasframe.setting(None, "an optional label")
        share: float = nasframe.setting(0.5, "a share", above=0, max=1)
        rate: float = nasframe.setting(0.1, "a rate", above=0)

    schema = nasframe.ConfigSchema()
    Shapes.declare(schema)
    keys = schema.sections["shapes"].keys
    assert (keys["size"].type, keys["size"].default, keys["size"].min) == (int, 16, 4)
    assert keys["label"].optional and keys["noise"].below == 1
    assert Shapes.from_mapping({"size": "8"}).size == 8  # converted as a file's value
    with pytest.raises(ConfigError, match=r"^\[shapes\] noise: 1.0 must be in \[0, 1\)$"):
        Shapes(noise=1.0)
    with pytest.raises(ConfigError, match=r"^\[shapes\] mode: 'c' is not one of a, b"):
        Shapes(mode="c")
    assert Shapes(share=1.0).share == 1.0 and keys["share"].describe() == "float, > 0, <= 1"
    with pytest.raises(ConfigError, match=r"^\[shapes\] share: 0.0 must be in \(0, 1\]$"):
        Shapes(share=0.0)
    with pytest.raises(ConfigError, match=r"^\[shapes\] rate: -1.0 must be above 0$"):
        Shapes(rate=-1.0)
    with pytest.raises(ValueError, match="declared twice"):
        Shapes.declare(schema)
