"""The request fields both servers take (limit, mode, minimum similarity, path glob, language):
one rule and one message each, so the language server (lsp/requests.py, lsp/options.py) and
the MCP server (mcp/arguments.py) say the same thing about the same mistake.

Each check returns what is wrong with a value ("must be ..."), or None when it is fine; the
face puts its own prefix in front and raises its own error class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codekin.modes import SEARCH_MODES

MIN_SIMILARITY = (-1, 1)  # a cosine similarity (ints: JSON schemas show them as -1 and 1)


def limit_problem(value: Any, maximum: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        return f"must be an integer between 1 and {maximum}"
    return None


def min_similarity_problem(value: Any) -> str | None:
    low, high = MIN_SIMILARITY
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return f"must be a number between {low:g} and {high:g}"
    return None


def mode_problem(value: Any) -> str | None:
    return None if value in SEARCH_MODES else f"must be one of {', '.join(SEARCH_MODES)}"


def text_problem(value: Any) -> str | None:
    """A path glob or a language name."""
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def field_problem(name: str, value: Any, max_limit: int) -> str | None:
    """The check of a common field by its name (`limit`, `mode`, `min_similarity`/`minSimilarity`,
    `path`, `lang`); None for a field that is not one of them, or a value that is fine."""
    checks: dict[str, Callable[[Any], str | None]] = {
        "limit": lambda v: limit_problem(v, max_limit), "mode": mode_problem,
        "min_similarity": min_similarity_problem, "minSimilarity": min_similarity_problem,
        "path": text_problem, "lang": text_problem}
    check = checks.get(name)
    return check(value) if check is not None else None
