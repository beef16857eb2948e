"""Every code block of README.md and docs/**/*.md runs (rules: tests/docs_blocks.py).

One test per block, in page order; the blocks of a page share one namespace and one
working folder, as a reader goes down the page. Selecting one block (``-k``) runs the
blocks above it first. How a page marks its blocks: docs/writing-docs.md.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docs_blocks import (
    PROSE_LANGUAGES,
    ROOT,
    RUN_LANGUAGES,
    SYBIL,
    Block,
    directives_before,
    fences,
    markdown_files,
    page_folder,
)
from sybil import Document, Example

PAGES: dict[Path, Document] = {path: SYBIL.parse(path) for path in markdown_files()}
BLOCKS: list[tuple[Path, int]] = [
    (path, index) for path, document in PAGES.items() for index, _ in enumerate(document)
]


class _Page:
    """A page under way: its examples, how far they ran, its folder."""

    def __init__(self, document: Document) -> None:
        self.examples: list[Example] = list(document)
        self.done = 0
        self.failed: int | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="nasframe-docs-"))
        page_folder(self.folder)


@pytest.fixture(scope="module")
def pages() -> Iterator[dict[Path, _Page]]:
    state: dict[Path, _Page] = {}
    yield state
    for page in state.values():
        shutil.rmtree(page.folder, ignore_errors=True)


def _run(example: Example) -> None:
    with contextlib.suppress(pytest.skip.Exception):
        example.evaluate()


@pytest.mark.parametrize(
    ("path", "index"),
    BLOCKS,
    ids=[f"{p.relative_to(ROOT)}:{list(PAGES[p])[i].line}" for p, i in BLOCKS],
)
def test_block(
    path: Path, index: int, pages: dict[Path, _Page], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = pages.get(path) or pages.setdefault(path, _Page(PAGES[path]))
    monkeypatch.chdir(page.folder)
    if page.failed is not None and page.failed < index:
        pytest.skip(f"block {page.failed + 1} of this page failed")
    while page.done < index:  # the blocks above, when this one was selected alone
        _run(page.examples[page.done])
        page.done += 1
    example = page.examples[index]
    page.done = index + 1
    try:
        example.evaluate()
    except pytest.skip.Exception:
        raise
    except BaseException:
        page.failed = index
        raise


@pytest.mark.parametrize("path", list(PAGES), ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_block_has_a_known_language(path: Path) -> None:
    # A block tagged with a language the test does not know would silently never run.
    for line, language in fences(path):
        assert language in RUN_LANGUAGES | PROSE_LANGUAGES, (
            f"{path.relative_to(ROOT)}:{line}: code block language {language!r}: use one of "
            f"{', '.join(sorted(RUN_LANGUAGES | PROSE_LANGUAGES))} (docs/writing-docs.md)"
        )


def test_the_pages_are_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in PAGES}
    assert {"README.md", "docs/search.md", "docs/writing-docs.md"} <= names
    assert all(not name.startswith("tests/") for name in names)


def _block(source: str) -> Block:
    start = source.index("```")
    return Block("bash", "nasframe search\n", 2, directives_before(source, start))


def test_directives_are_read_and_checked() -> None:
    text = (
        '<!-- docs-test: replace "search" "search --steps 1" -->\n'
        '<!-- docs-test: skip "a GPU" -->\n```bash\n'
    )
    block = _block(text)
    assert block.source == "nasframe search --steps 1\n" and block.get("skip") == ["a GPU"]
    for bad, message in (
        ('<!-- docs-test: skip "" -->\n```bash\n', "needs a reason"),
        ('<!-- docs-test: skipp "x" -->\n```bash\n', "bad docs-test directive"),
        ('<!-- docs-test: replace "absent" "x" -->\n```bash\n', "not in the block"),
    ):
        with pytest.raises(ValueError, match=message):
            _block(bad)
    # a directive above an earlier block, or separated by prose, does not apply
    assert _block('<!-- docs-test: skip "x" -->\ntext\n```bash\n').directives == []


def _example(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "page.md"
    path.write_text(text)
    return list(SYBIL.parse(path))


def test_a_failing_shell_command_or_wrong_output_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok, wrong_exit, wrong_output, fails = _example(
        tmp_path,
        "```console\n$ echo hello world\nhello ... world\n```\n"
        "```bash\nfalse\n```\n"
        "```console\n$ echo hello\ngoodbye\n```\n"
        '<!-- docs-test: fails "no such" -->\n```bash\nls /no/such/folder\n```\n',
    )
    ok.evaluate()
    with pytest.raises(AssertionError, match="exit 1, expected 0"):
        wrong_exit.evaluate()
    with pytest.raises(AssertionError, match="expected a line 'goodbye'"):
        wrong_output.evaluate()
    with pytest.raises(AssertionError, match="expected exit 1, got 2"):
        fails.evaluate()  # ls exits 2


def test_python_and_ini_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    python, bad_ini = _example(
        tmp_path,
        "```python\nx = undefined_name\n```\n```ini\n[rnu]\nsteps = 1\n```\n",
    )
    with pytest.raises(NameError, match="undefined_name"):
        python.evaluate()
    with pytest.raises(Exception, match=r"unknown section \[rnu\]"):
        bad_ini.evaluate()
