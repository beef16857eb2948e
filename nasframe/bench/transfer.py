"""``nasframe bench transfer``: leave-one-task-out meta-transfer on benchmark tables.

Every task has its own table (one ``nasframe bench build`` per task, the same space and
depth). For each *held-out* task in turn:

1. **Meta-training.** Every meta-trained agent (``meta-<agent>``: ``meta-reinforce``,
   ``meta-ppo``, ``meta-recurrent-ppo``, ...) learns for ``meta_episodes`` NAS episodes
   on the *other* tasks' tables (table lookups, nothing trained), one policy per meta
   seed ``0 .. meta_seeds - 1``. The environment holds one table environment per
   training task and switches between them at episode starts (at trial starts for
   ``recurrent-ppo``, which meta-trains over the trial wrapper, RL² style): tasks come
   in shuffled rounds, so each gets the same share of the episodes. The held-out
   task's table is never built into that environment (``tests/test_bench_transfer.py``
   checks that none of its rows is queried before the test phase).
2. **The test phase.** Every agent then searches the held-out task's table for
   ``budget`` trainings, once per seed ``first_seed .. first_seed + seeds - 1``, as
   ``bench run`` runs it (fresh environment, in-memory cache, the same step cap).
   A meta-trained agent starts from the policy of meta seed ``seed % meta_seeds``:
   ``meta-recurrent-ppo`` keeps its weights frozen and adapts through its memory
   within each trial of ``trial_episodes`` NAS episodes (RL²'s test); every other
   meta-trained agent keeps learning from where meta-training left it (a warm start).
   Agents without the prefix run from scratch, exactly as in ``bench run``.
3. **Two transfer baselines**: ``best-first`` trains the other tasks' best networks
   first (each other task's top ``transfer_top`` by seed-mean validation accuracy,
   interleaved by rank: every task's best, then every task's second, ...), then
   searches at random; ``rea-warm`` is regularized evolution whose first proposals are
   that list (its first population).

The figures are ``bench run``'s (:mod:`nasframe.bench.compare`), per held-out task:
regret (the held-out table's best seed-mean test accuracy minus the incumbent's, the
incumbent chosen by the validation accuracy the agent saw) after 5, 10, 25 and 50
trainings with a 95 % interval, trainings to the task's top 1 %, a one-sided
Mann-Whitney U test of each agent's mean regret over the budget against random
search's (Holm-adjusted over the agents of that task), and of each meta-trained agent
against the same agent from scratch (Holm-adjusted over those pairs). With an output
folder every finished run and every meta-trained policy is stored as it finishes, and
a stopped transfer resumes with what is missing. ``docs/bench-transfer.md`` has it all.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from nasframe.bench import compare
from nasframe.bench.compare import (
    RUNS_FILE,
    SETTINGS_FILE,
    AgentSummary,
    CompareSettings,
    ComparisonInterrupted,
    RunTrace,
    interval,
)
from nasframe.bench.table import (
    ROWS_FILE,
    SHIPPED_FOLDER,
    SHIPPED_TASK_SETS,
    TABLE_FILE,
    BenchTable,
)
from nasframe.env import EVALUATE
from nasframe.errors import ConfigError, NasframeError
from nasframe.runlock import move_aside

__all__ = [
    "BASELINES",
    "CHECKPOINTS",
    "META_PREFIX",
    "MetaRecord",
    "Task",
    "Transfer",
    "TransferSettings",
    "TransferSummary",
    "run_transfer",
    "summary_header",
    "summary_rows",
    "task_tables",
    "write_results",
]

#: A meta-trained agent's name: this prefix and the agent's (``meta-ppo``).
META_PREFIX = "meta-"

#: The transfer baselines: not registered agents, built here.
BEST_FIRST = "best-first"
REA_WARM = "rea-warm"
BASELINES = (BEST_FIRST, REA_WARM)

#: The agents that can be meta-trained: learners (random search, rea and tpe are not;
#: ``rea-warm`` is regularized evolution's transfer).
LEARNERS = ("reinforce", "qlearning", "ppo", "a2c", "dqn", "recurrent-ppo", "maskable-ppo")

#: Meta-trained agents with a memory: meta-trained over the trial wrapper, frozen in the
#: test phase (RL²: the weights are the prior, the memory adapts within a trial).
MEMORY = ("recurrent-ppo",)

#: The meta-trained agents of the default comparison.
DEFAULT_META = ("meta-reinforce", "meta-ppo", "meta-recurrent-ppo")

#: The trainings at which mean regret is reported (those within the budget).
CHECKPOINTS = (5, 10, 25, 50)

#: The meta-trained policies in the output folder: ``policies/<task>/<agent>-<m>/``.
POLICIES = "policies"

#: The files of a transfer in its output folder (and ``regret_<task>.png``).
RESULT_FILES = (
    SETTINGS_FILE,
    RUNS_FILE,
    POLICIES,
    "summary.csv",
    "regret_trainings.csv",
    "runs.csv",
    "meta.csv",
)

#: Settings that never change a result: a transfer resumes whatever they are.
_NOT_IDENTITY = ("jobs", "tables")

_COMMAND = "bench transfer"


@dataclass
class TransferSettings:
    """What ``bench transfer`` compares.

    Attributes:
        tables: one table folder per task (the task is named by its folder), or a
            folder holding one such folder per task; at least 2 tasks.
        held_out: the tasks held out, each in turn (empty: every task).
        agents: agent names: registered agents (from scratch), ``meta-<agent>`` for a
            meta-trained learner, ``best-first`` and ``rea-warm``; empty: every
            available agent from scratch, ``meta-reinforce``, ``meta-ppo``,
            ``meta-recurrent-ppo`` and both baselines.
        seeds: test runs per agent and held-out task (seeds ``first_seed ..``).
        first_seed: the first test seed (default 20: seeds 20-119, which no agent's
            settings were tuned on; ``bench run`` reports on them too).
        budget: trainings (distinct networks) per test run.
        meta_episodes: NAS episodes of each meta-training (one agent, one held-out
            task, one meta seed), spread evenly over the other tasks.
        meta_seeds: meta-trained policies per agent and held-out task; test seed ``s``
            starts from policy ``s % meta_seeds``.
        trial_episodes: NAS episodes per trial of ``recurrent-ppo`` (meta-training and
            test).
        transfer_top: the best networks taken from each other task for ``best-first``
            and ``rea-warm``.
        epochs: the fidelity (0: each table's last epoch).
        table_seed: ``table-v1``'s ``seed`` (a seed, ``mean`` or ``random``).
        step_factor: a test run stops after ``step_factor * budget`` steps.
        evaluate: ``every_step`` or ``episode_end`` (``[env] evaluate``).
        jobs: meta-trainings and runs in parallel (forked processes).
    """

    tables: Sequence[Path] = ()
    held_out: Sequence[str] = ()
    agents: Sequence[str] = ()
    seeds: int = 100
    first_seed: int = 20
    budget: int = 50
    meta_episodes: int = 1000
    meta_seeds: int = 5
    trial_episodes: int = 10
    transfer_top: int = 4
    epochs: int = 0
    table_seed: str = "random"
    step_factor: int = 10
    evaluate: str = "every_step"
    jobs: int = 1


@dataclass
class Task:
    """One task: its table, read by ``table-v1``, and the figures regret needs.

    Attributes:
        name: the task's name (its table folder's name).
        path: the table folder.
        context: what ``bench run``'s runs need (estimator, space, dataset, ...).
        tests: seed-mean test accuracy of every network.
        vals: seed-mean validation accuracy at the fidelity.
        best_test: the largest of ``tests``.
        best_val: the largest of ``vals``.
        threshold: the smallest test accuracy of the top 1 %.
        checksum: the table's checksum (as ``bench run`` records it).
    """

    name: str
    path: Path
    context: Any
    tests: dict[str, float]
    vals: dict[str, float]
    best_test: float
    best_val: float
    threshold: float
    checksum: str

    @property
    def table(self) -> BenchTable:
        table: BenchTable = self.context.estimator.bench
        return table


@dataclass
class TransferSummary(AgentSummary):
    """An agent's figures on one held-out task (:class:`AgentSummary` and more).

    Attributes:
        task: the held-out task.
        p_scratch: a meta-trained agent's one-sided Mann-Whitney U p-value against the
            same agent from scratch (``None``: not meta-trained, or no such agent run).
        p_scratch_holm: ``p_scratch`` Holm-adjusted over the meta-trained agents of the
            task.
    """

    task: str = ""
    p_scratch: float | None = None
    p_scratch_holm: float | None = None

    @property
    def beats_scratch(self) -> bool | None:
        """Whether meta-training lowered the agent's regret, at a family-wise 5 %."""
        return None if self.p_scratch_holm is None else self.p_scratch_holm < 0.05


