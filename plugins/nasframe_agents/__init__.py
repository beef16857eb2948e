"""nasframe's default search agents: random search, black-box baselines, SB3 learners.

* ``random-v1`` -- uniform random action ids (NASGym's random-search baseline); no extra.
* ``rea-v1`` -- regularized evolution over episodes' action sequences (the NAS-Bench-101
  baseline); no extra.
* ``tpe-v1`` -- Optuna's TPE over episodes' action sequences (extra ``optuna``).
* ``reinforce-v1`` -- REINFORCE with one softmax per position of an episode and a
  moving-average baseline (the NAS-Bench-201 RL baseline); plain NumPy, no extra.
* ``qlearning-v1`` -- tabular Q-learning, epsilon-greedy, layer by layer, with experience
  replay (BlockQNN's and MetaQNN's agent); plain NumPy, no extra.
* ``ppo-v1``, ``a2c-v1``, ``dqn-v1`` -- Stable-Baselines3 (extra ``rl``).
* ``recurrent-ppo-v1`` -- sb3-contrib's recurrent PPO with an LSTM policy, the meta-RL
  learner (extra ``rl``; use it with ``[run] meta_rl = true``, see ``docs/meta-rl.md``).
* ``maskable-ppo-v1`` -- sb3-contrib's MaskablePPO: it samples only actions the env's
  ``action_masks()`` allows (extra ``rl``).

Each learner reads its settings from the configuration section named after it
(``[ppo]``, ``[a2c]``, ``[dqn]``, ``[recurrent_ppo]``, ``[maskable_ppo]``, ``[random]``,
``[rea]``, ``[tpe]``, ``[reinforce]``, ``[qlearning]``). ``rea-v1``, ``tpe-v1``,
``reinforce-v1`` and ``qlearning-v1`` also
offer ``ask()``/``tell()`` (one whole episode per proposal), so a scheduler can run their
episodes asynchronously.
Stable-Baselines3 is imported only when such an agent is built, so listing plugins stays
fast.

A Stable-Baselines3 agent given a vector env (``[run] workers`` > 1) drives it through
its own ``VecEnv`` view, :func:`to_sb3` (``nasframe_agents.vec_env``).
"""

from __future__ import annotations

import nasframe
from nasframe_agents.evolution import RegularizedEvolution
from nasframe_agents.qlearning import QLearning
from nasframe_agents.random_agent import RandomAgent
from nasframe_agents.reinforce import Reinforce
from nasframe_agents.sb3 import ALGORITHMS, declare_sb3_config, sb3_factory
from nasframe_agents.tpe import TPEAgent
from nasframe_agents.vec_env import to_sb3

__all__ = [
    "QLearning",
    "RandomAgent",
    "RegularizedEvolution",
    "Reinforce",
    "TPEAgent",
    "nasframe_add_config",
    "nasframe_register_agents",
    "to_sb3",
]

_RL = ("stable_baselines3", "torch")


@nasframe.hookimpl(trylast=True)
def nasframe_register_agents(registry: nasframe.Registry[nasframe.Agent]) -> None:
    """Register ``random-v1`` and the Stable-Baselines3 agents."""
    registry.add(
        "random-v1",
        RandomAgent,
        summary="uniform random action ids (random search)",
        section="random",
    )
    registry.add(
        "rea-v1",
        RegularizedEvolution,
        summary="regularized evolution: mutate one action of a tournament winner's episode",
        section="rea",
    )
    registry.add(
        "reinforce-v1",
        Reinforce,
        summary="REINFORCE: one softmax per position of an episode, moving-average baseline",
        section="reinforce",
    )
    registry.add(
        "qlearning-v1",
        QLearning,
        summary="BlockQNN's tabular Q-learning: epsilon-greedy, layer by layer, experience replay",
        section="qlearning",
    )
    registry.add(
        "tpe-v1",
        TPEAgent,
        summary="Optuna TPE over the action sequence of an episode",
        section="tpe",
        requires=("optuna",),
        extra="optuna",
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
    """Declare ``[random]``, ``[rea]``, ``[tpe]``, ``[reinforce]``, ``[qlearning]``, SB3's."""
    schema.section("random", "Random search: uniform random action ids.")
    length_help = "actions per proposed episode (0: the env's max_steps)"
    rea = schema.section("rea", "Regularized evolution (rea-v1).")
    rea.add("population", int, 20, "members kept; the oldest leaves for each new one", min=2)
    rea.add("sample", int, 5, "members drawn per tournament (<= population)", min=1)
    rea.add("length", int, 0, length_help, min=0)
    tpe = schema.section("tpe", "Optuna TPE over an episode's actions (tpe-v1).")
    tpe.add("n_startup_trials", int, 10, "random proposals before TPE models results", min=1)
    tpe.add("multivariate", bool, True, "model the action positions jointly")
    tpe.add("length", int, 0, length_help, min=0)
    reinforce = schema.section("reinforce", "REINFORCE over an episode's actions (reinforce-v1).")
    reinforce.add("learning_rate", float, 0.05, "step size of the logits' gradient ascent", min=0)
    reinforce.add(
        "baseline_decay", float, 0.9, "moving-average weight of the old baseline", min=0, max=0.999
    )
    reinforce.add("length", int, 0, length_help, min=0)
    q = schema.section("qlearning", "BlockQNN's tabular Q-learning (qlearning-v1).")
    q.add("learning_rate", float, 0.1, "Q-learning step size alpha (BlockQNN: 0.01)", min=0, max=1)
    q.add("gamma", float, 1.0, "discount of the next state's best value", min=0, max=1)
    q.add("epsilon_start", float, 1.0, "exploration rate of the first proposal", min=0, max=1)
    q.add("epsilon_end", float, 0.3, "exploration rate after epsilon_episodes", min=0, max=1)
    q.add("epsilon_episodes", int, 300, "results over which epsilon falls linearly", min=0)
    q.add("replay", int, 100, "stored episodes learned again after each result", min=0)
    q.add("q_init", float, 0.5, "every Q-value before its first update (MetaQNN: 0.5)")
    q.add(
        "state",
        str,
        "layer",
        "layer (position and previous action, BlockQNN) or prefix (every action so far)",
        choices=("layer", "prefix"),
    )
    q.add("length", int, 0, length_help, min=0)
    declare_sb3_config(schema)
