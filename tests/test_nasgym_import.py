"""nasframe import-nasgym: NASGym's config.ini and CSV experiment database carried over."""

from __future__ import annotations

import csv
import hashlib
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nasframe
from nasframe.cli import main
from nasframe.cli.db_cmd import open_database
from nasframe.nasgym import NASGYM_COLUMNS, import_database, parse_netstring, translate_config

# A NASGym config.ini as the L2RL-NAS experiments wrote them (SEED-BEHAVIOUR §3.1), plus
# one key NASGym never had.
NASGYM_INI = textwrap.dedent(
    """\
    [DEFAULT]
    LogPath = /home/someone/workspace
    LoggerLevel = 10
    LoggerName = nasgym.logger

    [nasenv.default]
    ConfigFile = resources/nasenv.yml
    MaxSteps = 100
    DbFile = /home/someone/workspace/db_experiments.csv
    DatasetHandler = meta-dataset
    ActionSpaceType = pred-free
    TrainerType = default
    PointersRewardDiscount = 0.1

    [trainer.default]
    BatchSize = 128
    NEpochs = 12
    OptimizerLearningRate = 0.001
    OptimizerBeta1 = 0.9
    OptimizerBeta2 = 0.999
    OptimizerEpsilon = 10e-08
    FCLUnits = 1024
    DropoutLayerRate = 0.4

    [trainer.tensorflow]
    EnableDistributed = no
    EnableLogDevicePlacement = no
    AllowMemoryGrowth = yes

    [trainer.earlystop]
    MuWeight = 0.5
    RhoWeight = 8

    [metadataset]
    TFRecordsRootDir = /data/records
    DatasetID = omniglot
    TrainTestSplitProp = 0.33
    RandomSeed = 32
    MadeUpKey = 3

    [bash]
    Algorithm = meta_a2c
    NumTimesteps = 8000
    """
)

#: A search space in nasframe's format (NASGym's nasenv.yml, cut to two layers).
NASENV_YML = textwrap.dedent(
    """\
    nasenv:
      name: imported
      version: "1.0"
      max_nlayers: 4
      encoding: NSC
      layers:
        - convolution:
            id: 1
            kernel_size: [1, 3]
            pred1: true
            pred2: false
        - terminal:
            id: 7
    """
)

UNTRANSLATED = [
    "[DEFAULT] LogPath",
    "[DEFAULT] LoggerLevel",
    "[DEFAULT] LoggerName",
    "[nasenv.default] DbFile",
    "[trainer.tensorflow] EnableDistributed",
    "[trainer.tensorflow] EnableLogDevicePlacement",
    "[metadataset] MadeUpKey",
    "[bash] Algorithm",
    "[bash] NumTimesteps",
]


def netstring(rows: list[list[int]], depth: int = 10) -> str:
    """NASGym's netstring: the numpy repr of the sorted, zero-padded state matrix."""
    state = np.zeros((depth, 5), dtype=np.int32)
    state[depth - len(rows) :] = rows
    return str(state)


def nasgym_key(dataset: str, rows: list[list[int]]) -> str:
    text = "".join(f"{'-'.join(map(str, row))};" for row in rows)
    return f"{dataset}-{hashlib.md5(text.encode()).hexdigest()}"


NETWORKS = [
    ([[1, 1, 3, 0, 0]], 0.41, True),
    ([[1, 1, 3, 0, 0], [2, 2, 2, 1, 0]], 0.52, True),
    ([[1, 1, 5, 0, 0], [2, 1, 3, 1, 0], [3, 3, 2, 2, 0]], 0.57, True),
    ([[1, 5, 0, 0, 0]], 0.0, False),  # NASGym: an add reading the input is invalid
    ([[1, 2, 3, 0, 0], [2, 7, 0, 0, 0]], 0.33, True),  # ends with the terminal row
]


def write_db(path: Path, dataset: str = "omniglot", index: bool = True) -> None:
    """A NASGym experiment database as pandas' to_csv wrote it (with the index column)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(([""] if index else []) + list(NASGYM_COLUMNS))
        for number, (rows, accuracy, valid) in enumerate(NETWORKS):
            cells = [
                nasgym_key(dataset, rows),
                netstring(rows),
                accuracy * 100,
                accuracy,
                0.5 + number,
                1000 * (number + 1),
                f"2019-06-0{number + 1} 12:00:00",
                60 + number,
                valid,
            ]
            writer.writerow(([number] if index else []) + cells)


def write_ini(folder: Path, text: str = NASGYM_INI) -> Path:
    """NASGym's config.ini in ``folder``, with the ``resources/nasenv.yml`` it names."""
    (folder / "resources").mkdir(parents=True, exist_ok=True)
    (folder / "resources" / "nasenv.yml").write_text(NASENV_YML, encoding="utf-8")
    ini = folder / "config.ini"
    ini.write_text(text)
    return ini


