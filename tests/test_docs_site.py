"""The documentation site builds in strict mode: nav entries, links and API references resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _nav_files(entries: list) -> list[str]:
    files: list[str] = []
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            files.extend(_nav_files(value) if isinstance(value, list) else [value])
    return files


def _config() -> dict:
    # mkdocs.yml has no python tags, so the safe loader reads it
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_every_nav_page_exists_and_every_guide_page_is_in_the_nav() -> None:
    nav = _nav_files(_config()["nav"])
    missing = [page for page in nav if not (ROOT / "docs" / page).is_file()]
    assert missing == []
    for page in ("hooks.md", "plugins.md", "finalize.md", "play.md", "from-nasgym.md"):
        assert page in nav


@pytest.mark.slow
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    # as the README writes it: no variable that quiets a warning (issue 32)
    env = {k: v for k, v in os.environ.items() if k != "NO_MKDOCS_2_WARNING"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    # the API reference is generated from the docstrings
    contracts = (site / "api" / "contracts" / "index.html").read_text(encoding="utf-8")
    assert "PerformanceEstimator" in contracts and "Train ``architecture``" not in contracts
    assert "measure" in contracts
    assert (site / "hooks" / "index.html").is_file()
    assert (site / "from-nasgym" / "index.html").is_file()


@pytest.mark.slow
def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the guide](nowhere.md).\n")
    config = _config()
    config.update(docs_dir=str(docs), site_dir=str(tmp_path / "site"), nav=["index.md"])
    config["plugins"] = ["search"]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode != 0
    assert "nowhere.md" in result.stderr
