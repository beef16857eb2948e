"""Typed configuration: built-in defaults < an INI file < explicit overrides.

The successor of NASGym's ``config.ini``. Every key is declared in a
:class:`ConfigSchema` -- the core declares ``[run]`` and ``[env]``, and every plugin
declares its own sections through the ``nasframe_add_config`` hook -- so a typo, a wrong
type or a value out of range in any section is one :class:`~nasframe.errors.ConfigError`
naming the file, section, key, value and what is valid.

Precedence (NASGym let the file override explicit arguments; that is fixed here):

1. the defaults the schema declares,
2. the INI file, if one is given,
3. explicit overrides (Python keyword arguments or ``--set section.key=value`` flags).

:attr:`Config.sources` records where each value came from, for ``nasframe config show``.
"""

from __future__ import annotations

import configparser
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasframe.errors import ConfigError, closest

__all__ = [
    "COMPONENT_KEYS",
    "Config",
    "ConfigSchema",
    "Key",
    "Section",
    "check_components",
    "core_schema",
    "load_config",
    "template",
]

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


@dataclass(frozen=True)
class Key:
    """One configuration key.

    Attributes:
        name: the key, lower-case.
        type: ``int``, ``float``, ``str``, ``bool`` or ``Path``.
        default: the built-in default (``None`` means "not set").
        description: one line for ``resources/config.ini`` and ``config show``.
        choices: the allowed values, if limited.
        min: the smallest allowed number.
        max: the largest allowed number.
        optional: ``None`` (an empty value) is allowed.
    """

    name: str
    type: type
    default: Any
    description: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    optional: bool = False

    def convert(self, value: Any, where: str) -> Any:
        """Convert ``value`` (a string from a file, or a Python value) and check it.

        Raises:
            ConfigError: with ``where`` (file, section and key) in the message.
        """
        if value is None or (isinstance(value, str) and value.strip() == "" and self.optional):
            if self.optional or self.default is None:
                return None
            raise ConfigError(f"{where}: a value is required ({self.describe()})")
        try:
            converted = self._convert(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: {value!r} is not a valid {self.type.__name__} ({self.describe()})"
            ) from None
        if self.choices is not None and converted not in self.choices:
            options = ", ".join(map(str, self.choices))
            hint = closest(str(converted), map(str, self.choices))
            raise ConfigError(f"{where}: {converted!r} is not one of {options}{hint}")
        if self.min is not None and converted < self.min:
            raise ConfigError(f"{where}: {converted!r} is below the minimum {self.min:g}")
        if self.max is not None and converted > self.max:
            raise ConfigError(f"{where}: {converted!r} is above the maximum {self.max:g}")
        return converted

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if self.type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if self.type is float:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
            # NaN and infinity mean nothing in a setting; "no limit" is written 0.
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if self.type is Path:
            text = str(value).strip()
            if not text:  # Path("") would silently mean the working folder
                raise ValueError(value)
            return Path(text).expanduser()
        return str(value).strip() if isinstance(value, str) else str(value)

    def describe(self) -> str:
        """What is valid, in words."""
        parts = [self.type.__name__]
        if self.choices is not None:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return ", ".join(parts)


@dataclass
class Section:
    """A configuration section and its keys."""

    name: str
    description: str = ""
    keys: dict[str, Key] = field(default_factory=dict)

    def add(
        self,
        name: str,
        type: type,
        default: Any,
        description: str,
        *,
        choices: Sequence[Any] | None = None,
        min: float | None = None,
        max: float | None = None,
        optional: bool = False,
    ) -> Section:
        """Declare a key; returns the section so declarations can chain.

        Raises:
            ValueError: the key is declared twice (a programming error of a plugin).
        """
        key_name = name.lower()
        if key_name in self.keys:
            raise ValueError(f"config key [{self.name}] {key_name} is declared twice")
        self.keys[key_name] = Key(
            key_name,
            type,
            default,
            description,
            tuple(choices) if choices is not None else None,
            min,
            max,
            optional,
        )
        return self