@dataclass
class MetaRecord:
    """One meta-training: what it cost and where its episodes went.

    Attributes:
        agent: the meta-trained agent (``meta-ppo``).
        task: the held-out task (never seen).
        meta_seed: the policy's seed.
        episodes: NAS episodes per training task.
        steps: environment steps.
        wall: wall seconds.
        cpu: CPU seconds.
    """

    agent: str
    task: str
    meta_seed: int
    episodes: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    wall: float = 0.0
    cpu: float = 0.0


@dataclass
class Transfer:
    """The result of :func:`run_transfer`.

    Attributes:
        settings: what was compared.
        tasks: every task, in the order of the tables.
        held_out: the held-out tasks, in order.
        agents: the agents, in order.
        summaries: per held-out task, one per agent (task by task).
        traces: every test run: ``(held-out task, trace)``.
        meta: every meta-training the test runs started from.
        transfer_lists: per held-out task, the hashes ``best-first`` and ``rea-warm``
            start with (the other tasks' best, interleaved by rank).
        skipped: agents not run, with the reason (a missing extra).
        agent_settings: per base agent, its registered name and settings.
        resumed: test runs read back from the output folder instead of run.
    """

    settings: TransferSettings
    tasks: list[Task]
    held_out: list[str]
    agents: list[str]
    summaries: list[TransferSummary] = field(default_factory=list)
    traces: list[tuple[str, RunTrace]] = field(default_factory=list)
    meta: list[MetaRecord] = field(default_factory=list)
    transfer_lists: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    agent_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    resumed: int = 0

    def task(self, name: str) -> Task:
        """The task called ``name``."""
        return next(task for task in self.tasks if task.name == name)


# -- the tables ------------------------------------------------------------------------------


def _holds_table(folder: Path) -> bool:
    return (folder / TABLE_FILE).is_file() or (folder / ROWS_FILE).is_file()


