"""nasframe: a plugin framework for neural architecture search by reinforcement learning.

The public API -- everything a plugin or a user script may import -- is listed in
``__all__``. Plugins import only these names, never a private module of the core.

Quick use::

    import nasframe
    env = nasframe.make_env(dataset="digits", estimator="proxy", search_space="chained")
    obs, info = env.reset(seed=0)

``import nasframe`` builds no plugin manager and reads no file; it registers the
Gymnasium id ``nasframe/NASGym-v0``.
"""

from __future__ import annotations

from typing import Any

from nasframe._version import __version__
from nasframe.agents import Agent, AskTellAgent, StepCallback, make_agent
from nasframe.authoring.datasets import ArrayDataset, default_data_dir, split_indices
from nasframe.authoring.storage import FileDBSettings, check_file_db_settings
from nasframe.bench.surrogate import Surrogate
from nasframe.bench.table import BenchTable, TableRow
from nasframe.compose import Composition
from nasframe.config import Config, ConfigSchema, Key, Section, check_components, load_config
from nasframe.config.settings import Settings, setting
from nasframe.contracts import (
    RECORD_SCHEMA_VERSION,
    ActionInfo,
    CacheKey,
    DatasetHandler,
    Evaluation,
    ExperimentDB,
    Measurement,
    NetworkBuilder,
    PerformanceEstimator,
    Record,
    SearchSpace,
    SearchState,
    Split,
    StateEncoder,
    Status,
    Transition,
    fingerprint_of,
)
from nasframe.errors import (
    ConfigError,
    DatabaseError,
    DatasetError,
    FolderBusyError,
    NasframeError,
    NSCError,
    PluginError,
    RegistryError,
    SearchSpaceError,
    closest,
)
from nasframe.nsc import NSC, LayerType, NSCRow
from nasframe.nsc.validity import InvalidNetworkError, NetworkShapes, block_shapes, why_invalid
from nasframe.plugins import PluginManager, get_plugin_manager, hookimpl
from nasframe.registry import ComponentInfo, Registry
from nasframe.runlock import RunFolderLock

__all__ = [
    "NSC",
    "RECORD_SCHEMA_VERSION",
    "ActionInfo",
    "Agent",
    "ArrayDataset",
    "AskTellAgent",
    "BenchTable",
    "CacheKey",
    "ComponentInfo",
    "Composition",
    "Config",
    "ConfigError",
    "ConfigSchema",
    "DatabaseError",
    "DatasetError",
    "DatasetHandler",
    "Episode",
    "Evaluation",
    "ExperimentDB",
    "FileDBSettings",
    "FolderBusyError",
    "InvalidNetworkError",
    "Key",
    "LayerType",
    "Measurement",
    "NASEnv",
    "NSCError",
    "NSCRow",
    "NasframeError",
    "NetworkBuilder",
    "NetworkShapes",
    "PerformanceEstimator",
    "PluginError",
    "PluginManager",
    "Record",
    "Registry",
    "RegistryError",
    "Run",
    "RunFolderLock",
    "SearchSpace",
    "SearchSpaceError",
    "SearchState",
    "Section",
    "Settings",
    "Split",
    "StateEncoder",
    "Status",
    "StepCallback",
    "Surrogate",
    "TableRow",
    "Transition",
    "__version__",
    "block_shapes",
    "check_components",
    "check_file_db_settings",
    "closest",
    "default_data_dir",
    "fingerprint_of",
    "get_plugin_manager",
    "hookimpl",
    "load_config",
    "make_agent",
    "make_env",
    "setting",
    "split_indices",
    "why_invalid",
]

#: The Gymnasium id of the environment; the suffix is its behaviour version.
ENV_ID = "nasframe/NASGym-v0"


def __getattr__(name: str) -> Any:
    # The environment pulls in gymnasium's spaces and numpy work; import it on first use.
    if name in ("make_env", "NASEnv", "Episode"):
        from nasframe import env

        return getattr(env, name)
    if name == "Run":  # the payload of the run hooks; the search package loads on use
        from nasframe.search.run import Run

        return Run
    raise AttributeError(f"module 'nasframe' has no attribute {name!r}")


def _register_gymnasium_ids() -> None:
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="nasframe.env:make_env", max_episode_steps=None)


_register_gymnasium_ids()
