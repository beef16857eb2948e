"""Stable-Baselines3 (and sb3-contrib) algorithms as nasframe agents.

Stable-Baselines3 and torch are imported inside :class:`SB3Agent`, never at module
level: ``nasframe plugins`` lists these agents without importing them, and a missing
``rl`` extra is reported (with its pip command) only when such an agent is asked for.

The defaults are sized for NAS, where one environment step trains a network and costs
seconds: short rollouts so the policy updates within a few hundred steps, and the
discount of the L2RL-NAS paper (0.9).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium

import nasframe

__all__ = ["ALGORITHMS", "SB3Agent", "add_pending_rewards", "declare_sb3_config", "sb3_factory"]


@dataclass(frozen=True)
class AlgorithmSpec:
    """How to build one algorithm.

    Attributes:
        module: the module holding the algorithm class.
        cls: the class name.
        policy: the policy for Box observations.
        dict_policy: the policy for Dict observations.
        section: the configuration section of its settings.
        summary: one line for ``nasframe plugins``.
        contrib: whether it comes from sb3-contrib.
        on_policy: whether it uses rewards only after each rollout (PPO, A2C and the
            sb3-contrib PPOs), so it can learn over a pipelined vector env (``[run]
            scheduler = pipelined``); DQN samples rewards from its replay buffer during
            the rollout and cannot.
    """

    module: str
    cls: str
    policy: str
    dict_policy: str
    section: str
    summary: str
    contrib: bool = False
    on_policy: bool = True

    def load(self) -> Any:
        """The algorithm class (imports Stable-Baselines3, but not TensorFlow)."""
        _tensorboard_without_tensorflow()
        return getattr(importlib.import_module(self.module), self.cls)


def _tensorboard_without_tensorflow() -> None:
    # Stable-Baselines3 imports TensorBoard at import, and TensorBoard imports TensorFlow
    # when it is installed: seconds and TensorFlow's start-up lines in a search that never
    # trains with it (issue 17). TensorBoard's documented switch to its own TensorFlow stub
    # is the presence of the module tensorboard.compat.notf; its event files are the same.
    if "tensorflow" not in sys.modules:
        name = "tensorboard.compat.notf"
        sys.modules.setdefault(name, types.ModuleType(name))


#: The algorithms, by agent base name.
ALGORITHMS: dict[str, AlgorithmSpec] = {
    "ppo": AlgorithmSpec(
        "stable_baselines3",
        "PPO",
        "MlpPolicy",
        "MultiInputPolicy",
        "ppo",
        "Stable-Baselines3 PPO (proximal policy optimisation)",
    ),
    "a2c": AlgorithmSpec(
        "stable_baselines3",
        "A2C",
        "MlpPolicy",
        "MultiInputPolicy",
        "a2c",
        "Stable-Baselines3 A2C (advantage actor-critic, the L2RL-NAS learner without memory)",
    ),
    "dqn": AlgorithmSpec(
        "stable_baselines3",
        "DQN",
        "MlpPolicy",
        "MultiInputPolicy",
        "dqn",
        "Stable-Baselines3 DQN (the L2RL-NAS baseline)",
        on_policy=False,
    ),
    "recurrent-ppo": AlgorithmSpec(
        "sb3_contrib",
        "RecurrentPPO",
        "MlpLstmPolicy",
        "MultiInputLstmPolicy",
        "recurrent_ppo",
        "sb3-contrib recurrent PPO with an LSTM policy (the meta-RL learner)",
        contrib=True,
    ),
    "maskable-ppo": AlgorithmSpec(
        "sb3_contrib",
        "MaskablePPO",
        "MlpPolicy",
        "MultiInputPolicy",
        "maskable_ppo",
        "sb3-contrib PPO that never samples an action the env's action_masks() forbids",
        contrib=True,
    ),
}

# Settings that are not keyword arguments of the algorithm class.
_OWN_KEYS = ("policy", "device", "lstm_hidden_size", "net_arch")


def declare_sb3_config(schema: nasframe.ConfigSchema) -> None:
    """Declare ``[ppo]``, ``[a2c]``, ``[dqn]``, ``[recurrent_ppo]`` and ``[maskable_ppo]``."""

    def common(section: nasframe.Section, learning_rate: float, gamma: float) -> None:
        section.add("learning_rate", float, learning_rate, "optimizer learning rate", min=0)
        section.add("gamma", float, gamma, "discount factor", min=0, max=1)
        section.add("policy", str, "auto", "policy class name ('auto': Mlp or MultiInput)")
        section.add("net_arch", str, "64,64", "hidden layer sizes of the policy network")
        section.add("device", str, "cpu", "torch device: cpu, cuda or auto")

    ppo = schema.section("ppo", "Stable-Baselines3 PPO agent (extra: rl).")
    common(ppo, 3e-4, 0.9)
    ppo.add("n_steps", int, 64, "steps per rollout before each update", min=2)
    ppo.add("batch_size", int, 32, "minibatch size", min=2)
    ppo.add("n_epochs", int, 4, "optimisation epochs per update", min=1)
    ppo.add("ent_coef", float, 0.01, "entropy bonus weight", min=0)

    a2c = schema.section("a2c", "Stable-Baselines3 A2C agent (extra: rl).")
    common(a2c, 1e-3, 0.9)
    a2c.add("n_steps", int, 5, "steps per update (the paper's j)", min=1)
    a2c.add("ent_coef", float, 0.01, "entropy bonus weight (the paper's eta)", min=0)
    a2c.add("vf_coef", float, 0.5, "value loss weight", min=0)

    dqn = schema.section("dqn", "Stable-Baselines3 DQN agent (extra: rl).")
    common(dqn, 5e-4, 1.0)
    dqn.add("buffer_size", int, 5000, "replay buffer size", min=1)
    dqn.add("learning_starts", int, 50, "steps of pure exploration before learning", min=0)
    dqn.add("batch_size", int, 20, "minibatch size", min=1)
    dqn.add("train_freq", int, 1, "update the network every this many steps", min=1)
    dqn.add("target_update_interval", int, 100, "steps between target updates", min=1)
    dqn.add("exploration_fraction", float, 0.5, "share of the budget epsilon decays", min=0)
    dqn.add("exploration_final_eps", float, 0.1, "final epsilon", min=0, max=1)

    rppo = schema.section(
        "recurrent_ppo", "sb3-contrib recurrent PPO, the meta-RL learner (extra: rl)."
    )
    common(rppo, 1e-3, 0.9)
    rppo.add("n_steps", int, 32, "steps per rollout before each update", min=2)
    rppo.add("batch_size", int, 32, "minibatch size", min=2)
    rppo.add("n_epochs", int, 4, "optimisation epochs per update", min=1)
    rppo.add("ent_coef", float, 0.01, "entropy bonus weight", min=0)
    mppo = schema.section(
        "maskable_ppo",
        "sb3-contrib MaskablePPO: PPO over the env's action masks (extra: rl).",
    )
    common(mppo, 3e-4, 0.9)
    mppo.add("n_steps", int, 64, "steps per rollout before each update", min=2)
    mppo.add("batch_size", int, 32, "minibatch size", min=2)
    mppo.add("n_epochs", int, 4, "optimisation epochs per update", min=1)
    mppo.add("ent_coef", float, 0.01, "entropy bonus weight", min=0)
    rppo.add("lstm_hidden_size", int, 128, "LSTM units (the paper's 128)", min=1)


def sb3_factory(name: str) -> Callable[..., SB3Agent]:
    """The registry factory of algorithm ``name``: ``factory(env, *, seed, **settings)``."""

    def factory(
        env: gymnasium.Env[Any, Any], *, seed: int | None = None, **settings: Any
    ) -> SB3Agent:
        return SB3Agent(name, env, seed=seed, **settings)

    factory.__name__ = f"{name.replace('-', '_')}_factory"
    factory.__doc__ = f"Build the {ALGORITHMS[name].summary} agent."
    # read by the search's choice of scheduler: may it learn over a pipelined vector env
    factory.pipelined = ALGORITHMS[name].on_policy  # type: ignore[attr-defined]
    return factory


def _net_arch(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in str(text).replace(" ", "").split(",") if part]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise nasframe.ConfigError(
            f"net_arch {text!r} must be comma-separated positive layer sizes, like 64,64"
        )
    return sizes


class SB3Agent(nasframe.Agent):
    """A Stable-Baselines3 algorithm driving a nasframe environment.

    Args:
        algorithm: a key of :data:`ALGORITHMS`.
        env: the environment (SB3 wraps it in a ``DummyVecEnv`` with a ``Monitor``), or a
            nasframe vector env (``[run] workers`` > 1), driven through :func:`to_sb3`.
        seed: the algorithm's seed (torch, numpy, the env's first reset).
        settings: the values of the algorithm's configuration section; ``policy``
            (``auto`` picks the Mlp or MultiInput policy for the observation space),
            ``device``, ``net_arch`` and ``lstm_hidden_size`` are handled here, the rest
            are keyword arguments of the algorithm class.

    Raises:
        ConfigError: the algorithm rejects a setting (the message quotes it).
    """

    def __init__(
        self,
        algorithm: str,
        env: gymnasium.Env[Any, Any],
        *,
        seed: int | None = None,
        **settings: Any,
    ) -> None:
        spec = ALGORITHMS[algorithm]
        if isinstance(env, gymnasium.vector.VectorEnv):
            from nasframe_agents.vec_env import to_sb3

            if getattr(env, "pipeline", None) is not None and not spec.on_policy:
                raise nasframe.ConfigError(
                    f"[run] scheduler = pipelined needs an on-policy learner (ppo, a2c, "
                    f"recurrent-ppo, maskable-ppo); {algorithm} samples rewards from its "
                    "replay buffer during the rollout (use scheduler = lockstep)"
                )
            env = to_sb3(env)  # SB3 drives several envs through its own VecEnv API
        super().__init__(env, seed=seed)
        self.spec = spec
        self.algorithm = algorithm
        self._cls = self.spec.load()
        policy = str(settings.pop("policy", "auto"))
        if policy == "auto":
            is_dict = isinstance(env.observation_space, gymnasium.spaces.Dict)
            policy = self.spec.dict_policy if is_dict else self.spec.policy
        self.device = str(settings.pop("device", "cpu"))
        policy_kwargs: dict[str, Any] = {"net_arch": _net_arch(settings.pop("net_arch", "64,64"))}
        if "lstm_hidden_size" in settings:
            policy_kwargs["lstm_hidden_size"] = int(settings.pop("lstm_hidden_size"))
        try:
            self.model = self._cls(
                policy,
                env,
                seed=seed,
                device=self.device,
                policy_kwargs=policy_kwargs,
                verbose=0,
                **settings,
            )
        except (ValueError, AssertionError, TypeError, KeyError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise nasframe.ConfigError(
                f"[{self.spec.section}]: {self.spec.cls} rejected the settings: {message}"
            ) from None
        self._quiet_logger()

    def _quiet_logger(self) -> None:
        # Without a logger of its own, SB3 makes a new /tmp/SB3-<time> folder on every
        # learn() call; nasframe logs steps itself (steps.csv, search.log, TensorBoard).
        from stable_baselines3.common.logger import Logger

        self.model.set_logger(Logger(folder=None, output_formats=[]))

    @property
    def num_timesteps(self) -> int:
        """Steps the algorithm has taken, checkpoints included."""
        return int(self.model.num_timesteps)

    def learn(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Run ``model.learn`` for up to ``total_steps`` more steps, stopping on ``callback``."""
        before = self.num_timesteps

        def step_callback() -> bool:
            # SB3 finishes a whole rollout before it checks its budget; stopping here
            # keeps every call to exactly the steps asked for.
            if callback is not None and not callback():
                return False
            return self.num_timesteps - before < total_steps

        self.model.learn(
            total_timesteps=total_steps,
            callback=_sb3_callback(step_callback, self._pipelined_env()),
            reset_num_timesteps=False,
            progress_bar=False,
        )
        self._finish_pending()  # a stop mid-rollout: every step submitted is recorded
        return self.num_timesteps - before

    def _pipelined_env(self) -> Any:
        """The model's ``VecEnv`` when it steps pipelined (rewards pending), else ``None``."""
        env = self.model.get_env()
        return env if getattr(env, "pipelined", False) else None

    def _finish_pending(self) -> None:
        env = self._pipelined_env()
        if env is not None:
            env.finish_pending()

    def play(self, total_steps: int, callback: nasframe.StepCallback | None = None) -> int:
        """Act with the policy for up to ``total_steps`` steps; no update, no rollout buffer.

        Actions are sampled from the policy (``model.predict(deterministic=False)``), as
        the L2RL-NAS evaluation did, so a fixed policy still explores; a recurrent
        policy carries its LSTM state across steps and resets it at episode starts. The
        environment is the model's own ``VecEnv`` (one step of N environments counts N).
        """
        import numpy as np

        env = self.model.get_env()
        if getattr(self, "_play_obs", None) is None:
            if self.seed is not None:
                env.seed(self.seed)
            self._play_obs = env.reset()
            self._play_state: Any = None
            self._play_starts = np.ones(env.num_envs, dtype=bool)
        taken = 0
        while taken < total_steps:
            actions, self._play_state = self.model.predict(
                self._play_obs,
                state=self._play_state,
                episode_start=self._play_starts,
                deterministic=False,
            )
            self._play_obs, _, dones, _ = env.step(actions)
            self._play_starts = np.asarray(dones, dtype=bool)
            taken += int(env.num_envs)
            if callback is not None and not callback():
                break
        self._finish_pending()
        return taken

    def save(self, path: Path) -> Path:
        """Save the model (policy, optimizer, step count) as SB3's zip file.

        An off-policy algorithm's replay buffer goes beside it (``<name>.replay.pkl``),
        so a resumed DQN learns from the transitions it had collected.
        """
        path = Path(path)
        self.model.save(path)
        if getattr(self.model, "replay_buffer", None) is not None:
            self.model.save_replay_buffer(_replay_path(path))
        return path

    def load(self, path: Path) -> None:
        """Load a model saved by :meth:`save` for this environment."""
        path = Path(path)
        if not path.is_file():
            raise nasframe.NasframeError(f"{path}: agent checkpoint does not exist")
        try:
            self.model = self._cls.load(path, env=self.env, device=self.device)
            self._quiet_logger()
            if _replay_path(path).is_file() and hasattr(self.model, "load_replay_buffer"):
                self.model.load_replay_buffer(_replay_path(path))
        except Exception as exc:  # SB3 raises many kinds for a foreign or corrupt file
            message = " ".join(str(exc).split())
            raise nasframe.NasframeError(
                f"{path}: cannot load the {self.algorithm} checkpoint ({message})"
            ) from None