def task_tables(paths: Sequence[Path | str]) -> list[tuple[str, Path]]:
    """``(task name, table folder)`` of every task of ``paths``.

    Each path is a table folder (named after its task) or a folder of such folders
    (every sub-folder holding a table, in name order), or the name of a task set that
    ships with nasframe (:data:`~nasframe.bench.table.SHIPPED_TASK_SETS`:
    ``digit-tasks``) where no such path exists.

    Raises:
        ConfigError: a path does not exist or holds no table, two tasks have one name,
            or there are fewer than 2 tasks; the message names ``--tables``.
    """
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists() and str(raw) in SHIPPED_TASK_SETS:
            path = SHIPPED_FOLDER / str(raw)
        if not path.exists():
            shipped = ", ".join(SHIPPED_TASK_SETS)
            raise ConfigError(
                f"--tables: no such table folder: {path} (shipped task sets: {shipped})"
            )
        if path.is_file():
            folders.append(path.parent)
        elif _holds_table(path):
            folders.append(path)
        else:
            inner = sorted(p for p in path.iterdir() if p.is_dir() and _holds_table(p))
            if not inner:
                raise ConfigError(
                    f"--tables: {path} holds no table ({TABLE_FILE} or {ROWS_FILE}) and no "
                    "folder with one"
                )
            folders.extend(inner)
    named: dict[str, Path] = {}
    for folder in folders:
        name = folder.resolve().name
        if name in named:
            raise ConfigError(
                f"--tables: two tables are named {name!r} ({named[name]} and {folder}); a "
                "task is named by its table's folder, so give each task its own name"
            )
        if "," in name:
            raise ConfigError(f"--tables: task name {name!r} (a folder name) holds a comma")
        named[name] = folder
    if len(named) < 2:
        raise ConfigError(
            f"--tables: {len(named)} table given; leave-one-task-out needs at least 2 "
            "tasks (3 or more to meta-train on several), one table folder each"
        )
    return list(named.items())


def _check_settings(settings: TransferSettings) -> None:
    numbers = {
        "--seeds": (settings.seeds, 1),
        "--budget": (settings.budget, 1),
        "--meta-episodes": (settings.meta_episodes, 1),
        "--meta-seeds": (settings.meta_seeds, 1),
        "--trial-episodes": (settings.trial_episodes, 1),
        "--transfer-top": (settings.transfer_top, 1),
        "--step-factor": (settings.step_factor, 1),
        "--jobs": (settings.jobs, 1),
        "--first-seed": (settings.first_seed, 0),
        "--epochs": (settings.epochs, 0),
    }
    for option, (value, least) in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{_COMMAND}: {option} {value!r}: must be an integer >= {least}")
    if settings.evaluate not in EVALUATE:
        raise ConfigError(
            f"{_COMMAND}: evaluate = {settings.evaluate!r}: must be one of {', '.join(EVALUATE)}"
        )


def _load_tasks(
    settings: TransferSettings, plugin_manager: Any, config: Any
) -> tuple[list[Task], Any, Any, int]:
    """Every task's table and context; the shared space, encoder and depth."""
    tasks: list[Task] = []
    shared: tuple[Any, Any, int, str] | None = None
    first = ""
    for name, path in task_tables(settings.tables):
        try:
            estimator = plugin_manager.estimators().create(
                "table",
                table=str(path),
                epochs=settings.epochs,
                seed=settings.table_seed,
                simulated_cost=True,
            )
        except ConfigError as exc:
            raise ConfigError(f"--tables: task {name!r}: {exc}") from None
        table: BenchTable = estimator.bench
        space, encoder, dataset, depth = compare._components(
            table, estimator.source, plugin_manager
        )
        label = f"search space {table.build.get('space')!r}, depth {depth}"
        if shared is None:
            shared, first = (space, encoder, depth, label), name
        elif label != shared[3]:
            raise ConfigError(
                f"--tables: task {name!r} ({path}) was built for {label}, task {first!r} for "
                f"{shared[3]}: every task's table must have the same space and depth"
            )
        space, encoder, depth = shared[0], shared[1], shared[2]
        compare_settings = _compare_settings(settings, path)
        context = compare._Context(
            compare_settings, estimator, space, encoder, dataset, depth, config, plugin_manager
        )
        tests = table.mean_tests()
        vals = table.mean_accuracies(epochs=estimator.epochs)
        ranked = sorted(tests.values(), reverse=True)
        threshold = ranked[max(1, math.ceil(0.01 * len(ranked))) - 1]
        checksum = compare._table_checksum(table)
        twin = next((task for task in tasks if task.checksum == checksum), None)
        if twin is not None:
            raise ConfigError(
                f"--tables: tasks {twin.name!r} and {name!r} are the same table "
                f"({twin.path} and {path} have one checksum); give each task its own table"
            )
        tasks.append(
            Task(
                name,
                path,
                context,
                tests,
                vals,
                max(tests.values()),
                max(vals.values()),
                threshold,
                checksum,
            )
        )
    assert shared is not None
    return tasks, shared[0], shared[1], shared[2]


def _compare_settings(settings: TransferSettings, table: Path) -> CompareSettings:
    """The ``bench run`` settings of one held-out task's test runs."""
    return CompareSettings(
        table=table,
        seeds=settings.seeds,
        budget=settings.budget,
        epochs=settings.epochs,
        table_seed=settings.table_seed,
        step_factor=settings.step_factor,
        jobs=settings.jobs,
        evaluate=settings.evaluate,
        first_seed=settings.first_seed,
    )


# -- the agents ------------------------------------------------------------------------------


def base_agent(name: str) -> str:
    """The registered agent behind a transfer agent's name (``meta-ppo`` -> ``ppo``)."""
    if name == BEST_FIRST:
        return "random"
    if name == REA_WARM:
        return "rea"
    return name[len(META_PREFIX) :] if name.startswith(META_PREFIX) else name


