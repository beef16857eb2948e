"""Stable-Baselines3's view of a nasframe vector env (:func:`to_sb3`).

A Stable-Baselines3 agent given a ``gymnasium.vector.VectorEnv`` (``[run] workers`` > 1)
adapts it here, in the plugin that owns the SB3 agents; the core knows nothing of SB3.
The vector env is used through its public methods only (``envs``, ``step_envs``,
``single_observation_space``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import nasframe

__all__ = ["to_sb3"]


def to_sb3(vector_env: Any) -> Any:
    """Stable-Baselines3's view of ``vector_env``: a ``VecEnv`` over the same envs.

    ``vector_env`` is a ``nasframe.distributed.NASVectorEnv``. The view steps the envs
    exactly as the vector env does (one batched evaluation per step, ``step_envs``) but
    resets in SB3's way: an env whose episode ended is reset in the same step,
    its last observation goes to ``info["terminal_observation"]`` and
    ``info["TimeLimit.truncated"]`` says whether the step limit ended it. Seeds set with
    ``vec_env.seed(s)`` reach env ``i`` as ``s + i`` at the next ``reset()``.

    When the vector env is pipelined (``vector_env.enable_pipeline()``, ``[run]
    scheduler = pipelined``) a step submits the networks and returns the next
    observations at once with every reward ``0.0`` and ``info["reward_pending"]``; the
    steps are in ``last_pending`` (``nasframe.distributed.vector_env.PendingStep``), and
    :class:`~nasframe_agents.sb3.SB3Agent` adds their true rewards into the rollout
    buffer at the rollout's end (:func:`nasframe_agents.sb3.add_pending_rewards`).

    Raises:
        PluginError: Stable-Baselines3 is not installed (the ``rl`` extra).
    """
    if "sb3" not in _CLASSES:
        _CLASSES["sb3"] = _sb3_class()
    return _CLASSES["sb3"](vector_env)


_CLASSES: dict[str, type] = {}


def _sb3_class() -> type:
    from nasframe_agents.sb3 import _tensorboard_without_tensorflow

    _tensorboard_without_tensorflow()  # before Stable-Baselines3 imports TensorBoard
    try:
        from stable_baselines3.common.env_util import is_wrapped
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError:
        raise nasframe.PluginError(
            "the SB3 adapter needs stable-baselines3, which is not installed; "
            "run: pip install 'nasframe[rl]'"
        ) from None

    class SB3NASVecEnv(VecEnv):
        """A Stable-Baselines3 ``VecEnv`` over a ``NASVectorEnv`` (see :func:`to_sb3`)."""

        def __init__(self, vector_env: Any) -> None:
            self.vector_env = vector_env
            self.envs = vector_env.envs
            super().__init__(
                vector_env.num_envs,
                vector_env.single_observation_space,
                vector_env.single_action_space,
            )
            self._actions: list[int] = []
            self.last_pending: list[Any] = []

        @property
        def pipelined(self) -> bool:
            """Whether steps are pipelined (their rewards pending, see :func:`to_sb3`)."""
            return getattr(self.vector_env, "pipeline", None) is not None

        def finish_pending(self) -> None:
            """Wait for every pipelined step and finish (record) them all."""
            if self.pipelined:
                self.vector_env.finish_pending()

        def reset(self) -> np.ndarray:
            observations = []
            for i, env in enumerate(self.envs):
                obs, self.reset_infos[i] = env.reset(
                    seed=self._seeds[i], options=self._options[i] or None
                )
                observations.append(obs)
            self._reset_seeds()
            self._reset_options()
            return np.stack(observations)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = [int(action) for action in actions]

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            if self.pipelined:
                return self._submit()
            results = self.vector_env.step_envs(self._actions, [True] * self.num_envs)
            observations, rewards, dones, infos = [], [], [], []
            for i, (env, result) in enumerate(zip(self.envs, results, strict=True)):
                assert result is not None  # every env was active
                obs, reward, terminated, truncated, info = result
                obs, info = self._end_step(i, env, obs, terminated, truncated, info)
                observations.append(obs)
                rewards.append(reward)
                dones.append(terminated or truncated)
                infos.append(info)
            return (
                np.stack(observations),
                np.asarray(rewards, dtype=np.float32),
                np.asarray(dones, dtype=np.bool_),
                infos,
            )

        def _submit(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            results = self.vector_env.submit_envs(self._actions, [True] * self.num_envs)
            observations, dones, infos, pending = [], [], [], []
            for i, (env, result) in enumerate(zip(self.envs, results, strict=True)):
                assert result is not None  # every env was active
                obs, terminated, truncated, info, step = result
                obs, info = self._end_step(i, env, obs, terminated, truncated, info)
                observations.append(obs)
                dones.append(terminated or truncated)
                infos.append(info)
                pending.append(step)
            self.last_pending = pending
            return (
                np.stack(observations),
                np.zeros(self.num_envs, dtype=np.float32),  # pending: added at rollout end
                np.asarray(dones, dtype=np.bool_),
                infos,
            )

        def _end_step(
            self, i: int, env: Any, obs: Any, terminated: bool, truncated: bool, info: Any
        ) -> tuple[Any, dict[str, Any]]:
            """SB3's end of an env's step: its info flags, and a reset when it ended."""
            info = dict(info, **{"TimeLimit.truncated": truncated and not terminated})
            if terminated or truncated:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            return obs, info

        def close(self) -> None:
            self.vector_env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            for i in self._get_indices(indices):
                setattr(self.envs[i], attr_name, value)

        def env_method(
            self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
        ) -> list[Any]:
            return [
                getattr(self.envs[i], method_name)(*args, **kwargs)
                for i in self._get_indices(indices)
            ]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [is_wrapped(self.envs[i], wrapper_class) for i in self._get_indices(indices)]

    return SB3NASVecEnv
