"""cascade-v1: promotion by top fraction after a warm-up, per-fidelity caches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nasframe_cascade import CascadeEstimator
from nasframe_proxy import ProxyEstimator

import nasframe
from nasframe import NSC, ArrayDataset, CacheKey, Status
from nasframe.bench.networks import enumerate_networks


def _dataset() -> ArrayDataset:
    rng = np.random.default_rng(0)
    return ArrayDataset.from_arrays(
        "cascade", rng.random((10, 20, 20, 1), dtype=np.float32), np.arange(10) % 10
    )


def _networks(plugin_manager: nasframe.PluginManager) -> list[NSC]:
    space = plugin_manager.registry("search_space").create("chained-v1")
    return enumerate_networks(space, 2)


def _chain() -> list[ProxyEstimator]:
    # two real estimators with different fingerprints: the cheap and the "full" fidelity
    return [ProxyEstimator(filters=8, dense_units=16), ProxyEstimator(filters=32)]


def test_promotes_the_warmup_then_the_top_fraction(plugin_manager: nasframe.PluginManager) -> None:
    dataset = _dataset()
    cascade = CascadeEstimator(fraction=0.25, warmup=3, estimators=_chain())
    first = ProxyEstimator(filters=8, dense_units=16)
    seen: list[float] = []
    promoted = 0
    for nsc in _networks(plugin_manager):
        evaluation = cascade.evaluate(nsc, dataset)
        low = first.evaluate(nsc, dataset)
        if low.status is not Status.OK:
            assert evaluation.status is Status.INVALID
            assert evaluation.message.startswith("fidelity 1/2 ")
            continue
        # the rule, written out: warm-up, then the top quarter of what fidelity 1 has seen
        seen.append(low.accuracy)
        ranked = sorted(seen, reverse=True)
        goes_on = len(seen) <= 3 or low.accuracy >= ranked[math.ceil(0.25 * len(seen)) - 1]
        level = 2 if goes_on else 1
        assert evaluation.message.startswith(f"fidelity {level}/2 "), evaluation.message
        expected = cascade.fidelities[level - 1].estimator.evaluate(nsc, dataset)
        assert evaluation.accuracy == expected.accuracy
        promoted += goes_on
    assert cascade.fidelities[1].evaluations == promoted
    assert 3 < promoted < cascade.fidelities[0].evaluations


def test_fraction_one_promotes_everything_and_warmup_zero_cuts_at_once() -> None:
    dataset = _dataset()
    nets = [NSC.parse("1,1,3,0,0"), NSC.parse("1,1,1,0,0"), NSC.parse("1,1,5,0,0")]
    everything = CascadeEstimator(fraction=1.0, warmup=0, estimators=_chain())
    assert all(everything.evaluate(n, dataset).message.startswith("fidelity 2/2") for n in nets)
    strict = CascadeEstimator(fraction=0.01, warmup=0, estimators=_chain())
    levels = [strict.evaluate(n, dataset).message.split()[1] for n in nets]
    assert levels[0] == "2/2"  # the first score is the best seen so far
    assert strict.fidelities[1].evaluations == levels.count("2/2") < len(nets)


def test_each_fidelity_is_cached_under_its_own_fingerprint() -> None:
    dataset = _dataset()
    database = nasframe.get_plugin_manager().registry("database").create("memory")
    cascade = CascadeEstimator(fraction=1.0, warmup=0, estimators=_chain(), database=database)
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    first = cascade.evaluate(nsc, dataset)
    again = cascade.evaluate(nsc, dataset)
    assert first.accuracy == again.accuracy
    assert [f.evaluations for f in cascade.fidelities] == [1, 1]
    fingerprints = {record.fingerprint for record in database}
    assert fingerprints == {f.estimator.fingerprint() for f in cascade.fidelities}
    key = CacheKey(
        dataset.identity, nsc.canonical_hash, cascade.fidelities[0].estimator.fingerprint()
    )
    assert database.get(key) is not None
    # a new cascade over the same database answers from it without scoring again
    fresh = CascadeEstimator(fraction=1.0, warmup=0, estimators=_chain(), database=database)
    assert fresh.evaluate(nsc, dataset).accuracy == first.accuracy
    assert [f.evaluations for f in fresh.fidelities] == [0, 0]


def test_validity_and_fingerprint_come_from_the_fidelities() -> None:
    cascade = CascadeEstimator(estimators=_chain())
    assert "merges the raw input" in str(cascade.why_invalid(NSC.parse("1,5,0,0,0"), _dataset()))
    other = CascadeEstimator(fraction=0.5, estimators=_chain())
    assert cascade.fingerprint() != other.fingerprint()
    assert cascade.fingerprint().startswith("cascade-1-") and not cascade.deterministic


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"chain": "proxy-v1"}, r"\[cascade\] chain must name at least two estimators"),
        ({"fraction": 0.0}, r"\[cascade\] fraction: 0.0 must be in \(0, 1\]"),
        ({"fraction": 1.5}, r"\[cascade\] fraction: 1.5 is above the maximum 1"),
        ({"warmup": -1}, r"\[cascade\] warmup: -1 is below the minimum 0"),
    ],
)
def test_bad_settings_are_one_line_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(nasframe.ConfigError, match=message):
        CascadeEstimator(**settings)  # type: ignore[arg-type]


def test_an_unknown_name_in_the_chain_is_a_registry_error() -> None:
    with pytest.raises(nasframe.RegistryError, match="unknown estimator 'proxyy'"):
        CascadeEstimator(chain="proxyy,keras-v1")


def test_the_registered_cascade_builds_its_chain_by_name(
    plugin_manager: nasframe.PluginManager,
) -> None:
    config = nasframe.load_config(
        overrides={"cascade": {"chain": "proxy-v1, keras-v1", "fraction": 0.5}},
        plugin_manager=plugin_manager,
    )
    registry = plugin_manager.registry("estimator")
    info = registry.get("cascade")
    cascade = registry.create(info.name, **config.component_settings(info))
    assert [f.estimator.name for f in cascade.fidelities] == ["proxy-v1", "keras-v1"]
    assert cascade.fraction == 0.5 and cascade.warmup == 10
