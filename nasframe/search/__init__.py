"""Running a search: an agent, an environment, a budget, an output folder.

:func:`run_search` is what ``nasframe search`` runs. It builds the environment from the
configuration (``nasframe.make_env``; Ray's parallel environment with ``[run] workers``
> 1), wraps it for meta-RL if asked, builds the agent by name, and lets the agent learn
until the budget of steps or episodes is spent -- or until Ctrl-C/SIGTERM. With
``[run] workers`` > 1 an ask/tell agent (``nasframe.AskTellAgent``) is run by the
asynchronous scheduler (``nasframe.distributed.scheduler``) instead of ``learn``.

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

The package's modules:

- :mod:`~nasframe.search.loop`: :func:`run_search` and one session of a run in four
  phases -- restore (the step log, the counters), build (environment, recording, agent),
  learn (``agent.learn`` or the asynchronous scheduler), finish (state, results, close).
- :mod:`~nasframe.search.run`: the :class:`Run` record handed to the run hooks.
- :mod:`~nasframe.search.settings`: checks of the configuration before anything is
  built (the budget, the components' extras) and the database's default path.
- :mod:`~nasframe.search.identity`: :func:`identity_of`, what makes two runs the same.
- :mod:`~nasframe.search.output`: the output folder: claim, resume or move aside;
  ``run.json``, ``state.json``, ``search.log``.
- :mod:`~nasframe.search.environment`: building the environment (one ``NASEnv`` or
  Ray's ``NASVectorEnv``).
- :mod:`~nasframe.search.recording`: every environment step to a row of ``steps.csv``.
- :mod:`~nasframe.search.signals`: SIGINT/SIGTERM stop the run after the step under way.
- :mod:`~nasframe.search.progress`: the progress bar.
- :mod:`~nasframe.search.report`: the results at the end (``summary.json``, plots,
  TensorBoard, the best table) and the closing lines.

The public names are the ones below; the modules' other names serve the package.
"""

from __future__ import annotations

from nasframe.search.identity import identity_of
from nasframe.search.loop import run_search
from nasframe.search.run import Run

__all__ = ["Run", "identity_of", "run_search"]
