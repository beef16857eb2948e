"""The search loop: :func:`run_search` builds the parts and lets the agent learn.

It checks the configuration, claims (or resumes in) the output folder, builds the
environment and the agent, restores the agent's checkpoint when resuming, and lets it
learn (an ask/tell agent with ``[run] workers`` > 1: the asynchronous scheduler runs its
episodes) until the budget is spent or a signal asks it to stop; it checkpoints every
``[run] checkpoint_every`` steps, fires ``nasframe_run_started`` and
``nasframe_run_finished``, and writes the results whatever the outcome but ``failed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium

from nasframe.agents import AskTellAgent, make_agent
from nasframe.config import Config, check_components
from nasframe.env import NOT_EVALUATED
from nasframe.errors import ConfigError
from nasframe.nsc import network_label
from nasframe.results import StepLog, StepRow, best_scores
from nasframe.runlock import RunFolderLock, check_folder_path
from nasframe.search.environment import build_env, evaluator_of, known_tasks
from nasframe.search.output import (
    attach_log_file,
    discard_if_empty,
    prepare_output,
    write_state,
)
from nasframe.search.progress import ProgressBar
from nasframe.search.recording import Recorder, StepRecorder, record_vector
from nasframe.search.report import report_end, write_results
from nasframe.search.run import Run, with_trainings
from nasframe.search.settings import check_budget, check_installed, database_path
from nasframe.search.signals import install_signal_handlers

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["run_search"]

# The search's one logger name, whichever module of the package logs (search.log shows it).
log = logging.getLogger("nasframe.search")


def run_search(
    config: Config,
    *,
    plugin_manager: PluginManager | None = None,
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
            folder holding a different run (without ``force``), an output folder that
            cannot be created.
        FolderBusyError: another process is writing the output folder.
    """
    from rich.console import Console

    if plugin_manager is None:
        from nasframe.plugins import get_plugin_manager

        plugin_manager = get_plugin_manager()
    console = console or Console()
    steps, episodes = check_budget(config)
    output = Path(config.get("run", "output"))
    config = database_path(config, output)
    run = Run(
        config=config,
        output=output,
        plugin_manager=plugin_manager,
        budget_steps=steps,
        budget_episodes=episodes,
    )
    # Check the names first: a typo must not leave an output folder behind.
    check_folder_path(output, "[run] output")
    check_components(config, plugin_manager)
    check_installed(config, plugin_manager)
    # One writer per folder: locked before any file in it is moved, replaced or written,
    # held to the end of the run (the OS releases it if the process is killed).
    with RunFolderLock(output, hint="wait for it or choose another --output"):
        resuming = prepare_output(run, force, bool(config.get("run", "resume")))
        level = logging.getLogger("nasframe").level
        if int(config.get("run", "verbosity")) >= 1:
            console.print(_plan(config, plugin_manager, resuming), highlight=False, soft_wrap=True)
        handler = attach_log_file(output, int(config.get("run", "verbosity")))
        try:
            return _run(run, resuming, console, resume_command)
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                log.error("the run failed: %s", " ".join(str(exc).split()) or type(exc).__name__)
            discard_if_empty(output)
            raise
        finally:
            logging.getLogger("nasframe").removeHandler(handler)
            logging.getLogger("nasframe").setLevel(level)
            handler.close()


def _plan(config: Config, plugin_manager: Any, resuming: bool) -> str:
    """One line saying, before anything is built, what the search will do."""
    steps, episodes = check_budget(config)
    budget = f"{episodes} episodes" if episodes else f"{steps} steps"
    estimator = plugin_manager.estimators().get(str(config.get("env", "estimator")))
    settings = config.component_settings(estimator)
    epochs = f", {settings['epochs']} epochs" if "epochs" in settings else ""
    # Only options of the command that runs: `nasframe play` has --steps and --episodes
    # but no --estimator (it evaluates as the played run did).
    shorten = "--episodes N" if episodes else "--steps N"
    if config.get("run", "play"):
        hint = f"the bar shows an ETA; {shorten} shortens it"
    else:
        hint = f"the bar shows an ETA; {shorten} shortens it, --estimator proxy trains nothing"
    return (
        f"{'resuming' if resuming else 'starting'}: {budget} of agent "
        f"{config.get('run', 'agent')} on {config.get('env', 'dataset')}, every new network "
        f"evaluated by {estimator.name}{epochs}, into {config.get('run', 'output')} ({hint})"
    )


