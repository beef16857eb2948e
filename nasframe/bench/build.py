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

A *sampled* build (``BuildPlan.sample.size > 0``, ``[bench] sample``) trains a sample of
the space instead (:mod:`nasframe.bench.sampling`): first the networks of random
episodes, every depth equally often, then the networks search agents visit on the live
estimator; then the repeat seeds, for the best or a random fraction of the sample
(``repeat_pick``). It resumes the same way.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasframe.bench.networks import enumerate_networks
from nasframe.bench.sampling import (
    LiveRows,
    SampleSettings,
    agent_networks,
    random_networks,
    repeat_networks,
)
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
_IDENTITY_KEYS = ("space", "depth", "dataset", "estimator", "sampling")


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
        sample: a sampled build's draw (``size`` 0: every network, exhaustive).
        repeat_pick: which networks ``repeat_seeds`` trains: ``top`` (the best) or
            ``random`` (a seeded random fraction: seed noise over the whole range).
        evaluate: ``[env] evaluate`` of the sampling agents' environment.
        config: the configuration whose agent sections the sampling agents read
            (``None``: their defaults).
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
    sample: SampleSettings = field(default_factory=SampleSettings)
    repeat_pick: str = "top"
    evaluate: str = "every_step"
    config: Any = None


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
    sampled = plan.sample.size > 0
    # built as the workers build them: the composition path, with the plan's settings
    estimator = ComponentSpec("estimator", *plan.estimator).build(plugin_manager)
    dataset = ComponentSpec("dataset", *plan.dataset).build(plugin_manager)
    if sampled:
        if plan.depth < 1 or plan.depth > space.max_depth:
            enumerate_networks(space, plan.depth)  # raises the depth's one-line error
        networks = random_networks(
            space,
            plan.depth,
            plan.sample.random,
            plan.sample.seed,
            accept=lambda nsc: estimator.why_invalid(nsc, dataset) is None,
        )
    else:
        networks = enumerate_networks(space, plan.depth)
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
    if sampled:
        card["sampling"] = {"mode": "sampled", "seed": plan.sample.seed}
        card["sample"] = {**plan.sample.card(), "random": len(networks)}
        card["repeat_pick"] = plan.repeat_pick
    output = plan.output
    output.mkdir(parents=True, exist_ok=True)
    card_path = output / BUILD_FILE
    previous = _read_card(card_path)
    if previous:
        for key in _IDENTITY_KEYS:
            if previous.get(key) != card.get(key):
                raise ConfigError(
                    f"{card_path}: this folder holds a table of {key} {previous.get(key)!r}, "
                    f"not {card.get(key)!r}; choose another --output or remove the folder"
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
    # rows this run may still train (a sampled build's agents spend it too)
    budget = [sys.maxsize if limit is None else max(0, limit)]

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
    picked = "a random" if plan.repeat_pick == "random" else "the top"
    say(
        (
            f"a sample of {len(networks)} random-episode networks"
            + (
                f" and {plan.sample.per_agent} from each of {', '.join(plan.sample.agents)}"
                if plan.sample.per_agent
                else ""
            )
            if sampled
            else f"{len(networks)} networks"
        )
        + f" x seeds {seeds}"
        + (f", {picked} {plan.repeat_top:.0%} also x seeds {repeat}" if repeat else "")
        + f": {len(done)} rows stored"
    )
    wanted = list(primary)
    agents_done = not sampled or plan.sample.per_agent == 0
    try:
        run(pending(primary, done), "random episodes" if sampled else "every network")
        done = resume_rows(rows_path)
        if not agents_done and not pending(primary, done):
            found, agents_done = _sample_agents(
                plan,
                space,
                estimator,
                dataset,
                done,
                rows_path,
                max_epochs,
                budget,
                seeds[0],
                plugin_manager,
                say,
            )
            trained += sum(count for _, count in found.values())
            card["sample"]["agent_networks"] = {
                name: len(nets) for name, (nets, _) in found.items()
            }
            for nets, _ in found.values():
                for arch_hash, nsc in nets.items():
                    if arch_hash not in by_hash:
                        by_hash[arch_hash] = nsc
                        networks.append(nsc)
            card["networks"] = len(networks)
            primary = [(nsc.canonical_hash, seed) for seed in seeds for nsc in networks]
            wanted = list(primary)
            done = resume_rows(rows_path)
            run(pending(primary, done), "the agents' networks, every seed")
            done = resume_rows(rows_path)
        if repeat and agents_done and not pending(primary, done):
            top = repeat_networks(
                [nsc.canonical_hash for nsc in networks],
                _mean_scores(done, seeds),
                plan.repeat_top,
                plan.repeat_pick,
                plan.sample.seed,
            )
            card["repeat_networks"] = len(top)
            extra = [(h, seed) for seed in repeat for h in top]
            wanted += extra
            run(pending(extra, done), f"{picked} {len(top)} networks")
    finally:
        estimator.close()
        card["build_seconds"] = card["build_seconds"] + time.perf_counter() - started
        _write_card(card_path, {**card, "complete": False})
    rows = resume_rows(rows_path)
    have = {(row.arch_hash, row.seed) for row in rows}
    complete = agents_done and not pending(primary, rows)
    complete = complete and (not repeat or "repeat_networks" in card)
    complete = complete and not pending(wanted, rows)
    if complete:
        order = {nsc.canonical_hash: i for i, nsc in enumerate(sorted(networks, key=len))}
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


def _mean_scores(rows: Sequence[TableRow], seeds: Sequence[int]) -> dict[str, float]:
    """Per network (canonical hash): its mean last-epoch accuracy over ``seeds``."""
    scores: dict[str, list[float]] = {}
    for row in rows:
        if row.seed in seeds:
            scores.setdefault(row.arch_hash, []).append(row.accuracy())
    return {arch_hash: sum(values) / len(values) for arch_hash, values in scores.items()}


def _sample_agents(
    plan: BuildPlan,
    space: Any,
    estimator: PerformanceEstimator,
    dataset: Any,
    done: Sequence[TableRow],
    rows_path: Path,
    max_epochs: int,
    budget: list[int],
    seed: int,
    plugin_manager: PluginManager,
    say: Callable[[str], None],
) -> tuple[dict[str, tuple[dict[str, NSC], int]], bool]:
    """Run each sampling agent on the live estimator (replaying what is stored).

    Returns, per agent, the networks it visited and the rows it trained, and whether
    every agent finished (its share visited, or its step cap reached) within the budget.
    """
    stored = {row.arch_hash: row for row in done if row.seed == seed}
    found: dict[str, tuple[dict[str, NSC], int]] = {}
    finished = True
    with RowWriter(rows_path, max_epochs) as writer:
        for name in plan.sample.agents:
            live = LiveRows(estimator, dataset, stored, writer, seed, budget)
            say(
                f"{name}: searching until it has visited {plan.sample.per_agent} networks "
                f"(stored ones are replayed, not trained); rows go to {rows_path}"
            )
            nets = agent_networks(
                name,
                live,
                space=space,
                depth=plan.depth,
                count=plan.sample.per_agent,
                seed=plan.sample.seed,
                step_factor=plan.sample.step_factor,
                evaluate=plan.evaluate,
                config=plan.config,
                plugin_manager=plugin_manager,
            )
            found[name] = (nets, live.trained)
            say(f"{name}: {len(nets)} networks visited, {live.trained} trained in this run")
            if len(nets) < plan.sample.per_agent and budget[0] <= 0:
                finished = False
                break
    return found, finished


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
