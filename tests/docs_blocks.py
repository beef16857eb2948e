"""Run every fenced code block of README.md and docs/**/*.md (driven by test_docs.py).

How a block runs depends on its language tag; `<!-- docs-test: ... -->` comments right
above a block adjust it. docs/writing-docs.md is the user-facing description; keep the
two in step.

| tag | what the test does |
|---|---|
| `python` | executes it; the blocks of one page share one namespace, in page order |
| `bash`, `sh`, `shell` | runs every command (`\\` continues a line); each must exit 0 |
| `console` | runs every `$ ` line; the lines below it are its expected output (`...` matches
  anything); a line starting with `error:` means exit status 1, else 0 |
| `ini` | loads it with `nasframe.load_config` (every section and key validated) |
| `toml`, `yaml` | parses it |
| `text`, `markdown` | output or prose, not run |

Directives (shell-quoted arguments):

* `skip "reason"` -- not run; the reason says why (a cluster, a GPU, a download);
* `replace "old" "new"` -- run with `old` replaced (tiny settings); `old` must occur;
* `append "args"` -- shell/console: append `args` to every command (tiny settings);
* `fails "message"` -- shell/console: every command must fail with exit status 1 and one
  line containing `message` (the offline failure mode of a block that cannot run here);
* `file NAME` -- write the block to `NAME` in the working folder (later blocks use it);
* `ignore-output` -- console: run the commands, do not compare the output.

Each page runs in a fresh temporary folder holding a copy of `resources/` and links to
`docs/`, `benchmarks/`, `nasframe/` and the virtual environment (`.venv`); the environment's `bin`
folder comes first on `PATH` (as if activated); the example plugins' `src` folders under
`docs/examples/` are importable; commands see an empty data folder (`NASFRAME_DATA_DIR`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml
from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

ROOT = Path(__file__).resolve().parent.parent

#: Languages the test runs, and those it knows are not code (every fence needs one).
RUN_LANGUAGES = {"python", "bash", "sh", "shell", "console", "ini", "toml", "yaml"}
PROSE_LANGUAGES = {"text", "markdown"}
DIRECTIVES = {"skip": 1, "replace": 2, "append": 1, "fails": 1, "file": 1, "ignore-output": 0}
COMMAND_TIMEOUT = 600

_DIRECTIVE = re.compile(r"<!--\s*docs-test:(?P<args>(?:(?!<!--|-->).)*)-->\s*\Z", re.S)


def directives_before(text: str, start: int) -> list[list[str]]:
    """The `docs-test` directives in the HTML comments right above position `start`."""
    found: list[list[str]] = []
    preceding = text[:start]
    while True:
        match = _DIRECTIVE.search(preceding.rstrip() + "\n")
        if match is None:
            return found
        args = shlex.split(match["args"])
        if not args or args[0] not in DIRECTIVES or len(args) - 1 != DIRECTIVES[args[0]]:
            raise ValueError(
                f"bad docs-test directive {match.group(0).strip()!r}: expected one of "
                + ", ".join(f"{name} ({count} argument(s))" for name, count in DIRECTIVES.items())
            )
        if args[0] == "skip" and not args[1].strip():
            raise ValueError("docs-test: skip needs a reason")
        found.insert(0, args)
        preceding = preceding.rstrip()[: match.start()]


class Block:
    """One fenced block with its directives, as the evaluators see it."""

    def __init__(self, language: str, source: str, line: int, directives: list[list[str]]):
        self.language = language
        self.line = line  # of the first line of code
        self.directives = directives
        for args in directives:
            if args[0] == "replace":
                if args[1] not in source:
                    raise ValueError(f"docs-test: replace {args[1]!r}: not in the block")
                source = source.replace(args[1], args[2])
        self.source = source

    def get(self, name: str) -> list[str] | None:
        for args in self.directives:
            if args[0] == name:
                return args[1:]
        return None


class DocsBlockParser:
    """A Sybil parser: one region per fenced block whose language the test runs."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(language=r"[\w-]+")

    def __call__(self, document: Document) -> Iterable[Region]:
        for region in self.lexer(document):
            language = region.lexemes["language"]
            if language not in RUN_LANGUAGES:
                continue
            source = region.lexemes["source"]
            line = document.text.count("\n", 0, region.start) + 2
            block = Block(
                language, str(source), line, directives_before(document.text, region.start)
            )
            region.parsed = block
            region.evaluator = evaluate
            yield region