def test_every_untranslatable_key_is_named_in_one_line(tmp_path: Path) -> None:
    ini = write_ini(tmp_path)
    translation = translate_config(ini)
    named = [line.split(": ")[1] for line in translation.unmapped]
    assert sorted(named) == sorted(UNTRANSLATED)
    assert all("\n" not in line and line.startswith(f"{ini}: [") for line in translation.unmapped)
    assert translation.values == {
        "search_space": {"file": "resources/nasenv.yml"},
        "env": {
            "max_steps": "100",
            "dataset": "metadataset",
            "search_space": "pointer",
            "reward": "accuracy",
            "sigma": "0.1",
            "mu": "0.5",
            "rho": "8",
        },
        "keras": {
            "batch_size": "128",
            "epochs": "12",
            "learning_rate": "0.001",
            "beta1": "0.9",
            "beta2": "0.999",
            "epsilon": "10e-08",
            "fc_units": "1024",
            "dropout": "0.4",
            "memory_growth": "true",
        },
        "metadataset": {
            "root": "/data/records",
            "tasks": "omniglot",
            "train": "0.67",
            "seed": "32",
        },
    }
    # the translation is a configuration nasframe loads as it is
    out = tmp_path / "nasframe.ini"
    out.write_text(translation.to_ini())
    config = nasframe.load_config(out)
    assert config.get("env", "search_space") == "pointer"
    assert config.get("metadataset", "train") == pytest.approx(0.67)
    assert config.get("keras", "epsilon") == pytest.approx(1e-7)


def test_a_value_nasframe_refuses_is_named_not_translated(tmp_path: Path) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text("[nasenv.default]\nActionSpaceType = spiral\nMaxSteps = 0\n")
    translation = translate_config(ini)
    assert translation.values == {}
    assert translation.unmapped == [
        f"{ini}: [nasenv.default] ActionSpaceType = 'spiral': not translated (not one of "
        "default, chained, pred-free (NASGym's ActionSpaceType))",
        f"{ini}: [nasenv.default] MaxSteps = '0': not translated ([env] max_steps: 0 is "
        "below the minimum 1)",
    ]


def test_missing_or_broken_config_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(nasframe.ConfigError, match="no such NASGym configuration file"):
        translate_config(tmp_path / "absent.ini")
    broken = tmp_path / "broken.ini"
    broken.write_text("MaxSteps = 3\n")
    with pytest.raises(nasframe.ConfigError, match=r"broken.ini: not a valid NASGym config.ini"):
        translate_config(broken)


def test_netstring_becomes_the_nsc() -> None:
    assert str(parse_netstring(netstring([[1, 1, 3, 0, 0], [2, 2, 2, 1, 0]]))) == (
        "1,1,3,0,0;2,2,2,1,0"
    )
    with pytest.raises(nasframe.NSCError, match="not a matrix of 5-integer rows"):
        parse_netstring("[[1 2 3]]")


@pytest.mark.parametrize("index", [True, False])
def test_every_row_of_the_database_is_imported(tmp_path: Path, index: bool) -> None:
    source = tmp_path / "db_experiments.csv"
    write_db(source, index=index)
    database = open_database(tmp_path / "experiments.csv", create=True)
    result = import_database(source, database, trainer="default", epochs=12)
    records = list(database)
    database.close()
    assert (result.rows, result.stored, result.duplicates, result.skipped) == (5, 5, 0, [])
    assert result.datasets == {"omniglot"}
    by_nsc = {record.nsc: record for record in records}
    for number, (rows, accuracy, valid) in enumerate(NETWORKS):
        nsc = nasframe.NSC(rows)
        record = by_nsc[str(nsc.without_terminal())]  # stored as every record: the network
        assert record.arch_hash == nsc.canonical_hash
        assert record.dataset == record.task == "omniglot"
        assert record.evaluation.accuracy == pytest.approx(accuracy)
        assert record.evaluation.status == ("ok" if valid else "invalid")
        assert record.evaluation.seconds == 60 + number
        assert record.evaluation.flops == 1000 * (number + 1)
        assert record.evaluation.density == pytest.approx(0.5 + number)
        assert record.timestamp == f"2019-06-0{number + 1}T12:00:00Z"
        assert record.fingerprint == "nasgym-default"
        assert record.evaluation.epochs == (12 if valid else 0)


