"""The layout's rules, checked on the source (issue 31): what may import what.

* No library module imports the command line: only ``nasframe/cli/`` (and the
  ``python -m nasframe`` entry point) may import ``nasframe.cli``.
* The core names no plugin: no module under ``nasframe/`` imports a default plugin's
  package (``nasframe_keras``, ...); it finds plugins through the plugin manager.
* A plugin imports only nasframe's public API (``nasframe`` and its documented
  sub-packages), never a private module (a name that starts with ``_``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "nasframe"
PLUGINS = ROOT / "plugins"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (``import x``, ``from x import y``), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "nasframe":
                found += [(node.lineno, f"nasframe.{alias.name}") for alias in node.names]
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_no_library_module_imports_the_command_line() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in _core_modules()
        if CORE / "cli" not in path.parents and path.name != "__main__.py"
        for line, name in _imports(path)
        if name == "nasframe.cli" or name.startswith("nasframe.cli.")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_core_names_no_plugin() -> None:
    plugins = {path.name for path in PLUGINS.iterdir() if (path / "__init__.py").exists()}
    assert "nasframe_keras" in plugins
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in _core_modules()
        for line, name in _imports(path)
        if name.split(".")[0] in plugins
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "plugin", sorted(p.name for p in PLUGINS.iterdir() if (p / "__init__.py").exists())
)
def test_a_plugin_imports_no_private_nasframe_module(plugin: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((PLUGINS / plugin).rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] == "nasframe" and any(_private(part) for part in name.split(".")[1:])
    ]
    assert not wrong, "\n".join(wrong)