def _resolve_agents(names: Sequence[str], plugin_manager: Any) -> tuple[list[str], dict[str, str]]:
    """The agents to run, by their transfer names, and those skipped (a missing extra)."""
    registry = plugin_manager.agents()
    if not names:
        scratch, skipped = compare._agents((), plugin_manager, _COMMAND)
        out = list(scratch)
        for name in (*DEFAULT_META, *BASELINES):
            info = registry.get(base_agent(name))
            if info.available:
                out.append(name)
            else:
                skipped[name] = info.install_hint()
        return out, skipped
    out = []
    for raw in names:
        name = raw.strip()
        base = base_agent(name)
        if name.startswith(META_PREFIX) and base not in LEARNERS:
            hint = " (rea-warm is regularized evolution's transfer)" if base == "rea" else ""
            raise ConfigError(
                f"--agents: {name!r}: only a learner can be meta-trained "
                f"({', '.join(LEARNERS)}){hint}"
            )
        try:
            info = registry.get(base)
        except NasframeError as exc:
            raise ConfigError(
                f"--agents: {name!r}: {exc}; or meta-<agent>, {BEST_FIRST}, {REA_WARM}"
            ) from None
        if not info.available:
            raise ConfigError(
                f"--agents: {name!r} needs {', '.join(info.missing)}; run: {info.install_hint()}"
            )
        label = name if name in BASELINES or name.startswith(META_PREFIX) else info.base_name
        if name.startswith(META_PREFIX):
            label = META_PREFIX + info.base_name
        if label in out:
            raise ConfigError(f"--agents: {label!r} is named twice")
        out.append(label)
    return out, {}


# -- meta-training ---------------------------------------------------------------------------


class _TaskEnvs(gymnasium.Env[Any, Any]):
    """One table environment per training task; ``reset(options={"task": t})`` switches.

    A reset without a task keeps the current one (a trial's later NAS episodes). What
    the agents read of a NAS environment (``max_steps``, ``search_space``,
    ``action_masks``, ``last_cache_hit``) is the current task's.
    """

    def __init__(self, envs: dict[str, Any]) -> None:
        self.envs = envs
        self.task = next(iter(envs))
        first = envs[self.task]
        self.action_space = first.action_space
        self.observation_space = first.observation_space
        self.episodes = dict.fromkeys(envs, 0)
        self.steps = 0

    @property
    def current(self) -> Any:
        return self.envs[self.task]

    @property
    def max_steps(self) -> int:
        return int(self.current.max_steps)

    @property
    def search_space(self) -> Any:
        return self.current.search_space

    @property
    def last_cache_hit(self) -> bool:
        return bool(self.current.last_cache_hit)

    @property
    def total_episodes(self) -> int:
        return sum(self.episodes.values())

    def action_masks(self) -> np.ndarray:
        return np.asarray(self.current.action_masks())

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        options = dict(options or {})
        task = options.pop("task", None)
        if task is not None:
            if task not in self.envs:  # never: the task draw names training tasks only
                raise NasframeError(f"meta-training: {task!r} is not a training task")
            self.task = str(task)
        obs, info = self.current.reset(seed=seed, options=options or None)
        return obs, {**info, "task": self.task}

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.current.step(action)
        self.steps += 1
        if terminated or truncated:
            self.episodes[self.task] += 1
        return obs, reward, terminated, truncated, {**info, "task": self.task}

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


class _TaskDraw(gymnasium.Wrapper[Any, Any, Any, Any]):
    """At every reset, the next training task: shuffled rounds of all of them.

    Over a trial wrapper a reset starts a trial, so the task changes between trials only.
    """

    def __init__(self, env: gymnasium.Env[Any, Any], tasks: Sequence[str], seed: int) -> None:
        super().__init__(env)
        self.tasks = list(tasks)
        self.rng = np.random.default_rng(seed)
        self.queue: list[str] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if not self.queue:
            self.queue = [self.tasks[i] for i in self.rng.permutation(len(self.tasks))]
        options = {**(options or {}), "task": self.queue.pop(0)}
        return self.env.reset(seed=seed, options=options)


def _trial(episodes: int) -> Callable[[gymnasium.Env[Any, Any]], gymnasium.Env[Any, Any]]:
    from nasframe.env.wrappers import MetaRLObservation, TrialWrapper

    return lambda env: MetaRLObservation(TrialWrapper(env, episodes=episodes))


@dataclass
class _State:
    """What the workers inherit: the tasks, the settings, the policies' folder."""

    settings: TransferSettings
    tasks: dict[str, Task]
    policies: Path
    sequences: dict[str, list[list[int]]]
    config: Any
    plugin_manager: Any


def _policy_folder(policies: Path, task: str, agent: str, meta_seed: int) -> Path:
    return policies / task / f"{agent}-{meta_seed}"