def _replay_path(path: Path) -> Path:
    return path.with_name(path.stem + ".replay.pkl")


def add_pending_rewards(model: Any, vec_env: Any, rollout: list[tuple[int, list[Any]]]) -> None:
    """Put the true rewards of a pipelined rollout into ``model.rollout_buffer``.

    Called at the rollout's end, when ``collect_rollouts`` asks the buffer for the
    returns and advantages (:func:`_sb3_callback` wraps the buffer's
    ``compute_returns_and_advantage``, so they are computed once, with the true rewards
    and the rollout's own last values and dones): waits for every pending step
    (``vec_env.finish_pending()``, which records them in order) and *adds* each true
    reward to its placeholder (0) -- Stable-Baselines3 has already added
    ``gamma * V(terminal)`` to it for a step the time limit ended. The buffer then holds
    exactly what a lockstep rollout would have.

    Args:
        model: the on-policy algorithm (its ``rollout_buffer``).
        vec_env: the pipelined ``VecEnv`` of :func:`~nasframe_agents.vec_env.to_sb3`.
        rollout: ``(buffer position, the steps of that vector step)`` for every step of
            the rollout.
    """
    import numpy as np

    vec_env.finish_pending()
    buffer = model.rollout_buffer
    for position, steps in rollout:
        for i, step in enumerate(steps):
            buffer.rewards[position, i] += np.float32(step.reward)


