"""Running a search: an agent, an environment, a budget, an output folder.

:func:`run_search` is what ``nasframe search`` runs. It builds the environment from the
configuration (``nasframe.make_env``; Ray's parallel environment with ``[run] workers``
> 1), wraps it for meta-RL if asked, builds the agent by name, and lets the agent learn
until the budget of steps or episodes is spent -- or until Ctrl-C/SIGTERM.

The output folder holds everything the run needs to continue::

    run.json             the configuration and its identity (what "same run" means)
    state.json           steps, episodes, trainings so far; the outcome
    steps.csv            one row per environment step (nasframe.results.StepLog)
    experiments.csv      the experiment database (unless [database] path says otherwise)
    agent.zip|.json      the agent's checkpoint
    search.log           the log
    summary.json, rewards.png, best_architecture.png, tensorboard/   the results

**Stop and resume.** SIGINT or SIGTERM sets a flag; the evaluation under way finishes
and is stored, the agent stops after that step, is saved, and the run ends with outcome
``interrupted``. Running again with the same output folder and configuration resumes:
the agent is loaded from its checkpoint, the step log continues, and every evaluation
already in the database is a cache hit, never retrained. A different configuration in
the same folder is refused unless ``force`` (the old run files are then moved aside
into ``replaced-<time>/``, nothing is deleted). The budget keys (``steps``,
``episodes``) are not part of the identity, so a finished run can be extended.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, SupportsFloat

import gymnasium

from nasframe.agents import Agent, make_agent
from nasframe.config import Config, check_components
from nasframe.errors import ConfigError, NasframeError, PluginError
from nasframe.results import (
    StepLog,
    StepRow,
    best_architectures,
    best_table,
    plot_architecture,
    plot_rewards,
    summarize,
    write_summary,
    write_tensorboard,
)

__all__ = ["Run", "identity_of", "run_search"]

log = logging.getLogger("nasframe.search")

#: Keys that may change between a run and its resumption (budget, where, how loud).
_NOT_IDENTITY = {
    ("run", "steps"),
    ("run", "episodes"),
    ("run", "output"),
    ("run", "workers"),
    ("run", "ray_address"),
    ("run", "resume"),
    ("run", "verbosity"),
    ("run", "checkpoint_every"),
    ("run", "plots"),
    ("run", "tensorboard"),
    ("run", "top"),
    ("database", "path"),
}

#: The files that make up a run in its output folder (moved aside by ``force``).
_RUN_FILES = (
    "run.json",
    "state.json",
    "steps.csv",
    "agent.zip",
    "agent.replay.pkl",
    "agent.json",
    "search.log",
    "summary.json",
    "rewards.png",
    "best_architecture.png",
    "tensorboard",
)


def identity_of(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration values that make two runs the same run (budget keys excluded)."""
    identity: dict[str, dict[str, Any]] = {}
    for section, values in config.values.items():
        for key, value in values.items():
            if (section, key) in _NOT_IDENTITY:
                continue
            identity.setdefault(section, {})[key] = None if value is None else str(value)
    return identity


