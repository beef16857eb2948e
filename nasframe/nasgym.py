"""Coming from NASGym: translate its ``config.ini`` and import its experiment database.

``nasframe import-nasgym`` runs these. :func:`translate_config` turns a NASGym
``config.ini`` into a nasframe INI file: every key with a nasframe equivalent becomes that
key (converted where the meaning differs, e.g. ``TrainTestSplitProp`` is the held-out
fraction, nasframe's ``[metadataset] train`` the kept one), and every key without one is
named in one line saying why. :func:`import_database` reads NASGym's CSV experiment
database (``db_experiments.csv``: ``dataset-nethash``, ``netstring``, ``reward``,
``accuracy``, ``density``, ``flops``, ``timestamp``, ``running_time``, ``is_valid``) into
a nasframe database, recovering what it can: the architecture (from the ``netstring``
matrix), the accuracy, density, FLOPs, training time, validity and dataset. A row with a
value no measurement can have (an accuracy outside [0, 1], a negative training time,
FLOPs or density, a value that is not a finite number) refuses the file, naming its line,
unless the caller asks to skip such rows (``skip_bad``; ``--skip-bad``).

Imported records carry the estimator ``nasgym`` and a fingerprint of their own
(``nasgym-<trainer>``), so they are never mistaken for -- or served as cache hits of --
a nasframe estimator's results: NASGym trained differently (docs/from-nasgym.md).
"""

from __future__ import annotations

import configparser
import csv
import datetime as _dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nasframe.config import ConfigSchema, core_schema
from nasframe.contracts import Evaluation, ExperimentDB, Record, Status
from nasframe.errors import ConfigError, DatabaseError, NasframeError, NSCError
from nasframe.nsc import NSC

__all__ = [
    "NASGYM_COLUMNS",
    "ConfigTranslation",
    "ImportResult",
    "describe",
    "import_database",
    "nasgym_trainer",
    "parse_netstring",
    "read_database",
    "store_records",
    "translate_config",
]

#: The columns of NASGym's experiment database, in its order.
NASGYM_COLUMNS = (
    "dataset-nethash",
    "netstring",
    "reward",
    "accuracy",
    "density",
    "flops",
    "timestamp",
    "running_time",
    "is_valid",
)

# NASGym value -> nasframe value, for the keys whose values are names.
_DATASETS = {"default": "cifar10", "meta-dataset": "metadataset"}
_SPACES = {"default": "absolute", "chained": "chained", "pred-free": "pointer"}
_REWARDS = {"default": "accuracy", "early-stop": "blockqnn"}