class ConfigSchema:
    """Every section and key a configuration may hold."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}

    def section(self, name: str, description: str = "") -> Section:
        """The section called ``name``, created on first use."""
        key = name.lower()
        if key not in self.sections:
            self.sections[key] = Section(key, description)
        elif description and not self.sections[key].description:
            self.sections[key].description = description
        return self.sections[key]

    def __iter__(self) -> Iterator[Section]:
        return iter(self.sections.values())

    def defaults(self) -> dict[str, dict[str, Any]]:
        """The built-in default of every key, ``{section: {key: default}}``."""
        return {s.name: {k.name: k.default for k in s.keys.values()} for s in self}


#: The configuration keys that name a component, and the kind of component they name.
COMPONENT_KEYS: dict[tuple[str, str], str] = {
    ("env", "search_space"): "search_space",
    ("env", "state_encoder"): "state_encoder",
    ("env", "estimator"): "estimator",
    ("env", "dataset"): "dataset",
    ("env", "database"): "database",
    ("run", "agent"): "agent",
}


def _format_value(key: Key, value: Any) -> str:
    """``value`` as INI text that :meth:`Key.convert` reads back to the same value."""
    if value is None:
        return ""
    if key.type is bool:
        return "true" if value else "false"
    return str(value)


def template(schema: ConfigSchema) -> str:
    """An INI file documenting every section and key of ``schema`` with its default.

    Each key is preceded by comments giving its description and what is valid; its value
    is the default, so the file loads to exactly the built-in defaults. This is what
    ``nasframe config template`` prints and what ``resources/config.ini`` holds.
    """
    lines = [
        "# nasframe configuration file: every key, set to its built-in default.",
        "# Copy it, keep the keys you change, and pass it with --config FILE.",
        "# Precedence: built-in defaults < this file < --set SECTION.KEY=VALUE (or keywords).",
        "# Generated by `nasframe config template`; do not edit by hand.",
        "",
    ]
    for section in schema:
        lines.append(f"[{section.name}]")
        if section.description:
            lines.append(f"# {section.description}")
        for key in section.keys.values():
            lines.append("")
            lines.append(f"# {key.description}")
            valid = key.describe() + (", may be empty" if key.optional else "")
            default = _format_value(key, key.default)
            lines.append(f"# type: {valid}; default: {default or '(empty)'}")
            lines.append(f"{key.name} = {default}".rstrip())
        lines.append("")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def core_schema(schema: ConfigSchema) -> ConfigSchema:
    """Declare the core's sections, ``[run]`` and ``[env]``, on ``schema``."""
    run = schema.section("run", "What to search with, for how long, and where results go.")
    run.add("agent", str, "random", "the search agent (nasframe plugins lists them)")
    run.add("steps", int, 200, "environment steps to run (0: use episodes)", min=0)
    run.add("episodes", int, 0, "episodes to run instead of steps (0: use steps)", min=0)
    run.add("seed", int, 0, "seed of the agent, the environment and the estimator", min=0)
    run.add("output", Path, Path("runs/search"), "output folder (database, logs, results)")
    run.add("workers", int, 1, "parallel evaluation workers (more than 1 uses Ray)", min=1)
    run.add(
        "ray_address",
        str,
        "",
        "address of an existing Ray cluster, or auto ('': $RAY_ADDRESS, else a new local one)",
    )
    run.add(
        "scheduler",
        str,
        "auto",
        "with workers > 1: async (ask/tell agents), lockstep, or auto (async when the agent can)",
        choices=("auto", "async", "lockstep"),
    )
    run.add(
        "envs",
        int,
        0,
        "environments a lockstep search steps together (0: as many as workers)",
        min=0,
    )
    run.add("resume", bool, True, "resume the run in the output folder (false: start over)")
    run.add("verbosity", int, 1, "0 quiet, 1 progress bar and table, 2 every step", min=0, max=2)
    run.add("checkpoint_every", int, 50, "save the agent every this many steps (0: at end)", min=0)
    run.add("plots", bool, True, "write rewards.png and best_architecture.png (extra: plot)")
    run.add("tensorboard", bool, False, "write TensorBoard scalars to <output>/tensorboard")
    run.add("top", int, 10, "how many best architectures the table and summary list", min=1)
    run.add("meta_rl", bool, False, "add previous action, reward and step to observations")
    run.add("tasks", str, "", "task schedule, e.g. omniglot:8000,vgg_flower:7000 ('': none)")
    run.add(
        "play",
        str,
        "",
        "a saved agent to run without learning ('': learn; nasframe play sets it)",
    )
    env = schema.section("env", "The components of the environment and its reward.")
    env.add("search_space", str, "chained", "the search space")
    env.add("state_encoder", str, "onehot", "the state encoder")
    env.add("estimator", str, "keras", "the performance estimator")
    env.add("dataset", str, "digits", "the dataset handler")
    env.add("database", str, "csv", "the experiment database")
    env.add("max_steps", int, 10, "steps per episode before it is truncated", min=1)
    env.add(
        "reward", str, "accuracy", "reward: accuracy or blockqnn", choices=("accuracy", "blockqnn")
    )
    env.add("mu", float, 0.5, "BlockQNN shaping weight of ln(FLOPs)", min=0)
    env.add("rho", float, 0.5, "BlockQNN shaping weight of ln(density)", min=0)
    env.add("sigma", float, 0.5, "reward factor of pointer moves (NASGym's σ)", min=0, max=1)
    env.add("invalid_reward", float, 0.0, "reward of an invalid architecture")
    env.add("retry_transient", bool, False, "retrain cached out_of_memory/timeout/error results")
    bench = schema.section(
        "bench", "NSC-Bench tables: what `nasframe bench build` trains (components: [env])."
    )
    bench.add("depth", int, 3, "deepest network of the table, in layers", min=0)
    bench.add("seeds", str, "0", "training seeds, comma-separated: every network once per seed")
    bench.add("repeat_seeds", str, "", "more seeds, comma-separated, for the best networks only")
    bench.add(
        "repeat_top",
        float,
        0.1,
        "fraction of networks (best first) the repeat seeds train",
        min=0,
        max=1,
    )
    bench.add("output", Path, Path("runs/bench"), "the table folder")
    final = schema.section(
        "finalize",
        "Final training of a run's best networks: what `nasframe finalize RUN` trains.",
    )
    final.add("top_k", int, 3, "how many of the run's best networks to retrain", min=1)
    final.add("seeds", str, "0,1,2", "training seeds, comma-separated: mean and std over them")
    final.add("epochs", int, 0, "training epochs (0: the estimator's own setting)", min=0)
    final.add("builder", str, "", "network builder, e.g. blockqnn-v1 ('': the estimator's own)")
    final.add(
        "augmentation",
        str,
        "",
        "training augmentation, e.g. shift, where the estimator has it ('': its own)",
    )
    final.add(
        "settings",
        str,
        "",
        "more estimator settings for the final training, e.g. batch_size=64,patience=0",
    )
    final.add("output", Path, None, "the results folder (empty: <run>/final)", optional=True)
    # One section every file-backed database reads; the core declares it because the search
    # command places the file (an empty path means "in the output folder").
    ray = schema.section("ray", "Parallel evaluation on Ray (used when [run] workers > 1).")
    ray.add("num_cpus", float, 1.0, "CPUs each evaluation reserves on the cluster", min=0.01)
    ray.add("num_gpus", float, 0.0, "GPUs each evaluation reserves (0.5 shares one GPU)", min=0)
    ray.add("max_retries", int, 2, "retries of an evaluation whose worker died", min=0)
    ray.add("timeout", float, 0.0, "seconds before a busy worker is stopped (0: no limit)", min=0)
    ray.add(
        "keep_workers",
        bool,
        False,
        "on an existing cluster, leave idle workers running for the next search (and reuse them)",
    )
    database = schema.section(
        "database", "The experiment database: where evaluations are stored and cached."
    )
    database.add(
        "path",
        Path,
        None,
        "database file, .csv or .sqlite (empty: in the search's output folder; "
        "relative: to the current directory)",
        optional=True,
    )
    database.add(
        "lock_timeout",
        float,
        60.0,
        "seconds to wait for another process holding the database before giving up",
        min=0,
    )
    database.add(
        "fsync",
        bool,
        True,
        "fsync each record (off: a power cut may lose the last ones, a crash never does)",
    )
    return schema


