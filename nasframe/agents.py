"""The search-agent contract: what drives a search environment.

An agent is whatever chooses the actions -- uniform random search, a Stable-Baselines3
algorithm, a hand-written Q-learner. Agents are plugins: a plugin adds a factory in its
``nasframe_register_agents`` hook, and the core builds the agent by name::

    @nasframe.hookimpl
    def nasframe_register_agents(registry):
        registry.add("qlearning-v1", QLearningAgent, summary="tabular Q-learning",
                     section="qlearning")

The factory is called as ``factory(env, *, seed=seed, **settings)``, where ``settings``
are the values of the component's configuration section, and returns an :class:`Agent`.

The contract is small on purpose, so that any learner fits:

* :meth:`Agent.learn` runs the agent in its environment for at most ``total_steps``
  environment steps and calls ``callback()`` after *every* step; a ``False`` return
  stops it right there. The search loop uses this to stop on a budget, on Ctrl-C or on
  a number of episodes -- the agent does not need to know why.
* :meth:`Agent.save` writes a checkpoint file and :meth:`Agent.load` restores one into an
  agent built for the same environment, so a stopped search resumes where it stopped.
* :meth:`Agent.play` (optional) acts like :meth:`Agent.learn` but learns nothing:
  ``nasframe play`` runs a saved policy with it.

What happened in each step is recorded by the search loop with a Gymnasium wrapper
around the environment, not by the agent, so every agent is observed the same way.

**Parallel evaluation.** With ``[run] workers`` > 1 the environment is a vector env that
steps several episodes at once (``nasframe.distributed``). An agent then gets a
``gymnasium.vector.VectorEnv`` (a ``nasframe.distributed.NASVectorEnv``), and a step of
it counts as one step per sub-environment; an agent of a library with its own vector API
adapts it itself (the Stable-Baselines3 agents use ``NASVectorEnv.step_envs``). An
agent that only handles single environments should raise
:class:`~nasframe.errors.ConfigError` for a vector env.

**Asynchronous search (ask/tell).** An agent that can propose a whole episode before it
sees any of its rewards also implements :class:`AskTellAgent` -- ``ask()`` and
``tell(actions, reward)`` -- besides :class:`Agent`. With ``[run] workers`` > 1 the
search then keeps the workers busy without lockstep: many episodes are open at once,
each asked of the agent and told when its architecture's evaluation returns
(``nasframe.search.asynchronous``). Such an agent still needs :meth:`Agent.learn` for
the serial search; it gets the environment of one episode at construction, and should
only read it (its spaces, its ``unwrapped.search_space`` and ``max_steps``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nasframe.errors import ConfigError, PluginError

if TYPE_CHECKING:
    import gymnasium

    from nasframe.config import Config
    from nasframe.plugins import PluginManager

__all__ = ["Agent", "AskTellAgent", "StepCallback", "make_agent"]

#: Called after every environment step; returning ``False`` stops :meth:`Agent.learn`.
StepCallback = Callable[[], bool]


class Agent(abc.ABC):
    """A search agent: chooses actions in an environment and learns from the rewards.

    Args:
        env: the Gymnasium environment to search (possibly wrapped).
        seed: seeds every random choice of the agent; ``None`` for unseeded.

    Attributes:
        name: the registered component name, set by :func:`make_agent`.
        checkpoint_suffix: the file suffix of :meth:`save`'s checkpoint.
    """

    name: str = ""
    checkpoint_suffix: str = ".zip"

    def __init__(self, env: gymnasium.Env[Any, Any], *, seed: int | None = None) -> None:
        self.env = env
        self.seed = seed

    @abc.abstractmethod
    def learn(self, total_steps: int, callback: StepCallback | None = None) -> int:
        """Act and learn for at most ``total_steps`` environment steps.

        Calling ``learn`` again continues where the last call stopped (a new episode may
        start).

        Args:
            total_steps: the most environment steps to take in this call (>= 1).
            callback: called after every step; ``False`` stops learning at once.

        Returns:
            The environment steps actually taken in this call.
        """

    @abc.abstractmethod
    def save(self, path: Path) -> Path:
        """Write a checkpoint of everything :meth:`load` needs to continue.

        Args:
            path: the checkpoint file (its suffix should be :attr:`checkpoint_suffix`).

        Returns:
            The file written.
        """

    @abc.abstractmethod
    def load(self, path: Path) -> None:
        """Restore the checkpoint at ``path`` into this agent (same environment spaces).

        Raises:
            NasframeError: the file is missing, corrupt or from another kind of agent.
        """

    def play(self, total_steps: int, callback: StepCallback | None = None) -> int:
        """Act for at most ``total_steps`` steps with the current policy, learning nothing.

        What ``nasframe play`` runs after :meth:`load`: the policy's weights, buffers and
        optimizer stay exactly as loaded. Optional; the default refuses.

        Raises:
            ConfigError: the agent cannot act without learning.
        """
        raise ConfigError(
            f"agent {self.name or type(self).__name__!r} cannot play (run a saved policy "
            "without learning): it does not implement Agent.play"
        )

    @property
    @abc.abstractmethod
    def num_timesteps(self) -> int:
        """Environment steps taken over the agent's whole life, checkpoints included."""

    def close(self) -> None:  # noqa: B027 -- optional hook, empty by design
        """Free what the agent holds (threads, files)."""


