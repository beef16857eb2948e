"""nasframe's default search agents: random search and Stable-Baselines3 learners.

* ``random-v1`` -- uniform random action ids (NASGym's random-search baseline); no extra.
* ``ppo-v1``, ``a2c-v1``, ``dqn-v1`` -- Stable-Baselines3 (extra ``rl``).
* ``recurrent-ppo-v1`` -- sb3-contrib's recurrent PPO with an LSTM policy, the meta-RL
  learner (extra ``rl``; use it with ``[run] meta_rl = true``, see ``docs/meta-rl.md``).
* ``maskable-ppo-v1`` -- sb3-contrib's MaskablePPO: it samples only actions the env's
  ``action_masks()`` allows (extra ``rl``).

Each learner reads its settings from the configuration section named after it
(``[ppo]``, ``[a2c]``, ``[dqn]``, ``[recurrent_ppo]``, ``[maskable_ppo]``, ``[random]``).
Stable-Baselines3 is imported only when such an agent is built, so listing plugins stays fast.

A Stable-Baselines3 agent given a vector env (``[run] workers`` > 1) drives it through
its own ``VecEnv`` view, :func:`to_sb3` (``nasframe_agents.vec_env``).
"""

from __future__ import annotations

import nasframe
from nasframe_agents.random_agent import RandomAgent
from nasframe_agents.sb3 import ALGORITHMS, declare_sb3_config, sb3_factory
from nasframe_agents.vec_env import to_sb3

__all__ = ["RandomAgent", "nasframe_add_config", "nasframe_register_agents", "to_sb3"]

_RL = ("stable_baselines3", "torch")


@nasframe.hookimpl(trylast=True)
def nasframe_register_agents(registry: nasframe.Registry) -> None:
    """Register ``random-v1`` and the Stable-Baselines3 agents."""
    registry.add(
        "random-v1",
        RandomAgent,
        summary="uniform random action ids (random search)",
        section="random",
    )
    for name, spec in ALGORITHMS.items():
        requires = _RL + (("sb3_contrib",) if spec.contrib else ())
        registry.add(
            f"{name}-v1",
            sb3_factory(name),
            summary=spec.summary,
            section=spec.section,
            requires=requires,
            extra="rl",
        )


@nasframe.hookimpl(trylast=True)
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare ``[random]`` and one section per Stable-Baselines3 agent."""
    schema.section("random", "Random search: uniform random action ids.")
    declare_sb3_config(schema)
