"""``nasframe finalize RUN``: retrain a run's best networks fully and test them once.

A search ranks networks by a short training's validation accuracy. Finalizing takes the
``[finalize] top_k`` best networks of a finished (or interrupted) run from its experiment
database, retrains each once per seed with the final-training configuration (the
``[finalize]`` section: more epochs, another builder, augmentation, any estimator
setting), and measures every trained network on the dataset's **test** split -- the only
place in nasframe that reads it (:meth:`nasframe.PerformanceEstimator.measure` with
``test=True``; a search never asks for it).

The results folder (``[finalize] output``, default ``<run>/final``) holds:

* ``rows.csv`` -- one line per trained (network, seed), in the NSC-Bench row format
  (:class:`nasframe.bench.TableRow`: validation curve, test accuracy, params, FLOPs,
  seconds), appended, flushed and fsync'ed: a ``kill -9`` loses at most the trainings
  in flight, and the same command trains only what is missing;
* ``models/<arch_hash>-seed<S>.keras`` -- each trained network (for ``keras-v1``; load
  it with ``keras.models.load_model`` after importing the Keras plugin's builder module,
  which registers its custom layers -- see ``docs/estimator.md``);
* ``final.json`` -- per network the validation and test accuracy as mean and standard
  deviation over the seeds, params, FLOPs, the model files, and the configuration;
* ``final.csv`` -- the same as a flat table; ``final.png`` -- a bar plot (extra: plot).

``--workers N`` trains on N Ray actors (``[ray]`` num_cpus, num_gpus, max_retries), the
back end of ``nasframe search --workers``.
"""

from __future__ import annotations

import configparser
import csv
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.bench.table import RowWriter, TableRow, resume_rows
from nasframe.config import Config, load_config
from nasframe.contracts import (
    DatasetHandler,
    ExperimentDB,
    PerformanceEstimator,
    Record,
)
from nasframe.distributed.components import ComponentSpec
from nasframe.distributed.rows import PoolSettings, RowPool, measure_row, measure_rows
from nasframe.errors import ConfigError, NasframeError, RegistryError
from nasframe.nsc import NSC

__all__ = [
    "FinalPlan",
    "FinalResult",
    "check_trainer",
    "final_settings",
    "finalize",
    "load_run_config",
    "plan_finalize",
    "top_networks",
]

log = logging.getLogger("nasframe.finalize")

ROWS = "rows.csv"
CARD = "final.json"
TABLE = "final.csv"
PLOT = "final.png"
MODELS = "models"


@dataclass
class FinalPlan:
    """What a finalization trains, and where.

    Attributes:
        run: the search's output folder.
        output: the results folder.
        networks: the networks to retrain, best first, with their search record.
        seeds: the training seeds; every network is trained once per seed.
        estimator: ``(name, settings)`` of the final-training estimator.
        dataset: ``(name, settings)`` of the dataset.
        task: the dataset task to train on (``None``: the handler's default).
        ray: the ``[ray]`` settings for ``workers`` > 1.
    """

    run: Path
    output: Path
    networks: list[Record]
    seeds: list[int]
    estimator: tuple[str, dict[str, Any]]
    dataset: tuple[str, dict[str, Any]]
    task: str | None = None
    ray: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinalResult:
    """How a finalization ended.

    Attributes:
        rows: (network, seed) rows stored, including those of earlier runs.
        trained: rows trained by this call.
        complete: whether every (network, seed) is stored.
        seconds: wall seconds of this call.
        card: the content of ``final.json``.
    """

    rows: int
    trained: int
    complete: bool
    seconds: float
    card: dict[str, Any] = field(default_factory=dict)


# -- the run and its configuration ------------------------------------------------------


