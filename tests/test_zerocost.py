"""zerocost-v1: the zero-cost proxies on the network keras-v1 builds (TensorFlow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nasframe
from nasframe import NSC, ArrayDataset, Status

keras = pytest.importorskip("keras")

# Each test builds Keras models (no training); TensorFlow's eager start-up dominates.
pytestmark = pytest.mark.slow

from nasframe_zerocost import PROXIES, SQUASH, ZeroCostEstimator, proxies, squash  # noqa: E402

SMALL = {"filters": 2, "fc_units": 3, "dropout": 0.0, "epochs": 1}


def _dataset(shape: tuple[int, int, int] = (2, 2, 1), classes: int = 2, n: int = 8) -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.random((n, *shape), dtype=np.float32)
    return ArrayDataset.from_arrays("tiny", images, np.arange(n) % classes)


def _network(
    plugin_manager: nasframe.PluginManager, **settings: object
) -> nasframe.PerformanceEstimator:
    return plugin_manager.registry("estimator").create("keras-v1", **{**SMALL, **settings})


@pytest.fixture
def head_only(plugin_manager: nasframe.PluginManager):  # type: ignore[no-untyped-def]
    """The empty network on 2x2x1, 2 classes: Flatten -> Dense(3, relu) -> Dense(2)."""
    keras.utils.set_random_seed(0)
    model = _network(plugin_manager).build_network(NSC(), _dataset())  # type: ignore[attr-defined]
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in model.get_weights())
    assert w1.shape == (4, 3) and w2.shape == (3, 2) and not b1.any() and not b2.any()
    yield model, w1, w2
    keras.backend.clear_session()


def _batch() -> tuple[np.ndarray, np.ndarray]:
    images = np.array(
        [
            [[[1.0], [0.0]], [[0.5], [2.0]]],
            [[[0.0], [1.0]], [[1.0], [0.0]]],
            [[[2.0], [1.0]], [[0.0], [0.5]]],
        ],
        dtype=np.float32,
    )
    return images, np.array([0, 1, 1])


def _unchanged(model, before):  # type: ignore[no-untyped-def]
    return all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_synflow_is_layers_times_the_output_of_the_absolute_network(head_only) -> None:  # type: ignore[no-untyped-def]
    model, w1, w2 = head_only
    before = model.get_weights()
    # all-ones input, absolute weights, zero biases: every layer carries the whole output
    total = np.ones(4) @ np.abs(w1) @ np.abs(w2) @ np.ones(2)
    assert proxies.synflow(model) == pytest.approx(2 * total, rel=1e-5)
    assert _unchanged(model, before)


def test_naswot_is_the_logdet_of_the_relu_code_kernel(head_only) -> None:  # type: ignore[no-untyped-def]
    model, w1, _ = head_only
    images, labels = _batch()
    before = model.get_weights()
    codes = (images.reshape(3, 4) @ w1 > 0).astype(float)
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    sign, logdet = np.linalg.slogdet(kernel)
    expected = logdet if sign > 0 else -math.inf
    assert proxies.naswot(model, images, labels) == pytest.approx(expected)
    assert _unchanged(model, before)


def _loss_grads(w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _batch()
    x = images.reshape(3, 4).astype(np.float64)
    h = np.maximum(x @ w1, 0)
    logits = h @ w2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d_logits = (p - np.eye(2)[labels]) / 3
    g2 = h.T @ d_logits
    g1 = x.T @ ((d_logits @ w2.T) * (h > 0))
    return g1, g2


def test_grad_norm_and_snip_match_the_hand_derived_gradients(head_only) -> None:  # type: ignore[no-untyped-def]
    model, w1, w2 = head_only
    images, labels = _batch()
    before = model.get_weights()
    g1, g2 = _loss_grads(w1, w2)
    assert proxies.grad_norm(model, images, labels) == pytest.approx(
        np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-4
    )
    assert proxies.snip(model, images, labels) == pytest.approx(
        np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum(), rel=1e-4
    )
    assert _unchanged(model, before)


def test_jacob_cov_matches_the_hand_derived_input_gradients(head_only) -> None:  # type: ignore[no-untyped-def]
    model, w1, w2 = head_only
    images, labels = _batch()
    before = model.get_weights()
    x = images.reshape(3, 4).astype(np.float64)
    active = (x @ w1 > 0).astype(float)
    jacobian = (active * (w2 @ np.ones(2))) @ w1.T
    values = np.linalg.eigvalsh(np.corrcoef(jacobian))
    expected = -np.sum(np.log(values + 1e-5) + 1 / (values + 1e-5))
    assert proxies.jacob_cov(model, images, labels) == pytest.approx(expected, rel=1e-4)
    assert _unchanged(model, before)


def test_batch_normalisation_statistics_are_restored(
    plugin_manager: nasframe.PluginManager,
) -> None:
    keras.utils.set_random_seed(0)
    dataset = _dataset((6, 6, 1))
    network = _network(plugin_manager, fc_units=64, filters=4)
    model = network.build_network(NSC.parse("1,1,3,0,0"), dataset)  # type: ignore[attr-defined]
    images, labels = dataset.arrays("train")
    before = model.get_weights()
    for name in ("synflow", "naswot", "grad_norm", "snip", "jacob_cov"):
        assert math.isfinite(proxies.PROXY_FUNCTIONS[name](model, images, labels)), name
        assert _unchanged(model, before), name
    keras.backend.clear_session()


@pytest.mark.parametrize("proxy", PROXIES)
def test_every_proxy_is_deterministic_under_a_seed(
    plugin_manager: nasframe.PluginManager, proxy: str
) -> None:
    estimator = ZeroCostEstimator(proxy, network=_network(plugin_manager), batch_size=4)
    dataset = _dataset((6, 6, 1), classes=3)
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    first, second = (estimator.evaluate(nsc, dataset, seed=3) for _ in range(2))
    assert first.status is Status.OK and first.epochs == 0
    assert first.message == second.message and first.message.startswith(f"{proxy}=")
    assert first.accuracy == second.accuracy and 0.0 <= first.accuracy <= 1.0
    assert first.params > 0 and first.flops > 0
    # the squashed score is never taken for an accuracy: the evaluation names it
    assert first.measure == f"{proxy} score" and first.label == f"{proxy} score"


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_score_does_not_depend_on_what_ran_before_it(
    plugin_manager: nasframe.PluginManager, proxy: str
) -> None:
    # scoring seeds Python and NumPy only (seed_keras), not TensorFlow's global seed:
    # another seed's score, an unseeded one and a keras-v1 training in between change nothing
    network = _network(plugin_manager)
    estimator = ZeroCostEstimator(proxy, network=network, batch_size=4)
    dataset = _dataset((6, 6, 1), classes=3)
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    first = estimator.evaluate(nsc, dataset, seed=3)
    other = estimator.evaluate(nsc, dataset, seed=4)
    estimator.evaluate(NSC.parse("1,1,1,0,0"), dataset)
    network.evaluate(NSC.parse("1,1,1,0,0"), dataset, seed=9)
    again = estimator.evaluate(nsc, dataset, seed=3)
    assert first.status is Status.OK and again.message == first.message
    # the counts do not depend on the weights; naswot's kernel is singular on this tiny net
    if proxy not in ("params", "flops") and first.message != "naswot=-inf":
        assert other.message != first.message


def test_an_invalid_network_is_a_status_not_an_exception(
    plugin_manager: nasframe.PluginManager,
) -> None:
    estimator = ZeroCostEstimator("synflow", network=_network(plugin_manager))
    evaluation = estimator.evaluate(NSC.parse("1,1,3,0,0;2,5,0,1,0"), _dataset((6, 6, 1)), seed=0)
    assert evaluation.status is Status.INVALID and evaluation.measure == ""
    assert "layer 2 (add) merges the raw input" in evaluation.message
    too_small = estimator.evaluate(NSC.parse("1,1,3,0,0"), _dataset(), seed=0)  # 3x3 on 2x2
    assert (
        too_small.status is Status.INVALID and "needs an input of at least 3x3" in too_small.message
    )


def test_params_and_flops_are_the_keras_counts(plugin_manager: nasframe.PluginManager) -> None:
    network = _network(plugin_manager)
    dataset = _dataset((6, 6, 1))
    nsc = NSC.parse("1,1,3,0,0")
    trained = network.evaluate(nsc, dataset, seed=0)
    for proxy, expected in (("params", trained.params), ("flops", trained.flops)):
        evaluation = ZeroCostEstimator(proxy, network=network).evaluate(nsc, dataset, seed=0)
        assert evaluation.message == f"{proxy}={expected:.6g}"


def test_bad_settings_are_one_line_errors(plugin_manager: nasframe.PluginManager) -> None:
    with pytest.raises(
        nasframe.ConfigError,
        match=r"\[zerocost\] proxy 'synflw' is not one of .*did you mean 'synflow'",
    ):
        ZeroCostEstimator("synflw")
    with pytest.raises(
        nasframe.ConfigError, match=r"\[zerocost\] batch_size must be an integer >= 2, got 1"
    ):
        ZeroCostEstimator("naswot", network=_network(plugin_manager), batch_size=1)
    with pytest.raises(nasframe.ConfigError, match="'proxy-v1' cannot build networks"):
        ZeroCostEstimator("synflow", network="proxy-v1")
    with pytest.raises(nasframe.ConfigError, match="scale must be > 0"):
        ZeroCostEstimator("synflow", network=_network(plugin_manager), scale=0.0)


def test_the_fingerprint_names_the_proxy_and_the_network(
    plugin_manager: nasframe.PluginManager,
) -> None:
    a = ZeroCostEstimator("synflow", network=_network(plugin_manager))
    b = ZeroCostEstimator("snip", network=_network(plugin_manager))
    c = ZeroCostEstimator("synflow", network=_network(plugin_manager, filters=4))
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3
    assert a.fingerprint().startswith("zerocost-1-")


def test_the_registered_estimator_builds_from_the_config_section(
    plugin_manager: nasframe.PluginManager,
) -> None:
    config = nasframe.load_config(
        overrides={"zerocost": {"proxy": "naswot", "batch_size": 8}}, plugin_manager=plugin_manager
    )
    info = plugin_manager.registry("estimator").get("zerocost")
    estimator = plugin_manager.registry("estimator").create(
        info.name, **config.component_settings(info)
    )
    assert estimator.proxy == "naswot" and estimator.batch_size == 8
    assert estimator.network.name == "keras-v1"


def test_squash_is_monotone_bounded_and_fixed() -> None:
    for proxy in PROXIES:
        scores = [-1e9, -10.0, 0.0, 1e-3, 1.0, 10.0, 1e3, 1e9, math.inf]
        rewards = [squash(proxy, s) for s in scores]
        assert all(0.0 <= r <= 1.0 for r in rewards)
        assert rewards == sorted(rewards), proxy
        assert squash(proxy, math.inf) == 1.0 and squash(proxy, -math.inf) == 0.0
    center = SQUASH["synflow"][1]
    assert squash("synflow", 10**center) == pytest.approx(0.5)  # log10 proxy at its center
    assert squash("synflow", 1e9, center=8.0, scale=1.0) == pytest.approx(1 / (1 + math.exp(-1)))
    assert squash("params", 0.0) == 0.0
    with pytest.raises(ValueError, match="a naswot score of NaN has no reward"):
        squash("naswot", math.nan)