@dataclass
class _Session:
    """What one session of a run holds besides the :class:`Run` itself."""

    steplog: StepLog
    next_episode: int
    verbosity: int
    resuming: bool
    play: str = ""  # [run] play: the saved policy acts and is never saved back
    progress: ProgressBar | None = None
    checkpoint: Path | None = None
    scheduler: Any = None  # the AsyncScheduler of an asynchronous search, else None
    previous: list[StepRow] = field(default_factory=list)  # the step log of earlier sessions
    start_line: str = ""  # what the run says first, before anything is built


def _run(run: Run, resuming: bool, console: Any, resume_command: str) -> Run:
    """One session of the run, once its output folder is claimed and its log attached."""
    session = _restore(run, resuming)
    _build(run, session, console)
    assert run.agent is not None
    run.plugin_manager.hook.nasframe_run_started(run=run)
    restore = install_signal_handlers(run)
    try:
        _learn(run, session)
    except BaseException:
        run.outcome = "failed"
        raise
    finally:
        restore()
        _finish(run, session, console)
    report_end(run, console, session.verbosity, resume_command)
    return run


def _restore(run: Run, resuming: bool) -> _Session:
    """Read the step log of an earlier session (if resuming) and restore the counters."""
    config = run.config
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
        1 for row in previous if not row.cache_hit and row.status not in NOT_EVALUATED
    )
    run.invalid_untrained = run._invalid_start = sum(
        1 for row in previous if not row.cache_hit and row.status == "invalid"
    )
    run.best_accuracy = max(
        (r.accuracy for r in previous if r.status == "ok" and not r.measure), default=0.0
    )
    run.best_scores = best_scores(previous)
    budget = (
        f"{run.budget_episodes} episodes" if run.budget_episodes else f"{run.budget_steps} steps"
    )
    start = (
        f"{'resuming' if resuming else 'starting'} run in {run.output}: agent "
        f"{config.get('run', 'agent')}, estimator {config.get('env', 'estimator')}, budget {budget}"
    )
    next_episode = (previous[-1].episode + 1) if previous else 1
    return _Session(
        steplog,
        next_episode,
        int(config.get("run", "verbosity")),
        resuming,
        previous=previous,
        start_line=start,
    )


