"""Building the environment the agent searches in.

One ``NASEnv`` (``nasframe.make_env``), or with ``[run] workers`` > 1 Ray's
``NASVectorEnv`` from :mod:`nasframe.distributed`, imported only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import gymnasium

from nasframe.config import Config
from nasframe.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["build_env", "evaluator_of", "known_tasks", "load_distributed"]


def build_env(
    config: Config, plugin_manager: PluginManager, seed: int, *, num_envs: int | None = None
) -> Any:
    """The environment: a ``NASEnv``, or with ``[run] workers`` > 1 a ``NASVectorEnv``.

    ``num_envs`` (a vector env of that many environments even with one worker; default:
    ``[run] envs``, where 0 means as many as workers) is given by the asynchronous search.
    """
    workers = int(config.get("run", "workers"))
    if num_envs is None and workers > 1:
        num_envs = int(config.get("run", "envs")) or workers
    if workers > 1 or num_envs is not None:
        distributed = load_distributed(workers)
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
            num_envs=num_envs,
        )
    from nasframe.env import make_env

    return make_env(config=config, plugin_manager=plugin_manager, seed=seed)


def load_distributed(workers: int) -> Any:
    """The :mod:`nasframe.distributed` module, or a :class:`PluginError` naming the extra."""
    try:
        return importlib.import_module("nasframe.distributed")
    except ImportError:
        raise PluginError(
            f"[run] workers = {workers} needs the Ray back end (the nasframe.distributed "
            "module and the ray extra), which is not available; run: "
            "pip install 'nasframe[ray]' (or set workers = 1)"
        ) from None


def evaluator_of(env: Any) -> Any:
    """The environment's evaluator (a vector env's own, else the unwrapped env's)."""
    if isinstance(env, gymnasium.vector.VectorEnv):
        return getattr(env, "evaluator", None)
    return getattr(env.unwrapped, "evaluator", None)


def known_tasks(env: gymnasium.Env[Any, Any]) -> tuple[str, ...] | None:
    """The dataset's task names, or None when it has no tasks."""
    evaluator = evaluator_of(env)
    dataset = getattr(evaluator, "dataset", None) or getattr(env.unwrapped, "dataset", None)
    tasks = getattr(dataset, "tasks", None)
    return tuple(tasks) if tasks else None
