"""Default plugin ``table``: ``table-v1``, an estimator that answers from a benchmark table.

It trains nothing: the accuracy of a network is looked up in a table of networks that
were all trained once (``nasframe bench build``, ``docs/nsc-bench.md``), so a search over
the table's space takes seconds and can be repeated over many seeds. It reads:

* the table that ships with nasframe (NSC-Bench v3; the default, ``table =`` empty);
* any table folder built with ``nasframe bench build`` (``table.csv.gz`` or, while it is
  being built, ``rows.csv``), or one of those files;
* an experiment database (``table = csv:PATH`` or ``sqlite:PATH``, any registered
  database name before the colon): each stored record is a network with one validation
  accuracy at the epochs it trained, and no test accuracy.

Settings (section ``[table]``):

* ``epochs`` -- the fidelity: the reward is the validation accuracy after that many
  epochs (``0``: the last epoch recorded);
* ``seed`` -- which training of a network answers: a seed of the table (``0``), ``mean``
  (the mean over the table's seeds) or ``random`` (one seed drawn per query, keeping
  the seed-to-seed noise of real training; reproducible from the env's seed); a network
  the table trained with fewer seeds answers with its first seed where the asked one is
  missing, and ``mean``/``random`` use the seeds it has;
* ``depth`` -- the deepest network the table answers (``0``: all of them): a table to
  depth 4 read with ``depth = 3`` holds exactly its rows of networks of at most 3
  layers, the depth-3 benchmark (``bench run`` then ends episodes at 3 layers too);
* ``simulated_cost`` -- report the recorded cost of the training as the evaluation's
  ``seconds`` (so a search can be budgeted in simulated time); the cost of a fidelity of
  ``e`` of ``E`` epochs is the fixed part (build, trace, evaluation) plus ``e/E`` of the
  training seconds. Off: the seconds of the lookup itself.

A network the table does not hold gets status ``invalid`` and a one-line message naming
the table; it never raises. When the environment is built, a table of another dataset
(identity, input shape) or another search space (its name in ``build.json``) is refused
with a :class:`~nasframe.ConfigError`.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import nasframe
from nasframe import NSC, DatasetHandler, Evaluation, PerformanceEstimator, SearchSpace, Status

__all__ = ["TableEstimator", "TableSettings"]

#: The ``seed`` values that are not a seed number.
SEED_MODES = ("mean", "random")


@dataclass(frozen=True)
class TableSettings(nasframe.Settings):
    """The settings of ``table-v1``, declared once: the dataclass and the ``[table]`` section.

    Each key's type and bounds are checked here; what depends on the table (an epoch
    count beyond its curves, a seed it lacks, a depth beyond its deepest network) is
    checked by :class:`TableEstimator` once the table is read.
    """

    SECTION: ClassVar[str] = "table"
    DESCRIPTION: ClassVar[str] = "The table estimator: answers from a benchmark table."

    table: str | None = nasframe.setting(
        None,
        "a table folder or file from nasframe bench build, DB:PATH for an experiment "
        "database (e.g. csv:runs/x.csv), a shipped table (nsc-bench-v3), "
        "or empty for the default shipped table (nsc-bench-v3)",
    )
    epochs: int = nasframe.setting(
        0, "fidelity: validation accuracy after this many epochs (0: last)", min=0
    )
    seed: str = nasframe.setting(
        "mean", "a seed of the table, mean (over seeds) or random (per query)"
    )
    depth: int = nasframe.setting(
        0, "answer only networks of at most this many layers (0: all)", min=0
    )
    simulated_cost: bool = nasframe.setting(
        True, "report the recorded training seconds as the evaluation's cost (simulated time)"
    )


class TableEstimator(PerformanceEstimator):
    """Looks networks up in a benchmark table instead of training them.

    Args:
        table: a table folder or file, ``DB:PATH`` for an experiment database of the
            registered database ``DB``, the name of a table shipped with nasframe
            (``nsc-bench-v3``), or empty for the default, v3.
        epochs: the fidelity (validation accuracy after that many epochs); 0: the last.
        seed: a seed of the table, ``"mean"`` or ``"random"``.
        simulated_cost: report the recorded training cost as the evaluation's seconds.
        depth: answer only networks of at most this many layers (0: every network).
        composition: the plugin manager whose databases ``DB:PATH`` names (passed by
            ``nasframe.compose.create``; default: a fresh one).

    Raises:
        ConfigError: the table cannot be read, holds no row, or a setting does not fit it
            (an epoch count beyond its curves, a seed it does not hold); the message names
            ``[table]``, the key and the table.
    """

    name = "table-v1"
    version = "1"

    def __init__(
        self,
        table: str | Path | None = None,
        epochs: int = 0,
        seed: str | int = "mean",
        simulated_cost: bool = True,
        depth: int = 0,
        composition: nasframe.Composition | None = None,
    ) -> None:
        #: the validated settings (:class:`TableSettings`, also the ``[table]`` section)
        self.settings = TableSettings(
            table=None if table is None else str(table),
            epochs=epochs,
            seed=str(seed),
            simulated_cost=simulated_cost,
            depth=depth,
        )
        manager = composition.plugin_manager if composition is not None else None
        self._manager = manager
        self.bench, self.source = _load(self.settings.table, manager)
        if not self.bench.rows:
            raise nasframe.ConfigError(f"[table] table: {self.source} holds no row")
        depth = self.settings.depth
        deepest = max(row.depth for row in self.bench.rows)
        if depth > deepest:
            raise nasframe.ConfigError(
                f"[table] depth = {depth!r}: {self.source} holds networks of 0 to {deepest} "
                "layers (0 = all)"
            )
        self.depth = int(depth)
        if self.depth and self.depth < deepest:
            rows = [row for row in self.bench.rows if row.depth <= self.depth]
            build = {**self.bench.build, "depth": self.depth}
            self.bench = nasframe.BenchTable(rows, build, self.bench.source)
        most = self.bench.max_epochs
        epochs = self.settings.epochs
        if epochs > most:
            raise nasframe.ConfigError(
                f"[table] epochs = {epochs!r}: {self.source} records 1 to {most} epochs "
                "(0 = the last)"
            )
        self.epochs = epochs or most
        self.seeds = self.bench.seeds()
        seed = self.settings.seed
        mode = seed.strip().lower()
        if mode not in SEED_MODES and (not mode.isdigit() or int(mode) not in self.seeds):
            raise nasframe.ConfigError(
                f"[table] seed = {seed!r}: {self.source} holds seeds "
                f"{', '.join(map(str, self.seeds))}; give one of them, mean or random"
            )
        self.seed_mode = mode
        self.simulated_cost = self.settings.simulated_cost
        self.dataset_identity: str | None = self.bench.build.get("dataset")
        self.space_name: str | None = self.bench.build.get("space")
        self._answers = self._precompute()
        self._missing = f"is not in the table {self.source}"
        self._rng = random.Random()

    # -- the contract ------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """``table-1-<hash>`` of the table's content and every setting."""
        settings = {
            "table": self._content_id(),
            "epochs": self.epochs,
            "seed": self.seed_mode,
            "simulated_cost": self.simulated_cost,
        }
        if self.depth:  # absent when unset: earlier fingerprints stay as they were
            settings["depth"] = self.depth
        return nasframe.fingerprint_of("table", self.version, settings)

    def check_setup(self, search_space: SearchSpace, dataset: DatasetHandler) -> None:
        """Refuse a dataset or search space other than the table's.

        Raises:
            ConfigError: the table was built on another dataset (identity or input shape)
                or another search space; the message names the table and both values.
        """
        build = self.bench.build
        if self.dataset_identity is not None and dataset.identity != self.dataset_identity:
            raise nasframe.ConfigError(
                f"[table] table: {self.source} was built on dataset {self.dataset_identity!r}, "
                f"not {dataset.identity!r}; {self._dataset_hint()}"
            )
        shape = build.get("input_shape")
        if shape is not None and tuple(shape) != tuple(dataset.input_shape):
            raise nasframe.ConfigError(
                f"[table] table: {self.source} was built for inputs {tuple(shape)}, but "
                f"dataset {dataset.identity!r} has {tuple(dataset.input_shape)}"
            )
        space = getattr(search_space, "name", "") or type(search_space).__name__
        if self.space_name is not None and space != self.space_name:
            raise nasframe.ConfigError(
                f"[table] table: {self.source} was built for search space "
                f"{self.space_name!r}, not {space!r}; choose its space or another table"
            )

    def _dataset_hint(self) -> str:
        """What to pass to get the table's dataset: the exact ``--set`` options."""
        component = self.bench.build.get("dataset_component")
        if not isinstance(component, dict) or not component.get("name"):
            return "choose its dataset or another table"
        name = str(component["name"])
        manager = self._manager or nasframe.get_plugin_manager()
        try:
            section = manager.datasets().get(name).section
        except nasframe.RegistryError:
            return f"its dataset is {name!r}, which is not installed"
        options = [f"--set env.dataset={name}"]
        for key, value in sorted((component.get("settings") or {}).items()):
            if section and value is not None:
                shown = str(value).lower() if isinstance(value, bool) else value
                options.append(f"--set {section}.{key}={shown}")
        return "pass " + " ".join(options)

    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """The recorded evaluation of ``architecture``; never raises.

        ``seed`` only matters with ``seed = random``: it makes the drawn training seed
        reproducible (the same network and seed always draw the same training).
        """
        start = time.perf_counter()
        if self.dataset_identity is not None and dataset.identity != self.dataset_identity:
            return Evaluation.failed(
                Status.INVALID,
                f"table {self.source} holds dataset {self.dataset_identity}, "
                f"not {dataset.identity}",
            )
        arch_hash = architecture.without_terminal().canonical_hash
        answers = self._answers.get(arch_hash)
        if answers is None:
            return Evaluation.failed(
                Status.INVALID,
                f"network {str(architecture) or '(head only)'} {self._missing}",
                seconds=time.perf_counter() - start,
            )
        if self.seed_mode == "mean":
            answer = answers[-1]
        elif self.seed_mode == "random":
            if seed is None:
                index = self._rng.randrange(len(answers) - 1)
            else:
                index = zlib.crc32(f"{seed}:{arch_hash}".encode()) % (len(answers) - 1)
            answer = answers[index]
        else:
            answer = answers[self.seeds.index(int(self.seed_mode))]
        if self.simulated_cost:
            return answer
        return replace(answer, seconds=time.perf_counter() - start)

    # -- more than an estimator: what a benchmark needs -----------------------------------
    def test_accuracy(self, arch_hash: str) -> float:
        """The seed-mean test accuracy of a network (0 for a failed one, NaN if unknown)."""
        rows = self.bench.lookup(arch_hash)
        if not rows:
            return math.nan
        values = [row.test if row.ok and not math.isnan(row.test) else 0.0 for row in rows]
        return sum(values) / len(values)

    # -- helpers ---------------------------------------------------------------------------
    def _precompute(self) -> dict[str, list[Evaluation]]:
        # One ready Evaluation per (network, seed) and one for the seed mean: a query is
        # a dictionary lookup (the evaluation is frozen, so sharing it is safe).
        out: dict[str, list[Evaluation]] = {}
        seeds = self.seeds
        for arch_hash, rows in self.bench.by_hash.items():
            by_seed = {row.seed: row for row in rows}
            answers = [self._answer(by_seed[s]) if s in by_seed else None for s in seeds]
            present = [a for a in answers if a is not None]
            filled = [a if a is not None else present[0] for a in answers]
            out[arch_hash] = [*filled, self._mean(present)]
        return out

    def _answer(self, row: nasframe.TableRow) -> Evaluation:
        nsc = NSC.parse(row.nsc) if row.nsc else NSC()
        density = nsc.density()
        cost = self._cost(row)
        if not row.ok:
            return Evaluation.failed(
                row.status,
                row.message or f"recorded as {row.status} in {self.source}",
                params=row.params,
                flops=row.flops,
                density=density,
                seconds=cost,
            )
        return Evaluation(
            status=Status.OK,
            accuracy=row.accuracy(self.epochs),
            params=row.params,
            flops=row.flops,
            density=density,
            seconds=cost,
            epochs=min(self.epochs, len(row.curve)),
            # recorded after the last epoch only: unknown at an earlier fidelity
            train_accuracy=(
                None if math.isnan(row.train) or self.epochs < len(row.curve) else row.train
            ),
        )

    def _cost(self, row: nasframe.TableRow) -> float:
        recorded = max(1, row.epochs, len(row.curve))
        share = min(self.epochs, recorded) / recorded
        return max(0.0, row.seconds - row.train_seconds) + row.train_seconds * share

    @staticmethod
    def _mean(answers: list[Evaluation]) -> Evaluation:
        ok = [a for a in answers if a.ok]
        if len(ok) < len(answers) and not ok:
            return answers[0]
        n = len(answers)
        # Failed trainings count 0, as in BenchTable.mean_accuracies.
        trains = [a.train_accuracy for a in ok if a.train_accuracy is not None]
        return replace(
            ok[0],
            accuracy=sum(a.accuracy for a in ok) / n,
            seconds=sum(a.seconds for a in answers) / n,
            train_accuracy=sum(trains) / len(trains) if trains else None,
        )

    def _content_id(self) -> str:
        digest = self.bench.build.get("sha256")
        if digest and self.source.endswith(".gz"):
            return str(digest)
        text = "\n".join(
            f"{row.arch_hash},{row.seed},{row.status},{','.join(map(repr, row.curve))}"
            for row in self.bench.rows
        )
        return hashlib.sha256(text.encode()).hexdigest()