@dataclass
class Config:
    """A validated configuration: values by section and key, and where each came from.

    Attributes:
        values: ``{section: {key: value}}`` with every declared key.
        sources: ``{(section, key): "default" | "<file path>" | "override"}``.
        schema: the schema it was validated against.
        path: the INI file read, if any.
    """

    values: dict[str, dict[str, Any]]
    sources: dict[tuple[str, str], str]
    schema: ConfigSchema
    path: Path | None = None

    def get(self, section: str, key: str) -> Any:
        """The value of ``[section] key``.

        Raises:
            ConfigError: the section or key is not declared.
        """
        return self.section(section)[_check_key(self.schema, section, key, "")]

    def section(self, name: str) -> dict[str, Any]:
        """A copy of the values of section ``name`` (``{}`` for ``None``).

        Raises:
            ConfigError: the section is not declared.
        """
        _check_section(self.schema, name, "")
        return dict(self.values[name.lower()])

    def component_settings(self, info: Any) -> dict[str, Any]:
        """The keyword settings of the component ``info`` (a registry ``ComponentInfo``).

        The values of its configuration section, without the unset (``None``) ones, so the
        factory's own defaults apply to them; ``{}`` for a component without a section.
        """
        if not info.section:
            return {}
        return {
            key: value for key, value in self.section(info.section).items() if value is not None
        }

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Config:
        """A new configuration with ``overrides`` applied on top (source ``override``)."""
        values = {name: dict(keys) for name, keys in self.values.items()}
        sources = dict(self.sources)
        _apply(self.schema, values, sources, overrides, "override", "")
        return Config(values, sources, self.schema, self.path)

    def to_ini(self) -> str:
        """The configuration as INI text (``nasframe config show``)."""
        lines: list[str] = []
        for section in self.schema:
            lines.append(f"[{section.name}]")
            for key in section.keys.values():
                value = self.values[section.name][key.name]
                source = self.sources[(section.name, key.name)]
                lines.append(f"{key.name} = {_format_value(key, value)}  # {source}")
            lines.append("")
        return "\n".join(lines)