def load_run_config(
    run: Path,
    config_path: Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    *,
    plugin_manager: Any = None,
) -> Config:
    """The configuration of the search in ``run``: defaults < file < the run's < overrides.

    The run's own values (``run.json``) win over ``config_path``, so the components and
    their settings are the run's; the file contributes the sections a run does not fix
    (``[finalize]``, ``[ray]``, budgets). ``overrides`` win over everything. A relative
    path the run recorded (a dataset's folder, say) is resolved against the folder the
    search ran in (:func:`run_database_path`), so ``run`` may be named from any folder.

    Raises:
        NasframeError: ``run`` is not a search's output folder.
    """
    stored = read_run_file(run)
    merged: dict[str, dict[str, Any]] = {}
    for section, values in stored["identity"].items():
        for key, value in values.items():
            if value is not None:
                merged.setdefault(section, {})[key] = value
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    config = load_config(config_path, merged, plugin_manager=plugin_manager)
    # A relative path the run recorded is relative to the folder the search ran in.
    recorded = _recorded_ini(str(stored.get("config") or ""))
    given = {(s.lower(), k.lower()) for s, values in (overrides or {}).items() for k in values}
    moved: dict[str, dict[str, Any]] = {}
    for section, values in stored["identity"].items():
        declared = config.schema.sections.get(section)
        for key, value in values.items():
            spec = declared.keys.get(key) if declared is not None else None
            if spec is None or spec.type is not Path or not value or (section, key) in given:
                continue
            if not Path(value).expanduser().is_absolute():
                moved.setdefault(section, {})[key] = _recorded_path(
                    Path(value), run, recorded, stored.get("cwd")
                )
    return config.with_overrides(moved) if moved else config


def read_run_file(run: Path) -> dict[str, Any]:
    """``run.json`` of a search's output folder.

    Raises:
        NasframeError: the folder or its ``run.json`` is missing or unreadable.
    """
    run_file = run / "run.json"
    if not run.is_dir():
        raise NasframeError(f"{run}: no such run folder (give a search's --output folder)")
    if not run_file.is_file():
        raise NasframeError(f"{run}: not a search's output folder (it has no run.json)")
    try:
        stored = json.loads(run_file.read_text(encoding="utf-8"))
        if not isinstance(stored.get("identity"), dict):
            raise ValueError("no identity")
    except (OSError, ValueError, AttributeError) as exc:
        raise NasframeError(f"{run_file}: not a nasframe run file ({exc})") from None
    return dict(stored)


def run_database_path(run: Path, config: Config) -> Path:
    """Where the search in ``run`` stored its evaluations, from any current folder.

    In order:

    1. a ``[database] path`` given now (``--set database.path=FILE``, or the ``--config``
       file) wins;
    2. the path ``run.json`` recorded. One inside the run's recorded ``[run] output``
       folder is read from ``run`` itself, so a copied or moved run folder reads its own
       database; another relative one is resolved against the folder the search ran in
       (``run.json``'s ``cwd`` where recorded, else the folder whose ``[run] output``
       is ``run``, else the current one);
    3. the search's default: ``experiments.csv`` (or ``.sqlite``) in ``run``.
    """
    if config.sources.get(("database", "path"), "default") != "default":
        given = config.get("database", "path")
        if given:
            return Path(given)
    stored = read_run_file(run)
    recorded = _recorded_ini(str(stored.get("config") or ""))
    database = recorded.get(("database", "path"), "")
    if database:
        return _recorded_path(Path(database), run, recorded, stored.get("cwd"))
    from nasframe.search.settings import database_path

    path = database_path(config, run).get("database", "path")
    return Path(path) if path else run / "experiments.csv"


def _recorded_ini(text: str) -> dict[tuple[str, str], str]:
    """``{(section, key): value}`` of the configuration ``run.json`` recorded."""
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=("#",), default_section="__none__"
    )
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    return {
        (section, key): value.strip()
        for section in parser.sections()
        for key, value in parser.items(section)
    }


def _recorded_path(
    path: Path, run: Path, recorded: dict[tuple[str, str], str], cwd: Any = None
) -> Path:
    """A path ``run.json`` recorded, as it is to be read now (:func:`run_database_path`)."""
    path = Path(os.path.normpath(path.expanduser()))
    output_text = recorded.get(("run", "output"), "")
    output = Path(os.path.normpath(Path(output_text).expanduser())) if output_text else None
    if output is not None and path.is_absolute() == output.is_absolute():
        try:
            inside = path.relative_to(output)
        except ValueError:
            inside = None
        if inside is not None and ".." not in inside.parts:
            return run / inside  # the run folder's own file, wherever the folder is now
    if path.is_absolute():
        return path
    if cwd:
        return Path(str(cwd)) / path
    if output is not None and not output.is_absolute() and ".." not in output.parts:
        here = run.resolve().parts
        depth = len(output.parts)
        if depth and len(here) > depth and here[-depth:] == output.parts:
            return Path(*here[:-depth]) / path  # the folder the search ran in
    return path


