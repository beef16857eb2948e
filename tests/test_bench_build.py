"""NSC-Bench tables: enumeration, the resumable build, the table format, its statistics."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, Measurement, fingerprint_of
from nasframe.bench import BenchTable, enumerate_networks, read_rows
from nasframe.bench.build import BuildPlan, build_table
from nasframe.bench.sampling import SampleSettings, random_networks
from nasframe.bench.stats import plot_histogram, table_statistics
from nasframe.bench.table import ROWS_FILE, TABLE_FILE
from nasframe.cli import main


class CurveEstimator(nasframe.PerformanceEstimator):
    """A deterministic estimator with learning curves, registered like any plugin's.

    Its accuracy is a function of the network's hash and the seed, so a build over a
    space is fast and its table is predictable.
    """

    name = "curves-v1"

    def __init__(self, epochs: int = 3) -> None:
        self.epochs = epochs
        self.calls: list[tuple[str, int | None]] = []

    def fingerprint(self) -> str:
        return fingerprint_of("curves", "1", {"epochs": self.epochs})

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        return self.measure(architecture, dataset, seed=seed).evaluation

    def measure(
        self,
        architecture: NSC,
        dataset: DatasetHandler,
        *,
        seed: int | None = None,
        test: bool = False,
    ) -> Measurement:
        self.calls.append((str(architecture), seed))
        final = final_accuracy(architecture, seed)
        curve = tuple(final * e / self.epochs for e in range(1, self.epochs + 1))
        return Measurement(
            Evaluation(accuracy=final, epochs=self.epochs, seconds=0.01, params=len(architecture)),
            curve=curve,
            test_accuracy=final - 0.01 if test else None,
            train_seconds=0.005,
        )


def final_accuracy(architecture: NSC, seed: int | None) -> float:
    return (int(architecture.canonical_hash[:6], 16) % 900) / 1000 + 0.01 * (seed or 0)


class _Plugin:
    @staticmethod
    @nasframe.hookimpl
    def nasframe_register_estimators(registry: nasframe.Registry) -> None:
        registry.add("curves-v1", CurveEstimator, summary="test curves")


@pytest.fixture
def manager() -> nasframe.PluginManager:
    return nasframe.get_plugin_manager(plugins=[("curves", _Plugin)], autoload=False)


def plan(tmp_path: Path, **changes: Any) -> BuildPlan:
    values: dict[str, Any] = {
        "space": "chained",
        "depth": 2,
        "seeds": [0],
        "estimator": ("curves", {}),
        "dataset": ("digits", {"resize": 8}),
        "output": tmp_path / "table",
    }
    values.update(changes)
    return BuildPlan(**values)


@pytest.mark.parametrize(("depth", "count"), [(0, 1), (1, 8), (2, 57), (3, 400)])
def test_the_chained_space_has_sum_of_powers_of_seven_networks(
    manager: nasframe.PluginManager, depth: int, count: int
) -> None:
    networks = enumerate_networks(manager.registry("search_space").create("chained"), depth)
    assert len(networks) == count
    assert len({nsc.canonical_hash for nsc in networks}) == count
    assert str(networks[0]) == ""  # the head-only network first
    assert [len(nsc) for nsc in networks] == sorted(len(nsc) for nsc in networks)


def test_multi_branch_networks_are_deduplicated_by_graph(manager: nasframe.PluginManager) -> None:
    space = manager.registry("search_space").create("absolute")
    networks = enumerate_networks(space, 2)
    assert len({nsc.canonical_hash for nsc in networks}) == len(networks)
    assert max(len(nsc) for nsc in networks) == 2


@pytest.mark.parametrize("depth", [-1, 99, 1.5])
def test_a_depth_outside_the_space_is_refused(manager: nasframe.PluginManager, depth: Any) -> None:
    space = manager.registry("search_space").create("chained")
    with pytest.raises(nasframe.ConfigError, match="depth"):
        enumerate_networks(space, depth)


def test_a_build_stores_every_network_with_its_curve_and_test_accuracy(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    result = build_table(plan(tmp_path), plugin_manager=manager)
    assert result.complete and result.rows == result.networks == 57 and result.trained == 57
    table = BenchTable.load(tmp_path / "table")
    assert table.source.endswith(TABLE_FILE) and len(table) == 57
    card = json.loads((tmp_path / "table" / "build.json").read_text())
    assert card["complete"] and card["rows"] == 57 and card["space"] == "chained-v1"
    assert card["dataset"].startswith("digits[") and card["estimator"].startswith("curves-")
    (machine,) = card["machines"]  # the machine that stored the rows
    assert machine["cpu"] and machine["cpus"] >= 1 and machine["threads_per_training"] == "default"
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    (row,) = table.lookup(nsc.canonical_hash)
    final = final_accuracy(nsc, 0)
    assert row.accuracy() == pytest.approx(final, abs=1e-6)
    assert row.accuracy(epochs=1) == pytest.approx(final / 3, abs=1e-6)
    assert row.test == pytest.approx(final - 0.01, abs=1e-6)
    assert row.depth == 2 and row.status == "ok" and row.epochs == 3


def test_a_stopped_build_resumes_and_retrains_nothing(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    first = build_table(plan(tmp_path), plugin_manager=manager, limit=10)
    assert not first.complete and first.rows == 10
    rows_path = tmp_path / "table" / ROWS_FILE
    before = rows_path.read_bytes()
    # kill -9 in the middle of a write leaves half a line
    rows_path.write_bytes(before + b"ffffffffffffffffffff,1,1,3")
    second = build_table(plan(tmp_path), plugin_manager=manager)
    assert second.complete and second.trained == 47
    rows = read_rows(rows_path)
    assert rows_path.read_bytes().startswith(before)
    keys = [(row.arch_hash, row.seed) for row in rows]
    assert len(keys) == len(set(keys)) == 57
    third = build_table(plan(tmp_path), plugin_manager=manager)
    assert third.complete and third.trained == 0


def test_repeat_seeds_train_only_the_best_networks(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    result = build_table(plan(tmp_path, repeat_seeds=[1], repeat_top=0.1), plugin_manager=manager)
    table = BenchTable.load(tmp_path / "table")
    repeated = [h for h, rows in table.by_hash.items() if len(rows) == 2]
    assert (
        result.complete and len(repeated) == math.ceil(57 * 0.1) == result.card["repeat_networks"]
    )
    seed0 = {h: rows[0].accuracy() for h, rows in table.by_hash.items()}
    worst_repeated = min(seed0[h] for h in repeated)
    assert all(seed0[h] <= worst_repeated for h in seed0 if h not in repeated)
    figures = table_statistics(table)
    assert "top10_seed_std" in figures
    assert figures["criteria"]["top10_seed_std_below_top1_median_gap"] in (True, False)


def test_a_folder_of_another_table_is_refused(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    build_table(plan(tmp_path, depth=1), plugin_manager=manager)
    with pytest.raises(nasframe.ConfigError, match=r"build\.json.*depth 1.*not 2"):
        build_table(plan(tmp_path, depth=2), plugin_manager=manager)


def test_an_estimator_without_curves_cannot_build(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    with pytest.raises(nasframe.ConfigError, match="'proxy-v1' cannot build a table"):
        build_table(plan(tmp_path, estimator=("proxy", {})), plugin_manager=manager)


def test_a_changed_table_fails_its_checksum(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    build_table(plan(tmp_path, depth=1), plugin_manager=manager)
    path = tmp_path / "table" / TABLE_FILE
    text = gzip.decompress(path.read_bytes()).replace(b",ok,", b",error,", 1)
    path.write_bytes(gzip.compress(text))
    with pytest.raises(nasframe.ConfigError, match="checksum does not match"):
        BenchTable.load(tmp_path / "table")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"a,b\n1,2\n", "no arch_hash column"), (b"\xff\xfe\x00", "cannot read")],
)
def test_a_file_that_is_not_a_table_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(content)
    with pytest.raises(nasframe.ConfigError, match=message):
        read_rows(path)
    with pytest.raises(nasframe.ConfigError, match="no such table file"):
        read_rows(tmp_path / "missing.csv")


def test_statistics_report_the_criteria_and_the_fidelity_correlations(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    build_table(plan(tmp_path), plugin_manager=manager)
    table = BenchTable.load(tmp_path / "table")
    figures = table_statistics(table)
    head = final_accuracy(NSC(), 0)
    assert figures["head_only"]["validation"] == pytest.approx(head, abs=1e-6)
    assert figures["best_minus_head_only"] == pytest.approx(
        figures["best"]["validation"] - head, abs=1e-6
    )
    # every epoch is a fixed fraction of the last here: the ranking never changes
    assert figures["epoch_rank_correlation_with_last"]["1"]["spearman"] == pytest.approx(1.0)
    assert sum(b["count"] for b in figures["histogram"]) == 57
    assert "best_20_points_above_head_only" in figures["criteria"]
    png = plot_histogram(table, tmp_path / "hist.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bench_stats_prints_the_card_figures(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    build_table(plan(tmp_path), plugin_manager=manager)
    out = tmp_path / "stats.json"
    result = CliRunner().invoke(
        main, ["bench", "stats", str(tmp_path / "table"), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "networks 57, rows 57" in result.output
    assert "rank correlation with the last epoch" in result.output
    assert json.loads(out.read_text())["networks"] == 57


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seeds", "0,x"], "[bench] seeds = '0,x': 'x' is not a seed"),
        (["--seeds", ","], "[bench] seeds = ',': give at least one seed"),
        (["--set", "bench.repeat_seeds=a"], "[bench] repeat_seeds = 'a'"),
    ],
)
def test_bench_build_names_a_bad_seed_in_one_line(
    tmp_path: Path, option: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["bench", "build", "--output", str(tmp_path / "t"), *option])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_statistics_count_the_networks_that_cannot_fit_their_training_data() -> None:
    from nasframe.bench.table import TableRow

    rows = [
        TableRow(f"h{i}", f"1,1,{k},0,0", 1, 0, "ok", curve=(0.5,), test=0.5, train=train)
        for i, (k, train) in enumerate([(1, 0.1), (3, 0.15), (5, 0.9)])
    ]
    rows.append(TableRow("h9", "1,3,2,0,0", 1, 0, "ok", curve=(0.4,), test=0.4))  # none
    figures = table_statistics(BenchTable(rows))
    assert figures["train_accuracy"] == {"networks": 3, "below_0.2": 2, "median": 0.15}
    from nasframe.cli.bench_cmd import _format_stats

    assert "2 of 3 networks below 0.2" in _format_stats(figures)
    old = [TableRow("h1", "1,1,1,0,0", 1, 0, "ok", curve=(0.5,), test=0.5)]
    assert "train_accuracy" not in table_statistics(BenchTable(old))


# -- sampled builds (issue 30) ----------------------------------------------------------


def sampled_plan(tmp_path: Path, folder: str = "table", **sample: Any) -> BuildPlan:
    settings = {"size": 40, "agents": ("rea", "random"), "agent_share": 0.5, **sample}
    return plan(
        tmp_path,
        space="pointer",
        depth=4,
        sample=SampleSettings(**settings),
        output=tmp_path / folder,
    )


def test_random_episodes_are_seeded_deduplicated_and_cover_every_depth(
    manager: nasframe.PluginManager,
) -> None:
    space = manager.registry("search_space").create("pointer")
    first = random_networks(space, 6, 60, seed=3)
    again = random_networks(space, 6, 60, seed=3)
    assert [str(n) for n in first] == [str(n) for n in again]
    assert len({n.canonical_hash for n in first}) == len(first) == 60
    assert str(first[0]) == "" and {len(n) for n in first} == set(range(7))
    # a larger sample of the same seed starts with the smaller one: it grows, never redraws
    assert [str(n) for n in random_networks(space, 6, 80, seed=3)[:60]] == [str(n) for n in first]
    assert [str(n) for n in random_networks(space, 6, 60, seed=4)] != [str(n) for n in first]


def test_a_sampled_build_joins_random_episodes_and_agent_trajectories(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    result = build_table(sampled_plan(tmp_path), plugin_manager=manager)
    card = result.card
    assert result.complete and card["sampling"] == {"mode": "sampled", "seed": 0}
    assert card["sample"]["random"] == 20
    assert card["sample"]["agent_networks"] == {"rea": 10, "random": 10}
    table = BenchTable.load(tmp_path / "table")
    assert len(table) == card["networks"] == card["rows"] == result.rows
    assert 20 < len(table) <= 40  # the agents may revisit random-episode networks
    assert {row.depth for row in table.rows} >= {0, 1, 2, 3, 4}
    assert build_table(sampled_plan(tmp_path), plugin_manager=manager).trained == 0


def test_a_stopped_sampled_build_resumes_to_the_same_table(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    whole = build_table(sampled_plan(tmp_path, folder="whole"), plugin_manager=manager)
    rows_path = tmp_path / "parts" / ROWS_FILE
    trained = 0
    for limit in (15, 8):  # stopped in the random episodes, then in the agents' phase
        part = build_table(
            sampled_plan(tmp_path, folder="parts"), plugin_manager=manager, limit=limit
        )
        assert not part.complete and part.trained == limit
        trained += limit
        rows_path.write_bytes(rows_path.read_bytes() + b"ffff,1,1,3")  # a kill -9 mid-line
    last = build_table(sampled_plan(tmp_path, folder="parts"), plugin_manager=manager)
    assert last.complete and trained + last.trained == whole.trained
    # the agents replayed their trajectories from the stored rows: the same sample
    whole_table = (tmp_path / "whole" / TABLE_FILE).read_bytes()
    assert (tmp_path / "parts" / TABLE_FILE).read_bytes() == whole_table


def test_repeat_seeds_of_a_sample_can_pick_a_random_fraction(
    tmp_path: Path, manager: nasframe.PluginManager
) -> None:
    changes = {"repeat_seeds": [1], "repeat_top": 0.25, "repeat_pick": "random"}
    sample = SampleSettings(size=40, agents=(), agent_share=0.0)
    result = build_table(
        plan(tmp_path, space="pointer", depth=4, sample=sample, **changes),
        plugin_manager=manager,
    )
    table = BenchTable.load(tmp_path / "table")
    repeated = {h for h, rows in table.by_hash.items() if len(rows) == 2}
    assert result.complete and len(repeated) == 10 == result.card["repeat_networks"]
    best = sorted(table.by_hash, key=lambda h: -table.by_hash[h][0].accuracy())[:10]
    assert repeated != set(best)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"size": -1}, r"\[bench\] sample = -1"),
        ({"size": 10, "agents": (), "agent_share": 0.5}, "sample_agents is empty"),
        ({"size": 10, "agent_share": 1.5}, r"\[bench\] agent_share = 1.5"),
    ],
)
def test_bad_sample_settings_are_refused_in_one_line(settings: dict[str, Any], match: str) -> None:
    with pytest.raises(nasframe.ConfigError, match=match):
        SampleSettings(**settings)


def test_a_bad_repeat_pick_is_refused(tmp_path: Path, manager: nasframe.PluginManager) -> None:
    bad = plan(
        tmp_path,
        space="pointer",
        depth=2,
        repeat_seeds=[1],
        repeat_pick="best",
        sample=SampleSettings(size=5, agents=(), agent_share=0.0),
    )
    with pytest.raises(nasframe.ConfigError, match=r"\[bench\] repeat_pick = 'best'"):
        build_table(bad, plugin_manager=manager)