def test_duplicates_and_unreadable_rows_are_counted_and_named(tmp_path: Path) -> None:
    source = tmp_path / "db.csv"
    write_db(source)
    with source.open("a", encoding="utf-8") as handle:
        # the same network keyed twice (NASGym's key depends on the padding), and junk
        handle.write(
            f'9,{nasgym_key("omniglot", [[3, 1, 3, 0, 0]])},"[[3 1 3 0 0]]",41,0.41,0,0,x,1,True\n'
        )
        handle.write('10,not-a-key,"[[1 1 3 0 0]]",41,0.41,0,0,x,1,True\n')
    database = open_database(tmp_path / "experiments.sqlite", create=True)
    result = import_database(source, database)
    database.close()
    assert (result.rows, result.stored, result.duplicates) == (7, 5, 1)
    assert result.skipped == [
        f"{source} line 8: skipped (dataset-nethash 'not-a-key' is not <dataset>-<md5>)"
    ]


def test_a_file_without_nasgyms_columns_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "other.csv"
    source.write_text("a,b\n1,2\n")
    database = open_database(tmp_path / "experiments.csv", create=True)
    with pytest.raises(nasframe.DatabaseError, match=r"missing columns: dataset-nethash"):
        import_database(source, database)
    database.close()


def test_cli_translates_and_imports(tmp_path: Path) -> None:
    ini, db = write_ini(tmp_path), tmp_path / "db_experiments.csv"
    write_db(db)
    out = tmp_path / "imported"
    result = CliRunner().invoke(
        main, ["import-nasgym", "--config", str(ini), "--db", str(db), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    not_translated = [line for line in lines if line.startswith("not translated: ")]
    assert len(not_translated) == len(UNTRANSLATED)
    assert f"21 keys translated, {len(UNTRANSLATED)} not: wrote {out / 'nasframe.ini'}" in lines
    assert lines[-1].startswith("5 rows read: 5 records stored, 0 duplicates")
    nasframe.load_config(out / "nasframe.ini")
    database = open_database(out / "experiments.csv")
    assert len(database) == 5
    assert {r.estimator_version for r in database} == {
        f"default; reward {a * 100}" for _, a, _ in NETWORKS
    }
    database.close()


def test_cli_needs_something_to_import(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["import-nasgym", "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: give --config (NASGym's config.ini), --db (its CSV database) or both"
    )


# -- bad values (issue 32): refused with the file and line, or skipped and counted ---------

BAD_ROWS = [
    # (rows, accuracy, density, flops, running_time, the reason named)
    ([[1, 1, 1, 0, 0]], "150", "0.5", "1000", "60", "accuracy = 150 is out of range"),
    ([[1, 1, 2, 0, 0]], "0.5", "0.5", "1000", "-5", "running_time = -5 is out of range"),
    ([[1, 2, 1, 0, 0]], "nan", "0.5", "1000", "60", "accuracy = nan is not a finite number"),
    ([[1, 2, 2, 0, 0]], "0.5", "0.5", "inf", "60", "flops = inf is not a finite number"),
    ([[1, 3, 1, 0, 0]], "0.5", "-1", "1000", "60", "density = -1 is out of range"),
    ([[1, 3, 3, 0, 0]], "high", "0.5", "1000", "60", "accuracy = 'high' is not a number"),
]


def write_bad_db(path: Path) -> list[int]:
    """:func:`write_db` plus the :data:`BAD_ROWS`; returns their line numbers."""
    write_db(path)
    lines = []
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for number, (rows, accuracy, density, flops, seconds, _) in enumerate(BAD_ROWS):
            cells = [nasgym_key("omniglot", rows), netstring(rows), "50", accuracy, density]
            cells += [flops, "2019-06-09 12:00:00", seconds, "True"]
            writer.writerow([100 + number, *cells])
            lines.append(len(NETWORKS) + 2 + number)
    return lines


def test_a_row_with_a_bad_value_refuses_the_file_naming_its_line(tmp_path: Path) -> None:
    source = tmp_path / "db.csv"
    lines = write_bad_db(source)
    database = open_database(tmp_path / "experiments.csv", create=True)
    with pytest.raises(nasframe.DatabaseError) as caught:
        import_database(source, database)
    assert len(database) == 0  # nothing taken, not even the good rows
    database.close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"{source} line {lines[0]}: accuracy = 150 is out of range (a fraction in [0, 1]"
    )
    assert f"6 rows have bad values (lines {', '.join(map(str, lines[:5]))}, ... (6 in all))" in (
        message
    )
    assert message.endswith(
        "nothing imported; correct them, or pass --skip-bad to import the other rows"
    )


def test_each_kind_of_bad_value_is_named(tmp_path: Path) -> None:
    for number, (rows, accuracy, density, flops, seconds, reason) in enumerate(BAD_ROWS):
        source = tmp_path / f"db{number}.csv"
        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(NASGYM_COLUMNS)
            writer.writerow([
                nasgym_key("omniglot", rows), netstring(rows), "50", accuracy, density, flops,
                "2019-06-09 12:00:00", seconds, "True",
            ])  # fmt: skip
        database = open_database(tmp_path / f"experiments{number}.csv", create=True)
        with pytest.raises(nasframe.DatabaseError) as caught:
            import_database(source, database)
        database.close()
        assert str(caught.value).startswith(f"{source} line 2: {reason}"), str(caught.value)
        assert "1 row has a bad value (line 2)" in str(caught.value)


def test_skip_bad_imports_the_other_rows_and_counts_the_skipped(tmp_path: Path) -> None:
    source = tmp_path / "db.csv"
    lines = write_bad_db(source)
    database = open_database(tmp_path / "experiments.csv", create=True)
    result = import_database(source, database, skip_bad=True)
    accuracies = sorted(record.evaluation.accuracy for record in database)
    database.close()
    assert (result.rows, result.stored, result.bad) == (11, 5, 6)
    assert [line.split(": ")[0] for line in result.skipped] == [
        f"{source} line {line}" for line in lines
    ]
    assert max(accuracies) == pytest.approx(0.57)


def test_cli_refuses_bad_rows_and_writes_nothing_then_skips_them(tmp_path: Path) -> None:
    ini, db = write_ini(tmp_path), tmp_path / "db_experiments.csv"
    lines = write_bad_db(db)
    out = tmp_path / "imported"
    args = ["import-nasgym", "--config", str(ini), "--db", str(db), "--output", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {db} line {lines[0]}: accuracy = 150 is out of range (a fraction in [0, 1]; "
        "NASGym's reward column is x100); 6 rows have bad values (lines "
        f"{', '.join(map(str, lines[:5]))}, ... (6 in all)), nothing imported; correct "
        "them, or pass --skip-bad to import the other rows"
    ]
    assert not out.exists()  # refused before anything was written
    result = CliRunner().invoke(main, [*args, "--skip-bad"])
    assert result.exit_code == 0, result.output
    output = result.output.strip().splitlines()
    assert sum(line.startswith(f"{db} line ") for line in output) == 6
    assert output[-1].startswith(
        "11 rows read: 5 records stored, 0 duplicates of a stored network, 6 skipped "
        "(6 with a bad value); datasets: omniglot"
    )
    shown = CliRunner().invoke(main, ["db", "show", str(out / "experiments.csv")])
    assert shown.exit_code == 0, shown.output
    assert "150" not in shown.output


def test_a_relative_config_file_is_copied_and_loads_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nasgym = tmp_path / "nas-env"
    ini = write_ini(nasgym)
    monkeypatch.chdir(tmp_path)  # resources/nasenv.yml is relative to config.ini's folder
    out = Path("imported")
    result = CliRunner().invoke(
        main, ["import-nasgym", "--config", str(ini), "--output", "imported"]
    )
    assert result.exit_code == 0, result.output
    assert "file = nasenv.yml\n" in (out / "nasframe.ini").read_text(encoding="utf-8")
    assert (out / "nasenv.yml").read_text(encoding="utf-8") == NASENV_YML
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = nasframe.load_config(Path("..") / "imported" / "nasframe.ini")
    assert Path(config.get("search_space", "file")).resolve() == (tmp_path / out / "nasenv.yml")
    from nasframe.config import missing_files

    assert missing_files(config) == []
    # a ConfigFile in neither the config's folder nor the current one: one line
    (nasgym / "resources" / "nasenv.yml").unlink()
    result = CliRunner().invoke(main, ["import-nasgym", "--config", str(ini), "--output", "x"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {ini}: [nasenv.default] ConfigFile = 'resources/nasenv.yml': no such file "
        f"(looked in {nasgym} and the current folder)"
    )
    assert not Path("x").exists()
