"""Every hook of nasframe, grouped by phase. Each docstring is the reference documentation.

Plugins implement hooks with the :data:`nasframe.hookimpl` marker; a plugin may accept
fewer arguments than a spec lists (so specs can grow). Hooks are called with keyword
arguments only.

Phases:

1. **Registration** -- called once per plugin manager, when components are first needed:
   each plugin adds factories for its components to a typed :class:`~nasframe.registry.Registry`.
2. **Configuration** -- called once when a configuration is loaded: plugins declare their
   configuration keys so the core can validate them.
3. **Events** -- called while a search runs; observers only, return values are ignored.

Order: every implementation of a hook is called (no hook is ``firstresult``); installed
plugins run before the default plugins, whose implementations are ``trylast=True``.
Within the registration hooks that order decides nothing by itself -- two plugins
registering one name is an error unless one passes ``replace=True`` (see
:class:`~nasframe.registry.Registry`).

Registration hooks are called through pluggy one plugin at a time (so the registry knows
which plugin added what): a ``wrapper=True`` (or old-style ``hookwrapper=True``)
implementation wraps its own plugin's registration -- it runs before and after that
plugin's plain implementations, and may register, inspect or veto there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from nasframe.agents import Agent
    from nasframe.config.schema import ConfigSchema
    from nasframe.contracts import (
        DatasetHandler,
        ExperimentDB,
        NetworkBuilder,
        PerformanceEstimator,
        Record,
        SearchSpace,
        StateEncoder,
    )
    from nasframe.env import Episode
    from nasframe.registry import Registry
    from nasframe.search.run import Run

__all__ = ["hookspec"]

#: The marker for hook specifications (the host side).
hookspec = pluggy.HookspecMarker("nasframe")


# -- registration ----------------------------------------------------------------------


@hookspec
def nasframe_register_search_spaces(registry: Registry[SearchSpace]) -> None:
    """Add search-space factories to ``registry``.

    Fires once per plugin manager, the first time components are needed.

    Args:
        registry: the search-space registry. Each factory is called with the settings of
            its configuration section as keyword arguments and returns a
            :class:`~nasframe.contracts.SearchSpace`.

    Returns:
        Nothing; results are ignored.
    """


@hookspec
def nasframe_register_state_encoders(registry: Registry[StateEncoder]) -> None:
    """Add state-encoder factories to ``registry``.

    Fires once per plugin manager, the first time components are needed.

    Args:
        registry: the state-encoder registry. Each factory is called as
            ``factory(space, **settings)`` with the built
            :class:`~nasframe.contracts.SearchSpace` and returns a
            :class:`~nasframe.contracts.StateEncoder`.

    Returns:
        Nothing; results are ignored.
    """


@hookspec
def nasframe_register_estimators(registry: Registry[PerformanceEstimator]) -> None:
    """Add performance-estimator factories to ``registry``.

    Fires once per plugin manager, the first time components are needed.

    Args:
        registry: the estimator registry. Each factory is called with the settings of its
            configuration section as keyword arguments and returns a
            :class:`~nasframe.contracts.PerformanceEstimator`.

    Returns:
        Nothing; results are ignored.
    """


@hookspec
def nasframe_register_datasets(registry: Registry[DatasetHandler]) -> None:
    """Add dataset-handler factories to ``registry``.

    Fires once per plugin manager, the first time components are needed.

    Args:
        registry: the dataset registry. Each factory is called with the settings of its
            configuration section as keyword arguments and returns a
            :class:`~nasframe.contracts.DatasetHandler`.

    Returns:
        Nothing; results are ignored.
    """


@hookspec
def nasframe_register_experiment_dbs(registry: Registry[ExperimentDB]) -> None:
    """Add experiment-database factories to ``registry``.

    Fires once per plugin manager, the first time components are needed.

    Args:
        registry: the database registry. Each factory is called with the settings of its
            configuration section as keyword arguments (``path`` among them) and returns
            an :class:`~nasframe.contracts.ExperimentDB`.

    Returns:
        Nothing; results are ignored.
    """


@hookspec
def nasframe_register_agents(registry: Registry[Agent]) -> None:
    """Add search-agent factories (random search, RL algorithms) to ``registry``.

    Fires once per plugin manager, the first time components are needed.

    Args:
        registry: the agent registry. Each factory is called as
            ``factory(env, **settings)`` with the Gymnasium environment to search and
            returns an agent (see ``nasframe.agents``).

    Returns:
        Nothing; results are ignored.
    """


@hookspec
def nasframe_register_builders(registry: Registry[NetworkBuilder]) -> None:
    """Add network-builder factories (NSC -> an untrained network) to ``registry``.

    Fires once per plugin manager, the first time components are needed. An estimator
    that builds networks (``keras-v1``) names its builder in its configuration section
    (``[keras] builder``); the composition builds that builder and hands it to the
    estimator, so a new network shape needs a builder, not a new training loop.

    Args:
        registry: the builder registry. Each factory is called with the settings of its
            configuration section as keyword arguments and returns a
            :class:`~nasframe.contracts.NetworkBuilder`, whose ``build(architecture,
            input_shape, num_classes, settings)`` returns an uncompiled model of the
            estimator's framework (a ``keras.Model`` for ``keras-v1``) and whose
            ``fingerprint()`` goes into the estimator's fingerprint.

    Returns:
        Nothing; results are ignored.
    """


# -- configuration -----------------------------------------------------------------------


@hookspec
def nasframe_add_config(schema: ConfigSchema) -> None:
    """Declare this plugin's configuration sections and keys on ``schema``.

    Fires once per configuration load, before the file is validated, so that the core
    can reject unknown keys, wrong types and out-of-range values in every section.

    Args:
        schema: call ``schema.section(name, description)`` and then ``.add(key, type,
            default, description, ...)`` on the returned section.

    Returns:
        Nothing; results are ignored.
    """


# -- events --------------------------------------------------------------------------------


@hookspec
def nasframe_run_started(run: Run) -> None:
    """A search run started.

    Args:
        run: the :class:`nasframe.Run`: its configuration, output folder and
            components.

    Returns:
        Nothing; results are ignored. An exception stops the run with one line naming
        the plugin and the hook (``error: plugin 'x' failed in HOOK: ...``; the
        traceback with ``--debug``).
    """


@hookspec
def nasframe_evaluation_stored(record: Record) -> None:
    """An evaluation was stored in the experiment database (cache hits do not fire).

    Args:
        record: the stored :class:`~nasframe.contracts.Record`.

    Returns:
        Nothing; results are ignored. An exception stops the run with one line naming
        the plugin and the hook (``error: plugin 'x' failed in HOOK: ...``; the
        traceback with ``--debug``).
    """


@hookspec
def nasframe_episode_ended(episode: Episode) -> None:
    """An episode of the environment ended (terminated or truncated).

    Args:
        episode: a :class:`nasframe.Episode`: the final NSC, the steps, the rewards and
            the best accuracy of the episode.

    Returns:
        Nothing; results are ignored. An exception stops the run with one line naming
        the plugin and the hook (``error: plugin 'x' failed in HOOK: ...``; the
        traceback with ``--debug``).
    """


@hookspec
def nasframe_run_finished(run: Run) -> None:
    """A search run finished, was interrupted, or failed.

    Args:
        run: the :class:`nasframe.Run`; ``run.outcome`` says how it ended.

    Returns:
        Nothing; results are ignored. An exception stops the run with one line naming
        the plugin and the hook (``error: plugin 'x' failed in HOOK: ...``; the
        traceback with ``--debug``).
    """
