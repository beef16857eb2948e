"""Checks and derived values of the configuration, made before anything is built.

The budget (steps or episodes, exactly one), the extras the chosen components need,
and the experiment database's default place in the output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nasframe.config import Config
from nasframe.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from nasframe.plugins import PluginManager

__all__ = ["check_budget", "check_installed", "database_path"]


def check_budget(config: Config) -> tuple[int, int]:
    """``([run] steps, [run] episodes)``: exactly one of them at least 1."""
    steps = int(config.get("run", "steps"))
    episodes = int(config.get("run", "episodes"))
    if steps < 1 and episodes < 1:
        raise ConfigError(
            "[run] steps and [run] episodes are both 0: the budget must be at least 1 step "
            "(--steps N) or 1 episode (--episodes N)"
        )
    if steps >= 1 and episodes >= 1:
        raise ConfigError(
            f"[run] steps = {steps} and [run] episodes = {episodes}: give one budget, set "
            "the other to 0"
        )
    return steps, episodes


def check_installed(config: Config, plugin_manager: PluginManager) -> None:
    """Refuse components whose extras are not installed, naming the ``pip install``."""
    registries = plugin_manager.registries()
    for kind, section, key in (
        ("agent", "run", "agent"),
        ("search_space", "env", "search_space"),
        ("state_encoder", "env", "state_encoder"),
        ("estimator", "env", "estimator"),
        ("dataset", "env", "dataset"),
        ("database", "env", "database"),
    ):
        info = registries[kind].get(str(config.get(section, key)))
        if not info.available:
            raise PluginError(
                f"[{section}] {key}: {registries[kind].label} {info.name!r} needs "
                f"{', '.join(info.missing)}, which is not installed; run: {info.install_hint()}"
            )


def database_path(config: Config, output: Path) -> Config:
    """Put the experiment database into the output folder unless the user chose a path."""
    schema = config.schema.sections
    if "database" not in schema or "path" not in schema["database"].keys:
        return config
    if config.sources.get(("database", "path"), "default") != "default":
        return config
    name = str(config.get("env", "database")).split("-v")[0]
    suffix = {"csv": "csv", "sqlite": "sqlite"}.get(name, "db")
    return config.with_overrides({"database": {"path": output / f"experiments.{suffix}"}})