def evaluate(example: Example) -> None:
    block: Block = example.parsed
    skip = block.get("skip")
    if skip is not None:
        pytest.skip(skip[0])
    target = block.get("file")
    if target is not None:
        Path(target[0]).write_text(block.source, encoding="utf-8")
    if block.language == "python":
        code = compile("\n" * (block.line - 1) + block.source, example.path, "exec")
        exec(code, example.namespace)
    elif block.language in {"bash", "sh", "shell"}:
        for command in shell_commands(block.source):
            run_command(command, block, expected=None)
    elif block.language == "console":
        for command, expected in console_commands(block.source):
            run_command(command, block, expected=expected)
    elif block.language == "ini":
        import nasframe

        path = Path(target[0]) if target else Path("block.ini")
        if target is None:
            path.write_text(block.source, encoding="utf-8")
        nasframe.load_config(path)
    elif block.language == "toml":
        tomllib.loads(block.source)
    elif block.language == "yaml":
        yaml.safe_load(block.source)


def shell_commands(source: str) -> list[str]:
    """The commands of a shell block: `\\`-continued lines joined, comments dropped."""
    commands: list[str] = []
    current = ""
    for line in source.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        commands.append(current + line)
        current = ""
    return commands


def console_commands(source: str) -> list[tuple[str, list[str]]]:
    """`$ ` commands of a console block, each with the output lines below it."""
    result: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("$ "):
            result.append((line[2:], []))
        elif result:
            result[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"console block: output {line!r} before any '$ ' command")
    return result


def _strip_comment(command: str) -> str:
    """The command without a trailing `# comment` (so appended arguments stay in it)."""
    return re.sub(r"\s+#[^'\"]*$", "", command)


def run_command(command: str, block: Block, *, expected: list[str] | None) -> None:
    append = block.get("append")
    if append is not None:
        command = _strip_comment(command) + " " + append[0]
    # An empty data folder: a page runs as on a fresh machine, whatever is cached here.
    data = Path("data").absolute()
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1", NASFRAME_DATA_DIR=str(data))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    where = f"line {block.line}: $ {command}"
    fails = block.get("fails")
    if fails is not None:
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 1, f"{where}\nexpected exit 1, got {done.returncode}\n{output}"
        assert len(errors) == 1 and fails[0] in errors[0], (
            f"{where}\nexpected one line with {fails[0]!r}, got:\n{done.stderr}"
        )
        return
    wanted = [line for line in expected or [] if line.strip() and line.strip() != "..."]
    status = 1 if any(line.startswith("error:") for line in wanted) else 0
    assert done.returncode == status, (
        f"{where}\nexit {done.returncode}, expected {status}\n{output}"
    )
    if block.get("ignore-output") is not None:
        return
    for line in wanted:
        pattern = ".*".join(
            r"\s+".join(map(re.escape, part.split())) for part in line.strip().split("...")
        )
        assert re.search(pattern, output), f"{where}\nexpected a line {line!r} in:\n{output}"


def page_folder(folder: Path) -> None:
    """Prepare the working folder of a page: resources copied, docs/benchmarks/.venv linked."""
    shutil.copytree(ROOT / "resources", folder / "resources")
    for name in ("docs", "benchmarks", "nasframe"):
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    for src in sorted((ROOT / "docs" / "examples").glob("*/src")):
        if str(src) not in sys.path:
            sys.path.append(str(src))


def markdown_files() -> list[Path]:
    """README.md and every page under docs/ (what the test suite runs)."""
    pages = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *(p for p in pages if "build" not in p.relative_to(ROOT).parts)]


def fences(path: Path) -> list[tuple[int, str]]:
    """(line, language) of every opening fence of a Markdown file."""
    found: list[tuple[int, str]] = []
    inside: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(r"\s*(`{3,}|~{3,})(.*)$", line)
        if match is None:
            continue
        if inside is None:
            inside = match[1]
            found.append((number, match[2].strip()))
        elif match[1].startswith(inside[0]) and len(match[1]) >= len(inside) and not match[2]:
            inside = None
    return found


SYBIL = Sybil(parsers=[DocsBlockParser()], path=str(ROOT), patterns=["*.md"], name="docs")