def _load(
    table: str | Path | None, manager: nasframe.PluginManager | None = None
) -> tuple[nasframe.BenchTable, str]:
    text = str(table or "").strip()
    if not text:
        folder = nasframe.BenchTable.shipped()
        if not folder.exists():
            raise nasframe.ConfigError(
                f"[table] table: the shipped table {folder} is not installed; "
                "set [table] table to a table built with nasframe bench build"
            )
        return nasframe.BenchTable.load(folder), str(folder)
    shipped = nasframe.BenchTable.shipped_names()
    if text in shipped:
        folder = nasframe.BenchTable.shipped(text)
        if not folder.exists():
            raise nasframe.ConfigError(
                f"[table] table = {text!r}: this shipped table is not installed ({folder})"
            )
        return nasframe.BenchTable.load(folder), text
    kind, sep, rest = text.partition(":")
    if sep and len(kind) > 1 and not Path(text).exists():
        return _load_database(kind, rest, manager), text
    path = Path(text).expanduser()
    if not path.exists():
        raise nasframe.ConfigError(
            f"[table] table = {text!r}: no such table folder or file (give a shipped table: "
            f"{', '.join(shipped)}, a folder built with nasframe bench build, "
            "or DB:PATH for an experiment database)"
        )
    bench = nasframe.BenchTable.load(path)
    return bench, bench.source or str(path)


def _load_database(
    kind: str, path: str, manager: nasframe.PluginManager | None
) -> nasframe.BenchTable:
    if not Path(path).expanduser().exists():
        raise nasframe.ConfigError(f"[table] table = '{kind}:{path}': no such database file")
    registry = (manager or nasframe.get_plugin_manager()).databases()
    info = registry.get(kind)
    database = registry.create(info.name, path=str(Path(path).expanduser()))
    try:
        return nasframe.BenchTable.from_records(list(database), f"{kind}:{path}")
    finally:
        database.close()


@nasframe.hookimpl(trylast=True)
def nasframe_register_estimators(
    registry: nasframe.Registry[nasframe.PerformanceEstimator],
) -> None:
    """Register ``table-v1``."""
    registry.add(
        "table-v1",
        TableEstimator,
        summary="looks networks up in a benchmark table (NSC-Bench); trains nothing",
        section="table",
    )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[table]`` section (from :class:`TableSettings`)."""
    TableSettings.declare(schema)
