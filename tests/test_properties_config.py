"""Random mutations of valid search-space YAML and INI configuration files (Hypothesis).

A mutated file gives either a valid object -- a search space that builds in every action
mode with both encoders, or a loaded configuration -- or the documented one-line error
(:class:`SearchSpaceError`, :class:`ConfigError`) naming the file; never another exception.
"""

from __future__ import annotations

import configparser
import io
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nasframe_spaces import (
    BUILTIN_FILES,
    AbsoluteSearchSpace,
    ChainedSearchSpace,
    MatrixEncoder,
    OneHotEncoder,
    PointerSearchSpace,
    parse_space,
)
from nasframe_spaces.spec import builtin_text
from properties import examples, one_line

import nasframe
from nasframe import (
    ConfigError,
    SearchSpaceError,
    SearchState,
    check_components,
    load_config,
)
from nasframe.config import core_schema

ROOT = Path(__file__).resolve().parents[1]

# -- mutations of a parsed document ------------------------------------------------------

#: Values a mutation writes: what a user might type, and numbers far out of range.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, 2**31, 10**6, 10**12]),  # far too large for a depth or a kernel
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "NSC", "convolution", "terminal", "add", "3", "[3]", "null", "yes"]),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``node`` (keys of mappings, positions of lists), the root first."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for position, child in enumerate(node):
            found += paths(child, (*prefix, position))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` after 1-3 random edits: replace, delete, rename, duplicate or add."""
    import copy

    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        every = paths(document)
        numbers = [path for path in every if type(_at(document, path)) is int]
        # a third of the edits change a number: depths and kernel sizes are where
        # out-of-range values hurt most
        path = draw(st.sampled_from(numbers if numbers and draw(st.integers(0, 2)) == 0 else every))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                document = draw(values)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        actions = ["replace", "delete", "rename", "duplicate", "add", "scale"]
        action = draw(st.sampled_from(actions))
        if action == "replace":
            parent[last] = draw(values)
        elif action == "scale" and type(parent[last]) is int:
            parent[last] *= draw(st.sampled_from([-1, 0, 10, 1000, 10**6]))
        elif action == "delete":
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = parent.pop(last)
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["id", "kernel_size", "pred1", "name", "x"]))] = draw(
                values
            )
    return document


@st.composite
def text_edit(draw: st.DrawFn, text: str) -> str:
    """``text`` with one random slice replaced by random characters."""
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 20)))
    insert = draw(st.text(alphabet=st.sampled_from(list("[]{}:-=#;%,\n '\"\t0129ab")), max_size=8))
    return text[:start] + insert + text[end:]


# -- search-space YAML -------------------------------------------------------------------

SPACE_DOCUMENTS = {name: yaml.safe_load(builtin_text(name)) for name in BUILTIN_FILES}


@st.composite
def space_texts(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(sorted(SPACE_DOCUMENTS)))
    if draw(st.integers(0, 4)) == 0:
        return draw(text_edit(builtin_text(name)))
    return yaml.safe_dump(draw(mutated(SPACE_DOCUMENTS[name])), allow_unicode=True)


def _with(name: str, old: str, new: str) -> str:
    text = builtin_text(name)
    assert old in text
    return text.replace(old, new, 1)


@settings(max_examples=examples(300))
@given(space_texts())
# What the "thorough" profile found (issue 17): encoders sized by a huge depth or kernel
# raised MemoryError/ValueError instead of a one-line error. Kept as fixed examples.
@example(_with("chain", "max_nlayers: 10", "max_nlayers: 10000000"))
@example(_with("chain", "kernel_size: [1, 3, 5]", "kernel_size: [1, 3, 3000000000]"))
def test_mutated_search_space_files_load_or_fail_in_one_line(text: str) -> None:
    try:
        spec = parse_space(text, source="mutated.yml")
    except SearchSpaceError as exc:
        assert one_line(exc).startswith("mutated.yml: ")
        return
    for mode in (ChainedSearchSpace, PointerSearchSpace, AbsoluteSearchSpace):
        space = mode(spec=spec)
        assert space.action_space.n == len(space.actions()) >= 1
        state = space.reset()
        for encoder in (OneHotEncoder(space), MatrixEncoder(space, flatten=True)):
            assert encoder.observation_space.contains(encoder.encode(state))
        for action in range(min(int(space.action_space.n), 12)):
            transition = space.apply(state, action)
            assert isinstance(transition.state, SearchState)


# -- INI configuration -------------------------------------------------------------------

INI_FILES = sorted(p.name for p in (ROOT / "resources").glob("*.ini"))
MANAGER = nasframe.get_plugin_manager()


def _schema() -> dict[str, list[str]]:
    """Every section of the configuration and its keys (the core's and the plugins')."""
    schema = core_schema(nasframe.ConfigSchema())
    MANAGER.hook.nasframe_add_config(schema=schema)
    return {name: sorted(section.keys) or ["x"] for name, section in schema.sections.items()}


SCHEMA = _schema()


def read_ini(name: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.read(ROOT / "resources" / name, encoding="utf-8")
    return {section: dict(parser[section]) for section in parser.sections()}


def write_ini(document: Any) -> str:
    """``document`` as INI text, however a mutation shaped it."""
    if not isinstance(document, dict):
        return f"{document}\n"
    lines = []
    for section, keys in document.items():
        lines.append(f"[{section}]")
        if isinstance(keys, dict):
            lines += [f"{key} = {value}" for key, value in keys.items()]
        else:
            lines.append(str(keys))
    return "\n".join(lines) + "\n"


#: Values of a real configuration: numbers, words and component names.
ini_values = st.one_of(
    st.sampled_from(["0", "-1", "1e309", "nan", "2.5", "yes", "off", "ppo", "keras", "proxy"]),
    st.sampled_from(["digits", "csv", "chained", "pointer", "nowhere", "99999999999999999999"]),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=12),
)


@st.composite
def ini_texts(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(INI_FILES))
    if draw(st.integers(0, 4)) == 0:
        return draw(text_edit((ROOT / "resources" / name).read_text(encoding="utf-8")))
    document = read_ini(name)
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(SCHEMA)))
        key = draw(st.sampled_from(SCHEMA[section]))
        document.setdefault(section, {})[key] = draw(ini_values)
    if draw(st.booleans()):
        document = draw(mutated(document))
    return write_ini(document)


@settings(max_examples=examples(300))
@given(ini_texts())
def test_mutated_configuration_files_load_or_fail_in_one_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated.ini"
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config(path, plugin_manager=MANAGER)
            check_components(config, MANAGER)
        except ConfigError as exc:
            assert one_line(exc).startswith(f"{path}: ")
            return
        assert config.to_ini()  # a loaded configuration writes itself back
        again = io.StringIO(config.to_ini())
        assert configparser.ConfigParser(interpolation=None).read_file(again) is None
