"""The plugin rules of the design, checked over every plugin package in the repository.

* A plugin imports only nasframe's public API (``import nasframe`` or ``from nasframe
  import <a name in nasframe.__all__>``), never a core module such as ``nasframe.config``
  and never another plugin.
* Default plugins mark every hook implementation ``trylast=True`` so installed plugins
  run first.

Default plugins that have not landed yet are simply not checked; each one is checked as
soon as its package exists under ``plugins/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nasframe
from nasframe import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = sorted(
    [path for path in (ROOT / "plugins").glob("nasframe_*") if path.is_dir()]
    + [path for path in (ROOT / "docs" / "examples").glob("*/src/nasframe_*") if path.is_dir()]
)


def _violations(package: Path, root: Path = ROOT) -> list[str]:
    own = package.name
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
                imported: list[str] = []
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
                imported = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if module.startswith("nasframe."):
                    found.append(f"{where}:{node.lineno} imports core module {module}")
                elif top.startswith("nasframe_") and top != own:
                    found.append(f"{where}:{node.lineno} imports another plugin, {top}")
                elif module == "nasframe":
                    private = [name for name in imported if name not in nasframe.__all__]
                    if private:
                        found.append(
                            f"{where}:{node.lineno} imports {private} from nasframe, which are "
                            "not in nasframe.__all__"
                        )
    return found


def test_the_rule_checker_finds_violations(tmp_path: Path) -> None:
    package = tmp_path / "nasframe_bad"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import nasframe\n"
        "from nasframe import Registry, hookimpl\n"
        "from nasframe_bad import helpers\n"
        "from . import helpers as again\n"
        "from nasframe.config import load_config\n"
        "import nasframe_digits.data\n"
        "from nasframe import _version\n",
        encoding="utf-8",
    )
    assert _violations(package, tmp_path) == [
        "nasframe_bad/__init__.py:5 imports core module nasframe.config",
        "nasframe_bad/__init__.py:6 imports another plugin, nasframe_digits",
        "nasframe_bad/__init__.py:7 imports ['_version'] from nasframe, which are not in "
        "nasframe.__all__",
    ]


@pytest.mark.parametrize("package", PACKAGES, ids=[path.name for path in PACKAGES])
def test_plugin_imports_only_the_public_api(package: Path) -> None:
    assert _violations(package) == []


def test_default_plugin_hooks_are_trylast() -> None:
    manager = get_plugin_manager(autoload=False, disable=())
    for name, status in manager.statuses.items():
        if not (status.default and status.status == "loaded"):
            continue
        plugin = manager.get_plugin(name)
        for caller in manager.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    assert impl.trylast, f"default plugin {name!r}: {caller.name} is not trylast"
