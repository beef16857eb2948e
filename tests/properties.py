"""Shared helpers of the property-based tests (Hypothesis)."""

from __future__ import annotations

from hypothesis import settings

#: The ``max_examples`` of the "ci" profile that property budgets are written against.
CI_EXAMPLES = 200


def examples(ci: int) -> int:
    """The examples of a property that runs ``ci`` of them in CI, scaled by the profile."""
    return max(1, ci * settings().max_examples // CI_EXAMPLES)


def one_line(exc: BaseException) -> str:
    """The message of ``exc``, checked to be the documented one line (no traceback text)."""
    message = str(exc)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message
