"""Planning a final training: the run's configuration, its best networks, the estimator.

:func:`plan_finalize` reads a search's output folder (``run.json``, ``steps.csv``, its
experiment database), picks the ``[finalize] top_k`` best networks and the final-training
components (:func:`final_settings`), and returns a :class:`FinalPlan`; the files of the
results folder are named here (:func:`model_path`). Training is
:mod:`nasframe.finalize.train`, the results :mod:`nasframe.finalize.report`.
"""

from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.config import Config, load_config
from nasframe.contracts import ExperimentDB, PerformanceEstimator, Record
from nasframe.errors import ConfigError, NasframeError, RegistryError
from nasframe.nsc import NSC

__all__ = [
    "CARD",
    "MODELS",
    "PLOT",
    "ROWS",
    "SEARCH_ONLY_ESTIMATORS",
    "TABLE",
    "FinalPlan",
    "check_trainer",
    "final_settings",
    "load_run_config",
    "model_path",
    "parse_seeds",
    "plan_finalize",
    "read_run_file",
    "run_database_path",
    "top_networks",
]

#: The files of the results folder (``[finalize] output``).
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


# -- the results folder -----------------------------------------------------------------


def model_path(output: Path, arch_hash: str, seed: int) -> Path:
    """The ``.keras`` file of one trained (network, seed)."""
    return output / MODELS / f"{arch_hash[:16]}-seed{seed}.keras"