def _build(run: Run, session: _Session, console: Any) -> None:
    """Build the environment, the step recording and the agent (restored if resuming)."""
    config = run.config
    seed = int(config.get("run", "seed"))
    verbosity = session.verbosity
    # On the console run_search has already said what the run will do, before anything
    # is built (so before TensorFlow's start-up lines; issues 17 and 18); the log file
    # gets this line.
    log.info("%s", session.start_line)
    agent_name = str(config.get("run", "agent"))
    info = run.plugin_manager.agents().get(agent_name)
    session.play = str(config.get("run", "play"))
    # Playing a saved policy never learns, so never asks and tells: no async loop, and
    # no rollout whose rewards could wait: no pipeline.
    mode = choose_scheduler(config, info)
    asynchronous = mode == "async" and not session.play
    pipelined = mode == "pipelined" and not session.play
    workers = int(config.get("run", "workers"))
    if asynchronous:
        # One environment per open episode; at most 2 x workers episodes are open.
        env = build_env(config, run.plugin_manager, seed, num_envs=2 * workers)
    elif pipelined:
        # A vector env even with one worker (in-process): [run] envs, 0 as many as workers.
        count = int(config.get("run", "envs")) or workers
        env = build_env(config, run.plugin_manager, seed, num_envs=count)
        env.enable_pipeline()
        log.info(
            "pipelined search: %d worker(s), %d environments, rewards added at rollout end",
            workers,
            count,
        )
    else:
        env = build_env(config, run.plugin_manager, seed)
    run.evaluator = evaluator_of(env)
    run._trainings_before = int(getattr(run.evaluator, "trainings", 0))
    tasks = str(config.get("run", "tasks"))
    if tasks:
        from nasframe.env.wrappers import TaskSchedule, parse_schedule

        env = TaskSchedule(
            env, parse_schedule(tasks), start_step=run.steps, known_tasks=known_tasks(env)
        )
    if bool(config.get("run", "meta_rl")):
        from nasframe.env.wrappers import MetaRLObservation

        env = MetaRLObservation(env)
    progress = session.progress = ProgressBar(run, console, enabled=verbosity >= 1)

    def on_step(row: StepRow) -> None:
        if row.status == "ok" and row.measure:
            run.best_scores[row.measure] = max(
                run.best_scores.get(row.measure, row.accuracy), row.accuracy
            )
        elif row.status == "ok":
            run.best_accuracy = max(run.best_accuracy, row.accuracy)
        with_trainings(run)
        if verbosity >= 2:
            line = (
                f"step {row.step} episode {row.episode} task {row.task} action "
                f"{row.action_label} nsc {network_label(row.nsc)} {row.label} {row.accuracy:.4f} "
                f"reward {row.reward:.4f} status {row.status} cache_hit {row.cache_hit} "
                f"{row.seconds:.2f}s"
            )
            log.info(line)
            console.print(line, highlight=False, soft_wrap=True)
        progress.update()

    recorder = StepRecorder(run, session.steplog, session.next_episode, on_step)
    agent_env: Any = env
    if isinstance(env, gymnasium.vector.VectorEnv):
        record_vector(env, recorder)
        run.env = env  # an agent adapts it to its library's API itself (SB3's VecEnv)
        # asynchronous: the agent reads one episode's env; the scheduler steps them all
        agent_env = agent_env_list(env)[0] if asynchronous else env
    else:
        run.env = agent_env = Recorder(env, recorder)
    try:
        agent = make_agent(
            agent_name,
            agent_env,
            seed=seed,
            config=config,
            plugin_manager=run.plugin_manager,
        )
        session.checkpoint = run.output / f"agent{agent.checkpoint_suffix}"
        restored = False
        if session.play:  # nasframe play: the saved policy acts and is never saved back
            _load_policy(agent, Path(session.play))
        elif session.resuming and session.checkpoint.is_file():
            restored = True
            agent.load(session.checkpoint)
            log.info("agent %s restored from %s", agent.name, session.checkpoint)
        if (
            session.previous
            and not session.play
            and not isinstance(env, gymnasium.vector.VectorEnv)
        ):
            # Continue from the agent's checkpoint, its open episode restored (recording.py).
            recorder.resume(session.previous, agent.num_timesteps if restored else 0)
        if asynchronous:
            if not isinstance(agent, AskTellAgent):
                raise ConfigError(
                    f"[run] scheduler = async needs an ask/tell agent; agent {agent.name!r} "
                    "has no ask() and tell() (use scheduler = lockstep or auto)"
                )
            from nasframe.distributed.scheduler import AsyncScheduler

            session.scheduler = AsyncScheduler(
                agent_env_list(env), run.evaluator, agent, workers=workers
            )
            log.info(
                "asynchronous search: %d worker(s), at most %d episodes open",
                workers,
                len(agent_env_list(env)),
            )
    except BaseException:
        run.env.close()  # Ray workers, files: nothing may outlive a failed start
        raise
    run.agent = agent


def _learn(run: Run, session: _Session) -> None:
    """Let the agent learn (or the scheduler run it) until the budget or a stop."""
    agent, checkpoint = run.agent, session.checkpoint
    assert agent is not None and checkpoint is not None and session.progress is not None
    checkpoint_every = int(run.config.get("run", "checkpoint_every"))
    saved_at = [run.steps]

    def callback() -> bool:
        if checkpoint_every and run.steps - saved_at[0] >= checkpoint_every:
            if not session.play:
                agent.save(checkpoint)
            write_state(with_trainings(run))
            saved_at[0] = run.steps
        return not (run.stop_requested or run.finished_budget)

    with session.progress:
        if run.finished_budget:
            pass
        elif session.scheduler is not None:
            session.scheduler.run(
                steps=None if run.budget_episodes else run.remaining_steps,
                episodes=(run.budget_episodes - run.episodes) if run.budget_episodes else None,
                should_stop=lambda: not callback(),
            )
        else:
            act = agent.play if session.play else agent.learn
            act(run.remaining_steps, callback)
    if not session.play:
        agent.save(checkpoint)
    run.outcome = "interrupted" if run.stop_requested else "completed"
    if run.outcome == "completed" and not run.finished_budget:
        run.outcome = "interrupted"
        run.stop_reason = run.stop_reason or "the agent stopped early"


