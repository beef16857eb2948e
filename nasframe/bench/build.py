"""``nasframe bench build``: train every network of a space once per seed, resumably.

The build writes into one folder:

* ``build.json`` -- the build card: space, depth, seeds, the dataset's identity and
  settings, the estimator's fingerprint and settings, and (when done) the row count,
  build seconds and the table's sha256. A folder built for other components is refused.
* ``rows.csv`` -- one line per finished (network, seed), appended, flushed and
  fsync'ed: a ``kill -9`` loses at most the evaluations in flight, and the next run of
  the same command trains only what is missing.
* ``table.csv.gz`` -- the finished table, sorted and compressed, written once every
  (network, seed) is in ``rows.csv``.

Work is ordered seed by seed and, within a seed, by depth: a build stopped early leaves
complete shallower tables rather than a scattered sample.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasframe.bench.networks import enumerate_networks
from nasframe.bench.table import (
    BUILD_FILE,
    ROWS_FILE,
    TABLE_FILE,
    RowWriter,
    TableRow,
    resume_rows,
    sha256_of,
    write_rows,
)
from nasframe.contracts import PerformanceEstimator
from nasframe.distributed.components import ComponentSpec
from nasframe.distributed.rows import PoolSettings, RowPool, measure_row, measure_rows
from nasframe.errors import ConfigError
from nasframe.nsc import NSC

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

# measure_row lives in nasframe.distributed.rows (finalize shares it); kept importable here
__all__ = ["BuildPlan", "BuildResult", "build_table", "measure_row"]

log = logging.getLogger("nasframe.bench")

#: Keys of the build card that must match for a folder to be resumed.
_IDENTITY_KEYS = ("space", "depth", "dataset", "estimator")


@dataclass
class BuildPlan:
    """What a build trains, and where.

    Attributes:
        space: the search space's registered name.
        depth: the deepest network, in layers.
        seeds: the training seeds; every network is trained once per seed.
        repeat_seeds: more seeds, trained only for the best networks (by the mean
            last-epoch validation accuracy over ``seeds``), to measure seed noise where it
            matters (the top of the ranking) at a fraction of the cost.
        repeat_top: the fraction of networks (the best first) that ``repeat_seeds``
            trains; 0 trains none, 1 trains all.
        estimator: ``(name, settings)`` of the estimator.
        dataset: ``(name, settings)`` of the dataset.
        output: the table folder.
        ray: the ``[ray]`` settings of the workers (resources, retries), for
            ``workers`` > 1.
    """

    space: str
    depth: int
    seeds: Sequence[int]
    estimator: tuple[str, dict[str, Any]]
    dataset: tuple[str, dict[str, Any]]
    output: Path
    repeat_seeds: Sequence[int] = ()
    repeat_top: float = 0.0
    ray: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    """How a build ended.

    Attributes:
        networks: distinct networks of the space up to the depth.
        rows: (network, seed) rows stored, including those of earlier runs.
        trained: rows trained by this run.
        complete: whether every (network, seed) is stored (``table.csv.gz`` written).
        seconds: wall seconds of this run.
    """

    networks: int
    rows: int
    trained: int
    complete: bool
    seconds: float
    card: dict[str, Any] = field(default_factory=dict)


def build_table(
    plan: BuildPlan,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    plugin_manager: PluginManager | None = None,
    report: Callable[[str], None] | None = None,
    limit: int | None = None,
) -> BuildResult:
    """Build (or resume) the table of ``plan``.

    Args:
        plan: what to build.
        workers: parallel trainings; more than 1 runs them on Ray actors (``plan.ray``:
            one CPU each by default).
        ray_address: an existing Ray cluster (default: a new local instance).
        plugin_manager: the plugin manager (default: a fresh one).
        report: called with a one-line progress message now and then.
        limit: train at most this many rows in this run (tests, smoke runs).

    Raises:
        ConfigError: a component name or setting is wrong, the folder holds a table of
            other components, or the estimator cannot measure learning curves.
    """
    started = time.perf_counter()
    say = report or (lambda message: log.info("%s", message))
    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    seeds = sorted(set(plan.seeds))
    if not seeds:
        raise ConfigError("[bench] seeds is empty; give at least one seed, e.g. 0")
    repeat = sorted(set(plan.repeat_seeds) - set(seeds))
    if not 0.0 <= plan.repeat_top <= 1.0:
        raise ConfigError(f"[bench] repeat_top = {plan.repeat_top}: must be in [0, 1]")
    space = plugin_manager.search_spaces().create(plan.space)
    networks = enumerate_networks(space, plan.depth)
    # built as the workers build them: the composition path, with the plan's settings
    estimator = ComponentSpec("estimator", *plan.estimator).build(plugin_manager)
    dataset = ComponentSpec("dataset", *plan.dataset).build(plugin_manager)
    if type(estimator).measure is PerformanceEstimator.measure:
        raise ConfigError(
            f"estimator {estimator.name!r} cannot build a table: it does not record learning "
            "curves (implement PerformanceEstimator.measure)"
        )
    card: dict[str, Any] = {
        "format": 1,
        "space": getattr(space, "name", plan.space) or plan.space,
        "depth": plan.depth,
        "dataset": dataset.identity,
        "estimator": estimator.fingerprint(),
        "dataset_component": {"name": plan.dataset[0], "settings": _plain(plan.dataset[1])},
        "estimator_component": {
            "name": plan.estimator[0],
            "settings": _plain(plan.estimator[1]),
        },
        "input_shape": list(dataset.input_shape),
        "num_classes": dataset.num_classes,
        "seeds": seeds,
        "repeat_seeds": repeat,
        "repeat_top": plan.repeat_top if repeat else 0.0,
        "networks": len(networks),
    }
    output = plan.output
    output.mkdir(parents=True, exist_ok=True)
    card_path = output / BUILD_FILE
    previous = _read_card(card_path)
    if previous:
        for key in _IDENTITY_KEYS:
            if previous.get(key) != card[key]:
                raise ConfigError(
                    f"{card_path}: this folder holds a table of {key} {previous.get(key)!r}, "
                    f"not {card[key]!r}; choose another --output or remove the folder"
                )
    card["build_seconds"] = float(previous.get("build_seconds", 0.0)) if previous else 0.0
    # Convolutions round differently on another CPU (docs/estimator.md#determinism): the
    # card names every machine that stored rows, so a mixed table says it is mixed.
    machines = list(previous.get("machines", [])) if previous else []
    here = machine_description(workers)
    if here not in machines:
        machines.append(here)
    card["machines"] = machines
    _write_card(card_path, {**card, "complete": False})

    rows_path = output / ROWS_FILE
    done = resume_rows(rows_path)
    max_epochs = _max_epochs(estimator, done)
    by_hash = {nsc.canonical_hash: nsc for nsc in networks}
    trained = 0
    budget = [len(networks) * (len(seeds) + len(repeat)) if limit is None else max(0, limit)]

    def pending(wanted: list[tuple[str, int]], stored: list[TableRow]) -> list[tuple[NSC, int]]:
        have = {(row.arch_hash, row.seed) for row in stored}
        return [(by_hash[h], seed) for h, seed in wanted if (h, seed) not in have]

    def run(jobs: list[tuple[NSC, int]], phase: str) -> None:
        nonlocal trained
        jobs = jobs[: budget[0]]
        if not jobs:
            return
        say(f"{phase}: {len(jobs)} to train with {workers} worker(s); rows go to {rows_path}")
        phase_start, count = time.perf_counter(), 0
        with RowWriter(rows_path, max_epochs) as writer:
            for row in measure_rows(
                [(nsc, seed, None) for nsc, seed in jobs],
                estimator=estimator,
                dataset=dataset,
                pool=make_pool if workers > 1 else None,
            ):
                writer.write(row)
                trained += 1
                count += 1
                budget[0] -= 1
                if count % 10 == 0 or count == len(jobs):
                    rate = (time.perf_counter() - phase_start) / count
                    say(
                        f"[{count}/{len(jobs)}] {rate:.2f} s per network, about "
                        f"{(len(jobs) - count) * rate / 60:.1f} min left; last: "
                        f"{row.nsc or 'head only'} seed {row.seed} {row.status} "
                        f"{row.accuracy():.3f}"
                    )

    pool_settings = PoolSettings.from_section(plan.ray)

    def make_pool() -> RowPool:
        return RowPool(
            ComponentSpec("estimator", plan.estimator[0], plan.estimator[1]),
            ComponentSpec("dataset", plan.dataset[0], plan.dataset[1]),
            workers=workers,
            settings=pool_settings,
            ray_address=ray_address,
            what="bench",
        )

    primary = [(nsc.canonical_hash, seed) for seed in seeds for nsc in networks]
    say(
        f"{len(networks)} networks x seeds {seeds}"
        + (f", the top {plan.repeat_top:.0%} also x seeds {repeat}" if repeat else "")
        + f": {len(done)} rows stored"
    )
    wanted = list(primary)
    try:
        run(pending(primary, done), "every network")
        done = resume_rows(rows_path)
        if repeat and not pending(primary, done):
            top = _top_networks(networks, done, seeds, plan.repeat_top)
            card["repeat_networks"] = len(top)
            extra = [(h, seed) for seed in repeat for h in top]
            wanted += extra
            run(pending(extra, done), f"the top {len(top)} networks")
    finally:
        estimator.close()
        card["build_seconds"] = card["build_seconds"] + time.perf_counter() - started
        _write_card(card_path, {**card, "complete": False})
    rows = resume_rows(rows_path)
    have = {(row.arch_hash, row.seed) for row in rows}
    complete = not pending(primary, rows) and (not repeat or "repeat_networks" in card)
    complete = complete and not pending(wanted, rows)
    if complete:
        order = {nsc.canonical_hash: i for i, nsc in enumerate(networks)}
        keep = set(wanted)
        final = sorted(
            (row for row in rows if (row.arch_hash, row.seed) in keep),
            key=lambda row: (order[row.arch_hash], row.seed),
        )
        table_path = output / TABLE_FILE
        write_rows(table_path, final, _max_epochs(estimator, final))
        card.update(
            rows=len(final),
            sha256=sha256_of(table_path),
            size_bytes=table_path.stat().st_size,
            train_seconds=round(sum(row.seconds for row in final), 1),
        )
        _write_card(card_path, {**card, "complete": True})
        say(f"table complete: {len(final)} rows in {table_path}")
    return BuildResult(
        networks=len(networks),
        rows=len(have & set(wanted)),
        trained=trained,
        complete=complete,
        seconds=time.perf_counter() - started,
        card=card,
    )


def _top_networks(
    networks: Sequence[NSC], rows: Sequence[TableRow], seeds: Sequence[int], fraction: float
) -> list[str]:
    """The hashes of the best ``fraction`` of ``networks`` by mean accuracy over ``seeds``."""
    scores: dict[str, list[float]] = {}
    for row in rows:
        if row.seed in seeds:
            scores.setdefault(row.arch_hash, []).append(row.accuracy())
    hashes = [nsc.canonical_hash for nsc in networks]
    ranked = sorted(hashes, key=lambda h: -sum(scores.get(h, [0.0])) / len(scores.get(h, [0])))
    return ranked[: math.ceil(len(ranked) * fraction)]


def _max_epochs(estimator: PerformanceEstimator, rows: Sequence[TableRow]) -> int:
    """The curve length of the table: the longest stored, or the estimator's ``epochs``."""
    if rows:
        return max(len(row.curve) for row in rows)
    settings = getattr(estimator, "settings", None)
    hint = getattr(estimator, "epochs", None) or getattr(settings, "epochs", 0)
    return int(hint) if isinstance(hint, int) else 0


def machine_description(workers: int) -> dict[str, Any]:
    """What the build card records of the machine a build runs on.

    The CPU model (``/proc/cpuinfo`` on Linux, else ``platform.processor()``), its
    logical CPUs, the OS and Python, and the threads each training gets (one on Ray
    workers, the process's default in-process).
    """
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip() or cpu
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count() or 0,
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "threads_per_training": "1" if workers > 1 else "default",
    }


def _read_card(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable build card ({exc}); remove it") from None
    if not isinstance(card, dict):
        raise ConfigError(f"{path}: not a build card (expected a JSON object)")
    return card


def _write_card(path: Path, card: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, int | float | str | bool) or value is None else str(value)
        for key, value in sorted(settings.items())
    }