def _digest(identity: dict[str, dict[str, Any]]) -> str:
    blob = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Run:
    """One search run: its configuration, output folder, components and progress.

    Handed to the ``nasframe_run_started`` and ``nasframe_run_finished`` hooks.

    Attributes:
        config: the effective configuration.
        output: the output folder.
        plugin_manager: the plugin manager that built the components.
        env: the environment as the agent sees it (wrappers included; with ``[run]
            workers`` > 1 a vector env, or its Stable-Baselines3 ``VecEnv`` view).
        agent: the agent.
        evaluator: the environment's evaluator (``trainings`` and ``hits`` counters).
        budget_steps: the step budget (0 when the budget is in episodes).
        budget_episodes: the episode budget (0 when it is in steps).
        steps: environment steps taken, over all sessions of this run.
        episodes: episodes ended, over all sessions.
        resumed_from: steps already taken when this session started.
        best_accuracy: the best validation accuracy seen so far.
        trainings: networks trained (cache misses), over all sessions.
        session_trainings: networks trained in this session.
        session_hits: cache hits in this session.
        outcome: ``running``, then ``completed``, ``interrupted`` or ``failed``.
        stop_reason: why an interrupted run stopped (e.g. ``SIGINT``).
        summary: the content of ``summary.json`` once written.
    """

    config: Config
    output: Path
    plugin_manager: Any
    env: Any = None
    agent: Agent | None = None
    evaluator: Any = None
    budget_steps: int = 0
    budget_episodes: int = 0
    steps: int = 0
    episodes: int = 0
    resumed_from: int = 0
    best_accuracy: float = 0.0
    trainings: int = 0
    session_trainings: int = 0
    session_hits: int = 0
    outcome: str = "running"
    stop_reason: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    stop_requested: bool = False
    _trainings_before: int = 0
    _trainings_start: int = 0

    @property
    def finished_budget(self) -> bool:
        """Whether the budget of steps or episodes is spent."""
        if self.budget_episodes:
            return self.episodes >= self.budget_episodes
        return self.steps >= self.budget_steps

    @property
    def remaining_steps(self) -> int:
        """Steps left in a step budget; an upper bound for an episode budget."""
        if self.budget_episodes:
            max_steps = int(self.config.get("env", "max_steps"))
            return max(1, (self.budget_episodes - self.episodes) * max_steps)
        return max(0, self.budget_steps - self.steps)

    def request_stop(self, reason: str) -> None:
        """Stop after the step under way (its evaluation is stored first)."""
        self.stop_requested = True
        self.stop_reason = self.stop_reason or reason

    @property
    def path_of(self) -> Callable[[str], Path]:
        """``run.path_of("summary.json")`` -> the file in the output folder."""
        return lambda name: self.output / name


class _StepRecorder:
    """Turns the steps of one or more environments into step-log rows and counters.

    Each environment is a *slot*; a slot's episode gets the next episode number at its
    first step, so episodes of parallel environments are numbered in the order they
    start.
    """

    def __init__(
        self, run: Run, steplog: StepLog, next_episode: int, on_step: Callable[[StepRow], None]
    ) -> None:
        self.run = run
        self.steplog = steplog
        self.next_episode = next_episode
        self.on_step = on_step
        self.open: dict[int, list[int]] = {}  # slot -> [episode, steps in it]

    def task(self) -> str:
        """The dataset task under way (the evaluator's dataset)."""
        dataset = getattr(self.run.evaluator, "dataset", None)
        return str(getattr(dataset, "task", "") or "")

    def abandon(self, slot: int) -> None:
        """The slot's episode under way was left unfinished (a reset)."""
        self.open.pop(slot, None)

    def record(
        self,
        slot: int,
        action: int,
        label: str,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
        seconds: float,
    ) -> None:
        """Log one step of the environment in ``slot``."""
        episode = self.open.get(slot)
        if episode is None:
            episode = self.open[slot] = [self.next_episode, 0]
            self.next_episode += 1
        episode[1] += 1
        self.run.steps += 1
        if "task" not in info:
            info = dict(info, task=self.task())
        row = _row_from_info(
            info,
            step=self.run.steps,
            episode=episode[0],
            episode_step=episode[1],
            action=action,
            label=label,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            seconds=seconds,
        )
        self.steplog.append(row)
        if row.done:
            self.run.episodes += 1
            del self.open[slot]
        self.on_step(row)


class _Recorder(gymnasium.Wrapper[Any, Any, Any, Any]):
    """Logs every step of a single environment through a :class:`_StepRecorder`."""

    def __init__(self, env: gymnasium.Env[Any, Any], recorder: _StepRecorder) -> None:
        super().__init__(env)
        self.recorder = recorder
        self._labels = _action_labels(env)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self.recorder.abandon(0)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        start = time.perf_counter()
        obs, reward, terminated, truncated, info = self.env.step(action)
        action_id = int(action)
        self.recorder.record(
            0,
            action_id,
            self._labels.get(action_id, str(action_id)),
            float(reward),
            bool(terminated),
            bool(truncated),
            info,
            time.perf_counter() - start,
        )
        return obs, reward, terminated, truncated, info