def _finish(run: Run, session: _Session, console: Any) -> None:
    """Write the state and the results (unless failed), fire the hook, close everything."""
    session.steplog.close()
    with_trainings(run)
    write_state(run)
    try:
        if run.outcome != "failed":
            write_results(run, session.steplog.read(), console, session.verbosity)
    finally:
        run.plugin_manager.hook.nasframe_run_finished(run=run)
        if run.agent is not None:
            run.agent.close()
        run.env.close()


def choose_scheduler(config: Config, info: Any) -> str:
    """``async``, ``pipelined``, ``lockstep`` or ``serial``: how the search runs its agent.

    ``[run] scheduler = auto`` runs an ask/tell agent (its registered factory is a class
    with ``ask`` and ``tell``) asynchronously when ``[run] workers`` > 1, every other
    agent in lockstep; ``async`` insists (also with one worker, in-process).
    ``pipelined`` (opt-in) steps an on-policy learner's vector env without waiting for
    the evaluations, its rewards added at the rollout's end (the agent's registered
    factory says it can with a true ``pipelined`` attribute: the Stable-Baselines3 PPO,
    A2C, recurrent PPO and MaskablePPO); also with one worker, in-process.

    Raises:
        ConfigError: ``async`` or ``pipelined`` with the meta-RL wrappers, ``async``
            with an agent without ask/tell, ``pipelined`` with one that cannot.
    """
    workers = int(config.get("run", "workers"))
    chosen = str(config.get("run", "scheduler"))
    factory = info.factory
    if chosen == "pipelined":
        if not getattr(factory, "pipelined", False):
            raise ConfigError(
                f"[run] scheduler = pipelined needs an on-policy learner (ppo, a2c, "
                f"recurrent-ppo, maskable-ppo); agent {info.name!r} is not one (an "
                "off-policy learner such as dqn samples rewards during the rollout); use "
                "scheduler = lockstep or auto"
            )
        for key in ("meta_rl", "tasks"):
            if config.get("run", key):
                raise ConfigError(
                    f"[run] scheduler = pipelined does not work with [run] {key} (the "
                    "meta-RL wrappers work on one environment); use scheduler = lockstep"
                )
        return "pipelined"
    ask_tell = isinstance(factory, type) and all(
        callable(getattr(factory, name, None)) for name in ("ask", "tell")
    )
    if chosen == "async":
        if not ask_tell:
            raise ConfigError(
                f"[run] scheduler = async needs an ask/tell agent; agent {info.name!r} has "
                "no ask() and tell() (use scheduler = lockstep or auto)"
            )
        for key in ("meta_rl", "tasks"):
            if config.get("run", key):
                raise ConfigError(
                    f"[run] scheduler = async does not work with [run] {key} (the meta-RL "
                    "wrappers work on one environment); use scheduler = lockstep"
                )
        return "async"
    if workers <= 1:
        return "serial"
    if chosen == "auto" and ask_tell:
        return "async"
    return "lockstep"


def agent_env_list(env: Any) -> list[Any]:
    """The environments of a ``NASVectorEnv`` (one per open episode of an async search)."""
    return list(env.envs)


def _load_policy(agent: Any, path: Path) -> None:
    """Load the saved agent ``nasframe play`` runs (``[run] play``); check it can play."""
    from nasframe.agents import Agent

    if type(agent).play is Agent.play:
        raise ConfigError(
            f"[run] play: agent {agent.name!r} cannot play (run a saved policy without "
            "learning): it does not implement Agent.play"
        )
    if not path.is_file():
        raise ConfigError(f"[run] play: {path}: no such saved agent file")
    agent.load(path)
    log.info("agent %s loaded from %s to play (no learning)", agent.name, path)