def _check_section(schema: ConfigSchema, name: str, where: str) -> str:
    section = name.lower()
    if section not in schema.sections:
        known = sorted(schema.sections)
        blocked = _blocked_plugins()
        if section in blocked:
            hint = f"; the plugin {section!r} is blocked (NASFRAME_DISABLE_PLUGINS)"
        elif blocked:
            hint = f"; plugins blocked by NASFRAME_DISABLE_PLUGINS: {', '.join(blocked)}"
        else:
            hint = closest(section, known)
        raise ConfigError(f"{where}unknown section [{name}]{hint} (known: {', '.join(known)})")
    return section


def _blocked_plugins() -> list[str]:
    """The plugin names ``NASFRAME_DISABLE_PLUGINS`` blocks (their sections are unknown)."""
    import os

    names = os.environ.get("NASFRAME_DISABLE_PLUGINS", "").split(",")
    return sorted({name.strip().lower() for name in names if name.strip()})


def _check_key(schema: ConfigSchema, section: str, key: str, where: str) -> str:
    name = key.lower()
    keys = schema.sections[section.lower()].keys
    if name not in keys:
        known = sorted(keys)
        raise ConfigError(
            f"{where}unknown key {key!r} in section [{section}]{closest(name, known)} "
            f"(known: {', '.join(known) or 'none'})"
        )
    return name


def _apply(
    schema: ConfigSchema,
    values: dict[str, dict[str, Any]],
    sources: dict[tuple[str, str], str],
    updates: Mapping[str, Mapping[str, Any]],
    source: str,
    where: str,
) -> None:
    for section_name, keys in updates.items():
        section = _check_section(schema, section_name, where)
        for key_name, raw in keys.items():
            key = _check_key(schema, section, key_name, where)
            spec = schema.sections[section].keys[key]
            values[section][key] = spec.convert(raw, f"{where}[{section}] {key}")
            sources[(section, key)] = source


