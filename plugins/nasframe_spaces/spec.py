"""The search-space YAML files (NASGym's schema) and their validating loader.

A file looks like this (``resources/chain.yml``)::

    nasenv:
      name: L2RL-NAS chain space      # optional
      version: "1.0"                  # optional
      max_nlayers: 10                 # required: the depth limit, 1 .. 100
      encoding: NSC                   # required: must be NSC
      layers:                         # required: a list of one-key maps, in action order
        - convolution: {id: 1, kernel_size: [1, 3, 5], pred1: true, pred2: false}
        - terminal:    {id: 7, kernel_size: null, pred1: false, pred2: false}

Layer names are NASGym's: convolution, maxpooling, avgpooling, identity, add, concat,
terminal. NASGym only presence-checked ``id`` and accepted unknown names; here every
mistake is a :class:`~nasframe.SearchSpaceError` naming the file, the layer and the key.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nasframe import LayerType, SearchSpaceError, closest

__all__ = ["BUILTIN_FILES", "LayerSpec", "SpaceSpec", "builtin_text", "load_space", "parse_space"]

#: The built-in search-space files, by name (package data of this plugin).
BUILTIN_FILES = {
    "nasenv": "nasenv.yml",
    "chain": "chain.yml",
    "multibranch": "multibranch.yml",
}

_LAYER_KEYS = ("id", "kernel_size", "pred1", "pred2")

#: The largest ``max_nlayers``: the absolute mode has about depth^2 merge actions, and
#: the state encoders a row per layer (a typo such as 1000000 would exhaust memory).
MAX_DEPTH = 100
#: The largest kernel size: the one-hot encoder has a column per kernel size up to it.
MAX_KERNEL = 99


@dataclass(frozen=True)
class LayerSpec:
    """One layer type of a search space.

    Attributes:
        name: the YAML name (``convolution``).
        type: its NSC type.
        kernels: the allowed kernel sizes, in file order; ``()`` for types without one.
        pred1: whether the layer reads a first predecessor.
        pred2: whether the layer reads a second predecessor (add, concat).
    """

    name: str
    type: LayerType
    kernels: tuple[int, ...]
    pred1: bool
    pred2: bool


@dataclass(frozen=True)
class SpaceSpec:
    """A parsed search-space file.

    Attributes:
        name: the ``name`` of the file (NASGym's default when missing).
        version: the ``version`` of the file.
        max_depth: ``max_nlayers``, the most layers (and rows of the state).
        layers: the layer types in file order (action ids follow this order).
        source: where it was read from, for messages.
    """

    name: str
    version: str
    max_depth: int
    layers: tuple[LayerSpec, ...]
    source: str

    @property
    def kernels(self) -> dict[LayerType, tuple[int, ...]]:
        """Allowed kernel sizes by layer type, ``(0,)`` for types without a kernel."""
        return {layer.type: layer.kernels or (0,) for layer in self.layers}

    @property
    def has_merges(self) -> bool:
        """Whether the space has layers with two inputs (add, concat)."""
        return any(layer.type.arity == 2 for layer in self.layers)


def builtin_text(name: str) -> str:
    """The text of the built-in file ``name`` (``nasenv``, ``chain``, ``multibranch``)."""
    resource = importlib.resources.files(__package__ or "nasframe_spaces") / BUILTIN_FILES[name]
    return resource.read_text(encoding="utf-8")


def load_space(file: str | Path) -> SpaceSpec:
    """Load a search space: a built-in name or the path of a ``.yml``/``.yaml`` file.

    Raises:
        SearchSpaceError: the file does not exist, is not YAML, or breaks the schema; the
            message names the file and what is wrong.
    """
    text_name = str(file)
    if text_name in BUILTIN_FILES:
        return parse_space(builtin_text(text_name), source=f"built-in {text_name!r}")
    path = Path(file).expanduser()
    if not path.is_file():
        hint = closest(text_name, BUILTIN_FILES)
        raise SearchSpaceError(
            f"search space file {text_name!r} does not exist{hint} (give a path to a .yml file "
            f"or a built-in name: {', '.join(BUILTIN_FILES)})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchSpaceError(f"{path}: cannot read the search space file: {exc}") from None
    return parse_space(text, source=str(path))


def parse_space(text: str, *, source: str = "<string>") -> SpaceSpec:
    """Parse and validate the YAML ``text`` of a search space.

    Raises:
        SearchSpaceError: the text is not YAML or breaks the schema.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise SearchSpaceError(f"{source}: not valid YAML{line}: {problem}") from None
    if not isinstance(data, Mapping):
        raise SearchSpaceError(
            f"{source}: a search space must be a mapping with the top key 'nasenv', "
            f"got {type(data).__name__}"
        )
    if "nasenv" not in data:
        raise SearchSpaceError(f"{source}: missing the top key 'nasenv'")
    body = data["nasenv"]
    if not isinstance(body, Mapping):
        raise SearchSpaceError(f"{source}: 'nasenv' must be a mapping, got {type(body).__name__}")
    known = {"name", "version", "max_nlayers", "encoding", "layers"}
    for key in body:
        if key not in known:
            raise SearchSpaceError(
                f"{source}: unknown key {key!r} under 'nasenv'{closest(str(key), known)} "
                f"(known: {', '.join(sorted(known))})"
            )
    for key in ("max_nlayers", "encoding", "layers"):
        if key not in body:
            raise SearchSpaceError(f"{source}: missing the required key 'nasenv.{key}'")
    depth = body["max_nlayers"]
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise SearchSpaceError(f"{source}: 'max_nlayers' must be an integer >= 1, got {depth!r}")
    if not 1 <= depth <= MAX_DEPTH:
        raise SearchSpaceError(
            f"{source}: 'max_nlayers' must be between 1 and {MAX_DEPTH}, got {depth}"
        )
    if body["encoding"] != "NSC":
        raise SearchSpaceError(
            f"{source}: 'encoding' must be 'NSC' (the only one supported), got {body['encoding']!r}"
        )
    items = body["layers"]
    if not isinstance(items, list) or not items:
        raise SearchSpaceError(f"{source}: 'layers' must be a non-empty list of layer entries")
    layers = [_parse_layer(item, number, source) for number, item in enumerate(items, start=1)]
    seen: set[LayerType] = set()
    for layer in layers:
        if layer.type in seen:
            raise SearchSpaceError(f"{source}: layer {layer.name!r} is listed twice")
        seen.add(layer.type)
    return SpaceSpec(
        name=str(body.get("name") or "Unknown NAS Configuration"),
        version=str(body.get("version") or "1.0"),
        max_depth=depth,
        layers=tuple(layers),
        source=source,
    )


def _parse_layer(item: Any, number: int, source: str) -> LayerSpec:
    where = f"{source}: layer {number}"
    if not isinstance(item, Mapping) or len(item) != 1:
        raise SearchSpaceError(
            f"{where}: each entry of 'layers' must be a one-key mapping like "
            "'convolution: {id: 1, kernel_size: [3], pred1: true, pred2: false}'"
        )
    ((name, values),) = item.items()
    names = [t.yaml_name for t in LayerType]
    try:
        layer_type = LayerType.from_yaml_name(str(name))
    except KeyError:
        raise SearchSpaceError(
            f"{where}: unknown layer type {name!r}{closest(str(name), names)} "
            f"(known: {', '.join(names)})"
        ) from None
    where = f"{source}: layer {name!r}"
    if not isinstance(values, Mapping):
        raise SearchSpaceError(
            f"{where}: must map to {{id, kernel_size, pred1, pred2}}, got {values!r}"
        )
    for key in _LAYER_KEYS:
        if key not in values:
            raise SearchSpaceError(f"{where}: missing the required key {key!r}")
    for key in values:
        if key not in _LAYER_KEYS:
            raise SearchSpaceError(
                f"{where}: unknown key {key!r}{closest(str(key), _LAYER_KEYS)} "
                f"(known: {', '.join(_LAYER_KEYS)})"
            )
    kernels = _parse_kernels(values["kernel_size"], layer_type, where)
    flags = []
    for key in ("pred1", "pred2"):
        if not isinstance(values[key], bool):
            raise SearchSpaceError(f"{where}: {key!r} must be true or false, got {values[key]!r}")
        flags.append(values[key])
    pred1, pred2 = flags
    want1, want2 = layer_type.arity >= 1, layer_type.arity == 2
    if (pred1, pred2) != (want1, want2):
        raise SearchSpaceError(
            f"{where}: pred1={str(pred1).lower()}, pred2={str(pred2).lower()} does not fit a "
            f"{name} layer, which reads {layer_type.arity} predecessor(s) (expected "
            f"pred1={str(want1).lower()}, pred2={str(want2).lower()})"
        )
    return LayerSpec(str(name), layer_type, kernels, pred1, pred2)


def _parse_kernels(raw: Any, layer_type: LayerType, where: str) -> tuple[int, ...]:
    if not layer_type.has_kernel:
        if raw not in (None, [], [0]):
            raise SearchSpaceError(
                f"{where}: 'kernel_size' must be null for a layer without a kernel, got {raw!r}"
            )
        return ()
    values = raw if isinstance(raw, list) else [raw]
    if not values or raw is None:
        raise SearchSpaceError(
            f"{where}: 'kernel_size' must be a non-empty list of positive integers, got {raw!r}"
        )
    kernels: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SearchSpaceError(f"{where}: kernel size {value!r} is not an integer")
        if not 1 <= value <= MAX_KERNEL:
            raise SearchSpaceError(
                f"{where}: kernel size {value} must be an integer from 1 to {MAX_KERNEL}"
            )
        if value in kernels:
            raise SearchSpaceError(f"{where}: kernel size {value} is listed twice")
        kernels.append(value)
    return tuple(kernels)