def _record_vector(vector_env: Any, recorder: _StepRecorder) -> None:
    """Log the steps of every environment of a ``NASVectorEnv``.

    Its batched step (and its Stable-Baselines3 view) drive each environment through
    ``begin_step``/``finish_step`` rather than ``step``, so the recording wraps each
    environment's ``finish_step`` -- the one place every step result passes.
    """
    for slot, env in enumerate(vector_env.envs):
        labels = _action_labels(env)
        finish = env.finish_step
        reset = env.reset

        def finish_step(
            plan: Any, outcome: Any, _finish: Any = finish, _slot: int = slot, _labels: Any = labels
        ) -> Any:
            obs, reward, terminated, truncated, info = _finish(plan, outcome)
            action = int(plan.action)
            recorder.record(
                _slot,
                action,
                _labels.get(action, str(action)),
                float(reward),
                bool(terminated),
                bool(truncated),
                info,
                0.0 if info.get("cache_hit") else float(info.get("seconds", 0.0)),
            )
            return obs, reward, terminated, truncated, info

        def reset_env(*args: Any, _reset: Any = reset, _slot: int = slot, **kwargs: Any) -> Any:
            recorder.abandon(_slot)
            return _reset(*args, **kwargs)

        env.finish_step = finish_step
        env.reset = reset_env


def _action_labels(env: gymnasium.Env[Any, Any]) -> dict[int, str]:
    space = getattr(env.unwrapped, "search_space", None)
    if space is None or not hasattr(space, "actions"):
        return {}
    return {int(a.id): str(a.label) for a in space.actions()}


