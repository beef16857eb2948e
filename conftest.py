"""Collect the code blocks of README.md and docs/**/*.md as tests (see tests/docs_blocks.py)."""

from tests.docs_blocks import SYBIL

pytest_collect_file = SYBIL.pytest()
