"""File extension -> language (the language specs, spec.py), and cached parsers from the bundled grammars."""

from __future__ import annotations

from functools import cache
from pathlib import PurePosixPath

from tree_sitter import Parser

from codekin.chunking.spec import EXTENSIONS

# Languages without a grammar here still get a name for filtering (--lang).
PLAIN = {".md": "markdown", ".txt": "text", ".json": "json", ".toml": "toml", ".yml": "yaml",
         ".yaml": "yaml", ".heex": "heex", ".eex": "eex", ".html": "html", ".css": "css"}


def language_for(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    return EXTENSIONS.get(suffix) or PLAIN.get(suffix) or (suffix.lstrip(".") or "text")


@cache
def parser_for(language: str) -> Parser | None:
    """A parser for a language with a bundled grammar, else None (line windows)."""
    if language not in EXTENSIONS.values():
        return None
    from tree_sitter_language_pack import get_parser

    try:
        return get_parser(language)  # type: ignore[arg-type]
    except (LookupError, ValueError, OSError):
        return None


def grammar_status() -> dict[str, bool]:
    """Which grammars load (used by `codekin doctor`)."""
    return {lang: parser_for(lang) is not None for lang in sorted(set(EXTENSIONS.values()))}