def _first(info: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in info and info[name] is not None:
            return info[name]
    return default


def _row_from_info(info: dict[str, Any], **known: Any) -> StepRow:
    """A step-log row from the environment's ``info`` (names per ``nasframe.env``)."""
    evaluation = info.get("evaluation")
    params = _first(info, "params", default=getattr(evaluation, "params", 0))
    status = _first(info, "status", default=getattr(evaluation, "status", "ok"))
    accuracy = _first(info, "accuracy", default=getattr(evaluation, "accuracy", 0.0))
    label = _first(info, "action_label", default=known.pop("label"))
    if not isinstance(label, str):
        label = getattr(label, "label", str(label))
    known.pop("label", None)
    return StepRow(
        task=str(_first(info, "task", "dataset", default="")),
        action_label=label,
        nsc=str(_first(info, "nsc", default="")),
        arch_hash=str(_first(info, "arch_hash", "canonical_hash", "hash", default="")),
        accuracy=float(accuracy),
        params=int(params or 0),
        status=str(status),
        cache_hit=bool(_first(info, "cache_hit", default=False)),
        **known,
    )


# -- the output folder ------------------------------------------------------------------


def _prepare_output(run: Run, force: bool, resume: bool) -> bool:
    """Check or claim the output folder; return whether an earlier run is resumed."""
    output = run.output
    if output.exists() and not output.is_dir():
        raise ConfigError(f"[run] output: {output} exists and is not a folder")
    output.mkdir(parents=True, exist_ok=True)
    run_file = output / "run.json"
    identity = identity_of(run.config)
    if run_file.is_file():
        try:
            stored = json.loads(run_file.read_text(encoding="utf-8"))
            old_identity = stored["identity"]
        except (ValueError, KeyError, TypeError):
            raise NasframeError(
                f"{run_file}: not a nasframe run file; choose another --output folder"
            ) from None
        same = old_identity == identity
        if same and resume and not force:
            return True
        # A run that never took a step (e.g. its agent rejected a setting) holds nothing
        # to protect: a corrected configuration simply takes the folder over.
        empty = not StepLog(output / "steps.csv").read()
        if not same and not force and not empty:
            raise ConfigError(
                f"output folder {output} holds a run with a different configuration "
                f"({_difference(old_identity, identity)}); resume it with its own "
                "configuration, choose another --output, or pass --force to start over "
                "(the old run is moved aside)"
            )
        _move_aside(output)
    run_file.write_text(
        json.dumps(
            {
                "identity": identity,
                "digest": _digest(identity),
                "created": _now(),
                "config": run.config.to_ini(),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return False


def _difference(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> str:
    changes = []
    for section in sorted(set(old) | set(new)):
        keys = set(old.get(section, {})) | set(new.get(section, {}))
        for key in sorted(keys):
            before = old.get(section, {}).get(key)
            after = new.get(section, {}).get(key)
            if before != after:
                changes.append(f"[{section}] {key}: {before!r} there, {after!r} now")
    shown = "; ".join(changes[:3])
    return shown + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")


def _move_aside(output: Path) -> None:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    target = output / f"replaced-{stamp}"
    target.mkdir()
    for name in _RUN_FILES:
        path = output / name
        if path.exists():
            path.rename(target / name)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_state(run: Run) -> None:
    state = {
        "steps": run.steps,
        "episodes": run.episodes,
        "trainings": run.trainings,
        "best_accuracy": run.best_accuracy,
        "outcome": run.outcome,
        "updated": _now(),
    }
    path = run.output / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash leaves the old state or the new one


# -- building ---------------------------------------------------------------------------


def _database_path(config: Config, output: Path) -> Config:
    """Put the experiment database into the output folder unless the user chose a path."""
    schema = config.schema.sections
    if "database" not in schema or "path" not in schema["database"].keys:
        return config
    if config.sources.get(("database", "path"), "default") != "default":
        return config
    name = str(config.get("env", "database")).split("-v")[0]
    suffix = {"csv": "csv", "sqlite": "sqlite"}.get(name, "db")
    return config.with_overrides({"database": {"path": output / f"experiments.{suffix}"}})


def _make_env(config: Config, plugin_manager: Any, seed: int) -> Any:
    """The environment: a ``NASEnv``, or with ``[run] workers`` > 1 a ``NASVectorEnv``."""
    workers = int(config.get("run", "workers"))
    if workers > 1:
        distributed = _distributed(workers)
        for key in ("meta_rl", "tasks"):
            if config.get("run", key):
                raise ConfigError(
                    f"[run] {key} needs [run] workers = 1 (the meta-RL wrappers work on one "
                    f"environment), got workers = {workers}"
                )
        return distributed.make_parallel_env(
            config=config,
            plugin_manager=plugin_manager,
            seed=seed,
            workers=workers,
            address=str(config.get("run", "ray_address")) or None,
        )
    from nasframe.env import make_env

    return make_env(config=config, plugin_manager=plugin_manager, seed=seed)


def _distributed(workers: int) -> Any:
    try:
        return importlib.import_module("nasframe.distributed")
    except ImportError:
        raise PluginError(
            f"[run] workers = {workers} needs the Ray back end (the nasframe.distributed "
            "module and the ray extra), which is not available; run: "
            "pip install 'nasframe[ray]' (or set workers = 1)"
        ) from None


def _evaluator(env: Any) -> Any:
    if isinstance(env, gymnasium.vector.VectorEnv):
        return getattr(env, "evaluator", None)
    return getattr(env.unwrapped, "evaluator", None)


def _known_tasks(env: gymnasium.Env[Any, Any]) -> tuple[str, ...] | None:
    evaluator = _evaluator(env)
    dataset = getattr(evaluator, "dataset", None) or getattr(env.unwrapped, "dataset", None)
    tasks = getattr(dataset, "tasks", None)
    return tuple(tasks) if tasks else None


def _check_budget(config: Config) -> tuple[int, int]:
    steps = int(config.get("run", "steps"))
    episodes = int(config.get("run", "episodes"))
    if steps < 1 and episodes < 1:
        raise ConfigError(
            "[run] steps and [run] episodes are both 0: the budget must be at least 1 step "
            "(--steps N) or 1 episode (--episodes N)"
        )
    if steps >= 1 and episodes >= 1:
        raise ConfigError(
            f"[run] steps = {steps} and [run] episodes = {episodes}: give one budget, set "
            "the other to 0"
        )
    return steps, episodes


# -- running ----------------------------------------------------------------------------


def run_search(
    config: Config,
    *,
    plugin_manager: Any = None,
    force: bool = False,
    console: Any = None,
    resume_command: str = "",
) -> Run:
    """Run (or resume) the search the configuration describes.

    Args:
        config: the configuration; ``[run]`` holds the agent, budget, seed, output folder
            and display settings, ``[env]`` the components.
        plugin_manager: the plugin manager; a fresh one by default.
        force: start over in an output folder holding another (or this) run; the old run
            files are moved aside.
        console: a ``rich.console.Console`` for the progress bar and tables; one on
            standard output by default.
        resume_command: the command line that resumes this run, for the stop message.

    Returns:
        The run; ``run.outcome`` is ``completed`` or ``interrupted``.

    Raises:
        NasframeError: a bad budget, an unknown component, a missing extra, an output
            folder holding a different run (without ``force``).
    """
    from rich.console import Console

    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    console = console or Console()
    steps, episodes = _check_budget(config)
    output = Path(config.get("run", "output"))
    config = _database_path(config, output)
    run = Run(
        config=config,
        output=output,
        plugin_manager=plugin_manager,
        budget_steps=steps,
        budget_episodes=episodes,
    )
    # Check the names first: a typo must not leave an output folder behind.
    check_components(config, plugin_manager)
    registries = plugin_manager.registries()
    for kind, section, key in (
        ("agent", "run", "agent"),
        ("search_space", "env", "search_space"),
        ("state_encoder", "env", "state_encoder"),
        ("estimator", "env", "estimator"),
        ("dataset", "env", "dataset"),
        ("database", "env", "database"),
    ):
        info = registries[kind].get(str(config.get(section, key)))
        if not info.available:
            raise PluginError(
                f"[{section}] {key}: {registries[kind].label} {info.name!r} needs "
                f"{', '.join(info.missing)}, which is not installed; run: {info.install_hint()}"
            )
    resuming = _prepare_output(run, force, bool(config.get("run", "resume")))
    level = logging.getLogger("nasframe").level
    handler = _attach_log_file(output, int(config.get("run", "verbosity")))
    try:
        return _run(run, resuming, console, resume_command)
    finally:
        logging.getLogger("nasframe").removeHandler(handler)
        logging.getLogger("nasframe").setLevel(level)
        handler.close()


def _attach_log_file(output: Path, verbosity: int) -> logging.Handler:
    handler = logging.FileHandler(output / "search.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s | %(name)s | %(levelname)s | %(message)s"))
    handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    root = logging.getLogger("nasframe")
    root.addHandler(handler)
    # Below verbose, per-step records are not even created (they cost per step).
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    return handler


def _run(run: Run, resuming: bool, console: Any, resume_command: str) -> Run:
    config = run.config
    seed = int(config.get("run", "seed"))
    verbosity = int(config.get("run", "verbosity"))
    steplog = StepLog(run.output / "steps.csv")
    previous = steplog.read()
    steplog.truncate(previous)  # drop a line torn by a crash before appending
    if not resuming and previous:
        previous = []
        steplog.truncate(previous)
    run.steps = len(previous)
    run.episodes = sum(1 for row in previous if row.done)
    run.resumed_from = run.steps
    # Counted from the step log, not state.json: a killed process leaves the log complete
    # up to its last step but state.json as of its last checkpoint.
    run.trainings = run._trainings_start = sum(
        1 for row in previous if not row.cache_hit and row.status != "out_of_range"
    )
    run.best_accuracy = max((r.accuracy for r in previous if r.status == "ok"), default=0.0)
    log.info(
        "%s run in %s: agent %s, budget %s",
        "resuming" if resuming else "starting",
        run.output,
        config.get("run", "agent"),
        f"{run.budget_episodes} episodes" if run.budget_episodes else f"{run.budget_steps} steps",
    )

    env = _make_env(config, run.plugin_manager, seed)
    run.evaluator = _evaluator(env)
    run._trainings_before = int(getattr(run.evaluator, "trainings", 0))
    tasks = str(config.get("run", "tasks"))
    if tasks:
        from nasframe.wrappers import TaskSchedule, parse_schedule

        env = TaskSchedule(
            env, parse_schedule(tasks), start_step=run.steps, known_tasks=_known_tasks(env)
        )
    if bool(config.get("run", "meta_rl")):
        from nasframe.wrappers import MetaRLObservation

        env = MetaRLObservation(env)
    next_episode = (previous[-1].episode + 1) if previous else 1
    progress = _Progress(run, console, enabled=verbosity >= 1)

    def on_step(row: StepRow) -> None:
        if row.status == "ok":
            run.best_accuracy = max(run.best_accuracy, row.accuracy)
        _with_trainings(run)
        if verbosity >= 2:
            line = (
                f"step {row.step} episode {row.episode} task {row.task} action "
                f"{row.action_label} nsc {row.nsc or '-'} accuracy {row.accuracy:.4f} reward "
                f"{row.reward:.4f} status {row.status} cache_hit {row.cache_hit} "
                f"{row.seconds:.2f}s"
            )
            log.info(line)
            console.print(line, highlight=False, soft_wrap=True)
        progress.update()

    recorder = _StepRecorder(run, steplog, next_episode, on_step)
    agent_name = str(config.get("run", "agent"))
    if isinstance(env, gymnasium.vector.VectorEnv):
        _record_vector(env, recorder)
        run.env = env
        # Stable-Baselines3 agents drive a vector env through SB3's own VecEnv API.
        info = run.plugin_manager.registry("agent").get(agent_name)
        if "stable_baselines3" in info.requires:
            run.env = _distributed(int(config.get("run", "workers"))).to_sb3(env)
    else:
        run.env = _Recorder(env, recorder)
    try:
        agent = make_agent(
            agent_name,
            run.env,
            seed=seed,
            config=config,
            plugin_manager=run.plugin_manager,
        )
        checkpoint = run.output / f"agent{agent.checkpoint_suffix}"
        if resuming and checkpoint.is_file():
            agent.load(checkpoint)
            log.info("agent %s restored from %s", agent.name, checkpoint)
    except BaseException:
        run.env.close()  # Ray workers, files: nothing may outlive a failed start
        raise
    run.agent = agent

    checkpoint_every = int(config.get("run", "checkpoint_every"))

    saved_at = [run.steps]

    def callback() -> bool:
        if checkpoint_every and run.steps - saved_at[0] >= checkpoint_every:
            agent.save(checkpoint)
            _write_state(_with_trainings(run))
            saved_at[0] = run.steps
        return not (run.stop_requested or run.finished_budget)

    run.plugin_manager.hook.nasframe_run_started(run=run)
    restore = _install_signal_handlers(run)
    try:
        with progress:
            if not run.finished_budget:
                agent.learn(run.remaining_steps, callback)
        agent.save(checkpoint)
        run.outcome = "interrupted" if run.stop_requested else "completed"
        if run.outcome == "completed" and not run.finished_budget:
            run.outcome = "interrupted"
            run.stop_reason = run.stop_reason or "the agent stopped early"
    except BaseException:
        run.outcome = "failed"
        raise
    finally:
        restore()
        steplog.close()
        _with_trainings(run)
        _write_state(run)
        try:
            if run.outcome != "failed":
                _write_results(run, steplog.read(), console, verbosity)
        finally:
            run.plugin_manager.hook.nasframe_run_finished(run=run)
            agent.close()
            run.env.close()
    _report_end(run, console, verbosity, resume_command)
    return run


def _with_trainings(run: Run) -> Run:
    evaluator = run.evaluator
    if evaluator is not None:
        run.session_trainings = int(evaluator.trainings) - run._trainings_before
        run.session_hits = int(getattr(evaluator, "hits", 0))
    run.trainings = run._trainings_start + run.session_trainings
    return run


def _install_signal_handlers(run: Run) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the run after the step under way; a second SIGINT aborts."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if run.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without waiting
        run.request_stop(name)
        log.warning("%s received: stopping after the evaluation under way is stored", name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


class _Progress:
    """The rich progress bar: steps, episodes, best accuracy, cache hits, ETA."""

    def __init__(self, run: Run, console: Any, *, enabled: bool) -> None:
        self.run = run
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        unit = "episodes" if run.budget_episodes else "steps"
        self._progress = Progress(
            TextColumn("[bold]search"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        total = run.budget_episodes or run.budget_steps
        self._task = self._progress.add_task(
            "search", total=total, completed=self._completed(), detail=self._detail()
        )

    def _completed(self) -> int:
        return self.run.episodes if self.run.budget_episodes else self.run.steps

    def _detail(self) -> str:
        run = self.run
        other = f"ep {run.episodes}" if not run.budget_episodes else f"step {run.steps}"
        return (
            f"{other} best {run.best_accuracy:.3f} hits {run.session_hits} "
            f"trained {run.session_trainings}"
        )

    def update(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self._completed(), detail=self._detail())

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _write_results(run: Run, rows: list[StepRow], console: Any, verbosity: int) -> None:
    config = run.config
    top = int(config.get("run", "top"))
    summary = summarize(
        rows,
        outcome=run.outcome,
        stop_reason=run.stop_reason,
        agent=run.agent.name if run.agent is not None else str(config.get("run", "agent")),
        search_space=config.get("env", "search_space"),
        estimator=config.get("env", "estimator"),
        dataset=config.get("env", "dataset"),
        database=config.get("env", "database"),
        seed=config.get("run", "seed"),
        budget_steps=run.budget_steps,
        budget_episodes=run.budget_episodes,
        resumed_from_step=run.resumed_from,
        trainings=run.trainings,
        session_trainings=run.session_trainings,
        session_cache_hits=run.session_hits,
        finished=_now(),
        identity=_digest(identity_of(config)),
    )
    summary["best"] = best_architectures(rows, top=top)
    run.summary = summary
    write_summary(run.output / "summary.json", summary)
    if bool(config.get("run", "plots")) and rows:
        try:
            plot_rewards(rows, run.output / "rewards.png")
            if summary["best"]:
                best = summary["best"][0]
                plot_architecture(
                    best["nsc"],
                    run.output / "best_architecture.png",
                    title=f"best: {best['nsc']}  (accuracy {best['accuracy']:.4f})",
                )
        except PluginError as exc:
            log.warning("plots skipped: %s", exc)
            if verbosity >= 1:
                console.print(f"[yellow]plots skipped:[/] {exc}")
    if bool(config.get("run", "tensorboard")) and rows:
        write_tensorboard(rows, run.output / "tensorboard")
    if verbosity >= 1 and summary["best"]:
        console.print(best_table(summary["best"], title=f"Best architectures ({run.output})"))


def _report_end(run: Run, console: Any, verbosity: int, resume_command: str) -> None:
    summary = run.summary
    best = summary.get("best") or []
    line = (
        f"{run.outcome}: {run.steps} steps, {run.episodes} episodes, "
        f"{run.session_trainings} networks trained and {run.session_hits} cache hits this "
        f"session; best accuracy {run.best_accuracy:.4f}"
    )
    log.info(line)
    if verbosity >= 1 or run.outcome == "interrupted":
        console.print(line, highlight=False, soft_wrap=True)
        if best:
            top = best[0]
            console.print(
                f"best architecture: {top['nsc']} (accuracy {top['accuracy']:.4f}, "
                f"{top['params']:,} params)",
                highlight=False,
                soft_wrap=True,
            )
        console.print(f"results in {run.output}", highlight=False, soft_wrap=True)
    if run.outcome == "interrupted":
        command = resume_command or f"nasframe search --output {run.output}"
        message = f"stopped ({run.stop_reason}); resume with: {command}"
        log.info(message)
        console.print(message, highlight=False, soft_wrap=True)
