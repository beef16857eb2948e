"""keras-v1's batch-normalisation statistics and its training accuracy (issue 28).

The first trainer measured accuracy with moving statistics that had not settled after
about 200 steps (Keras' momentum 0.99): networks with stacked convolutions scored at
chance. These tests train a real two-convolution network on NSC-Bench's translated digits
for as many steps and compare with an independent plain-Keras run (``model.fit``, Keras'
own optimizer and loop) whose statistics are recomputed after training.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from nasframe_keras.estimator import KerasEstimator
from nasframe_keras.settings import KerasSettings
from nasframe_keras.trainer import batch_norm_layers, recompute_batch_norm, train_subset

from nasframe import NSC, ArrayDataset, CacheKey, ConfigError, Evaluation, Record
from nasframe.bench import BenchTable

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

#: NSC-Bench's [keras] settings (resources/nsc-bench-v3.ini)
BENCH = KerasSettings(epochs=6, padding="same", filters=16, fc_units=128)
#: two stacked full-resolution convolutions, then a pooling: the shape that collapsed
STACKED = "1,1,3,0,0;2,1,3,1,0;3,2,2,2,0"


@pytest.fixture(scope="module")
def shifted() -> ArrayDataset:
    from nasframe_digits.shifted import ShiftedDigitsDataset

    # NSC-Bench's data: 4,316 training images, 34 steps an epoch, 204 in six epochs
    return ShiftedDigitsDataset(placements=4, eval_placements=2)


def _plain_keras(nsc: str, dataset: ArrayDataset, settings: KerasSettings, seed: int) -> float:
    """The reference: Keras' own fit, statistics recomputed, Keras' own evaluate."""
    estimator = KerasEstimator(replace(settings, batch_norm="as-built"))
    keras.utils.set_random_seed(seed)
    model = estimator.build_network(NSC.parse(nsc), dataset)
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate, epsilon=settings.epsilon),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = dataset.arrays("train")
    model.fit(x, y, batch_size=settings.batch_size, epochs=settings.epochs, verbose=0)
    recompute_batch_norm(model, train_subset(dataset, settings.batch_size))
    xv, yv = dataset.arrays("validation")
    accuracy = float(model.evaluate(xv, yv, batch_size=settings.batch_size, verbose=0)[1])
    keras.backend.clear_session()
    return accuracy


@pytest.fixture(scope="module")
def stacked_new(shifted: ArrayDataset) -> Evaluation:
    """The default trainer's evaluation of the stacked network (trained once, shared)."""
    return KerasEstimator(BENCH).evaluate(NSC.parse(STACKED), shifted, seed=0)


def test_stacked_convolutions_score_far_above_chance_like_plain_keras(
    shifted: ArrayDataset, stacked_new: Evaluation
) -> None:
    new = stacked_new
    reference = _plain_keras(STACKED, shifted, BENCH, seed=0)
    # chance is 0.10; the issue measured 0.855 for a network of this shape. Two
    # independent trainings (other optimizer code, other shuffles) of one network differ
    # by a few points on 718 validation images: 0.10 is the tolerance.
    assert new.ok and new.accuracy > 0.6
    assert reference > 0.6
    assert abs(new.accuracy - reference) < 0.10
    assert new.train_accuracy is not None and new.train_accuracy > 0.6


def test_momentum_mode_agrees_with_the_recompute_mode(
    shifted: ArrayDataset, stacked_new: Evaluation
) -> None:
    network = NSC.parse(STACKED)
    recompute = stacked_new
    momentum = KerasEstimator(replace(BENCH, batch_norm="momentum")).evaluate(
        network, shifted, seed=0
    )
    assert recompute.ok and abs(recompute.accuracy - momentum.accuracy) < 0.05


def test_as_built_is_the_first_trainer_momentum_left_at_keras_default(
    shifted: ArrayDataset,
) -> None:
    """``as-built`` trains bit for bit as a trainer that sets Keras' own momentum."""
    small = replace(BENCH, epochs=1)
    network = NSC.parse("1,1,3,0,0;2,1,1,1,0")
    runs = []
    for settings in (
        replace(small, batch_norm="as-built"),
        replace(small, batch_norm="momentum", batch_norm_momentum=0.99),
    ):
        estimator = KerasEstimator(settings)
        runs.append(estimator.measure(network, shifted, seed=3, test=True))
    assert runs[0].curve == runs[1].curve
    assert runs[0].test_accuracy == runs[1].test_accuracy
    assert runs[0].evaluation.train_accuracy == runs[1].evaluation.train_accuracy


def test_momentum_is_set_on_every_batch_norm_layer_before_training(
    shifted: ArrayDataset,
) -> None:
    from nasframe_keras.trainer import train

    settings = replace(BENCH, epochs=1, batch_norm="momentum", batch_norm_momentum=0.8)
    estimator = KerasEstimator(settings)
    model = estimator.build_network(NSC.parse(STACKED), shifted)
    layers = batch_norm_layers(model)
    assert len(layers) == 2 and all(layer.momentum == 0.99 for layer in layers)
    train(model, shifted, settings, seed=0)
    assert all(layer.momentum == 0.8 for layer in layers)
    keras.backend.clear_session()