def _read_meta(folder: Path) -> MetaRecord | None:
    try:
        row = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return MetaRecord(
            agent=str(row["agent"]),
            task=str(row["task"]),
            meta_seed=int(row["meta_seed"]),
            episodes={str(k): int(v) for k, v in row["episodes"].items()},
            steps=int(row["steps"]),
            wall=float(row["wall"]),
            cpu=float(row["cpu"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _policy_file(folder: Path) -> Path:
    found = sorted(folder.glob("policy.*"))
    if not found:
        raise NasframeError(f"{folder}: no meta-trained policy there; pass --force to start over")
    return next((p for p in found if not p.name.endswith(".replay.pkl")), found[0])


def _meta_train(state: _State, job: tuple[str, str, int]) -> MetaRecord:
    """Meta-train ``agent`` on every task but ``held_out``; store its policy."""
    from nasframe.agents import make_agent

    agent_name, held_out, meta_seed = job
    settings = state.settings
    base = base_agent(agent_name)
    compare._one_thread_torch(base, state.plugin_manager)
    started, cpu = time.perf_counter(), time.process_time()
    training = [name for name in state.tasks if name != held_out]
    envs = {name: compare.table_env(state.tasks[name].context, meta_seed) for name in training}
    tasks = _TaskEnvs(envs)
    env: gymnasium.Env[Any, Any]
    if base in MEMORY:
        from nasframe.env.wrappers import MetaRLObservation, TrialWrapper

        inner = TrialWrapper(tasks, episodes=settings.trial_episodes)
        env = MetaRLObservation(_TaskDraw(inner, training, meta_seed))
    else:
        env = _TaskDraw(tasks, training, meta_seed)
    agent = make_agent(
        base, env, seed=meta_seed, config=state.config, plugin_manager=state.plugin_manager
    )
    depth = max(1, int(next(iter(state.tasks.values())).context.depth))
    episodes = settings.meta_episodes
    final = _policy_folder(state.policies, held_out, agent_name, meta_seed)
    staging = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    try:
        agent.learn(episodes * depth, lambda: tasks.total_episodes < episodes)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        agent.save(staging / f"policy{agent.checkpoint_suffix}")
    finally:
        agent.close()
    record = MetaRecord(
        agent_name,
        held_out,
        meta_seed,
        dict(tasks.episodes),
        tasks.steps,
        time.perf_counter() - started,
        time.process_time() - cpu,
    )
    (staging / "meta.json").write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)  # atomic: a policy folder is whole or absent
    return record


# -- the test phase ----------------------------------------------------------------------------


class _BestFirst:
    """``best-first``: play the transfer list's networks first, then random search.

    Each network is one episode from ``reset`` (its actions, ending with the terminal
    action); then the random agent searches as ``random`` does with the same seed.
    """

    def __init__(self, env: gymnasium.Env[Any, Any], random: Any, sequences: list[list[int]]):
        self.env = env
        self.random = random
        self.queue = [list(actions) for actions in sequences]
        self.seed = random.seed

    def learn(self, total_steps: int, callback: Callable[[], bool] | None = None) -> int:
        taken = 0
        while self.queue and taken < total_steps:
            actions = self.queue.pop(0)
            self.env.reset(seed=self.seed)
            for action in actions:
                _, _, terminated, truncated, _ = self.env.step(action)
                taken += 1
                if callback is not None and not callback():
                    return taken
                if terminated or truncated or taken >= total_steps:
                    break
        if taken >= total_steps:
            return taken
        return taken + int(self.random.learn(total_steps - taken, callback))

    def close(self) -> None:
        self.random.close()


def _warm_start(agent: Any, path: Path, seed: int) -> None:
    """Start ``agent`` (built with ``seed``) from the meta-trained policy at ``path``.

    A black-box learner (``reinforce``, ``qlearning``: a JSON checkpoint) takes the
    optimizer's state (its policy) and keeps its own generator, seeded with ``seed``; a
    Stable-Baselines3 learner loads the whole model and is seeded again with ``seed``
    (its draws, its environment's first reset).
    """
    restore = getattr(agent, "restore", None)
    if path.suffix == ".json" and callable(restore):
        try:
            restore(json.loads(path.read_text(encoding="utf-8"))["state"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NasframeError(f"{path}: cannot read the meta-trained policy ({exc})") from None
        return
    agent.load(path)
    model = getattr(agent, "model", None)
    if model is not None and hasattr(model, "set_random_seed"):
        model.set_random_seed(seed)


def _test_run(state: _State, run: tuple[str, str, int]) -> RunTrace:
    """One test run: ``agent`` on the held-out task ``task`` with ``seed``."""
    task, agent_name, seed = run
    context = state.tasks[task].context
    base = base_agent(agent_name)
    compare._one_thread_torch(base, state.plugin_manager)
    started, cpu = time.perf_counter(), time.process_time()
    if agent_name == BEST_FIRST:
        random, recorder = compare._make_agent(context, "random", seed, label=agent_name)
        agent: Any = _BestFirst(recorder, random, state.sequences[task])
    elif agent_name == REA_WARM:
        agent, recorder = compare._make_agent(
            context, "rea", seed, label=agent_name, initial=state.sequences[task]
        )
    elif agent_name.startswith(META_PREFIX):
        wrap = _trial(state.settings.trial_episodes) if base in MEMORY else None
        agent, recorder = compare._make_agent(context, base, seed, wrap=wrap, label=agent_name)
        folder = _policy_folder(state.policies, task, agent_name, seed % state.settings.meta_seeds)
        try:
            _warm_start(agent, _policy_file(folder), seed)
        except BaseException:
            agent.close()
            raise
        return compare.drive(agent, recorder, context.settings, started, cpu, play=base in MEMORY)
    else:
        agent, recorder = compare._make_agent(context, agent_name, seed)
    return compare.drive(agent, recorder, context.settings, started, cpu)


def _transfer_list(tasks: list[Task], held_out: str, top: int) -> list[str]:
    """The other tasks' best networks by seed-mean validation: every best, every second, ..."""
    ranked = []
    for task in tasks:
        if task.name == held_out:
            continue
        vals = task.vals
        ranked.append(sorted(vals, key=lambda h: (-vals[h], h))[:top])
    out: list[str] = []
    for rank in range(top):
        for hashes in ranked:
            if rank < len(hashes) and hashes[rank] not in out:
                out.append(hashes[rank])
    return out


# -- the comparison ----------------------------------------------------------------------------


def run_transfer(
    settings: TransferSettings,
    *,
    plugin_manager: Any = None,
    config: Any = None,
    report: Callable[[str], None] | None = None,
    output: Path | None = None,
    force: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Transfer:
    """Run the leave-one-task-out comparison of ``settings``; see the module docs.

    With ``output``, ``settings.json`` is written first, every meta-trained policy is
    stored under ``policies/`` and every finished test run appended to ``runs.jsonl`` as
    it finishes; called again with the same settings, only what is missing runs. A
    folder holding another comparison is refused unless ``force``, which moves its
    results into ``replaced-<time>/`` there.

    Args:
        settings: what to compare.
        plugin_manager: the plugin manager (default: a fresh one).
        config: a :class:`~nasframe.Config` with the agents' settings; ``[env]`` and
            ``[table]`` values that differ from what is used are refused (as in
            ``bench run``).
        report: called with a one-line progress message after every meta-training and
            every test run.
        output: the comparison's folder (``None``: nothing is stored; the policies live
            in a temporary folder for the call).
        force: start over in ``output``.
        warn: called with a one-line warning (default: :func:`warnings.warn`).

    Raises:
        ConfigError: a setting, a table, a task name or an agent is not usable (before
            anything runs), or ``output`` holds another comparison.
        ComparisonInterrupted: Ctrl-C stopped a comparison with an ``output``.
    """
    _check_settings(settings)
    say = report or (lambda message: None)
    tell = warn or compare._warn
    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    check_config = config is not None
    if config is None:
        from nasframe.config import load_config

        config = load_config(plugin_manager=plugin_manager)
    tasks, space, encoder, _ = _load_tasks(settings, plugin_manager, config)
    names = [task.name for task in tasks]
    held_out = [name.strip() for name in settings.held_out if name.strip()] or list(names)
    for name in held_out:
        if name not in names:
            raise ConfigError(f"--held-out: no task {name!r} among the tables ({', '.join(names)})")
    if len(set(held_out)) < len(held_out):
        raise ConfigError(f"--held-out: a task is named twice ({', '.join(held_out)})")
    if check_config:
        for task in tasks:
            compare._refuse_unused(
                config,
                task.context.settings,
                task.table,
                task.context.depth,
                plugin_manager,
                _COMMAND,
                "--tables",
            )
    agents, skipped = _resolve_agents(settings.agents, plugin_manager)
    bases = sorted({base_agent(name) for name in agents})
    result = Transfer(
        settings,
        tasks,
        held_out,
        agents,
        skipped=skipped,
        agent_settings=compare._agent_settings(bases, config, plugin_manager),
    )
    for name in held_out:
        task = result.task(name)
        for line in compare._table_warnings(task.table, task.context.settings, len(task.tests)):
            tell(f"{name}: {line}")
    paths = None
    if any(name in BASELINES for name in agents):
        from nasframe.bench.networks import network_paths

        paths = network_paths(space, tasks[0].context.depth)
    sequences: dict[str, list[list[int]]] = {}
    for name in held_out:
        result.transfer_lists[name] = _transfer_list(tasks, name, settings.transfer_top)
        if paths is not None:
            sequences[name] = [paths[h] for h in result.transfer_lists[name] if h in paths]
    record = _provenance(result)
    seeds = range(settings.first_seed, settings.first_seed + settings.seeds)
    runs = [(task, agent, seed) for task in held_out for agent in agents for seed in seeds]
    done: dict[tuple[str, str, int], RunTrace] = {}
    replace = False
    if output is not None:
        replace = compare._check_folder(
            output,
            record,
            force,
            files=_result_files(output),
            identity=_identity,
            command=_COMMAND,
        )
        if not replace:
            wanted = set(runs)
            for task, trace in compare.read_lines(output / RUNS_FILE, _stored_run):
                if (task, trace.agent, trace.seed) in wanted:
                    done.setdefault((task, trace.agent, trace.seed), trace)
    pending = [run for run in runs if run not in done]
    compare._memoize(space, encoder)
    first = result.task(held_out[0]).context
    compare._check_agents(first, [b for b in bases if any(base_agent(r[1]) == b for r in pending)])
    if output is not None and replace:
        moved = move_aside(output, _result_files(output))
        tell(f"{_COMMAND}: moved the earlier comparison's files to {moved} (--force)")
    with _policies(output) as policies:
        state = _State(
            settings,
            {task.name: task for task in tasks},
            policies,
            sequences,
            config,
            plugin_manager,
        )
        if output is not None:
            compare._write_json(output / SETTINGS_FILE, record)
            compare.tidy_lines(output / RUNS_FILE, [_run_line(key[0], done[key]) for key in done])
            if done and pending:
                say(
                    f"resuming: {len(done)} of {len(runs)} runs stored in {output}; running the "
                    f"other {len(pending)}"
                )
            elif done:
                say(f"all {len(runs)} runs are stored in {output}: nothing to run")
        result.resumed = len(done)
        wanted_policies = sorted(
            {
                (agent, task, seed % settings.meta_seeds)
                for task, agent, seed in runs
                if agent.startswith(META_PREFIX)
            },
            key=lambda job: (held_out.index(job[1]), agents.index(job[0]), job[2]),
        )
        needed = {
            (agent, task, seed % settings.meta_seeds)
            for task, agent, seed in pending
            if agent.startswith(META_PREFIX)
        }
        meta: dict[tuple[str, str, int], MetaRecord] = {}
        for job in wanted_policies:
            stored = _read_meta(_policy_folder(policies, job[1], job[0], job[2]))
            if stored is not None:
                meta[job] = stored
        jobs = [job for job in wanted_policies if job in needed and job not in meta]

        def trained(record: MetaRecord) -> None:
            meta[record.agent, record.task, record.meta_seed] = record
            where = ", ".join(f"{t} {n}" for t, n in record.episodes.items())
            say(
                f"meta {len([j for j in jobs if j in meta])} of {len(jobs)}: {record.agent} "
                f"for held-out {record.task}, meta seed {record.meta_seed}: episodes {where}; "
                f"{record.steps} steps, {record.wall:.1f} s ({record.cpu:.1f} s CPU)"
            )

        def finished(outcome: tuple[str, RunTrace]) -> None:
            task, trace = outcome
            if output is not None:
                compare.append_line(output / RUNS_FILE, _run_line(task, trace))
            done[task, trace.agent, trace.seed] = trace
            say(
                f"run {len(done)} of {len(runs)}: {task}: {trace.agent} seed {trace.seed}: "
                f"{len(trace.hashes)} trainings in {trace.steps} steps, {trace.wall:.1f} s "
                f"({trace.cpu:.1f} s CPU)"
            )

        try:
            compare.run_parallel(lambda job: _meta_train(state, job), jobs, settings.jobs, trained)
            compare.run_parallel(
                lambda run: (run[0], _test_run(state, run)),
                pending,
                settings.jobs,
                finished,
            )
        except KeyboardInterrupt:
            if output is None:
                raise
            raise ComparisonInterrupted(len(done), len(runs), output) from None
    result.meta = [meta[job] for job in wanted_policies if job in meta]
    result.traces = [(run[0], done[run]) for run in runs]
    result.summaries = _summaries(result)
    return result


@contextmanager
def _policies(output: Path | None) -> Iterator[Path]:
    if output is not None:
        folder = output / POLICIES
        folder.mkdir(parents=True, exist_ok=True)
        for staging in folder.glob("*/*.tmp-*"):  # a meta-training that was killed
            shutil.rmtree(staging, ignore_errors=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="nasframe-transfer-") as tmp:
        yield Path(tmp)


def _summaries(result: Transfer) -> list[TransferSummary]:
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

    out: list[TransferSummary] = []
    for name in result.held_out:
        task = result.task(name)
        summaries: list[TransferSummary] = []
        for agent in result.agents:
            runs = [t for held, t in result.traces if held == name and t.agent == agent]
            plain = compare._summarize(
                agent,
                runs,
                task.context.settings,
                task.tests,
                task.vals,
                task.best_test,
                task.best_val,
            )
            summary = TransferSummary(**vars(plain), task=name)
            summary.top1 = [compare._first_reach(t, task.tests, task.threshold) for t in runs]
            summaries.append(summary)
        compare._test_against_random(list(summaries))
        by_name = {s.agent: s for s in summaries}
        tested = []
        for summary in summaries:
            scratch = by_name.get(base_agent(summary.agent))
            if not summary.agent.startswith(META_PREFIX) or scratch is None:
                continue
            if summary.runs < 2 or scratch.runs < 2:
                continue
            if np.array_equal(summary.auc, scratch.auc):
                summary.p_scratch = 1.0
            else:
                test = mannwhitneyu(summary.auc, scratch.auc, alternative="less")
                summary.p_scratch = float(test.pvalue)
            tested.append(summary)
        adjusted = compare.holm([s.p_scratch for s in tested if s.p_scratch is not None])
        for summary, value in zip(tested, adjusted, strict=True):
            summary.p_scratch_holm = value
        out.extend(summaries)
    return out


# -- the output folder ------------------------------------------------------------------------


def _run_line(task: str, trace: RunTrace) -> bytes:
    row = {"task": task, **asdict(trace)}
    return (json.dumps(row, separators=(",", ":")) + "\n").encode("utf-8")


def _stored_run(row: dict[str, Any]) -> tuple[str, RunTrace]:
    return str(row["task"]), compare._trace_of(row)


def _result_files(output: Path) -> list[str]:
    plots = sorted(path.name for path in output.glob("regret_*.png")) if output.is_dir() else []
    return [*RESULT_FILES, *plots]


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    settings = record.get("settings")
    tables = record.get("tables")
    return {
        "settings": {
            key: value
            for key, value in (settings if isinstance(settings, dict) else {}).items()
            if key not in _NOT_IDENTITY
        },
        "agent_settings": record.get("agent_settings"),
        "tables": {
            name: value.get("sha256") if isinstance(value, dict) else None
            for name, value in (tables if isinstance(tables, dict) else {}).items()
        },
    }


def _provenance(result: Transfer) -> dict[str, Any]:
    from nasframe import __version__

    settings = asdict(result.settings)
    settings["tables"] = [str(task.path) for task in result.tasks]
    settings["held_out"] = list(result.held_out)
    settings["agents"] = list(result.agents)
    return compare._plain(
        {
            "nasframe": __version__,
            "settings": settings,
            "agent_settings": result.agent_settings,
            "tables": {
                task.name: {
                    "source": str(task.table.source),
                    "sha256": task.checksum,
                    "networks": len(task.tests),
                    "best_test": task.best_test,
                    "top1_threshold": task.threshold,
                }
                for task in result.tasks
            },
            "transfer_lists": result.transfer_lists,
            "skipped": dict(result.skipped),
        }
    )


def _marks(budget: int) -> list[int]:
    marks = [t for t in CHECKPOINTS if t <= budget]
    return marks if budget in marks else [*marks, budget]


def summary_header(result: Transfer) -> list[str]:
    """The columns of :func:`summary_rows` (``summary.csv``)."""
    marks = []
    for t in _marks(result.settings.budget):
        marks += [f"regret@{t}", f"regret@{t}_ci95"]
    return [
        "task",
        "agent",
        "runs",
        "budget_spent",
        "top1_median",
        "top1_reached",
        *marks,
        "mean_regret",
        "mean_regret_ci95",
        "p_vs_random",
        "p_holm",
        "beats_random",
        "p_vs_scratch",
        "p_scratch_holm",
        "beats_scratch",
    ]


def _half(values: np.ndarray) -> float:
    mean, low, _, _ = interval(values.reshape(-1, 1))
    return float(mean[0] - low[0])


def summary_rows(result: Transfer) -> list[list[str]]:
    """One row per held-out task and agent: the printed tables and ``summary.csv``."""
    budget = result.settings.budget
    rows = []
    for s in result.summaries:
        reached = sum(t is not None for t in s.top1)
        spent = sum(int(n >= budget) for n in s.trainings)
        median = s.median_top1
        marks = []
        for t in _marks(budget):
            marks += [f"{s.mean_at(t):.4f}", f"{_half(s.regret[:, t - 1]):.4f}"]
        rows.append(
            [
                s.task,
                s.agent,
                str(s.runs),
                f"{spent}/{s.runs}",
                f">{budget}" if math.isinf(median) else f"{median:g}",
                f"{reached}/{s.runs}",
                *marks,
                f"{float(s.auc.mean()):.4f}",
                f"{_half(s.auc):.4f}",
                "" if s.p_value is None else f"{s.p_value:.3g}",
                "" if s.p_holm is None else f"{s.p_holm:.3g}",
                "" if s.beats_random is None else ("yes" if s.beats_random else "no"),
                "" if s.p_scratch is None else f"{s.p_scratch:.3g}",
                "" if s.p_scratch_holm is None else f"{s.p_scratch_holm:.3g}",
                "" if s.beats_scratch is None else ("yes" if s.beats_scratch else "no"),
            ]
        )
    return rows


def plot_name(task: str) -> str:
    """The file of a held-out task's regret curves: ``regret_<task>.png``."""
    return f"regret_{re.sub(r'[^A-Za-z0-9._-]', '_', task)}.png"


def write_results(result: Transfer, output: Path) -> list[Path]:
    """Write ``summary.csv``, ``regret_trainings.csv``, ``runs.csv``, ``meta.csv``,
    ``settings.json`` and (with matplotlib) ``regret_<task>.png`` into ``output``.

    Returns:
        The files written.
    """
    output.mkdir(parents=True, exist_ok=True)
    written = []
    path = output / "summary.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(summary_header(result))
        writer.writerows(summary_rows(result))
    written.append(path)
    path = output / "regret_trainings.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
                "task",
                "agent",
                "trainings",
                "regret_mean",
                "regret_low",
                "regret_high",
                "val_regret_mean",
            ]
        )
        for s in result.summaries:
            mean, low, high, _ = interval(s.regret)
            val_mean = s.val_regret.mean(axis=0)
            for t in range(len(mean)):
                cells = (mean[t], max(0.0, low[t]), high[t], val_mean[t])
                writer.writerow([s.task, s.agent, t + 1, *(f"{v:.6f}" for v in cells)])
    written.append(path)
    path = output / "runs.csv"
    reach = {
        (s.task, trace.agent, trace.seed): at
        for s in result.summaries
        for trace, at in zip(
            [t for held, t in result.traces if held == s.task and t.agent == s.agent],
            s.top1,
            strict=True,
        )
    }
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
                "task",
                "agent",
                "seed",
                "meta_seed",
                "trainings",
                "steps",
                "sim_seconds",
                "wall_seconds",
                "cpu_seconds",
                "top1_at",
            ]
        )
        for task, trace in result.traces:
            at = reach[task, trace.agent, trace.seed]
            meta_seed = (
                trace.seed % result.settings.meta_seeds
                if trace.agent.startswith(META_PREFIX)
                else ""
            )
            writer.writerow(
                [
                    task,
                    trace.agent,
                    trace.seed,
                    meta_seed,
                    len(trace.hashes),
                    trace.steps,
                    f"{sum(trace.seconds):.1f}",
                    f"{trace.wall:.2f}",
                    f"{trace.cpu:.2f}",
                    "" if at is None else at,
                ]
            )
    written.append(path)
    path = output / "meta.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["task", "agent", "meta_seed", "episodes", "steps", "wall_seconds", "cpu_seconds"]
        )
        for record in result.meta:
            episodes = " ".join(f"{t}:{n}" for t, n in record.episodes.items())
            writer.writerow(
                [
                    record.task,
                    record.agent,
                    record.meta_seed,
                    episodes,
                    record.steps,
                    f"{record.wall:.2f}",
                    f"{record.cpu:.2f}",
                ]
            )
    written.append(path)
    path = output / SETTINGS_FILE
    compare._write_json(path, _provenance(result))
    written.append(path)
    written.extend(_plots(result, output))
    return written


