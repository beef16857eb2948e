"""The search loop: :func:`run_search` builds the parts and lets the agent learn.

It checks the configuration, claims (or resumes in) the output folder, builds the
environment and the agent, restores the agent's checkpoint when resuming, and lets it
learn until the budget is spent or a signal asks it to stop; it checkpoints every
``[run] checkpoint_every`` steps, fires ``nasframe_run_started`` and
``nasframe_run_finished``, and writes the results whatever the outcome but ``failed``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium

from nasframe.agents import make_agent
from nasframe.config import Config, check_components
from nasframe.results import StepLog, StepRow
from nasframe.search.environment import build_env, evaluator_of, known_tasks
from nasframe.search.output import attach_log_file, prepare_output, write_state
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
            folder holding a different run (without ``force``).
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
    check_components(config, plugin_manager)
    check_installed(config, plugin_manager)
    resuming = prepare_output(run, force, bool(config.get("run", "resume")))
    level = logging.getLogger("nasframe").level
    handler = attach_log_file(output, int(config.get("run", "verbosity")))
    try:
        return _run(run, resuming, console, resume_command)
    finally:
        logging.getLogger("nasframe").removeHandler(handler)
        logging.getLogger("nasframe").setLevel(level)
        handler.close()


def _run(run: Run, resuming: bool, console: Any, resume_command: str) -> Run:
    """One session of the run, once its output folder is claimed and its log attached."""
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

    env = build_env(config, run.plugin_manager, seed)
    run.evaluator = evaluator_of(env)
    run._trainings_before = int(getattr(run.evaluator, "trainings", 0))
    tasks = str(config.get("run", "tasks"))
    if tasks:
        from nasframe.wrappers import TaskSchedule, parse_schedule

        env = TaskSchedule(
            env, parse_schedule(tasks), start_step=run.steps, known_tasks=known_tasks(env)
        )
    if bool(config.get("run", "meta_rl")):
        from nasframe.wrappers import MetaRLObservation

        env = MetaRLObservation(env)
    next_episode = (previous[-1].episode + 1) if previous else 1
    progress = ProgressBar(run, console, enabled=verbosity >= 1)

    def on_step(row: StepRow) -> None:
        if row.status == "ok":
            run.best_accuracy = max(run.best_accuracy, row.accuracy)
        with_trainings(run)
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

    recorder = StepRecorder(run, steplog, next_episode, on_step)
    agent_name = str(config.get("run", "agent"))
    if isinstance(env, gymnasium.vector.VectorEnv):
        record_vector(env, recorder)
        run.env = env  # an agent adapts it to its library's API itself (SB3's VecEnv)
    else:
        run.env = Recorder(env, recorder)
    try:
        agent = make_agent(
            agent_name,
            run.env,
            seed=seed,
            config=config,
            plugin_manager=run.plugin_manager,
        )
        checkpoint = run.output / f"agent{agent.checkpoint_suffix}"
        play = str(config.get("run", "play"))
        if play:  # nasframe play: the saved policy acts and is never saved back
            _load_policy(agent, Path(play))
        elif resuming and checkpoint.is_file():
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
            if not play:
                agent.save(checkpoint)
            write_state(with_trainings(run))
            saved_at[0] = run.steps
        return not (run.stop_requested or run.finished_budget)

    run.plugin_manager.hook.nasframe_run_started(run=run)
    restore = install_signal_handlers(run)
    try:
        with progress:
            if not run.finished_budget:
                act = agent.play if play else agent.learn
                act(run.remaining_steps, callback)
        if not play:
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
        with_trainings(run)
        write_state(run)
        try:
            if run.outcome != "failed":
                write_results(run, steplog.read(), console, verbosity)
        finally:
            run.plugin_manager.hook.nasframe_run_finished(run=run)
            agent.close()
            run.env.close()
    report_end(run, console, verbosity, resume_command)
    return run


def _load_policy(agent: Any, path: Path) -> None:
    """Load the saved agent ``nasframe play`` runs (``[run] play``); check it can play."""
    from nasframe.agents import Agent
    from nasframe.errors import ConfigError

    if type(agent).play is Agent.play:
        raise ConfigError(
            f"[run] play: agent {agent.name!r} cannot play (run a saved policy without "
            "learning): it does not implement Agent.play"
        )
    if not path.is_file():
        raise ConfigError(f"[run] play: {path}: no such saved agent file")
    agent.load(path)
    log.info("agent %s loaded from %s to play (no learning)", agent.name, path)