def test_recompute_gives_the_batch_moments_of_the_data() -> None:
    """One batch-norm layer on the raw input: the recomputed statistics are its moments."""
    rng = np.random.default_rng(0)
    images = rng.normal(3.0, 2.0, (256, 4, 4, 2)).astype(np.float32)
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    batches = [(images[:128], None), (images[128:200], None), (images[200:], None)]
    function = recompute_batch_norm(model, batches)
    # batches of three sizes, one trace: the batch dimension is left open
    assert function.experimental_get_tracing_count() == 1
    layer = batch_norm_layers(model)[0]
    expected_mean = np.zeros(2)
    expected_var = np.zeros(2)
    for chunk, _ in batches:
        expected_mean += chunk.mean(axis=(0, 1, 2)) * len(chunk)
        expected_var += chunk.var(axis=(0, 1, 2)) * len(chunk)
    np.testing.assert_allclose(layer.moving_mean.numpy(), expected_mean / 256, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), expected_var / 256, rtol=1e-4)
    assert layer.momentum == 0.99  # restored
    keras.backend.clear_session()


def test_training_accuracy_is_on_a_fixed_training_subset(shifted: ArrayDataset) -> None:
    estimator = KerasEstimator(replace(BENCH, epochs=1))
    first = estimator.evaluate(NSC.parse("1,3,2,0,0"), shifted, seed=0)
    again = estimator.evaluate(NSC.parse("1,3,2,0,0"), shifted, seed=0)
    assert first.train_accuracy is not None and 0.0 <= first.train_accuracy <= 1.0
    assert first.train_accuracy == again.train_accuracy
    count = sum(int(x.shape[0]) for x, _ in train_subset(shifted, 128))
    assert count == shifted.num_examples("validation")


def test_failed_evaluations_have_no_training_accuracy(shifted: ArrayDataset) -> None:
    evaluation = KerasEstimator(replace(BENCH, padding="valid")).evaluate(
        NSC.parse("1,2,3,0,0;2,2,3,1,0;3,2,3,2,0;4,2,3,3,0"), shifted, seed=0
    )
    assert evaluation.status.value == "invalid" and evaluation.train_accuracy is None


def test_fingerprints_new_differs_as_built_is_the_first_trainers() -> None:
    """The old tables' estimator fingerprint is as-built's; the default's is new."""
    # the estimator of withdrawn NSC-Bench v1's build.json (git show d28bcbb:nasframe/bench/
    # data/nsc-bench-v1/build.json); v3's card holds the corrected trainer's
    old = "keras-1-84dcea0bad28"
    as_built = KerasEstimator(replace(BENCH, batch_norm="as-built"))
    assert as_built.fingerprint() == old
    new = KerasEstimator(BENCH)  # batch_norm = recompute
    assert new.fingerprint() != old
    # v3 was built by the default trainer with NSC-Bench's settings (patience 0)
    card = json.loads((BenchTable.shipped("nsc-bench-v3") / "build.json").read_text())
    assert KerasEstimator(replace(BENCH, patience=0)).fingerprint() == card["estimator"]
    momentum = KerasEstimator(replace(BENCH, batch_norm="momentum"))
    assert momentum.fingerprint() not in (new.fingerprint(), as_built.fingerprint())
    other = KerasEstimator(replace(BENCH, batch_norm="momentum", batch_norm_momentum=0.8))
    assert other.fingerprint() != momentum.fingerprint()
    # the momentum does not matter to the other modes: it is not in their fingerprint
    assert (
        KerasEstimator(replace(BENCH, batch_norm_momentum=0.8)).fingerprint() == new.fingerprint()
    )


def test_an_old_trainers_result_is_never_a_cache_hit_for_the_new(tmp_path: object) -> None:
    from nasframe_csv.db import CsvExperimentDB

    network = NSC.parse(STACKED)
    old = KerasEstimator(replace(BENCH, batch_norm="as-built"))
    db = CsvExperimentDB(f"{tmp_path}/experiments.csv")
    db.put(
        Record(
            dataset="shifted-digits",
            task="",
            arch_hash=network.canonical_hash,
            nsc=str(network),
            estimator=old.name,
            estimator_version=old.version,
            fingerprint=old.fingerprint(),
            evaluation=Evaluation(accuracy=0.124),
        )
    )
    new = KerasEstimator(BENCH)
    assert db.get(CacheKey("shifted-digits", network.canonical_hash, old.fingerprint()))
    assert db.get(CacheKey("shifted-digits", network.canonical_hash, new.fingerprint())) is None


def test_bad_batch_norm_settings_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[keras\] batch_norm"):
        KerasSettings(batch_norm="precise")
    with pytest.raises(ConfigError, match=r"\[keras\] batch_norm_momentum"):
        KerasSettings(batch_norm_momentum=1.0)


def test_the_build_row_records_the_training_accuracy(shifted: ArrayDataset) -> None:
    from nasframe.bench.build import measure_row

    row = measure_row(KerasEstimator(replace(BENCH, epochs=1)), shifted, NSC.parse("1,3,2,0,0"), 0)
    assert row.ok and not math.isnan(row.train) and 0.0 <= row.train <= 1.0