def _named(table: dict[str, str], what: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in table:
            raise ValueError(f"not one of {', '.join(table)} (NASGym's {what})")
        return table[value]

    return convert


def _held_out_to_train(value: str) -> str:
    return repr(round(1.0 - float(value), 10))


def _same(value: str) -> str:
    return value


def _bool(value: str) -> str:
    text = value.strip().lower()
    if text in ("yes", "true", "1", "on"):
        return "true"
    if text in ("no", "false", "0", "off"):
        return "false"
    raise ValueError("not yes or no")


#: (NASGym section, key) -> (nasframe section, key, conversion, note). Sections and keys
#: are matched case-insensitively.
_MAPPED: dict[tuple[str, str], tuple[str, str, Callable[[str], str], str]] = {
    ("nasenv.default", "configfile"): ("search_space", "file", _same, "the layers YAML file"),
    ("nasenv.default", "maxsteps"): ("env", "max_steps", _same, ""),
    ("nasenv.default", "datasethandler"): (
        "env",
        "dataset",
        _named(_DATASETS, "DatasetHandler"),
        "",
    ),
    ("nasenv.default", "actionspacetype"): (
        "env",
        "search_space",
        _named(_SPACES, "ActionSpaceType"),
        "",
    ),
    ("nasenv.default", "trainertype"): ("env", "reward", _named(_REWARDS, "TrainerType"), ""),
    ("nasenv.default", "pointersrewarddiscount"): ("env", "sigma", _same, ""),
    ("trainer.default", "batchsize"): ("keras", "batch_size", _same, ""),
    ("trainer.default", "nepochs"): ("keras", "epochs", _same, ""),
    ("trainer.default", "optimizerlearningrate"): (
        "keras",
        "learning_rate",
        _same,
        "NASGym parsed it but trained with 0.001 whatever it said",
    ),
    ("trainer.default", "optimizerbeta1"): ("keras", "beta1", _same, ""),
    ("trainer.default", "optimizerbeta2"): ("keras", "beta2", _same, ""),
    ("trainer.default", "optimizerepsilon"): (
        "keras",
        "epsilon",
        _same,
        "kept as written: NASGym's 10e-08 is 1e-7, nasframe's default is 1e-8",
    ),
    ("trainer.default", "fclunits"): ("keras", "fc_units", _same, ""),
    ("trainer.default", "dropoutlayerrate"): ("keras", "dropout", _same, ""),
    ("trainer.tensorflow", "allowmemorygrowth"): ("keras", "memory_growth", _bool, ""),
    ("trainer.earlystop", "muweight"): ("env", "mu", _same, ""),
    ("trainer.earlystop", "rhoweight"): ("env", "rho", _same, ""),
    ("metadataset", "tfrecordsrootdir"): ("metadataset", "root", _same, ""),
    ("metadataset", "datasetid"): ("metadataset", "tasks", _same, ""),
    ("metadataset", "traintestsplitprop"): (
        "metadataset",
        "train",
        _held_out_to_train,
        "NASGym's held-out fraction p becomes train = 1 - p",
    ),
    ("metadataset", "randomseed"): (
        "metadataset",
        "seed",
        _same,
        "the same seed shuffles differently in nasframe (docs/from-nasgym.md)",
    ),
}

#: (NASGym section, key) -> why nasframe has no equivalent.
_UNMAPPED: dict[tuple[str, str], str] = {
    ("default", "logpath"): "nasframe writes logs and results into [run] output",
    ("default", "loggerlevel"): "use -q / -v ([run] verbosity)",
    ("default", "loggername"): "nasframe logs under the 'nasframe' logger",
    ("nasenv.default", "dbfile"): (
        "the experiment database is not a setting to carry over; import its rows with "
        "nasframe import-nasgym --db FILE"
    ),
    ("trainer.tensorflow", "enabledistributed"): (
        "nasframe trains one network per worker instead: --workers N, [ray] num_gpus"
    ),
    ("trainer.tensorflow", "enablelogdeviceplacement"): "no equivalent (TensorFlow debugging)",
}


@dataclass
class ConfigTranslation:
    """A translated NASGym configuration.

    Attributes:
        values: ``{section: {key: value}}`` of nasframe settings (INI text values).
        notes: ``{(section, key): note}`` for translated keys whose meaning shifted.
        unmapped: one line per NASGym key without a nasframe equivalent, naming it.
        source: the NASGym file.
        files: ``{(section, key): file}`` for translated values naming a file (NASGym's
            ``ConfigFile``), resolved as NASGym's value meant it: :meth:`write` copies
            each next to ``nasframe.ini`` and names it there.
    """

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    source: Path | None = None
    files: dict[tuple[str, str], Path] = field(default_factory=dict)

    def write(self, folder: Path, name: str = "nasframe.ini") -> Path:
        """Write ``folder/name`` with every file of :attr:`files` copied into ``folder``.

        A copied file is named relative to the written INI file (its bare name), which
        nasframe's loader resolves against that file's folder: ``nasframe search --config
        folder/nasframe.ini`` works from any current folder, and so does a copy of
        ``folder``. Returns the INI file.
        """
        import shutil

        folder.mkdir(parents=True, exist_ok=True)
        written = ConfigTranslation(
            {section: dict(values) for section, values in self.values.items()},
            dict(self.notes),
            list(self.unmapped),
            self.source,
        )
        for (section, key), source in self.files.items():
            target = folder / source.name
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            written.values[section][key] = source.name
        target = folder / name
        target.write_text(written.to_ini(), encoding="utf-8")
        return target

    def to_ini(self) -> str:
        """The translation as a nasframe INI file, with the differences to keep in mind."""
        lines = [
            f"# Translated from NASGym's {self.source or 'config.ini'} by nasframe import-nasgym.",
            "# nasframe's defaults differ from NASGym where NASGym had a bug or a different",
            "# convention (docs/from-nasgym.md). To reproduce an old run as it ran, also set:",
            "#   [keras] lr_decay_epochs = 0   (NASGym's learning-rate decay never fired)",
            "#   [keras] epsilon = 1e-7        (NASGym's 10e-08)",
            "#   [env] max_steps = 100         (NASGym's default MaxSteps)",
            "",
        ]
        for section, values in self.values.items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                note = self.notes.get((section, key))
                if note:
                    lines.append(f"# {note}")
                lines.append(f"{key} = {value}")
            lines.append("")
        if self.unmapped:
            lines.append("# Not translated (no nasframe equivalent):")
            lines.extend(f"#   {line}" for line in self.unmapped)
        return "\n".join(lines).rstrip("\n") + "\n"


def _read_nasgym_ini(path: Path) -> configparser.ConfigParser:
    if not path.is_file():
        raise ConfigError(f"{path}: no such NASGym configuration file")
    # DEFAULT is a section like any other here: NASGym only read LogPath and the logger
    # keys from it, and inheriting them into every section would report them many times.
    parser = configparser.ConfigParser(
        interpolation=None, default_section="__nasframe_none__", strict=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not a valid NASGym config.ini: {message}") from None
    return parser


#: NASGym keys whose value is a file nasframe reads (copied by ConfigTranslation.write).
_FILES = {("nasenv.default", "configfile")}


def _nasgym_file(config: Path, where: str, value: str) -> Path:
    """The file a NASGym value names: relative to its config.ini's folder, else the cwd.

    Raises:
        ConfigError: neither holds it; one line naming the file, the key and the value.
    """
    given = Path(value).expanduser()
    places = [given] if given.is_absolute() else [config.parent / given, given]
    for place in places:
        if place.is_file():
            return place
    looked = "" if given.is_absolute() else f" (looked in {config.parent} and the current folder)"
    raise ConfigError(f"{where} = {value!r}: no such file{looked}")


def translate_config(path: Path, *, schema: ConfigSchema | None = None) -> ConfigTranslation:
    """Translate NASGym's ``config.ini`` at ``path``.

    Args:
        path: the NASGym file.
        schema: the nasframe schema to check the values against (default: the core's
            and the installed plugins'); a key whose section no installed plugin declares,
            or whose value nasframe refuses, is reported as not translated.

    Raises:
        ConfigError: the file is missing or not an INI file; a file it names
            (``ConfigFile``) is in neither its folder nor the current one.
    """
    if schema is None:
        from nasframe.plugins import get_plugin_manager

        schema = core_schema(ConfigSchema())
        get_plugin_manager().hook.nasframe_add_config(schema=schema)
    parser = _read_nasgym_ini(path)
    result = ConfigTranslation(source=path)
    for section in parser.sections():
        for key, raw in parser.items(section, raw=True):
            where = f"{path}: [{section}] {key}"
            lookup = (section.lower(), key.lower())
            if section.lower() == "bash":
                result.unmapped.append(
                    f"{where}: read only by nas-dmrl's shell scripts; pass the run's "
                    "settings to nasframe search instead ([run] agent, steps, seed)"
                )
                continue
            if lookup in _UNMAPPED:
                result.unmapped.append(f"{where}: {_UNMAPPED[lookup]}")
                continue
            if lookup not in _MAPPED:
                result.unmapped.append(f"{where}: not a NASGym key nasframe knows")
                continue
            target_section, target_key, convert, note = _MAPPED[lookup]
            value = str(raw).strip()
            declared = schema.sections.get(target_section)
            if declared is None or target_key not in declared.keys:
                result.unmapped.append(
                    f"{where}: would be [{target_section}] {target_key}, which no installed "
                    "plugin declares"
                )
                continue
            try:
                converted = convert(value)
                declared.keys[target_key].convert(converted, f"[{target_section}] {target_key}")
            except (ValueError, ConfigError) as exc:
                result.unmapped.append(f"{where} = {value!r}: not translated ({exc})")
                continue
            if lookup in _FILES:
                result.files[(target_section, target_key)] = _nasgym_file(path, where, value)
            result.values.setdefault(target_section, {})[target_key] = converted
            if note:
                result.notes[(target_section, target_key)] = f"{section} {key}: {note}"
    return result


_INT = re.compile(r"-?\d+")


def parse_netstring(text: str) -> NSC:
    """The NSC of a NASGym ``netstring``: the numpy repr of its state matrix.

    ``"[[0 0 0 0 0]\\n [1 1 3 0 0]]"`` -> ``1,1,3,0,0``; all-zero padding rows are dropped.

    Raises:
        NSCError: the text is not a matrix of 5-integer rows, or the rows break an NSC
            rule.
    """
    numbers = [int(value) for value in _INT.findall(str(text))]
    if not numbers or len(numbers) % 5:
        raise NSCError(f"netstring {text!r} is not a matrix of 5-integer rows")
    rows = [numbers[i : i + 5] for i in range(0, len(numbers), 5)]
    return NSC([row for row in rows if row[0] != 0])


@dataclass
class ImportResult:
    """What :func:`import_database` did.

    Attributes:
        rows: data rows read.
        stored: records added to the database.
        duplicates: rows whose (dataset, canonical graph) was already stored (NASGym
            keyed by a padding-dependent hash, so one network can have several rows).
        skipped: one line per row not imported, naming the line and why: rows that
            could not be read (a malformed key or netstring), and -- with ``skip_bad``
            -- rows with a bad value.
        bad: how many of the skipped rows had a bad value (an accuracy outside [0, 1],
            a negative or non-finite number).
        datasets: the dataset names seen.
    """

    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)
    bad: int = 0
    datasets: set[str] = field(default_factory=set)


class _BadValueError(ValueError):
    """A row whose cells parse but hold a value no measurement can have."""


#: column -> (lowest, highest, what the value is): the range a NASGym value must lie in.
#: NASGym stored the accuracy as a fraction (its ``reward`` column is 100 x accuracy),
#: and the importer takes it as it is.
_RANGES: dict[str, tuple[float, float, str]] = {
    "accuracy": (0.0, 1.0, "a fraction in [0, 1]; NASGym's reward column is x100"),
    "running_time": (0.0, math.inf, "seconds of training, at least 0"),
    "flops": (0.0, math.inf, "at least 0"),
    "density": (0.0, math.inf, "at least 0"),
}


def _number(cells: dict[str, str], column: str) -> float:
    """The cell ``column`` as a number (empty: 0), checked against :data:`_RANGES`."""
    text = str(cells.get(column) or "").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise _BadValueError(f"{column} = {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _BadValueError(f"{column} = {text} is not a finite number")
    low, high, what = _RANGES.get(column, (-math.inf, math.inf, ""))
    if not low <= value <= high:
        raise _BadValueError(f"{column} = {text} is out of range ({what})")
    return value


def _timestamp(text: str) -> str:
    try:
        moment = _dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text.strip()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _truth(text: str) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes", "1.0")


def _record(cells: dict[str, str], trainer: str, epochs: int) -> Record:
    key = cells["dataset-nethash"].strip()
    dataset, sep, nethash = key.rpartition("-")
    if not sep or not dataset or not re.fullmatch(r"[0-9a-fA-F]{32}", nethash):
        raise ValueError(f"dataset-nethash {key!r} is not <dataset>-<md5>")
    nsc = parse_netstring(cells["netstring"])
    valid = _truth(cells["is_valid"])
    reward = str(cells.get("reward") or "").strip()
    if reward:
        _number(cells, "reward")  # any sign (the early-stop reward), but a finite number
    evaluation = Evaluation(
        status=Status.OK if valid else Status.INVALID,
        accuracy=_number(cells, "accuracy"),
        flops=int(_number(cells, "flops")),
        density=_number(cells, "density"),
        seconds=_number(cells, "running_time"),
        epochs=epochs if valid else 0,
        message="" if valid else "invalid in NASGym (building or training failed)",
    )
    from nasframe import __version__

    return Record(
        dataset=dataset,
        task=dataset,
        arch_hash=nsc.canonical_hash,
        nsc=str(nsc),
        estimator="nasgym",
        estimator_version=f"{trainer}; reward {reward}" if reward else trainer,
        fingerprint=f"nasgym-{trainer}",
        evaluation=evaluation,
        timestamp=_timestamp(cells.get("timestamp", "")),
        nasframe_version=__version__,
    )


def read_database(
    source: Path,
    *,
    trainer: str = "default",
    epochs: int = 0,
    skip_bad: bool = False,
) -> tuple[list[Record], ImportResult]:
    """Read NASGym's CSV experiment database at ``source`` into records, storing nothing.

    A row that cannot be read (a malformed ``dataset-nethash`` or ``netstring``) is
    skipped and named in ``result.skipped``. A row with a bad value -- an accuracy
    outside [0, 1], a negative ``running_time``, ``flops`` or ``density``, a value that
    is not a finite number -- refuses the whole file (nothing is taken), unless
    ``skip_bad``: then it is skipped, named and counted in ``result.bad``.

    Returns:
        The records of the good rows, in the file's order, and the counts so far
        (``stored`` and ``duplicates`` are 0: nothing is stored yet).

    Raises:
        DatabaseError: the file is missing or lacks NASGym's columns; a row has a bad
            value (without ``skip_bad``): the message names the file, the line, the
            column and the value.
    """
    if not source.is_file():
        raise DatabaseError(f"{source}: no such NASGym experiment database")
    result = ImportResult()
    records: list[Record] = []
    bad: list[tuple[int, str]] = []
    try:
        with source.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in NASGYM_COLUMNS if name not in (reader.fieldnames or [])]
            if missing:
                raise DatabaseError(
                    f"{source}: not a NASGym experiment database (missing columns: "
                    f"{', '.join(missing)})"
                )
            for line, cells in enumerate(reader, start=2):
                result.rows += 1
                try:
                    record = _record(cells, trainer, epochs)
                except _BadValueError as exc:
                    bad.append((line, str(exc)))
                    result.skipped.append(f"{source} line {line}: skipped ({exc})")
                    continue
                except (ValueError, TypeError, NasframeError) as exc:
                    result.skipped.append(f"{source} line {line}: skipped ({exc})")
                    continue
                records.append(record)
    except (UnicodeDecodeError, csv.Error) as exc:
        message = " ".join(str(exc).split())
        raise DatabaseError(f"{source}: not a readable CSV file: {message}") from None
    if bad and not skip_bad:
        first_line, why = bad[0]
        lines = ", ".join(str(number) for number, _ in bad[:5])
        more = f", ... ({len(bad)} in all)" if len(bad) > 5 else ""
        rows = "1 row has a bad value" if len(bad) == 1 else f"{len(bad)} rows have bad values"
        raise DatabaseError(
            f"{source} line {first_line}: {why}; {rows} (line{'s' if len(bad) > 1 else ''} "
            f"{lines}{more}), nothing imported; correct them, or pass --skip-bad to import "
            "the other rows"
        )
    result.bad = len(bad)
    result.datasets.update(record.dataset for record in records)
    return records, result


def import_database(
    source: Path,
    database: ExperimentDB,
    *,
    trainer: str = "default",
    epochs: int = 0,
    skip_bad: bool = False,
) -> ImportResult:
    """Import NASGym's CSV experiment database at ``source`` into ``database``.

    Args:
        source: NASGym's ``db_experiments.csv`` (written by pandas, with an index column
            or without).
        database: the nasframe database to add the records to.
        trainer: NASGym's ``TrainerType`` of the run (``default`` or ``early-stop``); part
            of the records' fingerprint.
        epochs: NASGym's ``NEpochs`` of the run, recorded as each valid record's epochs
            (0: unknown).
        skip_bad: skip (and count) rows with a bad value instead of refusing the file
            (:func:`read_database`).

    Raises:
        DatabaseError: the file is missing or lacks NASGym's columns; a row has a bad
            value (without ``skip_bad``; nothing is stored then).
    """
    records, result = read_database(source, trainer=trainer, epochs=epochs, skip_bad=skip_bad)
    return store_records(database, records, result)


def store_records(
    database: ExperimentDB, records: list[Record], result: ImportResult
) -> ImportResult:
    """Add the records :func:`read_database` returned to ``database``; count them in
    ``result`` (stored, or duplicates of a stored network) and return it."""
    for record in records:
        if database.get(record.key) is not None:
            result.duplicates += 1
            continue
        database.put(record)
        result.stored += 1
    return result


def nasgym_trainer(path: Path | None) -> tuple[str, int]:
    """NASGym's ``TrainerType`` and ``NEpochs`` from its config (defaults: early-stop, 12)."""
    if path is None:
        return "unknown", 0
    parser = _read_nasgym_ini(path)
    trainer, epochs = "early-stop", 12  # NASGym's fallbacks when the keys are missing
    for section in parser.sections():
        for key, raw in parser.items(section, raw=True):
            lookup = (section.lower(), key.lower())
            if lookup == ("nasenv.default", "trainertype"):
                trainer = str(raw).strip()
            elif lookup == ("trainer.default", "nepochs"):
                try:
                    epochs = int(str(raw).strip())
                except ValueError:
                    epochs = 0
    return trainer, epochs


def describe(result: ImportResult) -> str:
    """One line summing up an import."""
    names = ", ".join(sorted(result.datasets)) or "none"
    bad = f" ({result.bad} with a bad value)" if result.bad else ""
    return (
        f"{result.rows} rows read: {result.stored} records stored, {result.duplicates} "
        f"duplicates of a stored network, {len(result.skipped)} skipped{bad}; datasets: "
        f"{names}"
    )
