"""``table-v1``: answers from a benchmark table, refuses a table of another setup."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import nasframe
from nasframe import NSC, Status
from nasframe.bench.testing import write_table


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(tmp_path_factory.mktemp("table") / "t", drop=("1,1,3,0,0;2,1,3,1,0",))


def _estimator(table: Path, **settings: object) -> nasframe.PerformanceEstimator:
    registry = nasframe.get_plugin_manager().registry("estimator")
    return registry.create("table", table=str(table), **settings)  # type: ignore[no-any-return]


def _digits() -> nasframe.DatasetHandler:
    return nasframe.get_plugin_manager().registry("dataset").create("digits")  # type: ignore[no-any-return]


def test_known_networks_get_the_recorded_values(table: Path) -> None:
    bench = nasframe.BenchTable.load(table)
    dataset = _digits()
    nsc = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    rows = bench.lookup(nsc.canonical_hash)
    assert [row.seed for row in rows] == [0, 1]
    mean = _estimator(table).evaluate(nsc, dataset)
    assert mean.status is Status.OK
    assert mean.accuracy == pytest.approx((rows[0].curve[-1] + rows[1].curve[-1]) / 2)
    assert (mean.params, mean.flops, mean.epochs) == (rows[0].params, rows[0].flops, 3)
    # the recorded cost: the fixed part plus the whole training (3 of 3 epochs)
    assert mean.seconds == pytest.approx(rows[0].seconds)
    seed1 = _estimator(table, seed="1").evaluate(nsc, dataset)
    assert seed1.accuracy == rows[1].curve[-1]
    early = _estimator(table, seed=0, epochs=1).evaluate(nsc, dataset)
    assert early.accuracy == rows[0].curve[0] and early.epochs == 1
    fixed = rows[0].seconds - rows[0].train_seconds
    assert early.seconds == pytest.approx(fixed + rows[0].train_seconds / 3)
    looked_up = _estimator(table, simulated_cost=False).evaluate(nsc, dataset)
    assert looked_up.accuracy == mean.accuracy and looked_up.seconds < 0.01
    # a terminal row names the same network
    assert _estimator(table).evaluate(NSC.parse("1,1,3,0,0;2,2,2,1,0;3,7,0,0,0"), dataset) == mean


def test_random_seed_is_reproducible_and_uses_every_seed(table: Path) -> None:
    bench = nasframe.BenchTable.load(table)
    estimator = _estimator(table, seed="random")
    dataset = _digits()
    drawn = []
    for arch_hash in bench.hashes:
        rows = bench.lookup(arch_hash)
        nsc = NSC.parse(rows[0].nsc) if rows[0].nsc else NSC()
        first = estimator.evaluate(nsc, dataset, seed=7).accuracy
        assert estimator.evaluate(nsc, dataset, seed=7).accuracy == first
        assert first in {row.curve[-1] for row in rows}
        drawn.append(first == rows[0].curve[-1])
    assert 0 < sum(drawn) < len(drawn)  # both seeds answer, for different networks


def test_unknown_network_is_a_status_naming_the_table(table: Path) -> None:
    estimator = _estimator(table)
    missing = estimator.evaluate(NSC.parse("1,1,3,0,0;2,1,3,1,0"), _digits())
    assert missing.status is Status.INVALID and not missing.status.transient
    assert "\n" not in missing.message
    assert missing.message == (
        f"network 1,1,3,0,0;2,1,3,1,0 is not in the table {table / 'table.csv.gz'}"
    )
    deeper = estimator.evaluate(NSC.parse("1,1,3,0,0;2,1,3,1,0;3,1,1,2,0"), _digits())
    assert deeper.status is Status.INVALID and "is not in the table" in deeper.message


def test_env_steps_answer_from_the_table(table: Path) -> None:
    estimator = _estimator(table, seed="0")
    env = nasframe.make_env(
        search_space="chained", estimator=estimator, dataset="digits", max_steps=2
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(1)  # conv k3
    row = nasframe.BenchTable.load(table).lookup(info["arch_hash"])[0]
    assert reward == row.curve[-1] and info["status"] == "ok"
    assert info["seconds"] == pytest.approx(row.seconds)


def test_a_table_of_another_dataset_or_space_is_refused(table: Path) -> None:
    estimator = _estimator(table)
    with pytest.raises(nasframe.ConfigError) as info:
        nasframe.make_env(search_space="chained", estimator=estimator, dataset="shifted-digits")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"[table] table: {table / 'table.csv.gz'} was built on dataset ")
    assert "digits[" in message and "shifted-digits[" in message
    with pytest.raises(nasframe.ConfigError) as info:
        nasframe.make_env(search_space="pointer", estimator=estimator, dataset="digits")
    assert str(info.value) == (
        f"[table] table: {table / 'table.csv.gz'} was built for search space 'chained-v1', "
        "not 'pointer-v1'; choose its space or another table"
    )
    # a dataset whose identity matches but whose input shape does not (a table built
    # by hand, or by an older dataset version) is refused too
    other = tmp = table.parent / "shape"
    write_table(tmp, depth=1)
    card = (other / "build.json").read_text().replace('"input_shape": [', '"input_shape": [9, ')
    (other / "build.json").write_text(card)
    with pytest.raises(nasframe.ConfigError, match=r"was built for inputs \(9, "):
        nasframe.make_env(search_space="chained", estimator=_estimator(other), dataset="digits")


def test_bad_settings_are_one_line_errors(table: Path, tmp_path: Path) -> None:
    cases = {
        "epochs": ({"epochs": 4}, "[table] epochs = 4: "),
        "seed": ({"seed": "5"}, "[table] seed = '5': "),
        "mode": ({"seed": "median"}, "[table] seed = 'median': "),
    }
    for settings, start in cases.values():
        with pytest.raises(nasframe.ConfigError) as info:
            _estimator(table, **settings)
        assert str(info.value).startswith(start) and "\n" not in str(info.value)
    with pytest.raises(nasframe.ConfigError, match=r"no such table folder or file"):
        _estimator(tmp_path / "nowhere")
    (tmp_path / "rows.csv").write_text("not,a,table\n1,2,3\n")
    with pytest.raises(nasframe.ConfigError, match=r"not an NSC-Bench table"):
        _estimator(tmp_path)


def test_fingerprint_follows_settings_and_content(table: Path, tmp_path: Path) -> None:
    prints = {
        _estimator(table).fingerprint(),
        _estimator(table, epochs=2).fingerprint(),
        _estimator(table, seed="random").fingerprint(),
        _estimator(table, simulated_cost=False).fingerprint(),
        _estimator(write_table(tmp_path / "other", depth=1)).fingerprint(),
    }
    assert len(prints) == 5
    assert all(p.startswith("table-1-") for p in prints)
    assert _estimator(table).fingerprint() == _estimator(table).fingerprint()


def test_answers_from_an_experiment_database(tmp_path: Path) -> None:
    manager = nasframe.get_plugin_manager()
    path = tmp_path / "runs.csv"
    database = manager.registry("database").create("csv", path=str(path))
    env = nasframe.make_env(
        search_space="chained", estimator="proxy", dataset="digits", database=database
    )
    env.reset(seed=0)
    seen = {}
    for action in (1, 2, 0):
        _, reward, _, _, info = env.step(action)
        seen[info["nsc"]] = reward
    database.close()
    estimator = manager.registry("estimator").create("table", table=f"csv:{path}")
    dataset = _digits()
    for nsc, reward in seen.items():
        assert estimator.evaluate(NSC.parse(nsc), dataset).accuracy == reward
    # records name their dataset: the table refuses another one
    with pytest.raises(nasframe.ConfigError, match="was built on dataset"):
        nasframe.make_env(search_space="chained", estimator=estimator, dataset="shifted-digits")
    with pytest.raises(nasframe.ConfigError, match="no such database file"):
        manager.registry("estimator").create("table", table=f"csv:{tmp_path / 'none.csv'}")


def test_shipped_table_is_the_default_or_a_clear_error() -> None:
    shipped = nasframe.BenchTable.shipped()
    if shipped.exists():
        estimator = nasframe.get_plugin_manager().registry("estimator").create("table")
        assert len(estimator.bench) > 0  # type: ignore[attr-defined]
        return
    with pytest.raises(nasframe.ConfigError, match=r"the shipped table .* is not installed"):
        nasframe.get_plugin_manager().registry("estimator").create("table")


def test_shipped_tables_by_name() -> None:
    names = nasframe.BenchTable.shipped_names()
    assert names == ("nsc-bench-v3",)  # v1 and v2 were withdrawn (issue 28)
    assert nasframe.BenchTable.shipped(names[0]) == nasframe.BenchTable.shipped()
    registry = nasframe.get_plugin_manager().registry("estimator")
    for name in names:
        if nasframe.BenchTable.shipped(name).exists():
            estimator = registry.create("table", table=name)
            assert estimator.bench.build["space"] == "chained-v1"  # type: ignore[attr-defined]
    v3 = registry.create("table", table="nsc-bench-v3")
    assert len(v3.bench) == 2801  # type: ignore[attr-defined]  # networks
    assert v3.bench.build["estimator_component"]["settings"]["batch_norm"] == "recompute"  # type: ignore[attr-defined]
    with pytest.raises(nasframe.ConfigError, match="'nsc-bench-v1' is not a shipped table"):
        nasframe.BenchTable.shipped("nsc-bench-v1")
    with pytest.raises(nasframe.ConfigError, match="'nsc-bench-v9' is not a shipped table"):
        nasframe.BenchTable.shipped("nsc-bench-v9")
    unknown = r"\[table\] table = 'nsc-bench-v9'.*nsc-bench-v3"
    with pytest.raises(nasframe.ConfigError, match=unknown):
        registry.create("table", table="nsc-bench-v9")


def test_registered_with_its_section(plugin_manager: nasframe.PluginManager) -> None:
    info = plugin_manager.registry("estimator").get("table")
    assert info.name == "table-v1" and info.section == "table" and info.available
    config = nasframe.load_config(plugin_manager=plugin_manager)
    assert config.section("table") == {
        "table": None,
        "epochs": 0,
        "seed": "mean",
        "depth": 0,
        "simulated_cost": True,
    }


def test_a_maximum_depth_answers_exactly_the_rows_up_to_it(tmp_path: Path) -> None:
    deep = write_table(tmp_path / "deep", depth=3, seeds=(0,))
    full = nasframe.BenchTable.load(deep)
    shallow = _estimator(deep, depth=2)
    expected = {row.arch_hash for row in full.rows if row.depth <= 2}
    assert set(shallow.bench.by_hash) == expected  # type: ignore[attr-defined]
    assert shallow.bench.build["depth"] == 2  # type: ignore[attr-defined]
    dataset = _digits()
    kept = NSC.parse("1,1,3,0,0;2,2,2,1,0")
    assert shallow.evaluate(kept, dataset) == _estimator(deep).evaluate(kept, dataset)
    dropped = shallow.evaluate(NSC.parse("1,1,3,0,0;2,2,2,1,0;3,1,1,2,0"), dataset)
    assert dropped.status is Status.INVALID
    # the table's own depth and 0 are the whole table, under the earlier fingerprint
    assert _estimator(deep, depth=3).bench.rows == full.rows  # type: ignore[attr-defined]
    assert _estimator(deep, depth=0).fingerprint() != shallow.fingerprint()
    with pytest.raises(nasframe.ConfigError, match=r"^\[table\] depth = 4: .* 0 to 3 layers"):
        _estimator(deep, depth=4)


def test_training_accuracy_answers_at_the_last_epoch_only(tmp_path: Path) -> None:
    import dataclasses

    from nasframe.bench.table import ROWS_FILE, read_rows, write_rows

    folder = write_table(tmp_path / "t", depth=1, seeds=(0,))
    rows = [
        dataclasses.replace(row, train=0.5 + row.depth / 10)
        for row in read_rows(folder / "table.csv.gz")
    ]
    (folder / "build.json").unlink()
    write_rows(folder / ROWS_FILE, rows, 3)
    (folder / "table.csv.gz").unlink()
    nsc = NSC.parse("1,1,3,0,0")
    assert _estimator(folder).evaluate(nsc, _digits()).train_accuracy == pytest.approx(0.6)
    assert _estimator(folder, epochs=1).evaluate(nsc, _digits()).train_accuracy is None


def test_a_table_without_the_train_column_still_reads_and_resumes(tmp_path: Path) -> None:
    import csv

    from nasframe.bench.table import RowWriter, TableRow, header, read_rows

    path = tmp_path / "rows.csv"
    old = TableRow("h1", "1,1,3,0,0", 1, 0, "ok", curve=(0.5, 0.6), test=0.55)
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(
            [header(2, train=False), old.to_cells(2, train=False)]
        )
    with RowWriter(path, 2) as writer:
        writer.write(TableRow("h2", "1,3,2,0,0", 1, 0, "ok", curve=(0.7, 0.8), train=0.9))
    first, second = read_rows(path)
    assert first.curve == (0.5, 0.6) and first.test == 0.55 and math.isnan(first.train)
    assert second.curve == (0.7, 0.8) and second.nsc == "1,3,2,0,0"
    assert "train" not in path.read_text().splitlines()[0].split(",")  # its own layout wins


def test_a_table_of_other_dataset_settings_names_the_exact_options() -> None:
    estimator = _estimator(nasframe.BenchTable.shipped("nsc-bench-v3"))
    with pytest.raises(nasframe.ConfigError) as info:
        nasframe.make_env(search_space="chained", estimator=estimator, dataset="shifted-digits")
    message = str(info.value)
    assert "\n" not in message
    assert "--set env.dataset=shifted-digits-v1" in message
    assert "--set shifted_digits.placements=4" in message