def top_networks(
    database: ExperimentDB,
    *,
    task: str,
    k: int,
    among: set[str] | None = None,
) -> list[Record]:
    """The ``k`` best distinct networks the database holds for the dataset task ``task``.

    Only ``ok`` evaluations of non-empty networks count; ``among`` (canonical hashes)
    limits them to one run's networks. Best first: validation accuracy, then fewer
    parameters, then the order stored. Records are matched by task, not by the full
    dataset identity, so a final training may change a dataset setting the search did
    not need (a test fraction, say) and still find the run's networks.
    """
    best: dict[str, tuple[int, Record]] = {}
    for order, record in enumerate(database):
        if record.task != task or not record.evaluation.ok:
            continue
        if among is not None and record.arch_hash not in among:
            continue
        if not record.nsc or not len(NSC.parse(record.nsc).without_terminal()):
            continue
        held = best.get(record.arch_hash)
        if held is None or record.evaluation.accuracy > held[1].evaluation.accuracy:
            best[record.arch_hash] = (order, record)
    ranked = sorted(
        best.values(),
        key=lambda item: (-item[1].evaluation.accuracy, item[1].evaluation.params, item[0]),
    )
    return [record for _, record in ranked[:k]]


def parse_seeds(text: str, where: str = "[finalize] seeds") -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (duplicates dropped, order kept).

    Raises:
        ConfigError: a seed is not an integer >= 0, or none is given.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        if not part.isdigit():
            raise ConfigError(
                f"{where} = {text!r}: {part!r} is not a seed (need integers >= 0, "
                "comma-separated, e.g. 0,1,2)"
            )
        if int(part) not in seeds:
            seeds.append(int(part))
    if not seeds:
        raise ConfigError(f"{where} = {text!r}: give at least one seed, e.g. 0,1,2")
    return seeds


def final_settings(config: Config, plugin_manager: Any) -> tuple[str, dict[str, Any]]:
    """The estimator of the run with the ``[finalize]`` changes applied: ``(name, settings)``.

    ``epochs`` (when > 0), ``builder``, ``augmentation`` (when set) and each
    ``key=value`` of ``settings`` replace the estimator's setting of that name, checked
    and converted as its own section would be.

    Raises:
        ConfigError: the estimator has no such setting, or the value is invalid; the
            message names the ``[finalize]`` key.
    """
    info = plugin_manager.estimators().get(str(config.get("env", "estimator")))
    changes: dict[str, tuple[str, Any]] = {}
    epochs = int(config.get("finalize", "epochs"))
    if epochs > 0:
        changes["epochs"] = ("epochs", epochs)
    for key in ("builder", "augmentation"):
        value = str(config.get("finalize", key))
        if value:
            changes[key] = (key, value)
    for part in (p.strip() for p in str(config.get("finalize", "settings")).split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"[finalize] settings: {part!r} must be key=value, e.g. batch_size=64"
            )
        changes[name.strip().lower()] = ("settings", value.strip())
    section = info.section
    keys = config.schema.sections[section].keys if section in config.schema.sections else {}
    for name, (where, _) in changes.items():
        if name not in keys:
            known = ", ".join(sorted(keys)) or "none"
            raise ConfigError(
                f"[finalize] {where}: estimator {info.name!r} has no setting {name!r} "
                f"(its settings: {known})"
            )
    if changes:
        try:
            config = config.with_overrides({section: {n: v for n, (_, v) in changes.items()}})
        except ConfigError as exc:
            given = "/".join(sorted({w for w, _ in changes.values()}))
            raise ConfigError(f"[finalize] {given}: {exc}") from None
        for name, (where, value) in changes.items():
            kind = keys[name].component
            if kind is not None:  # a setting naming a component: it must be registered
                registry = plugin_manager.registry(kind)  # a clash of plugins is not this key's
                try:
                    registry.get(str(value))
                except RegistryError as exc:
                    raise ConfigError(f"[finalize] {where}: [{section}] {name}: {exc}") from None
    return info.name, config.component_settings(info)


#: Estimators that rank networks without training one to keep: a search may use them,
#: a final training needs a trainer.
SEARCH_ONLY_ESTIMATORS = ("cascade", "proxy", "zerocost")


