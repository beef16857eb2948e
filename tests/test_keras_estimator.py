"""The Keras estimator with TensorFlow: builders, FLOPs, training, statuses, the CLI.

TensorFlow is imported once for this file; data is tiny (8x8 images) and training runs
1-3 epochs, so the whole file stays within a minute or two on two cores.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from nasframe_keras.builder import BuildError, PadTo, build_model
from nasframe_keras.estimator import KerasEstimator, classify_error
from nasframe_keras.flops import model_flops
from nasframe_keras.settings import KerasSettings

import nasframe
import nasframe.plugins as plugins_module
from nasframe import NSC, ArrayDataset, Status

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

SHAPE = (8, 8, 1)
SMALL = {"filters": 4, "fc_units": 16, "dropout": 0.0}


def _quadrant_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is the bright quadrant: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.normal(0.0, 0.1, (n, 8, 8, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 2)
        images[i, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4, 0] += 1.0
    return images, labels


@pytest.fixture(scope="module")
def data() -> ArrayDataset:
    images, labels = _quadrant_data(400, 0)
    return ArrayDataset.from_arrays("quadrants", images, labels, validation=0.25, test=0.1)


def _estimator(**settings: object) -> KerasEstimator:
    values = {"epochs": 2, "batch_size": 32, **SMALL, **settings}
    return KerasEstimator(KerasSettings.from_mapping(values))


def _features(nsc: str, **settings: object) -> tuple[int, ...]:
    model = build_model(NSC.parse(nsc), SHAPE, 4, KerasSettings(**{**SMALL, **settings}))  # type: ignore[arg-type]
    shape = tuple(int(v) for v in model.get_layer("head_flatten").input.shape[1:])
    assert tuple(model.output.shape) == (None, 4)
    keras.backend.clear_session()
    return shape


# -- builders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nsc", "expected"),
    [
        ("", (8, 8, 1)),  # the empty network: input straight to the head
        ("1,1,3,0,0", (6, 6, 4)),  # PCC conv, valid
        ("1,1,1,0,0", (8, 8, 4)),
        ("1,2,2,0,0", (4, 4, 1)),  # max pool k=2, stride 2
        ("1,3,3,0,0", (2, 2, 1)),  # avg pool k=3, stride 3, valid
        ("1,4,0,0,0", (8, 8, 1)),  # identity
        ("1,1,3,0,0;2,1,1,0,0;3,5,0,1,2", (8, 8, 4)),  # add pads 6x6 up to 8x8
        ("1,1,3,0,0;2,2,2,0,0;3,6,0,1,2", (6, 6, 8)),  # concat pads H, W and C (NASGym)
        ("1,1,3,0,0;2,2,2,0,0", (6, 6, 8)),  # two leaves concatenated the same way
        ("1,1,3,0,0;2,7,0,0,0", (6, 6, 4)),  # terminal ends the block
    ],
)
def test_nasgym_builder_shapes(nsc: str, expected: tuple[int, ...]) -> None:
    assert _features(nsc) == expected


def test_same_padding_keeps_sizes() -> None:
    assert _features("1,1,3,0,0", padding="same") == (8, 8, 4)
    assert _features("1,2,3,0,0", padding="same") == (3, 3, 1)  # ceil(8 / 3)


def test_blockqnn_builder_stacks_stages_and_doubles_channels() -> None:
    settings = {"builder": "blockqnn-v1", "stages": 3, "blocks_per_stage": 2}
    assert _features("1,1,3,0,0;2,2,3,1,0;3,6,0,1,2", **settings) == (2, 2, 16)
    model = build_model(
        NSC.parse("1,1,3,0,0"), SHAPE, 4, KerasSettings(**SMALL, builder="blockqnn-v1", stages=2)
    )
    names = [layer.name for layer in model.layers]
    assert sum(name.endswith("l1_conv3") for name in names) == 4  # 2 stages x 2 blocks
    assert "reduce1_conv3" in names
    keras.backend.clear_session()


def test_pad_to_splits_half_before_half_after() -> None:
    out = np.asarray(PadTo((4, 5, 2))(np.ones((1, 2, 2, 1), np.float32)))
    assert out.shape == (1, 4, 5, 2)
    assert out.sum() == 4
    assert out[0, 1:3, 1:3, 0].sum() == 4  # 2 rows: 1 before, 1 after; 3 cols: 1 / 2
    assert out[..., 1].sum() == 0  # the new channel goes after


@pytest.mark.parametrize(
    ("nsc", "settings", "message"),
    [
        ("1,1,5,0,0;2,1,5,1,0", {}, "layer 2 (convolution 5x5) needs an input of at least 5x5"),
        ("1,2,3,0,0;2,2,3,1,0", {}, "layer 2 (maxpooling 3x3) needs an input of at least 3x3"),
        ("1,1,3,0,0;2,5,0,1,0", {}, "layer 2 (add) merges the raw input (predecessor 0)"),
        ("1,1,3,0,0;2,6,0,0,1", {}, "layer 2 (concat) merges the raw input"),
        ("1,1,3,0,0", {"builder": "blockqnn-v1", "stages": 5}, "stage 5 of 5 needs a 2x2 input"),
    ],
)
def test_unbuildable_architectures(nsc: str, settings: dict[str, object], message: str) -> None:
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model(NSC.parse(nsc), SHAPE, 4, KerasSettings(**{**SMALL, **settings}))  # type: ignore[arg-type]
    keras.backend.clear_session()


def test_flops_and_params_are_analytic() -> None:
    model = build_model(NSC.parse("1,1,3,0,0"), SHAPE, 3, KerasSettings(**SMALL))  # type: ignore[arg-type]
    relu, conv = 64, 6 * 6 * 4 * (2 * 9 * 1) + 6 * 6 * 4
    bn, fc, fc_relu, logits = 2 * 144, 2 * 144 * 16 + 16, 16, 2 * 16 * 3 + 3
    assert model_flops(model) == relu + conv + bn + fc + fc_relu + logits
    assert model.count_params() == (9 * 4 + 4) + 4 * 4 + (144 * 16 + 16) + (16 * 3 + 3)
    keras.backend.clear_session()


# -- training ---------------------------------------------------------------------------


def test_trains_and_reports_everything(data: ArrayDataset) -> None:
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    evaluation = _estimator(epochs=3, learning_rate=0.01).evaluate(nsc, data, seed=3)
    assert evaluation.status is Status.OK, evaluation.message
    assert 0.0 <= evaluation.accuracy <= 1.0
    assert evaluation.accuracy > 0.5  # the bright quadrant is easy; chance is 0.25
    assert evaluation.epochs == 3
    assert evaluation.params > 0 and evaluation.flops > 0
    assert evaluation.density == pytest.approx(nsc.density())
    assert evaluation.seconds > 0 and evaluation.message == ""


def test_empty_network_and_blockqnn_builder_train(data: ArrayDataset) -> None:
    empty = _estimator(epochs=1).evaluate(NSC(), data, seed=0)
    assert empty.status is Status.OK and 0 <= empty.accuracy <= 1
    stacked = _estimator(epochs=1, builder="blockqnn-v1", stages=2, blocks_per_stage=1)
    result = stacked.evaluate(NSC.parse("1,1,3,0,0;2,3,3,0,0;3,5,0,1,2"), data, seed=0)
    assert result.status is Status.OK, result.message


def test_input_pipelines_full_batches_and_no_autotuner(data: ArrayDataset) -> None:
    from nasframe_keras.trainer import input_pipelines

    train, validation, steps = input_pipelines(data, 32, seed=1)
    n_train, n_val = data.num_examples("train"), data.num_examples("validation")
    assert steps == -(-n_train // 32)
    shapes = [tuple(x.shape) for x, _ in train.take(steps + 2)]  # repeats past one epoch
    assert shapes == [(32, 8, 8, 1)] * (steps + 2)
    assert sum(int(y.shape[0]) for _, y in validation) == n_val
    # The autotuner left a training limited to one CPU idle a third of the time (the
    # comment in trainer.input_pipelines); both pipelines must keep it off.
    assert train.options().autotune.enabled is False
    assert validation.options().autotune.enabled is False


def test_learning_rate_schedule_is_applied(data: ArrayDataset) -> None:
    estimator = _estimator(epochs=5, learning_rate=0.01, lr_decay=0.5, lr_decay_epochs=2)
    assert estimator.evaluate(NSC.parse("1,1,1,0,0"), data, seed=0).ok
    # read back from the optimizer's variable at the start of every epoch
    assert estimator.last_train.learning_rates == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])


def test_accuracy_is_measured_on_the_validation_split(data: ArrayDataset) -> None:
    estimator = _estimator(epochs=2, patience=5)
    evaluation = estimator.evaluate(NSC.parse("1,2,2,0,0"), data, seed=0)
    n_val = data.num_examples("validation")
    accuracies = [acc for _, acc in estimator.last_train.accuracies]
    assert len(accuracies) == 2  # measured each epoch with early stopping on
    assert all(round(acc * n_val) == pytest.approx(acc * n_val) for acc in accuracies)
    assert evaluation.accuracy == max(accuracies)


def test_seeded_evaluations_repeat_exactly(data: ArrayDataset) -> None:
    nsc = NSC.parse("1,1,3,0,0;2,1,1,0,0;3,5,0,1,2")
    estimator = _estimator(epochs=2)
    first = estimator.evaluate(nsc, data, seed=7)
    losses = list(estimator.last_train.losses)
    second = estimator.evaluate(nsc, data, seed=7)
    assert first.status is Status.OK
    assert second.accuracy == first.accuracy
    assert estimator.last_train.losses == losses


@pytest.mark.parametrize(
    ("nsc", "fc_units"),
    [
        ("1,1,3,0,0;2,1,1,0,0;3,5,0,1,2", 16),  # every variable small: one flat update
        ("", 1100),  # a 64 x 1100 head kernel: above the flat limit, updated on its own
    ],
)
def test_traced_adam_trains_bit_identically_to_keras_adam(
    data: ArrayDataset, nsc: str, fc_units: int
) -> None:
    # The trainer's own Adam (traced into the step, cheaper to trace) must repeat Keras'
    # optimizer exactly: cached results and benchmark tables were made with Keras'.
    from nasframe_keras.trainer import _FUSE_LIMIT, train

    assert 64 * fc_units > _FUSE_LIMIT or fc_units == 16
    tf.config.experimental.enable_op_determinism()
    values = {"epochs": 3, "batch_size": 32, **SMALL, "dropout": 0.3, "learning_rate": 0.01}
    values["fc_units"] = fc_units
    settings = KerasSettings.from_mapping({**values, "lr_decay": 0.5, "lr_decay_epochs": 1})
    runs = []
    for keras_optimizer in (True, False):
        keras.utils.set_random_seed(11)
        model = build_model(NSC.parse(nsc), SHAPE, 4, settings)
        result = train(
            model,
            data,
            settings,
            seed=11,
            every_epoch=True,
            test=True,
            _keras_optimizer=keras_optimizer,
        )
        runs.append((result, [np.array(w) for w in model.weights]))
        keras.backend.clear_session()
    (reference, reference_weights), (ours, our_weights) = runs
    assert ours.status is Status.OK and ours.epochs == 3
    assert ours.losses == reference.losses
    assert ours.accuracies == reference.accuracies
    assert ours.test_accuracy == reference.test_accuracy
    assert ours.learning_rates == reference.learning_rates == pytest.approx([0.01, 0.005, 0.0025])
    assert len(our_weights) == len(reference_weights)
    assert all(np.array_equal(a, b) for a, b in zip(our_weights, reference_weights, strict=True))


def test_no_traced_graph_outlives_its_evaluation(data: ArrayDataset) -> None:
    import gc

    from nasframe_keras.estimator import _custom_gradients
    from tensorflow.python.framework.func_graph import FuncGraph

    def graphs() -> int:
        gc.collect()
        return sum(isinstance(o, FuncGraph) for o in gc.get_objects())

    registered, alive = _custom_gradients(), graphs()
    for seed in range(2):
        assert _estimator(epochs=1).evaluate(NSC.parse("1,1,1,0,0"), data, seed=seed).ok
    # Keras' optimizer registers a global custom gradient per trace; the estimator drops
    # it, so the traced train step (and its memory) goes with the evaluation.
    assert _custom_gradients() == registered
    assert graphs() <= alive


def test_early_stopping_stops_when_accuracy_stalls(data: ArrayDataset) -> None:
    # A learning rate of 1e-12 cannot change the predictions: accuracy stalls at once.
    estimator = _estimator(epochs=10, patience=2, learning_rate=1e-12)
    evaluation = estimator.evaluate(NSC(), data, seed=0)
    assert evaluation.status is Status.OK
    assert evaluation.epochs == 3  # best after epoch 1, no better in 2 and 3


# -- failures ---------------------------------------------------------------------------


def test_invalid_architecture_is_a_status(data: ArrayDataset) -> None:
    evaluation = _estimator().evaluate(NSC.parse("1,1,5,0,0;2,1,5,1,0"), data)
    assert evaluation.status is Status.INVALID
    assert evaluation.message == (
        "1,1,5,0,0;2,1,5,1,0: layer 2 (convolution 5x5) needs an input of at least 5x5, got 4x4"
    )
    assert evaluation.accuracy == 0 and evaluation.density == pytest.approx(0.75)


def test_diverging_learning_rate(data: ArrayDataset) -> None:
    evaluation = _estimator(learning_rate=1e30).evaluate(NSC.parse("1,1,3,0,0"), data, seed=0)
    assert evaluation.status is Status.DIVERGED
    assert evaluation.message.startswith("the training loss became nan in epoch 1")


def test_tiny_time_budget_times_out(data: ArrayDataset) -> None:
    evaluation = _estimator(epochs=50, time_budget=0.001).evaluate(NSC.parse("1,1,3,0,0"), data)
    assert evaluation.status is Status.TIMEOUT
    assert evaluation.message == "time budget of 0.001 s ran out; no epoch finished"
    assert evaluation.accuracy == 0 and evaluation.epochs == 0


def test_timeout_keeps_the_best_accuracy_so_far(data: ArrayDataset) -> None:
    estimator = _estimator(epochs=100000, time_budget=6)
    evaluation = estimator.evaluate(NSC.parse("1,1,1,0,0"), data, seed=0)
    assert evaluation.status is Status.TIMEOUT
    accuracies = [acc for _, acc in estimator.last_train.accuracies]
    assert evaluation.accuracy == max(accuracies, default=0.0)
    assert evaluation.epochs == len(estimator.last_train.losses) == len(accuracies)


def test_real_out_of_memory(data: ArrayDataset) -> None:
    # A 64 x 2**30 dense kernel is 256 GiB: TensorFlow's allocator refuses it at once.
    evaluation = _estimator(fc_units=2**30).evaluate(NSC(), data)
    assert evaluation.status is Status.OUT_OF_MEMORY
    assert evaluation.message.startswith("out of memory: ResourceExhaustedError:")


def test_error_classification() -> None:
    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    assert classify_error(oom) == (
        Status.OUT_OF_MEMORY,
        "out of memory: ResourceExhaustedError: OOM when allocating tensor",
    )
    assert classify_error(MemoryError())[0] is Status.OUT_OF_MEMORY
    assert classify_error(RuntimeError("boom\nsecond line")) == (
        Status.ERROR,
        "RuntimeError: boom second line",
    )


class _WrongClasses(ArrayDataset):
    """A broken handler: it claims 2 classes but its labels go up to 3."""

    @property
    def num_classes(self) -> int:
        return 2


def test_other_failures_are_error_never_raised(data: ArrayDataset) -> None:
    splits = {split: data.arrays(split) for split in ("train", "validation", "test")}
    broken = _WrongClasses("broken", splits)
    evaluation = _estimator().evaluate(NSC.parse("1,1,1,0,0"), broken)
    assert evaluation.status is Status.ERROR
    assert evaluation.message.startswith("InvalidArgumentError:")
    assert "\n" not in evaluation.message


# -- the command ------------------------------------------------------------------------


@pytest.fixture
def cli_manager(monkeypatch: pytest.MonkeyPatch, data: ArrayDataset) -> None:
    # A real plugin registering the test data; the command builds everything through
    # the plugin manager as it does for `--dataset digits`.
    class TestData:
        @staticmethod
        @nasframe.hookimpl
        def nasframe_register_datasets(registry: nasframe.Registry) -> None:
            registry.add("quadrants-v1", lambda: data, summary="test data")

    real = plugins_module.get_plugin_manager
    monkeypatch.setattr(
        plugins_module, "get_plugin_manager", lambda: real(plugins=[("testdata", TestData)])
    )


@pytest.mark.usefixtures("cli_manager")
def test_cli_evaluate_prints_the_evaluation() -> None:
    from nasframe.cli import main

    settings = ["--set", "keras.epochs=1", "--set", "keras.fc_units=16", "--set", "run.seed=2"]
    result = CliRunner().invoke(
        main, ["evaluate", "1,1,3,0,0", "--dataset", "quadrants", *settings]
    )
    assert result.exit_code == 0, result.output
    pairs = (line.partition(":")[::2] for line in result.output.strip().splitlines())
    lines = {key: value.strip() for key, value in pairs}
    assert lines["nsc"] == "1,1,3,0,0"
    assert lines["status"] == "ok"
    assert lines["epochs"] == "1"
    assert 0 <= float(lines["accuracy"]) <= 1
    assert lines["estimator"].startswith("keras-v1 (keras-1-")


def test_cli_evaluate_on_the_bundled_digits() -> None:
    from nasframe.cli import main

    args = ["evaluate", "1,1,3,0,0;2,2,2,1,0", "--dataset", "digits", "--set", "keras.epochs=1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "status: ok" in result.output
    assert "dataset: digits" in result.output


@pytest.mark.usefixtures("cli_manager")
def test_cli_evaluate_user_errors_are_one_line() -> None:
    from nasframe.cli import main

    result = CliRunner().invoke(main, ["evaluate", "1,1,3,0", "--dataset", "quadrants"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: NSC row 1 ('1,1,3,0') has 4 fields; expected 5: index,type,kernel,pred1,pred2"
    ]
    result = CliRunner().invoke(main, ["evaluate", "1,1,3,0,0", "--dataset", "quadrant"])
    assert result.exit_code == 1
    assert result.output.startswith("error: unknown dataset 'quadrant'; did you mean 'quadrants")
    result = CliRunner().invoke(main, ["evaluate", "", "--set", "keras.epochz=1"])
    assert result.exit_code == 1
    assert "unknown key 'epochz' in section [keras]; did you mean 'epochs'?" in result.output


# -- in the environment -----------------------------------------------------------------


def test_environment_step_returns_a_real_accuracy(plugin_manager: nasframe.PluginManager) -> None:
    # the bundled digits dataset, through the registries, as a search builds it
    settings = {"epochs": 1, "filters": 4, "fc_units": 32}
    config = nasframe.load_config(overrides={"keras": settings}, plugin_manager=plugin_manager)
    env = nasframe.make_env(
        search_space="chained",
        estimator="keras",
        dataset="digits",
        database="memory",
        config=config,
        plugin_manager=plugin_manager,
        seed=0,
    )
    env.reset(seed=0)
    conv = next(a.id for a in env.unwrapped.search_space.actions() if "convolution_k-3" in a.label)
    _, reward, _, _, info = env.step(conv)
    assert info["status"] == "ok"
    assert 0.0 <= info["accuracy"] <= 1.0 and reward == pytest.approx(info["accuracy"])
    env.close()