def _plots(result: Transfer, output: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out = []
    for name in result.held_out:
        figure = regret_figure(result, name)
        path = output / plot_name(name)
        figure.savefig(path, dpi=110)
        plt.close(figure)
        out.append(path)
    return out


def regret_figure(result: Transfer, task: str) -> Any:
    """Regret against trainings on held-out ``task``: mean and 95 % band per agent.

    Regret is never negative, so the bands are cut at 0. Line styles and markers as in
    ``bench run``'s ``regret.png``; meta-trained agents and the transfer baselines are
    drawn solid, the agents from scratch dashed.
    """
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.8))
    summaries = [s for s in result.summaries if s.task == task]
    for number, s in enumerate(summaries):
        mean, low, high, _ = interval(s.regret)
        x = np.arange(1, len(mean) + 1)
        transfer = s.agent.startswith(META_PREFIX) or s.agent in BASELINES
        style: dict[str, Any] = {
            "linestyle": "-" if transfer else "--",
            "marker": compare._MARKERS[number % len(compare._MARKERS)],
            "markevery": max(1, len(mean) // 8),
            "markersize": 4,
            "linewidth": max(0.8, 2.2 - 0.1 * number),
        }
        (line,) = axis.plot(x, mean, label=s.agent, **style)
        axis.fill_between(x, np.maximum(low, 0.0), high, alpha=0.12, color=line.get_color())
    runs = summaries[0].runs if summaries else 0
    axis.set(
        xlabel="trainings on the held-out task (distinct networks)",
        ylabel="test regret (mean, 95% CI)",
        title=f"held-out {task}: regret vs trainings ({runs} seeds)",
    )
    axis.set_yscale("symlog", linthresh=1e-3)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure
