"""Surrogate benchmarks: graph features, ``bench fit``, ``surrogate-v1`` (issue 30)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nasframe
from nasframe import NSC, Status
from nasframe.bench.compare import CompareSettings, compare_agents
from nasframe.bench.encoding import PathEncoding, network_features
from nasframe.bench.surrogate import (
    CARD_FILE,
    MODELS_FILE,
    Surrogate,
    fit_surrogate,
    split_networks,
    table_targets,
    tabulate,
)
from nasframe.bench.testing import write_table
from nasframe.cli import main


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(tmp_path_factory.mktemp("surrogate") / "t", depth=2, seeds=(0, 1))


@pytest.fixture(scope="module")
def fitted(table: Path) -> Surrogate:
    return fit_surrogate(nasframe.BenchTable.load(table), family="hgb", train_fraction=0.7)


def _digits() -> nasframe.DatasetHandler:
    return nasframe.get_plugin_manager().registry("dataset").create("digits")  # type: ignore[no-any-return]


def test_features_are_those_of_the_graph_not_of_its_numbering() -> None:
    a = NSC.parse("1,1,3,0,0;2,2,2,0,0;3,6,0,1,2;4,1,5,3,0")
    b = NSC.parse("1,2,2,0,0;2,1,3,0,0;3,6,0,2,1;4,1,5,3,0")  # renumbered, operands swapped
    c = NSC.parse("1,1,3,0,0;2,2,2,0,0;3,5,0,1,2;4,1,5,3,0")  # add instead of concat
    assert a.canonical_hash == b.canonical_hash and network_features(a) == network_features(b)
    assert network_features(a) != network_features(c)
    features = network_features(a)
    assert features["path:conv3-concat-conv5"] == features["path:max2-concat-conv5"] == 1
    assert features["pool_max"] == 1 and features["pool_min"] == 0 and features["width"] == 1
    assert network_features(NSC())["layers"] == 0  # head only
    encoding = PathEncoding.fit([a, c], max_paths=1)
    assert sum(key.startswith("path:") for key in encoding.vocabulary) == 1
    assert encoding.transform([a, b]).tolist()[0] == encoding.transform([b]).tolist()[0]
    assert encoding.unknown_layer(NSC.parse("1,3,3,0,0")) == "layer avg3 (row 1,3,3,0,0)"


def test_networks_recorded_invalid_are_not_fitted(tmp_path: Path) -> None:
    folder = write_table(tmp_path / "t", depth=1, seeds=(0,))
    bench = nasframe.BenchTable.load(folder)
    first = bench.rows[1]
    rows = [replace(first, status="invalid", curve=()), *bench.rows[2:], bench.rows[0]]
    targets = table_targets(nasframe.BenchTable(rows, bench.build, "t"))
    assert first.arch_hash not in targets.hashes and len(targets.hashes) == len(bench) - 1


def test_the_held_out_split_never_overlaps_the_training_split() -> None:
    train, held = split_networks(57, 0.3, seed=4)
    assert not set(train) & set(held) and len(train) + len(held) == 57 and len(train) == 17
    again, _ = split_networks(57, 0.3, seed=4)
    assert list(train) == list(again)
    with pytest.raises(nasframe.ConfigError, match=r"train_fraction = 1\.0"):
        split_networks(57, 1.0, seed=0)


def test_a_fit_reports_held_out_figures_beside_the_seed_noise(
    fitted: Surrogate, tmp_path: Path
) -> None:
    card = fitted.card
    assert card["split"]["train"] + card["split"]["held_out"] == 57 == card["table"]["networks"]
    assert not set(card["split"]) - {"seed", "train_fraction", "train", "held_out"}
    held = set(fitted.held_out["hashes"])
    assert len(held) == card["split"]["held_out"]
    for target in ("accuracy", "test", "seconds"):
        figures = card["held_out"][target]
        assert -1.0 <= figures["kendall"] <= 1.0 and figures["n"] == len(held)
    # the synthetic table's seeds differ by N(0, 0.01) noise: a near-perfect second seed
    assert card["seed_noise"]["seeds"] == [0, 1] and card["seed_noise"]["kendall"] > 0.9
    assert 0.0 < card["seed_noise"]["seed_std"] < 0.03
    # the saved trees predict exactly what the library's fitted models predict
    features = fitted.encoding.transform([NSC(), NSC.parse("1,1,3,0,0")])
    for i, target in enumerate(fitted.targets):
        library = fitted.models[target].predict(features)
        assert np.allclose(fitted.forest.predict(features)[:, i], library, rtol=0, atol=1e-12)
    folder = fitted.save(tmp_path / "s")
    loaded = Surrogate.load(folder)
    nets = [NSC.parse("1,1,3,0,0;2,2,2,1,0"), NSC()]
    assert np.array_equal(loaded.predict(nets)["val_3"], fitted.predict(nets)["val_3"])
    assert (folder / "held_out.csv").read_text().startswith("arch_hash,nsc,measured,predicted")
    damaged = folder / MODELS_FILE
    damaged.write_bytes(damaged.read_bytes()[:-3])
    with pytest.raises(nasframe.ConfigError, match="checksum does not match"):
        Surrogate.load(folder)


def test_a_sampled_tables_surrogate_is_not_tabulated(fitted: Surrogate, tmp_path: Path) -> None:
    sampled = Surrogate(fitted.encoding, fitted.forest, {**fitted.card, "sampled": True})
    with pytest.raises(nasframe.ConfigError, match="fitted on a sampled table"):
        tabulate(sampled, tmp_path / "t")


def test_lightgbm_trees_are_walked_exactly(table: Path) -> None:
    fitted = fit_surrogate(nasframe.BenchTable.load(table), family="lightgbm")
    features = fitted.encoding.transform([NSC(), NSC.parse("1,2,2,0,0;2,1,5,1,0")])
    index = fitted.targets.index("test")
    library = fitted.models["test"].predict(features)
    assert np.allclose(fitted.forest.predict(features)[:, index], library, rtol=0, atol=1e-12)
    one = fitted.forest.select([index]).predict(features[1])
    assert one.shape == (1, 1) and one[0, 0] == pytest.approx(library[1], abs=1e-12)


def test_an_unknown_or_missing_model_family_is_one_line(table: Path) -> None:
    with pytest.raises(nasframe.ConfigError, match="unknown model family 'forest'"):
        fit_surrogate(nasframe.BenchTable.load(table), family="forest")


def test_surrogate_v1_answers_any_network_of_its_space_and_refuses_another(
    fitted: Surrogate, tmp_path: Path
) -> None:
    folder = fitted.save(tmp_path / "s")
    manager = nasframe.get_plugin_manager()
    estimator = manager.estimators().create("surrogate", file=str(folder))
    dataset = _digits()
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    answer = estimator.evaluate(nsc, dataset)
    assert answer.status is Status.OK and answer.epochs == 3
    assert answer.accuracy == pytest.approx(float(fitted.predict([nsc])["val_3"][0]))
    assert answer.seconds == pytest.approx(float(fitted.predict([nsc])["seconds"][0]), rel=0.05)
    # outside the space: too deep, or a kind the chained space never has -- a status
    deep = estimator.evaluate(NSC.parse("1,1,3,0,0;2,1,3,1,0;3,1,3,2,0"), dataset)
    assert deep.status is Status.INVALID and "at most 2" in deep.message
    merge = estimator.evaluate(NSC.parse("1,1,3,0,0;2,5,0,0,1"), dataset)
    assert merge.status is Status.INVALID and "layer add" in merge.message
    noisy = manager.estimators().create("surrogate", file=str(folder), noise=True)
    first = noisy.evaluate(nsc, dataset, seed=3)
    assert first == noisy.evaluate(nsc, dataset, seed=3) != noisy.evaluate(nsc, dataset, seed=4)
    pointer = manager.search_spaces().create("pointer")
    with pytest.raises(nasframe.ConfigError, match=r"fitted for search space 'chained-v1'"):
        estimator.check_setup(pointer, dataset)
    with pytest.raises(nasframe.ConfigError, match=r"\[surrogate\] file is empty"):
        manager.estimators().create("surrogate")


def test_bench_fit_then_bench_run_on_the_tabulated_surrogate(table: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "fit",
            str(table),
            "--output",
            str(tmp_path / "fit"),
            "--family",
            "hgb",
            "--train-fraction",
            "0.5",
            "--tabulate",
            "--plot",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "hgb" in result.output and "seed 0 vs 1" in result.output
    card = json.loads((tmp_path / "fit" / "hgb" / CARD_FILE).read_text())
    assert card["family"] == "hgb" and card["split"]["held_out"] == 29
    assert (tmp_path / "fit" / "hgb" / "held_out.png").stat().st_size > 1000
    predicted = tmp_path / "fit" / "hgb" / "table"
    comparison = compare_agents(
        CompareSettings(table=predicted, agents=["random"], seeds=2, budget=5)
    )
    (summary,) = comparison.summaries
    assert summary.regret.shape == (2, 5) and np.all(np.diff(summary.regret) <= 1e-12)
    bad = CliRunner().invoke(
        main, ["bench", "fit", str(table), "--output", str(tmp_path / "x"), "--family", "forest"]
    )
    assert bad.exit_code != 0 and "unknown model family 'forest'" in bad.output


def test_bench_run_searches_a_surrogate(fitted: Surrogate, tmp_path: Path) -> None:
    folder = fitted.save(tmp_path / "s")
    reference = fitted.card["reference"]
    assert reference["networks"] == 57 and reference["top1"] <= reference["best"] <= 1
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "run",
            "--surrogate",
            str(folder),
            "--agents",
            "random,rea",
            "--seeds",
            "2",
            "--budget",
            "6",
            "--output",
            str(tmp_path / "run"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "random" in result.output and (tmp_path / "run" / "summary.csv").exists()
    comparison = compare_agents(
        CompareSettings(surrogate=folder, agents=["random"], seeds=2, budget=6)
    )
    (summary,) = comparison.summaries
    assert comparison.best_test >= reference["best"]
    assert np.all(np.diff(summary.regret) <= 1e-12) and np.all(summary.regret >= -1e-12)
    both = CliRunner().invoke(
        main, ["bench", "run", "--surrogate", str(folder), "--table", str(folder)]
    )
    assert both.exit_code != 0 and "--table or --surrogate, not both" in both.output