@runtime_checkable
class AskTellAgent(Protocol):
    """An agent that runs asynchronously: it proposes episodes and is told their rewards.

    Implemented besides :class:`Agent` (duck-typed: an agent need not import this class;
    ``isinstance(agent, nasframe.AskTellAgent)`` checks that both methods exist). The
    asynchronous search calls ``ask`` for every new episode, applies the actions in order
    from ``env.reset()`` on an environment of its own, and calls ``tell`` once the episode
    has ended -- while other episodes, asked before or after, are still under way.
    """

    def ask(self) -> list[int]:
        """The actions of one whole episode, applied in order from ``env.reset()``.

        The list may end with the terminal action or run to ``max_steps`` actions; the
        episode may end earlier (a failed evaluation, a pointer out of range, a full
        network), and the actions after its end are not applied.
        """
        ...

    def tell(self, actions: list[int], reward: float) -> None:
        """The reward of the architecture an asked episode built.

        Args:
            actions: the actions actually applied (a prefix of what :meth:`ask` gave).
            reward: the reward of the episode's last step.
        """
        ...


def make_agent(
    name: str,
    env: gymnasium.Env[Any, Any],
    *,
    seed: int | None = None,
    config: Config | None = None,
    plugin_manager: PluginManager | None = None,
    **settings: Any,
) -> Agent:
    """Build the agent registered as ``name`` (with or without its ``-vN`` suffix).

    Args:
        name: the agent's registered name, e.g. ``"random"`` or ``"ppo-v1"``.
        env: the environment it searches.
        seed: the agent's seed.
        config: a configuration holding the agent's section (its settings); the
            section's declared defaults are used when it is ``None``.
        plugin_manager: the plugin manager whose agents are known; a fresh one by default.
        settings: values that win over the configuration section.

    Raises:
        RegistryError: no agent has that name; the message lists the known ones.
        PluginError: the agent needs an extra that is not installed; the message gives
            the pip command.
        ConfigError: the factory rejects a setting.
        PluginError: the factory built something that is not an :class:`Agent`.
    """
    from nasframe import compose

    manager = compose.manager(plugin_manager)
    info = manager.agents().get(name)
    if config is None:
        config, _ = compose.configuration(None, manager) if info.section else (None, False)
    try:
        if config is None:
            agent = manager.agents().create(info.name, env, seed=seed, **settings)
        else:
            agent = compose.create(
                "agent",
                info.name,
                config,
                manager,
                env,
                overrides={"seed": seed, **settings},
                undeclared_ok=True,
            )
    except TypeError as exc:
        raise ConfigError(f"agent {info.name!r} rejected its settings: {exc}") from None
    if not isinstance(agent, Agent):
        raise PluginError(
            f"agent {info.name!r} of plugin {info.plugin!r} built a "
            f"{type(agent).__name__}, not a nasframe Agent"
        )
    agent.name = info.name
    return agent
