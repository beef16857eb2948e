"""Meta-tests: every hook is documented, fired by the core, and exercised by a test.

A test module declares the hooks it exercises in a module-level ``EXERCISED_HOOKS``
tuple; the claim is checked (the module must define a function of that name -- a hook
implementation of a test plugin). Hooks whose tests or call sites belong to parts that
have not landed yet are listed, with their owner, in ``PENDING_TESTS`` and
``PENDING_FIRING``; when they land, remove them from the lists (the tests below say so).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from nasframe import get_plugin_manager, hookspecs
from nasframe.cli.hooks_cmd import hook_specs, render_reference
from nasframe.registry import COMPONENT_KINDS

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

#: Hooks no test exercises yet, and who will. Shrink this list; never grow it silently.
PENDING_TESTS: dict[str, str] = {}

#: Event hooks the core does not fire yet, and which part will.
PENDING_FIRING: dict[str, str] = {}

SPECS = dict(hook_specs())


def _exercised() -> dict[str, list[str]]:
    """Hook name -> the test modules that claim and implement it."""
    found: dict[str, list[str]] = {}
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        claimed: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "EXERCISED_HOOKS"
                for target in node.targets
            ):
                claimed = list(ast.literal_eval(node.value))
        if not claimed:
            continue
        source = path.read_text(encoding="utf-8")
        for hook in claimed:
            # the implementation may live in a plugin module written as a string
            assert re.search(rf"\bdef {hook}\(", source), (
                f"{path.name} claims to exercise {hook} but defines no implementation of it"
            )
            found.setdefault(hook, []).append(path.name)
    return found


def test_hookspecs_are_all_found() -> None:
    names = {name for name in vars(hookspecs) if name.startswith("nasframe_")}
    assert set(SPECS) == names
    assert set(COMPONENT_KINDS.values()) <= names


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented(name: str) -> None:
    doc = inspect.getdoc(SPECS[name]) or ""
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.endswith("."), f"{name}: the first line must be a sentence"
    assert "\nArgs:\n" in doc, f"{name}: no Args section"
    assert "\nReturns:\n" in doc, f"{name}: no Returns section"
    args = doc.split("\nArgs:\n", 1)[1].split("\n\n", 1)[0]
    for parameter in inspect.signature(SPECS[name]).parameters:
        assert re.search(rf"^    {parameter}( \(.*\))?: \S", args, re.MULTILINE), (
            f"{name}: argument {parameter!r} is not documented under Args"
        )
    assert name.startswith("nasframe_")


def test_every_hook_is_exercised_by_a_test() -> None:
    exercised = _exercised()
    missing = sorted(set(SPECS) - set(exercised) - set(PENDING_TESTS))
    assert not missing, (
        f"hooks no test exercises: {missing}; write a test plugin implementing each and list "
        "it in that module's EXERCISED_HOOKS"
    )
    done = sorted(set(PENDING_TESTS) & set(exercised))
    assert not done, f"now exercised, remove from PENDING_TESTS in {Path(__file__).name}: {done}"
    assert set(PENDING_TESTS) <= set(SPECS), "PENDING_TESTS names a hook that does not exist"


def test_every_hook_is_fired_by_the_core() -> None:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in sorted((ROOT / "nasframe").rglob("*.py"))
    )
    for name in SPECS:
        if name in COMPONENT_KINDS.values():
            continue  # called one implementation at a time by PluginManager.registries()
        fired = re.search(rf"\.hook\.{name}\(", source) is not None
        if name in PENDING_FIRING:
            assert not fired, f"{name} is fired now; remove it from PENDING_FIRING"
        else:
            assert fired, f"no code in nasframe/ fires {name}"
    assert set(PENDING_FIRING) <= set(SPECS)


def test_hook_reference_is_in_sync() -> None:
    page = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert page == render_reference(), (
        "docs/hooks.md is out of date; regenerate it with: nasframe hooks -o docs/hooks.md"
    )
    for name in SPECS:
        assert f"### `{name}(" in page


def test_reference_renders_google_sections() -> None:
    page = render_reference()
    assert "**Args:**\n\n- `registry`: the search-space registry." in page
    assert ":class:" not in page and "``" not in page
    assert page.index("## Registration hooks") < page.index("## Configuration hooks")
    assert page.index("## Configuration hooks") < page.index("## Event hooks")


def test_every_hook_collects_all_results() -> None:
    # hookspecs.py documents that no hook is firstresult; keep the claim true.
    manager = get_plugin_manager(autoload=False)
    for name in SPECS:
        spec = getattr(manager.hook, name).spec
        assert spec is not None and not spec.opts.get("firstresult"), name