def parse_override(text: str) -> tuple[str, str, str]:
    """Split a ``section.key=value`` override (the CLI's ``--set``).

    Raises:
        ConfigError: the text is not of that form.
    """
    name, sep, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. run.steps=50")
    return section, key.strip(), value


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    schema: ConfigSchema | None = None,
    plugin_manager: Any = None,
) -> Config:
    """Load a configuration: defaults, then ``path`` (an INI file), then ``overrides``.

    Args:
        path: an INI file; ``None`` for defaults only.
        overrides: ``{section: {key: value}}`` that win over the file.
        schema: the schema to validate against; by default the core's sections plus those
            the plugins of ``plugin_manager`` declare.
        plugin_manager: the plugin manager whose ``nasframe_add_config`` hooks declare
            plugin sections; a fresh one by default.

    Raises:
        ConfigError: the file does not exist or is not valid INI; a section, key or value
            is wrong. The message names the file, section, key and value.
    """
    if schema is None:
        schema = core_schema(ConfigSchema())
        if plugin_manager is None:
            from nasframe.plugins import get_plugin_manager

            plugin_manager = get_plugin_manager()
        plugin_manager.hook.nasframe_add_config(schema=schema)
    values = {s.name: {k.name: k.default for k in s.keys.values()} for s in schema}
    sources = {(s.name, k): "default" for s in schema for k in s.keys}
    file_path = None
    if path is not None:
        file_path = Path(path)
        _apply(schema, values, sources, _read_ini(file_path), str(file_path), f"{file_path}: ")
    if overrides:
        _apply(schema, values, sources, overrides, "override", "")
    return Config(values, sources, schema, file_path)


def check_components(config: Config, plugin_manager: Any, *, user_set_only: bool = False) -> None:
    """Check that every component named in ``config`` is registered.

    The keys checked are :data:`COMPONENT_KEYS` (``[env] dataset``, ``[run] agent``, ...);
    a name may omit its version (``digits`` means the highest ``digits-v<N>``). The env
    and the search call this before building components, ``nasframe config show`` with
    ``user_set_only=True``.

    Args:
        config: the loaded configuration.
        plugin_manager: the :class:`~nasframe.plugins.PluginManager` whose registries
            hold the components.
        user_set_only: check only the values set by a file or an override, not defaults.

    Raises:
        ConfigError: a name is not registered; the message names where the value came
            from, the section and key, the available names and the closest match, and the
            plugins that failed to load (one of them may be the one that provides it).
    """
    from nasframe.errors import RegistryError

    for (section, key), kind in COMPONENT_KEYS.items():
        if section not in config.values or key not in config.values[section]:
            continue
        source = config.sources[(section, key)]
        value = config.values[section][key]
        if (user_set_only and source == "default") or value is None:
            continue
        try:
            plugin_manager.registry(kind).get(str(value))
        except RegistryError as exc:
            from_file = source not in ("default", "override")
            where = f"{source}: " if from_file else ""
            origin = "" if from_file else f" ({source} value)"
            failed = sorted(
                name
                for name, status in getattr(plugin_manager, "statuses", {}).items()
                if status.status == "failed"
            )
            note = (
                f"; plugins that failed to load: {', '.join(failed)} (see nasframe plugins)"
                if failed
                else ""
            )
            raise ConfigError(f"{where}[{section}] {key}{origin}: {exc}{note}") from None


def _read_ini(path: Path) -> dict[str, dict[str, str]]:
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a configuration file")
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file does not exist")
    parser = configparser.ConfigParser(
        interpolation=None, inline_comment_prefixes=("#", ";"), default_section="__none__"
    )
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except configparser.Error as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{path}: not a valid INI file: {message}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a valid INI file: not UTF-8 text") from None
    return {name: dict(parser[name]) for name in parser.sections()}
