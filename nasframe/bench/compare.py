"""``nasframe bench run``: search agents compared on a benchmark table, over many seeds.

Every (agent, seed) pair searches a fresh environment whose estimator is ``table-v1``
(the table answers instead of training) and whose cache is an in-memory database, until
it has spent the budget of *trainings* (distinct networks evaluated: cache misses) or of
simulated training seconds. Then, per agent, the regret curves are averaged with a 95%
confidence interval. With an output folder every finished run is stored there as it
finishes (``runs.jsonl``), so a stopped comparison resumes with only its missing runs;
nothing else is written but the results. ``docs/bench-run.md`` defines every figure; in
short:

* the **incumbent** after ``t`` trainings is the network with the highest validation
  accuracy the agent has *seen* (the reward: the table's validation accuracy at the
  fidelity, of the training seed the table answered with) among its first ``t``;
* its **regret** is ``best_test - test(incumbent)``: the table's best seed-mean test
  accuracy minus the incumbent's seed-mean test accuracy -- what the search would lose
  by deploying the network it believes best. A better validation accuracy can come with
  a worse test accuracy, so a single run's regret can rise; the **validation regret**
  (``best_val - val(incumbent)``, seed-mean validation accuracies at the fidelity)
  cannot when the table answers with the seed mean;
* **trainings to the top 1%**: the first ``t`` at which the incumbent is among the top
  1% of the table's networks by seed-mean test accuracy (``ceil(1%)`` networks, at
  least one); a run that never gets there counts as not reached;
* **beats random**: a one-sided Mann-Whitney U test of the agent's per-seed mean
  regret over the budget (the area under its regret curve) against random search's.
  Every agent of the comparison is one more test, so the p-values are adjusted with
  Holm's step-down method over the agents tested (``p_holm``); ``p_holm < 0.05`` is a
  yes, which keeps the chance of any false yes in the comparison under 5 %.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from nasframe.bench.table import BenchTable
from nasframe.env import EVALUATE, NOT_EVALUATED
from nasframe.errors import ConfigError, NasframeError
from nasframe.runlock import move_aside

__all__ = [
    "RESULT_FILES",
    "RUNS_FILE",
    "SETTINGS_FILE",
    "AgentSummary",
    "CompareSettings",
    "Comparison",
    "ComparisonInterrupted",
    "RunTrace",
    "append_run",
    "compare_agents",
    "holm",
    "read_runs",
    "regret_curve",
]

#: Agents tried first, in this order; any other available agent follows by name.
PREFERRED = ("random", "rea", "tpe", "reinforce", "qlearning", "ppo", "a2c", "dqn", "recurrent-ppo")

#: The trainings at which mean regret is reported (those within the budget).
CHECKPOINTS = (50, 100, 300)

#: The finished runs of a comparison in its output folder: one JSON line per run.
RUNS_FILE = "runs.jsonl"

#: What a comparison is (every setting that changes a result), written before its runs.
SETTINGS_FILE = "settings.json"

#: The files of a comparison in its output folder (``force`` moves them aside).
RESULT_FILES = (
    SETTINGS_FILE,
    RUNS_FILE,
    "summary.csv",
    "runs.csv",
    "regret_trainings.csv",
    "regret_seconds.csv",
    "regret.png",
)

#: The settings that never change a result: a comparison resumes whatever they are.
_NOT_IDENTITY = ("jobs", "table")


@dataclass
class CompareSettings:
    """What ``bench run`` compares.

    Attributes:
        table: the table folder or file (``None``: the table shipped with nasframe).
        agents: agent names; empty: every available agent.
        seeds: runs per agent (seeds ``first_seed .. first_seed + seeds - 1``).
        budget: trainings (distinct networks) per run.
        seconds: simulated training seconds per run (``None``: no time budget).
        epochs: the fidelity (``table-v1``'s ``epochs``; 0: the table's last epoch).
        table_seed: ``table-v1``'s ``seed``: a seed, ``mean`` or ``random``.
        depth: the deepest network (``table-v1``'s ``depth``; 0: the table's depth):
            episodes end there, and the table answers its rows up to that depth only,
            so a depth-4 table is also the depth-3 benchmark.
        step_factor: a run stops after ``step_factor * budget`` environment steps even
            if it has not spent its budget (an agent that keeps revisiting networks it
            has seen spends no trainings); the summary's ``budget_spent`` counts the
            runs that spent it all.
        jobs: runs in parallel (forked processes; 1: in this process).
        first_seed: the first run's seed. Seeds an agent was tuned on are not a fair test
            of it: tune on ``0 .. 19``, say, then report ``first_seed = 20``.
        evaluate: when the environment evaluates a network (``[env] evaluate``):
            ``"every_step"`` (every prefix of a network, NASGym's dense reward) or
            ``"episode_end"`` (only the network an episode ends with, BlockQNN's sparse
            reward; the budget then goes to complete networks only).
        surrogate: a surrogate folder (``bench fit``): the agents search its space with
            ``surrogate-v1`` instead of a table (``table`` and ``table_seed`` unused).
            Regret is then measured in predicted validation accuracy, against the best
            the surrogate predicts for its table's networks or any run finds; the top
            1 % is that of its table's networks.
    """

    table: Path | None = None
    agents: Sequence[str] = ()
    seeds: int = 20
    budget: int = 300
    seconds: float | None = None
    epochs: int = 0
    table_seed: str = "random"
    depth: int = 0
    step_factor: int = 10
    jobs: int = 1
    evaluate: str = "every_step"
    first_seed: int = 0
    surrogate: Path | None = None


@dataclass
class RunTrace:
    """What one (agent, seed) run trained, in order.

    Attributes:
        agent: the agent's registered name.
        seed: the run's seed (agent and environment).
        hashes: the canonical hash of each trained network.
        rewards: the validation accuracy the agent saw for each.
        seconds: the (simulated) seconds of each training.
        steps: environment steps taken.
        wall: wall seconds of the run.
        cpu: CPU seconds of the run (its process's; what the run costs on a busy machine).
    """

    agent: str
    seed: int
    hashes: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    steps: int = 0
    wall: float = 0.0
    cpu: float = 0.0


@dataclass
class AgentSummary:
    """The figures of one agent over its runs.

    Attributes:
        agent: the agent's name.
        runs: how many runs.
        regret: per-run test regret after ``1 .. budget`` trainings, ``(runs, budget)``.
        val_regret: the same for validation regret.
        top1: per-run trainings to reach the top 1% (``None``: not reached).
        wall: mean wall seconds per run.
        p_value: the one-sided Mann-Whitney U p-value against random search (``None``
            for random search itself, or without it).
        p_holm: ``p_value`` adjusted for the number of agents tested against random
            search in the comparison (Holm's step-down method; ``None`` as above).
        trainings: per-run trainings spent; fewer than the budget when the run stopped
            at the step cap or the time budget (its curve then keeps its last incumbent).
    """

    agent: str
    runs: int
    regret: np.ndarray
    val_regret: np.ndarray
    top1: list[int | None]
    wall: float
    p_value: float | None = None
    trainings: list[int] = field(default_factory=list)
    p_holm: float | None = None

    def mean_at(self, trainings: int) -> float:
        """Mean test regret after ``trainings`` trainings (NaN beyond the budget)."""
        if trainings > self.regret.shape[1]:
            return math.nan
        return float(self.regret[:, trainings - 1].mean())

    @property
    def auc(self) -> np.ndarray:
        """Per-run mean regret over the budget (the area under the regret curve)."""
        return np.asarray(self.regret.mean(axis=1))

    @property
    def median_top1(self) -> float:
        """Median trainings to the top 1% (``inf`` when at most half the runs got there)."""
        values = sorted(math.inf if t is None else float(t) for t in self.top1)
        return float(np.median(values)) if values else math.nan

    @property
    def beats_random(self) -> bool | None:
        """Whether the agent's regret is lower than random search's, at a family-wise 5 %."""
        return None if self.p_holm is None else self.p_holm < 0.05


@dataclass
class Comparison:
    """The result of :func:`compare_agents`.

    Attributes:
        settings: what was compared.
        summaries: one per agent, in the order run.
        traces: every run.
        best_test: the table's best seed-mean test accuracy.
        top1_threshold: the smallest seed-mean test accuracy in the top 1%.
        skipped: agents not run, with the reason (a missing extra).
        seconds_grid: the simulated seconds at which :attr:`seconds_regret` is given.
        seconds_regret: per agent, per-run regret at each grid point ``(runs, points)``.
        table_source: the table file the runs looked up.
        table_sha256: the table's checksum: the build card's sha256 of ``table.csv.gz``,
            else (``rows.csv`` of a build still running) the sha256 of the rows read.
        agents: the agents run, in order.
        agent_settings: per agent, its registered name and every value of its
            configuration section (``settings.json`` records them).
        resumed: runs read back from the output folder instead of run.
    """

    settings: CompareSettings
    summaries: list[AgentSummary]
    traces: list[RunTrace]
    best_test: float
    top1_threshold: float
    skipped: dict[str, str] = field(default_factory=dict)
    seconds_grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds_regret: dict[str, np.ndarray] = field(default_factory=dict)
    table_source: str = ""
    table_sha256: str = ""
    agents: list[str] = field(default_factory=list)
    agent_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    resumed: int = 0


class ComparisonInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a comparison: ``stored`` of its ``total`` runs are in ``output``.

    Running the same comparison into ``output`` again runs only the missing ones.
    """

    def __init__(self, stored: int, total: int, output: Path) -> None:
        super().__init__(f"{stored} of {total} runs stored in {output}")
        self.stored = stored
        self.total = total
        self.output = output


class _Recorder(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Notes every training (a cache miss) and stops the agent at the budget."""

    def __init__(self, env: gymnasium.Env[Any, Any], trace: RunTrace) -> None:
        super().__init__(env)
        self.trace = trace
        self.spent = 0.0

    def step(self, action: Any) -> Any:
        result = self.env.step(action)
        info = result[4]
        self.trace.steps += 1
        hit = bool(getattr(self.env.unwrapped, "last_cache_hit", False))
        if not hit and info.get("status") not in NOT_EVALUATED:
            seconds = float(info.get("seconds", 0.0))
            self.trace.hashes.append(str(info["arch_hash"]))
            self.trace.rewards.append(float(info.get("accuracy", 0.0)))
            self.trace.seconds.append(seconds)
            self.spent += seconds
        return result


def regret_curve(
    hashes: Sequence[str], rewards: Sequence[float], score: dict[str, float], best: float
) -> np.ndarray:
    """Regret ``best - score[incumbent]`` after each training.

    The incumbent is the network with the highest seen reward so far (the earlier one on
    a tie). ``score`` maps a hash to the quality regret is measured in (test or
    validation accuracy).
    """
    out = np.empty(len(hashes))
    top = -math.inf
    incumbent = ""
    for i, (arch_hash, reward) in enumerate(zip(hashes, rewards, strict=True)):
        if reward > top:
            top, incumbent = reward, arch_hash
        out[i] = best - score.get(incumbent, 0.0)
    return out


def compare_agents(
    settings: CompareSettings,
    *,
    plugin_manager: Any = None,
    config: Any = None,
    report: Callable[[str], None] | None = None,
    output: Path | None = None,
    force: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Comparison:
    """Run every agent of ``settings`` for every seed on ``table-v1``; see the module docs.

    With ``output``, every finished run is stored there as it finishes (``runs.jsonl``,
    one fsync'ed JSON line per run) and ``settings.json`` is written before the first
    run; called again with the same settings, only the runs not stored yet are run, and
    the comparison equals that of one uninterrupted call. A folder holding another
    comparison is refused unless ``force``; ``force`` starts over, moving the folder's
    results (of any comparison) into ``replaced-<time>/`` in it.

    Args:
        settings: what to compare.
        plugin_manager: the plugin manager (default: a fresh one).
        config: a :class:`~nasframe.Config` whose agent sections set the agents' settings.
            Its ``[env]`` and ``[table]`` values set by a file or an override are checked:
            ``bench run`` uses none of them (the table and ``settings`` decide), so one
            that differs from what is used is refused.
        report: called with a one-line progress message after every run.
        output: the comparison's folder (``None``: nothing is stored).
        force: start over in ``output``, moving its results aside.
        warn: called with a one-line warning (a budget larger than the table, a table
            whose build is incomplete, old results moved aside); default:
            :func:`warnings.warn`.

    Raises:
        ConfigError: a setting is out of range, an agent name is unknown or unavailable,
            an agent rejects its settings (before any run starts), the table is unusable
            (no build card naming its space and dataset), ``config`` sets a value
            ``bench run`` does not use, or ``output`` holds another comparison.
        ComparisonInterrupted: Ctrl-C (a :class:`KeyboardInterrupt`) stopped a
            comparison with an ``output``; every finished run is stored there.
    """
    _check_settings(settings)
    say = report or (lambda message: None)
    tell = warn or _warn
    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    surrogate = settings.surrogate is not None
    if surrogate:
        estimator = plugin_manager.estimators().create(
            "surrogate", file=str(settings.surrogate), epochs=settings.epochs
        )
        card = estimator.surrogate.card
        build = {key: card.get(key) for key in ("space", "dataset_component", "depth")}
        if settings.depth:
            build["depth"] = settings.depth
        table = BenchTable([], {**build, "sha256": card.get("models_sha256")}, estimator.source)
    else:
        estimator = plugin_manager.estimators().create(
            "table",
            table=str(settings.table) if settings.table else None,
            epochs=settings.epochs,
            seed=settings.table_seed,
            simulated_cost=True,
            depth=settings.depth,
        )
        table = estimator.bench
    space, encoder, dataset, depth = _components(table, estimator.source, plugin_manager)
    if config is not None:
        _refuse_unused(config, settings, table, depth, plugin_manager)
    else:
        from nasframe.config import load_config

        config = load_config(plugin_manager=plugin_manager)
    agents, skipped = _agents(settings.agents, plugin_manager)
    if surrogate:
        # filled from the runs' own answers once they are done (no table holds them)
        tests, vals = {}, {}
        best_test = best_val = float(card["reference"]["best"])
        threshold = float(card["reference"]["top1"])
    else:
        tests = table.mean_tests()
        vals = table.mean_accuracies(epochs=estimator.epochs)
        best_test = max(tests.values())
        best_val = max(vals.values())
        ranked = sorted(tests.values(), reverse=True)
        threshold = ranked[max(1, math.ceil(0.01 * len(ranked))) - 1]
        for line in _table_warnings(table, settings, len(tests)):
            tell(line)
    comparison = Comparison(
        settings,
        [],
        [],
        best_test,
        threshold,
        skipped,
        table_source=str(table.source),
        table_sha256=_table_checksum(table),
        agents=list(agents),
        agent_settings=_agent_settings(agents, config, plugin_manager),
    )
    seeds = range(settings.first_seed, settings.first_seed + settings.seeds)
    pairs = [(name, seed) for name in agents for seed in seeds]
    record = _provenance(comparison)
    replace = False
    done: dict[tuple[str, int], RunTrace] = {}
    if output is not None:
        replace = _check_folder(output, record, force)
        if not replace:
            wanted = set(pairs)
            for trace in read_runs(output / RUNS_FILE):
                if (trace.agent, trace.seed) in wanted:
                    done.setdefault((trace.agent, trace.seed), trace)
    pending = [pair for pair in pairs if pair not in done]
    _memoize(space, encoder)
    context = _Context(settings, estimator, space, encoder, dataset, depth, config, plugin_manager)
    # every agent's settings, before the first run: a bad one is one line, not a failure
    # after the earlier agents ran
    _check_agents(context, [name for name in agents if any(p[0] == name for p in pending)])
    if output is not None:
        if replace:
            moved = move_aside(output, RESULT_FILES)
            tell(f"bench run: moved the earlier comparison's files to {moved} (--force)")
        _write_json(output / SETTINGS_FILE, record)
        _tidy_runs(output / RUNS_FILE, list(done.values()))
        if done and pending:
            say(
                f"resuming: {len(done)} of {len(pairs)} runs stored in {output}; "
                f"running the other {len(pending)}"
            )
        elif done:
            say(f"all {len(pairs)} runs are stored in {output}: nothing to run")
    comparison.resumed = len(done)

    def finished(trace: RunTrace) -> None:
        if output is not None:
            append_run(output / RUNS_FILE, trace)
        done[trace.agent, trace.seed] = trace
        say(
            f"run {len(done)} of {len(pairs)}: {trace.agent} seed {trace.seed}: "
            f"{len(trace.hashes)} trainings in {trace.steps} steps, {trace.wall:.1f} s "
            f"({trace.cpu:.1f} s CPU)"
        )

    try:
        _run_all(context, pending, settings.jobs, finished)
    except KeyboardInterrupt:
        if output is None:
            raise
        raise ComparisonInterrupted(len(done), len(pairs), output) from None
    traces = [done[pair] for pair in pairs]
    if surrogate:
        tests = {h: r for trace in traces for h, r in zip(trace.hashes, trace.rewards, strict=True)}
        vals = tests
        best_test = best_val = max([best_test, *tests.values()])
        comparison.best_test = best_test
    summaries: list[AgentSummary] = []
    for agent_name in agents:
        runs = [trace for trace in traces if trace.agent == agent_name]
        summaries.append(_summarize(agent_name, runs, settings, tests, vals, best_test, best_val))
        summaries[-1].top1 = [_first_reach(t, tests, threshold) for t in runs]
    _test_against_random(summaries)
    grid, by_seconds = _seconds_curves(traces, agents, tests, best_test, settings)
    comparison.summaries = summaries
    comparison.traces = traces
    comparison.seconds_grid = grid
    comparison.seconds_regret = by_seconds
    return comparison


def _check_settings(settings: CompareSettings) -> None:
    if settings.seeds < 1 or settings.budget < 1:
        raise ConfigError(
            f"bench run: seeds ({settings.seeds}) and budget ({settings.budget}) must be >= 1"
        )
    if settings.step_factor < 1:
        raise ConfigError(f"bench run: step_factor = {settings.step_factor}: must be >= 1")
    if settings.jobs < 1:
        raise ConfigError(f"bench run: jobs = {settings.jobs}: must be >= 1")
    if settings.first_seed < 0:
        raise ConfigError(f"bench run: first_seed = {settings.first_seed}: must be >= 0")
    if settings.evaluate not in EVALUATE:
        raise ConfigError(
            f"bench run: evaluate = {settings.evaluate!r}: must be one of {', '.join(EVALUATE)}"
        )
    if settings.seconds is not None and not settings.seconds > 0:
        raise ConfigError(f"bench run: seconds = {settings.seconds}: must be > 0")


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, stacklevel=3)


@dataclass
class _Context:
    settings: CompareSettings
    estimator: Any
    space: Any
    encoder: Any
    dataset: Any
    depth: int
    config: Any
    plugin_manager: Any
    masks: dict[Any, np.ndarray] = field(default_factory=dict)


#: What the forked worker processes call (inherited, never pickled).
_WORKER: dict[str, Callable[[Any], Any]] = {}


def _run_all(
    context: _Context,
    pairs: list[tuple[str, int]],
    jobs: int,
    finished: Callable[[RunTrace], None],
) -> None:
    """Run ``pairs``, calling ``finished`` with each run as it finishes (:func:`run_parallel`)."""
    run_parallel(lambda pair: _run_one(context, *pair), pairs, jobs, finished)


def run_parallel(
    call: Callable[[Any], Any],
    items: Sequence[Any],
    jobs: int,
    finished: Callable[[Any], None],
) -> None:
    """``finished(call(item))`` for every item, in the order the calls finish.

    With ``jobs > 1`` the calls go to forked worker processes (``call`` and what it
    holds are inherited, never pickled; the items and the results are), which ignore
    SIGINT: on Ctrl-C (a :class:`KeyboardInterrupt` here) or any error the workers are
    terminated at once, and the results finished so far have been passed to
    ``finished``. With ``jobs = 1`` (or one item) everything runs in this process.
    """
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            finished(call(item))
        return
    import multiprocessing

    _WORKER["call"] = call
    try:
        fork = multiprocessing.get_context("fork")
        pool = fork.Pool(min(jobs, len(items)), initializer=_worker_start)
        try:
            results = pool.imap_unordered(_call_in_worker, items)
            for _ in items:
                while True:
                    try:  # a timeout keeps the wait interruptible by Ctrl-C
                        result = results.next(timeout=0.5)
                        break
                    except multiprocessing.TimeoutError:
                        continue
                finished(result)
            pool.close()
        except BaseException:
            pool.terminate()  # SIGTERM to every worker: a run under way is dropped
            raise
        finally:
            pool.join()
    finally:
        _WORKER.pop("call", None)


def _worker_start() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent alone decides,
    # and terminates the workers (SIGTERM, whatever handler the parent had installed).
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _call_in_worker(item: Any) -> Any:
    return _WORKER["call"](item)


def table_env(context: _Context, seed: int) -> Any:
    """A fresh environment of ``context``'s table: ``table-v1``, an in-memory cache."""
    from nasframe.env import NASEnv

    return _table_env(NASEnv, context.masks)(
        context.space,
        context.encoder,
        context.estimator,
        context.dataset,
        context.plugin_manager.databases().create("memory"),
        max_steps=context.depth,
        evaluate=context.settings.evaluate,
        seed=seed,
    )


def _make_agent(
    context: _Context,
    agent_name: str,
    seed: int,
    *,
    wrap: Callable[[gymnasium.Env[Any, Any]], gymnasium.Env[Any, Any]] | None = None,
    label: str = "",
    **settings: Any,
) -> tuple[Any, _Recorder]:
    """Agent ``agent_name`` on a fresh env of ``context`` with a recorder right over it.

    ``wrap`` wraps the recorder before the agent gets it (``bench transfer``'s trial
    wrapper); ``label`` names the run's trace (default: the agent); ``settings`` win
    over the agent's configuration section.
    """
    from nasframe.agents import make_agent

    recorder = _Recorder(table_env(context, seed), RunTrace(label or agent_name, seed))
    agent = make_agent(
        agent_name,
        recorder if wrap is None else wrap(recorder),
        seed=seed,
        config=context.config,
        plugin_manager=context.plugin_manager,
        **settings,
    )
    return agent, recorder


def _check_agents(context: _Context, names: Sequence[str]) -> None:
    """Build each agent once (and close it): a setting it rejects raises before any run."""
    for name in names:
        _one_thread_torch(name, context.plugin_manager)
        agent, _ = _make_agent(context, name, context.settings.first_seed)
        agent.close()


def _run_one(context: _Context, agent_name: str, seed: int) -> RunTrace:
    _one_thread_torch(agent_name, context.plugin_manager)
    started, cpu = time.perf_counter(), time.process_time()
    agent, recorder = _make_agent(context, agent_name, seed)
    return drive(agent, recorder, context.settings, started, cpu)


def drive(
    agent: Any,
    recorder: _Recorder,
    settings: CompareSettings,
    started: float,
    cpu: float,
    *,
    play: bool = False,
) -> RunTrace:
    """Run ``agent`` until its recorder has the budget (or the step cap); close it.

    ``play``: :meth:`~nasframe.Agent.play` (the policy acts, learning nothing) instead
    of :meth:`~nasframe.Agent.learn`. ``started`` and ``cpu`` are the run's start
    (``time.perf_counter``, ``time.process_time``): the trace's wall and CPU seconds
    count from them.
    """
    trace = recorder.trace

    def more() -> bool:
        if len(trace.hashes) >= settings.budget:
            return False
        return settings.seconds is None or recorder.spent < settings.seconds

    try:
        act = agent.play if play else agent.learn
        act(settings.step_factor * settings.budget, more)
    finally:
        agent.close()
    trace.wall = time.perf_counter() - started
    trace.cpu = time.process_time() - cpu
    return trace


def _memoize(space: Any, encoder: Any) -> None:
    """Compute each state's transitions and observation once, for every run of the comparison.

    A table's space is small and fixed (2,801 networks in NSC-Bench v3), and an RL agent
    that has converged revisits the same few states thousands of times: recomputed, the
    env's own work (a transition per action for the action mask, the NSC checks, the
    canonical hash) was about 40% of a PPO run's CPU. A transition depends only on the
    state and the action, and both are immutable values (and the memoized NSC keeps its
    cached canonical hash); the observation only on the state. ``space`` and ``encoder``
    belong to this comparison (``_components`` built them), so their own ``apply`` and
    ``encode`` are replaced on these instances only. An action that is not hashable,
    or that raises, is not memoized.
    """
    apply, encode = space.apply, encoder.encode
    transitions: dict[tuple[Any, type, Any], Any] = {}
    observations: dict[Any, np.ndarray] = {}

    def memo_apply(state: Any, action: Any) -> Any:
        try:
            key = (state, type(action), action)
            found = transitions.get(key)
        except TypeError:  # an unhashable action (an array): the space decides
            return apply(state, action)
        if found is None:
            found = transitions[key] = apply(state, action)
        return found

    def memo_encode(state: Any) -> Any:
        found = observations.get(state)
        if found is None:
            found = encode(state)
            if not isinstance(found, np.ndarray):  # a Dict observation: not memoized
                return found
            observations[state] = found
        return found.copy()  # the caller owns its observation

    space.apply = memo_apply
    encoder.encode = memo_encode


def _table_env(base: type, masks: dict[Any, np.ndarray]) -> type:
    """``base`` (``NASEnv``) with its action mask memoized per state in ``masks``.

    The mask depends on the state, the space and the estimator's validity rule, all
    fixed in one comparison (``masks`` is the comparison's, shared by its runs); after
    the episode has ended it is all ones, as ``base`` says.
    """

    class _TableEnv(base):
        def action_masks(self) -> np.ndarray:
            if self._done:
                return np.asarray(super().action_masks())
            mask = masks.get(self.state)
            if mask is None:
                mask = masks[self.state] = np.asarray(super().action_masks())
            return mask.copy()

    return _TableEnv


def _one_thread_torch(agent: str, plugin_manager: Any) -> None:
    # The policies are tiny: torch's thread pool only costs time here, and on a busy
    # machine its threads wait for each other (measured: 117 ms per PPO step at a load
    # of 15 on 2 cores, against about 1 ms with one thread).
    if "torch" in plugin_manager.agents().get(agent).requires:
        import torch

        torch.set_num_threads(1)


def _components(table: BenchTable, source: str, plugin_manager: Any) -> tuple[Any, Any, Any, int]:
    build = table.build
    missing = [key for key in ("space", "dataset_component", "depth") if not build.get(key)]
    if missing:
        raise ConfigError(
            f"{source}: bench run needs a table built by nasframe bench build (its build.json "
            f"lacks {', '.join(missing)})"
        )
    registries = plugin_manager.registries()
    space = registries["search_space"].create(build["space"])
    encoder = registries["state_encoder"].create("onehot", space)
    component = build["dataset_component"]
    dataset = registries["dataset"].create(component["name"], **component.get("settings", {}))
    return space, encoder, dataset, int(build["depth"])


def _agents(
    names: Sequence[str], plugin_manager: Any, command: str = "bench run"
) -> tuple[list[str], dict[str, str]]:
    registry = plugin_manager.agents()
    skipped: dict[str, str] = {}
    if names:
        chosen = [registry.get(name) for name in names]
        for info in chosen:
            if not info.available:
                raise ConfigError(
                    f"{command}: agent {info.name!r} needs {', '.join(info.missing)}; run: "
                    f"{info.install_hint()}"
                )
        return [info.base_name for info in chosen], skipped
    order = {name: i for i, name in enumerate(PREFERRED)}
    infos = sorted(registry, key=lambda info: (order.get(info.base_name, len(order)), info.name))
    chosen_names = []
    for info in infos:
        if info.available:
            chosen_names.append(info.base_name)
        else:
            skipped[info.name] = info.install_hint()
    return chosen_names, skipped


def _agent_settings(
    agents: Sequence[str], config: Any, plugin_manager: Any
) -> dict[str, dict[str, Any]]:
    """Per agent: its registered name and every value of its configuration section."""
    registry = plugin_manager.agents()
    out: dict[str, dict[str, Any]] = {}
    for name in agents:
        info = registry.get(name)
        values: dict[str, Any] = {}
        if info.section and info.section in config.schema.sections:
            values = config.section(info.section)
        out[name] = {"component": info.name, "settings": _plain(values)}
    return out


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (paths as text): what ``settings.json`` compares."""
    return json.loads(json.dumps(value, default=str))


def _table_checksum(table: BenchTable) -> str:
    from nasframe.bench.table import TABLE_FILE

    digest = table.build.get("sha256")
    if digest and (str(table.source).endswith(TABLE_FILE) or not table.rows):
        return str(digest)  # a finished table's, or a surrogate's model file's
    # rows.csv of a build still running, or a table of another source: the rows read
    text = "\n".join(repr(astuple(row)) for row in table.rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _table_warnings(table: BenchTable, settings: CompareSettings, networks: int) -> list[str]:
    from nasframe.bench.table import ROWS_FILE

    lines = []
    source = str(table.source)
    if Path(source).name == ROWS_FILE:
        why = f"read from {ROWS_FILE}: its build has not written table.csv.gz yet"
    elif table.build and table.build.get("complete") is not True:
        state = "false" if "complete" in table.build else "missing"
        why = f"its build.json says complete = {state}"
    else:
        why = ""
    if why:
        lines.append(
            f"warning: the table {source} is incomplete ({why}): regret is measured against "
            f"the best of its {networks} networks, not of the whole space"
        )
    if table.build.get("sampling"):
        lines.append(
            f"warning: the table {source} is a sample of its space ({networks} networks): "
            "agents that propose a network outside it get status invalid, and regret is "
            "measured against the best of the sample"
        )
    if settings.budget > networks:
        lines.append(
            f"warning: budget {settings.budget} is larger than the table's {networks} "
            f"networks: no run can spend it (each stops at the step cap of "
            f"{settings.step_factor * settings.budget} steps)"
        )
    return lines


def _refuse_unused(
    config: Any,
    settings: CompareSettings,
    table: BenchTable,
    depth: int,
    plugin_manager: Any,
    command: str = "bench run",
    table_option: str = "--table",
) -> None:
    """Refuse an ``[env]`` or ``[table]`` value the user set that ``bench run`` does not use.

    ``bench run`` takes the space, the dataset and the depth from the table, the
    estimator's settings from its options and every other env setting from
    :class:`~nasframe.env.NASEnv`'s defaults; only ``[env] evaluate`` is read (into
    ``settings.evaluate``). A set value equal to what is used is accepted.
    """
    import inspect

    from nasframe.env import NASEnv
    from nasframe.errors import RegistryError

    build = table.build
    env_defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(NASEnv.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    components = {
        "search_space": ("search_space", str(build["space"]), "the table's search space"),
        "dataset": ("dataset", str(build["dataset_component"]["name"]), "the table's dataset"),
        "estimator": ("estimator", "table", "table-v1 (set by --table, --epochs, ...)"),
        "state_encoder": ("state_encoder", "onehot", "the one-hot encoder"),
        "database": ("database", "memory", "an in-memory cache per run"),
    }
    table_options: dict[str, tuple[Any, str]] = {
        "table": (settings.table, table_option),
        "epochs": (settings.epochs, "--epochs"),
        "seed": (settings.table_seed, "--table-seed"),
        "depth": (settings.depth, "--depth"),
        "simulated_cost": (True, ""),
    }
    for (section, key), source in sorted(config.sources.items()):
        if source == "default" or section not in ("env", "table"):
            continue
        value = config.values[section][key]
        if section == "table":
            if key not in table_options:
                what = "it is unused"
            else:
                used, option = table_options[key]
                if str(value) == str(used):
                    continue
                shown = "the shipped table" if used is None else repr(used)
                what = f"it uses {option}, {shown}" if option else f"it uses {shown}"
        elif key == "evaluate":
            if value == settings.evaluate:
                continue
            what = f"it uses evaluate = {settings.evaluate!r} (CompareSettings.evaluate)"
        elif key in components:
            kind, name, label = components[key]
            registry = plugin_manager.registry(kind)
            try:
                if registry.get(str(value)).name == registry.get(name).name:
                    continue
            except RegistryError:
                pass
            what = f"it uses {label}, {registry.get(name).name}"
        elif key == "max_steps":
            if value == depth:
                continue
            what = f"episodes end at the table's depth, {depth} (--depth)"
        else:
            if key in env_defaults and value == env_defaults[key]:
                continue
            what = f"it uses {env_defaults.get(key)!r}" if key in env_defaults else "it is unused"
        from_file = source not in ("default", "override")
        where = f"{source}: " if from_file else ""
        origin = "" if from_file else " (--set)"
        remedy = "remove it from the file" if from_file else "remove the --set"
        raise ConfigError(
            f"{where}[{section}] {key} = {value!r}{origin}: {command} does not use this "
            f"setting ({what}); {remedy}"
        )


# -- the output folder: what is stored, resuming, refusing another comparison ----------


def read_runs(path: Path) -> list[RunTrace]:
    """The runs stored in ``path`` (a comparison's ``runs.jsonl``), in the order stored.

    A torn last line (the process was killed while writing it) is dropped; a missing file
    holds no run.

    Raises:
        NasframeError: a line before the last is not a stored run; the message names the
            file and the line.
    """
    return read_lines(path, _trace_of)


def read_lines(path: Path, parse: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """``parse`` of every JSON line of ``path``, in order (what :func:`read_runs` reads).

    A torn last line is dropped; a missing file holds nothing; ``parse`` raises
    ``ValueError``, ``KeyError`` or ``TypeError`` for a line that is not what it reads.

    Raises:
        NasframeError: a line before the last is not readable; the message names the
            file and the line.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise NasframeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    traces: list[Any] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            traces.append(parse(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            if number == len(lines):  # no newline after it: a line the kill cut short
                break
            raise NasframeError(
                f"{path} line {number}: not a stored run; delete the line (that run is "
                "run again) or pass --force to start the comparison over"
            ) from None
    return traces


def _trace_of(row: dict[str, Any]) -> RunTrace:
    trace = RunTrace(
        agent=str(row["agent"]),
        seed=int(row["seed"]),
        hashes=[str(h) for h in row["hashes"]],
        rewards=[float(r) for r in row["rewards"]],
        seconds=[float(t) for t in row["seconds"]],
        steps=int(row["steps"]),
        wall=float(row["wall"]),
        cpu=float(row["cpu"]),
    )
    if not len(trace.hashes) == len(trace.rewards) == len(trace.seconds):
        raise ValueError("lists of different lengths")
    return trace


def _run_line(trace: RunTrace) -> bytes:
    # floats as repr: read back, every figure of the summary is the same
    return (json.dumps(asdict(trace), separators=(",", ":")) + "\n").encode("utf-8")


def append_run(path: Path, trace: RunTrace) -> None:
    """Append ``trace`` to ``path`` as one JSON line, flushed and fsync'ed."""
    append_line(path, _run_line(trace))


def append_line(path: Path, line: bytes) -> None:
    """Append ``line`` (one JSON line, newline included) to ``path``, flushed and fsync'ed."""
    with path.open("ab") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _tidy_runs(path: Path, traces: list[RunTrace]) -> None:
    """Rewrite ``path`` with ``traces`` only if it holds anything else (a torn line).

    The next run is then appended after a whole line, never after a torn one.
    """
    tidy_lines(path, [_run_line(trace) for trace in traces])


def tidy_lines(path: Path, lines: list[bytes]) -> None:
    """Rewrite ``path`` with ``lines`` only if it holds anything else (see :func:`_tidy_runs`)."""
    wanted = b"".join(lines)
    try:
        if path.read_bytes() == wanted:
            return
    except FileNotFoundError:
        if not lines:
            return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(wanted)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a kill leaves the old file or the new one


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """What makes two comparisons the same: ``settings.json`` less what changes no result."""
    settings = record.get("settings")
    table = record.get("table")
    return {
        "settings": {
            key: value
            for key, value in (settings if isinstance(settings, dict) else {}).items()
            if key not in _NOT_IDENTITY
        },
        "agent_settings": record.get("agent_settings"),
        "table checksum": table.get("sha256") if isinstance(table, dict) else None,
    }


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first three differences between two identities, for the refusal message."""
    before, after = _flat(old), _flat(new)
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            there = "not recorded" if key not in before else f"{before[key]!r}"
            changes.append(f"{key}: {there} there, {after.get(key)!r} now")
    shown = "; ".join(changes[:3])
    return shown + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")


def _check_folder(
    output: Path,
    record: dict[str, Any],
    force: bool,
    *,
    files: Sequence[str] = RESULT_FILES,
    identity: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    command: str = "bench run",
) -> bool:
    """Whether ``output`` holds results that ``force`` moves aside (to start over).

    Returns ``False`` for a folder without results, or with the same comparison and not
    ``force`` (it is resumed).

    Raises:
        ConfigError: ``output`` holds another comparison and not ``force``.
    """
    identity = identity or _identity
    present = [name for name in files if (output / name).exists()]
    if not present:
        return False
    if force:  # start over, whatever the folder holds
        return True
    settings_path = output / SETTINGS_FILE
    try:
        stored = json.loads(settings_path.read_text(encoding="utf-8"))
        why = "" if isinstance(stored, dict) else f"{SETTINGS_FILE} is not a comparison's"
    except FileNotFoundError:
        stored, why = None, f"no {SETTINGS_FILE} beside {present[0]}"
    except (OSError, ValueError):
        stored, why = None, f"{SETTINGS_FILE} is not readable"
    if not why:
        old, new = identity(stored), identity(record)
        if old == new:
            return False
        why = _difference(old, new)
    raise ConfigError(
        f"{command}: {output} holds the results of another comparison ({why}); pass "
        "--force to start over (its files are moved into replaced-<time>/ there) or choose "
        "another --output"
    )


def _summarize(
    agent: str,
    runs: list[RunTrace],
    settings: CompareSettings,
    tests: dict[str, float],
    vals: dict[str, float],
    best_test: float,
    best_val: float,
) -> AgentSummary:
    budget = settings.budget
    regret = np.empty((len(runs), budget))
    val_regret = np.empty((len(runs), budget))
    for i, trace in enumerate(runs):
        if not trace.hashes:
            raise NasframeError(
                f"bench run: agent {agent!r} seed {trace.seed} trained nothing in "
                f"{trace.steps} steps"
            )
        regret[i] = _pad(regret_curve(trace.hashes, trace.rewards, tests, best_test), budget)
        val_regret[i] = _pad(regret_curve(trace.hashes, trace.rewards, vals, best_val), budget)
    wall = float(np.mean([trace.wall for trace in runs]))
    spent = [len(trace.hashes) for trace in runs]
    return AgentSummary(agent, len(runs), regret, val_regret, [], wall, trainings=spent)


def _pad(curve: np.ndarray, budget: int) -> np.ndarray:
    # A run that stopped early (time budget, step cap) keeps its last incumbent.
    curve = curve[:budget]
    if len(curve) < budget:
        curve = np.concatenate([curve, np.full(budget - len(curve), curve[-1])])
    return curve


def _first_reach(trace: RunTrace, tests: dict[str, float], threshold: float) -> int | None:
    top = -math.inf
    for i, (arch_hash, reward) in enumerate(zip(trace.hashes, trace.rewards, strict=True)):
        if reward > top:
            top = reward
            if tests.get(arch_hash, 0.0) >= threshold:
                return i + 1
    return None


def _test_against_random(summaries: list[AgentSummary]) -> None:
    baseline = next((s for s in summaries if s.agent == "random"), None)
    if baseline is None or baseline.runs < 2:
        return
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

    for summary in summaries:
        if summary is baseline or summary.runs < 2:
            continue
        if np.array_equal(summary.auc, baseline.auc):
            summary.p_value = 1.0
            continue
        result = mannwhitneyu(summary.auc, baseline.auc, alternative="less")
        summary.p_value = float(result.pvalue)
    tested = [(s, s.p_value) for s in summaries if s.p_value is not None]
    for (summary, _), value in zip(tested, holm([p for _, p in tested]), strict=True):
        summary.p_holm = value


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (in their order) for testing them all.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i`` (``i`` from 0),
    capped at 1, and never falls below the adjusted value of a smaller one. Rejecting
    every hypothesis whose adjusted p-value is below ``alpha`` keeps the family-wise
    error rate at ``alpha`` (Holm 1979), and it rejects at least what Bonferroni does.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _seconds_curves(
    traces: list[RunTrace],
    agents: list[str],
    tests: dict[str, float],
    best_test: float,
    settings: CompareSettings,
    points: int = 100,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ends = [float(np.sum(trace.seconds)) for trace in traces if trace.seconds]
    limit = settings.seconds or (max(ends) if ends else 0.0)
    grid = np.linspace(limit / points, limit, points) if limit > 0 else np.zeros(0)
    out: dict[str, np.ndarray] = {}
    for agent in agents:
        runs = [trace for trace in traces if trace.agent == agent]
        values = np.full((len(runs), len(grid)), np.nan)
        for i, trace in enumerate(runs):
            done = np.cumsum(trace.seconds)
            curve = regret_curve(trace.hashes, trace.rewards, tests, best_test)
            # regret at time t: that of the trainings finished by t (NaN before the first)
            counts = np.searchsorted(done, grid, side="right")
            have = counts > 0
            values[i, have] = curve[counts[have] - 1]
        out[agent] = values
    return grid, out


def interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, 95% t-interval (low, high) and count of each column, ignoring NaNs."""
    from scipy.stats import t as student

    values = np.atleast_2d(values)
    n = np.sum(~np.isnan(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(values, axis=0) / np.maximum(n, 1), np.nan)
        centred = np.where(np.isnan(values), 0.0, values - mean)
        sd = np.sqrt(np.sum(centred**2, axis=0) / np.maximum(n - 1, 1))
        half = np.where(n > 1, student.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n), 0.0)
    return mean, mean - half, mean + half, n


# -- output ------------------------------------------------------------------------------


def write_results(comparison: Comparison, output: Path) -> list[Path]:
    """Write the CSV files and the plot of ``comparison`` into ``output``.

    Returns:
        The files written: ``regret_trainings.csv``, ``regret_seconds.csv``,
        ``runs.csv``, ``summary.csv``, ``settings.json`` (what was compared, on which
        table, by which nasframe: enough to run it again) and (with matplotlib)
        ``regret.png``.
    """
    output.mkdir(parents=True, exist_ok=True)
    written = []
    path = output / "regret_trainings.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["agent", "trainings", "regret_mean", "regret_low", "regret_high", "val_regret_mean"]
        )
        for s in comparison.summaries:
            mean, low, high, _ = interval(s.regret)
            val_mean = s.val_regret.mean(axis=0)
            for t in range(len(mean)):
                writer.writerow(
                    [s.agent, t + 1, *(f"{v:.6f}" for v in (mean[t], low[t], high[t], val_mean[t]))]
                )
    written.append(path)
    path = output / "regret_seconds.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["agent", "seconds", "regret_mean", "regret_low", "regret_high", "runs"])
        for agent, values in comparison.seconds_regret.items():
            mean, low, high, n = interval(values)
            for j, when in enumerate(comparison.seconds_grid):
                cells = ("" if math.isnan(v) else f"{v:.6f}" for v in (mean[j], low[j], high[j]))
                writer.writerow([agent, f"{when:.2f}", *cells, int(n[j])])
    written.append(path)
    path = output / "runs.csv"
    runs_of: dict[str, list[RunTrace]] = {}
    for trace in comparison.traces:
        runs_of.setdefault(trace.agent, []).append(trace)
    # summaries hold top1 in the order of each agent's runs
    top1 = {
        (trace.agent, trace.seed): reach
        for s in comparison.summaries
        for trace, reach in zip(runs_of.get(s.agent, []), s.top1, strict=True)
    }
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
                "agent",
                "seed",
                "trainings",
                "steps",
                "sim_seconds",
                "wall_seconds",
                "cpu_seconds",
                "top1_at",
            ]
        )
        for trace in comparison.traces:
            reach = top1[trace.agent, trace.seed]
            writer.writerow(
                [
                    trace.agent,
                    trace.seed,
                    len(trace.hashes),
                    trace.steps,
                    f"{sum(trace.seconds):.1f}",
                    f"{trace.wall:.2f}",
                    f"{trace.cpu:.2f}",
                    "" if reach is None else reach,
                ]
            )
    written.append(path)
    path = output / "summary.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(summary_header(comparison))
        for row in summary_rows(comparison):
            writer.writerow(row)
    written.append(path)
    path = output / SETTINGS_FILE
    _write_json(path, _provenance(comparison))
    written.append(path)
    plot = _plot(comparison, output / "regret.png")
    if plot is not None:
        written.append(plot)
    return written


def _provenance(comparison: Comparison) -> dict[str, Any]:
    from nasframe import __version__

    settings = asdict(comparison.settings)
    settings["table"] = None if settings["table"] is None else str(settings["table"])
    settings["agents"] = list(comparison.agents) or [s.agent for s in comparison.summaries]
    return _plain(
        {
            "nasframe": __version__,
            "settings": settings,
            "agent_settings": comparison.agent_settings,
            "table": {"source": comparison.table_source, "sha256": comparison.table_sha256},
            "best_test": comparison.best_test,
            "top1_threshold": comparison.top1_threshold,
            "skipped": dict(comparison.skipped),
        }
    )


def summary_header(comparison: Comparison) -> list[str]:
    """The columns of :func:`summary_rows`."""
    marks = [f"regret@{t}" for t in CHECKPOINTS if t <= comparison.settings.budget]
    return [
        "agent",
        "runs",
        "budget_spent",
        "top1_median",
        "top1_reached",
        *marks,
        *(
            []
            if comparison.settings.budget in CHECKPOINTS
            else [f"regret@{comparison.settings.budget}"]
        ),
        "mean_regret",
        "p_vs_random",
        "p_holm",
        "beats_random",
    ]


def summary_rows(comparison: Comparison) -> list[list[str]]:
    """One row of figures per agent (the printed table and ``summary.csv``)."""
    budget = comparison.settings.budget
    rows = []
    for s in comparison.summaries:
        reached = sum(t is not None for t in s.top1)
        spent = sum(int(n >= budget) for n in s.trainings)
        median = s.median_top1
        marks = [f"{s.mean_at(t):.4f}" for t in CHECKPOINTS if t <= budget]
        rows.append(
            [
                s.agent,
                str(s.runs),
                f"{spent}/{s.runs}",
                f">{budget}" if math.isinf(median) else f"{median:g}",
                f"{reached}/{s.runs}",
                *marks,
                *([] if budget in CHECKPOINTS else [f"{s.mean_at(budget):.4f}"]),
                f"{float(s.auc.mean()):.4f}",
                "" if s.p_value is None else f"{s.p_value:.3g}",
                "" if s.p_holm is None else f"{s.p_holm:.3g}",
                "" if s.beats_random is None else ("yes" if s.beats_random else "no"),
            ]
        )
    return rows


#: line styles cycled over the agents, so curves that coincide stay told apart
_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*", "P", "h")


def _plot(comparison: Comparison, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure = regret_figure(comparison)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def regret_figure(comparison: Comparison) -> Any:
    """The figure of ``regret.png``: mean test regret with its 95 % band, per agent.

    Regret is never negative, so the bands are cut at 0 (a normal interval of a few
    runs would reach below it on the symlog axis). Each agent has its own line style
    and marker, drawn thinner the later it comes, so curves that coincide stay visible.
    """
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for number, s in enumerate(comparison.summaries):
        mean, low, high, _ = interval(s.regret)
        x = np.arange(1, len(mean) + 1)
        style = {
            "linestyle": _STYLES[number % len(_STYLES)],
            "marker": _MARKERS[number % len(_MARKERS)],
            "markevery": max(1, len(mean) // 8),
            "markersize": 4,
            "linewidth": max(0.8, 2.2 - 0.15 * number),
        }
        (line,) = left.plot(x, mean, label=s.agent, **style)
        left.fill_between(x, np.maximum(low, 0.0), high, alpha=0.15, color=line.get_color())
        values = comparison.seconds_regret.get(s.agent)
        if values is not None and len(comparison.seconds_grid):
            mean, low, high, _ = interval(values)
            grid = comparison.seconds_grid / 3600
            style["markevery"] = max(1, len(mean) // 8)
            right.plot(grid, mean, label=s.agent, color=line.get_color(), **style)
            right.fill_between(grid, np.maximum(low, 0.0), high, alpha=0.15, color=line.get_color())
    runs = comparison.summaries[0].runs if comparison.summaries else 0
    left.set(
        xlabel="trainings (distinct networks)",
        ylabel="test regret (mean, 95% CI)",
        title=f"regret vs trainings ({runs} seeds)",
    )
    right.set(xlabel="simulated training hours", title="regret vs simulated time")
    for axis in (left, right):
        axis.set_yscale("symlog", linthresh=1e-3)
        axis.grid(alpha=0.3)
    left.legend()
    figure.tight_layout()
    return figure