def check_trainer(config: Config, plugin_manager: Any) -> None:
    """Refuse a final training with an estimator that trains no network to test.

    A run that searched with ``cascade-v1``, ``proxy-v1`` or ``zerocost-v1`` (or any
    estimator without :meth:`~nasframe.PerformanceEstimator.measure`) is finalized with
    a trainer given now: ``--set env.estimator=keras``.

    Raises:
        ConfigError: one line naming the estimator and what to pass.
    """
    info = plugin_manager.estimators().get(str(config.get("env", "estimator")))
    factory = info.factory
    untested = (
        isinstance(factory, type)
        and issubclass(factory, PerformanceEstimator)
        and factory.measure is PerformanceEstimator.measure
    )
    if info.name.split("-v")[0] in SEARCH_ONLY_ESTIMATORS or untested:
        raise ConfigError(
            f"[env] estimator: the run searched with {info.name!r}, which estimates "
            "accuracy without training a network to test; finalize retrains the best "
            "networks with a trainer: pass --set env.estimator=keras (its settings: "
            "--epochs N, --set keras.KEY=VALUE)"
        )


def plan_finalize(
    run: Path,
    config: Config,
    *,
    plugin_manager: Any,
    task: str | None = None,
) -> FinalPlan:
    """Choose the networks and the final-training components for ``run``.

    Raises:
        NasframeError: the run's database is missing, holds none of the run's networks
            or no ``ok`` network of its dataset; a ``[finalize]`` value is wrong; the
            estimator trains no network to test (:func:`check_trainer`).
    """
    from nasframe.authoring.storage import open_database
    from nasframe.results import StepLog

    registries = plugin_manager
    check_trainer(config, plugin_manager)
    dataset_info = registries.datasets().get(str(config.get("env", "dataset")))
    dataset_settings = config.component_settings(dataset_info)
    dataset = registries.datasets().create(dataset_info.name, **dataset_settings)
    if task:
        dataset.select_task(task)
    identity = dataset.task
    db_path = run_database_path(run, config)
    if not db_path.is_file():
        raise NasframeError(
            f"{db_path}: the run's experiment database does not exist; give it with "
            "--set database.path=FILE"
        )
    steps = StepLog(run / "steps.csv").read() if (run / "steps.csv").is_file() else []
    among = {row.arch_hash for row in steps} if steps else None
    database = open_database(db_path)
    try:
        top_k = int(config.get("finalize", "top_k"))
        networks = top_networks(database, task=identity, k=top_k, among=among)
        held = (
            among is not None
            and not networks
            and not any(record.arch_hash in among for record in database)
        )
    finally:
        database.close()
    if held:
        raise NasframeError(
            f"{db_path}: holds none of the {len(among or ())} networks this run evaluated "
            "(steps.csv); give the run's database with --set database.path=FILE"
        )
    if not networks:
        raise NasframeError(
            f"{db_path}: no network of this run was evaluated ok on task {identity!r}; "
            "nothing to finalize (did the run take any step on this dataset?)"
        )
    output = config.get("finalize", "output") or run / "final"
    return FinalPlan(
        run=run,
        output=Path(output),
        networks=networks,
        seeds=parse_seeds(config.get("finalize", "seeds")),
        estimator=final_settings(config, plugin_manager),
        dataset=(dataset_info.name, dataset_settings),
        task=task,
        ray=config.section("ray"),
    )


# -- training ----------------------------------------------------------------------------


def model_path(output: Path, arch_hash: str, seed: int) -> Path:
    """The ``.keras`` file of one trained (network, seed)."""
    return output / MODELS / f"{arch_hash[:16]}-seed{seed}.keras"


def train_one(
    estimator: PerformanceEstimator,
    dataset: DatasetHandler,
    nsc: NSC,
    seed: int,
    save_to: Path,
) -> TableRow:
    """Train ``nsc`` with ``seed``, test it, save it; the row. Never raises."""
    return measure_row(estimator, dataset, nsc, seed, save_to=save_to)


def finalize(
    plan: FinalPlan,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    plugin_manager: Any = None,
    console: Any = None,
    progress: bool = True,
    limit: int | None = None,
) -> FinalResult:
    """Train (or resume training) every (network, seed) of ``plan``; write the results.

    Args:
        plan: what to train (:func:`plan_finalize`).
        workers: parallel trainings; more than 1 runs them on Ray actors.
        ray_address: an existing Ray cluster (default: a new local instance).
        plugin_manager: the plugin manager (default: a fresh one).
        console: a ``rich.console.Console`` for the progress bar and the table.
        progress: show the progress bar and the table.
        limit: train at most this many (network, seed) in this call.

    Raises:
        ConfigError: the estimator cannot measure test accuracy, the dataset has no test
            split, or the output folder holds results of other components.
    """
    from rich.console import Console

    started = time.perf_counter()
    console = console or Console()
    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    # the composition's path: a setting naming a component ([keras] builder) is built
    estimator = ComponentSpec("estimator", *plan.estimator).build(plugin_manager)
    dataset = ComponentSpec("dataset", *plan.dataset).build(plugin_manager)
    if plan.task:
        dataset.select_task(plan.task)
    if type(estimator).measure is PerformanceEstimator.measure:
        raise ConfigError(
            f"[env] estimator: {estimator.name!r} cannot finalize: it does not implement "
            "PerformanceEstimator.measure (test accuracy, saved models); use keras"
        )
    if dataset.num_examples("test") == 0:
        section = plugin_manager.datasets().get(plan.dataset[0]).section
        hint = f" (e.g. --set {section}.test=0.2)" if section else ""
        raise ConfigError(
            f"[env] dataset: {dataset.identity!r} has an empty test split; give its test "
            f"fraction a value above 0{hint} to finalize"
        )
    card = _card(plan, estimator, dataset)
    output = plan.output
    output.mkdir(parents=True, exist_ok=True)
    _check_card(output / CARD, card)
    rows_path = output / ROWS
    done = resume_rows(rows_path)
    finished = {
        (row.arch_hash, row.seed)
        for row in done
        if not row.ok or model_path(output, row.arch_hash, row.seed).is_file()
    }
    jobs = [
        (NSC.parse(record.nsc), seed)
        for seed in plan.seeds
        for record in plan.networks
        if (record.arch_hash, seed) not in finished
    ]
    if limit is not None:
        jobs = jobs[: max(0, limit)]
    log.info(
        "%d networks x %d seeds: %d stored, %d to train with %d worker(s)",
        len(plan.networks),
        len(plan.seeds),
        len(finished),
        len(jobs),
        workers,
    )
    pool_settings = PoolSettings.from_section(plan.ray)

    def make_pool() -> RowPool:
        return RowPool(
            ComponentSpec("estimator", *plan.estimator),
            ComponentSpec("dataset", *plan.dataset),
            task=plan.task,
            workers=workers,
            settings=pool_settings,
            ray_address=ray_address,
            what="finalize",
        )

    epochs = int(getattr(getattr(estimator, "settings", None), "epochs", 0) or 0)
    max_epochs = max([epochs, *(len(row.curve) for row in done)])
    trained = 0
    bar = _Progress(console, len(jobs), enabled=progress)
    try:
        with RowWriter(rows_path, max_epochs) as writer, bar:
            for row in measure_rows(
                [(nsc, seed, model_path(output, nsc.canonical_hash, seed)) for nsc, seed in jobs],
                estimator=estimator,
                dataset=dataset,
                pool=make_pool if workers > 1 else None,
            ):
                writer.write(row)
                trained += 1
                bar.advance(row)
    finally:
        estimator.close()
    rows = [row for row in resume_rows(rows_path) if row.seed in plan.seeds]
    wanted = {(record.arch_hash, seed) for record in plan.networks for seed in plan.seeds}
    have = {(row.arch_hash, row.seed) for row in rows} & wanted
    card["complete"] = wanted <= have
    card["networks"] = _summaries(plan, rows, output)
    card["seconds"] = round(time.perf_counter() - started, 1)
    _write_json(output / CARD, card)
    _write_table(output / TABLE, card["networks"])
    if card["networks"]:
        try:
            _plot(output / PLOT, card["networks"])
        except NasframeError as exc:
            log.warning("final.png skipped: %s", exc)
    if progress:
        _print_table(console, _rich_table(card["networks"], output, len(plan.seeds)))
    return FinalResult(
        rows=len(have),
        trained=trained,
        complete=bool(card["complete"]),
        seconds=time.perf_counter() - started,
        card=card,
    )


class _Progress:
    """A rich progress bar over the (network, seed) trainings."""

    def __init__(self, console: Any, total: int, *, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled or total == 0:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]finalize"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TextColumn("trainings {task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._bar.add_task("finalize", total=total, detail="")

    def advance(self, row: TableRow) -> None:
        if self._bar is not None:
            test = "-" if math.isnan(row.test) else f"{row.test:.3f}"
            detail = f"last: {row.nsc} seed {row.seed} {row.status} test {test}"
            self._bar.update(self._task, advance=1, detail=detail)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- results ---------------------------------------------------------------------------


def _card(
    plan: FinalPlan, estimator: PerformanceEstimator, dataset: DatasetHandler
) -> dict[str, Any]:
    return {
        "format": 1,
        "run": str(plan.run),
        "dataset": dataset.identity,
        "estimator": estimator.fingerprint(),
        "estimator_component": {"name": plan.estimator[0], "settings": _plain(plan.estimator[1])},
        "dataset_component": {"name": plan.dataset[0], "settings": _plain(plan.dataset[1])},
        "task": plan.task,
        "seeds": list(plan.seeds),
        "top_k": len(plan.networks),
        "test_split_examples": dataset.num_examples("test"),
    }


def _check_card(path: Path, card: dict[str, Any]) -> None:
    if not path.is_file():
        _write_json(path, {**card, "complete": False, "networks": []})
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable final.json ({exc}); remove it") from None
    for key in ("dataset", "estimator"):
        if previous.get(key) != card[key]:
            raise ConfigError(
                f"{path}: this folder holds results of {key} {previous.get(key)!r}, not "
                f"{card[key]!r}; set [finalize] output (--output) to another folder"
            )


def _mean_std(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _summaries(plan: FinalPlan, rows: Sequence[TableRow], output: Path) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, int], TableRow] = {}
    for row in rows:
        by_key[(row.arch_hash, row.seed)] = row  # the last row of a (network, seed) wins
    summaries = []
    for rank, record in enumerate(plan.networks, start=1):
        mine = [
            by_key[(record.arch_hash, s)] for s in plan.seeds if (record.arch_hash, s) in by_key
        ]
        ok = [row for row in mine if row.ok and row.curve]
        seeds = {}
        for row in mine:
            path = model_path(output, row.arch_hash, row.seed)
            seeds[str(row.seed)] = {
                "status": row.status,
                "validation": row.curve[-1] if row.ok and row.curve else None,
                "test": None if math.isnan(row.test) else row.test,
                "epochs": row.epochs,
                "seconds": round(row.seconds, 2),
                "model": str(path.relative_to(output)) if path.is_file() else None,
                "message": row.message,
            }
        summaries.append(
            {
                "rank": rank,
                "nsc": record.nsc,
                "arch_hash": record.arch_hash,
                "search_accuracy": record.evaluation.accuracy,
                "params": ok[0].params if ok else record.evaluation.params,
                "flops": ok[0].flops if ok else record.evaluation.flops,
                "validation": _mean_std([row.curve[-1] for row in ok]),
                "test": _mean_std([row.test for row in ok if not math.isnan(row.test)]),
                "trained": len(mine),
                "failed": len(mine) - len(ok),
                "seeds": seeds,
            }
        )
    return summaries


def _fmt(stat: dict[str, Any]) -> str:
    """``mean ± std`` over two or more seeds; the mean alone for one; ``-`` for none."""
    if stat["mean"] is None:
        return "-"
    if int(stat.get("n") or 0) < 2:
        return f"{stat['mean']:.4f}"  # one seed has no spread to show
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _seeds_cell(net: dict[str, Any], planned: int) -> str:
    """The seeds of a network that finished ok, of those planned, and why not the others.

    ``3/3``; ``1/3 (1 failed, 1 to train)``; ``0/3 (not trained yet)``.
    """
    trained = int(net["trained"])
    failed = int(net["failed"])
    ok = trained - failed
    missing = max(0, planned - trained)
    planned = max(planned, trained)
    if trained == 0:
        return f"0/{planned} (not trained yet)"
    notes = [f"{failed} failed"] if failed else []
    if missing:
        notes.append(f"{missing} to train")
    return f"{ok}/{planned}" + (f" ({', '.join(notes)})" if notes else "")


def _write_table(path: Path, networks: Sequence[dict[str, Any]]) -> None:
    columns = [
        "rank",
        "nsc",
        "arch_hash",
        "search_accuracy",
        "params",
        "flops",
        "val_mean",
        "val_std",
        "test_mean",
        "test_std",
        "seeds_ok",
        "failed",
    ]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for net in networks:
            writer.writerow(
                [
                    net["rank"],
                    net["nsc"],
                    net["arch_hash"],
                    f"{net['search_accuracy']:.6g}",
                    net["params"],
                    net["flops"],
                    *(
                        "" if net[part][stat] is None else f"{net[part][stat]:.6g}"
                        for part in ("validation", "test")
                        for stat in ("mean", "std")
                    ),
                    net["test"]["n"],
                    net["failed"],
                ]
            )
    tmp.replace(path)


def _rich_table(networks: Sequence[dict[str, Any]], output: Path, planned: int = 0) -> Any:
    """The table ``finalize`` prints; ``planned``: the seeds each network is to train.

    Nothing in it is cut: a cell too wide for a narrow terminal folds onto more lines
    (:func:`_print_table` prints it whole to a file or a pipe).
    """
    from rich.table import Table

    table = Table(title=f"Final training ({output})")
    for name in ("#", "nsc", "search", "validation", "test", "params", "flops", "seeds ok"):
        table.add_column(name, justify="left" if name == "nsc" else "right", overflow="fold")
    for net in networks:
        table.add_row(
            str(net["rank"]),
            net["nsc"] or "head only",
            f"{net['search_accuracy']:.4f}",
            _fmt(net["validation"]),
            _fmt(net["test"]),
            f"{net['params']:,}",
            f"{net['flops']:,}",
            _seeds_cell(net, planned or int(net["trained"])),
        )
    return table


def _print_table(console: Any, table: Any) -> None:
    """Print ``table``: folded to a terminal's width, at its full width anywhere else.

    A console that is no terminal (a file, a pipe, a CI log) is 80 columns to rich,
    too few for the table; there a line longer than 80 is better than a cut NSC.
    """
    from rich.measure import Measurement

    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    kept = console.__dict__.get("_width")  # print(width=) is capped at the console's width
    console.width = natural
    try:
        console.print(table)
    finally:
        console.__dict__["_width"] = kept


def _tick_label(net: dict[str, Any]) -> str:
    """``#1`` over the network's NSC, one layer (row) per line: the whole string."""
    rows = str(net["nsc"]).split(";") if net["nsc"] else ["head only"]
    return "\n".join([f"#{net['rank']}", *rows])


def _figure(networks: Sequence[dict[str, Any]]) -> Any:
    """The figure of ``final.png``: validation and test bars per network, named by NSC.

    Error bars only where two or more seeds give a spread; a network with no finished
    seed gets no bar but a note. The legend is outside the axes (to their right), so it
    never covers a bar; the layout makes room for the NSC labels.
    """
    from nasframe.results.plots import _pyplot

    plt = _pyplot()
    width = 0.38
    lines = max(len(_tick_label(net).splitlines()) for net in networks)
    fig, ax = plt.subplots(
        figsize=(max(5.0, 1.6 * len(networks) + 2.0), 3.0 + 0.16 * lines),
        layout="constrained",
    )
    spread = any(
        int(net[part]["n"] or 0) > 1 for net in networks for part in ("validation", "test")
    )
    for shift, part, colour in (
        (-width / 2, "validation", "#8da0cb"),
        (width / 2, "test", "#fc8d62"),
    ):
        xs = [i + shift for i in range(len(networks))]
        means = [math.nan if net[part]["mean"] is None else net[part]["mean"] for net in networks]
        ax.bar(xs, means, width, label=part, color=colour)
        spread_at = [i for i, net in enumerate(networks) if int(net[part]["n"] or 0) > 1]
        if spread_at:
            ax.errorbar(
                [xs[i] for i in spread_at],
                [means[i] for i in spread_at],
                yerr=[networks[i][part]["std"] for i in spread_at],
                fmt="none",
                ecolor="black",
                capsize=3,
                lw=1,
            )
    for i, net in enumerate(networks):
        if net["validation"]["mean"] is None and net["test"]["mean"] is None:
            ax.text(i, 0.02, "no seed\nfinished", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(networks)), [_tick_label(net) for net in networks], fontsize=8)
    ax.set_xlim(-0.6, len(networks) - 0.4)
    ax.set_xlabel("network: rank, then its NSC one layer per line", fontsize=8)
    ax.set_ylabel("accuracy (mean ± std over seeds)" if spread else "accuracy")
    ax.set_ylim(0, 1)
    fig.legend(loc="outside right upper")
    ax.set_title("final training: the run's best networks")
    return fig


def _plot(path: Path, networks: Sequence[dict[str, Any]]) -> None:
    from nasframe.results.plots import _pyplot

    plt = _pyplot()
    fig = _figure(networks)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, int | float | str | bool) or value is None else str(value)
        for key, value in sorted(settings.items())
    }