def _sb3_callback(callback: nasframe.StepCallback, pipelined_env: Any = None) -> Any:
    """Wrap a :data:`nasframe.StepCallback` as an SB3 ``BaseCallback``.

    Over a pipelined ``VecEnv`` it also notes each step's pending rewards and buffer
    position, and has the rollout buffer add the true ones before it computes the
    returns and advantages (:func:`add_pending_rewards`). Wrapping the buffer's
    ``compute_returns_and_advantage`` rather than acting in ``on_rollout_end`` gets the
    exact last values and dones ``collect_rollouts`` passes -- sb3-contrib's
    MaskablePPO does not hand them to the callback.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class _StepCallback(BaseCallback):
        rollout: list[tuple[int, list[Any]]]

        def _on_rollout_start(self) -> None:
            self.rollout = []
            if pipelined_env is None:
                return
            buffer = self.model.rollout_buffer  # type: ignore[attr-defined]
            compute = type(buffer).compute_returns_and_advantage

            def with_true_rewards(last_values: Any, dones: Any) -> None:
                rollout, self.rollout = self.rollout, []
                add_pending_rewards(self.model, pipelined_env, rollout)
                compute(buffer, last_values=last_values, dones=dones)

            buffer.compute_returns_and_advantage = with_true_rewards

        def _on_step(self) -> bool:
            if pipelined_env is not None:
                buffer = self.model.rollout_buffer  # type: ignore[attr-defined]
                self.rollout.append((int(buffer.pos), list(pipelined_env.last_pending)))
            return bool(callback())

    return _StepCallback()
