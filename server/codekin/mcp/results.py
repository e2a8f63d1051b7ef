"""Hits as the tools' results: path, 1-based lines, symbol, score and a short snippet.

The snippet is capped (lines, line width, characters) so that a page of results stays small
in an agent's context; the lines say where to read the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codekin.index.files import FileHit
    from codekin.index.search import Hit

SNIPPET_LINES = 12
SNIPPET_LINE_CHARS = 160
SNIPPET_CHARS = 1000


def snippet(text: str) -> str:
    """The first lines of `text` as written, within the caps; a last line says what was left out."""
    lines = text.rstrip("\n").split("\n")
    kept: list[str] = []
    size = 0
    for line in lines[:SNIPPET_LINES]:
        if len(line) > SNIPPET_LINE_CHARS:
            line = line[:SNIPPET_LINE_CHARS - 1] + "…"
        if kept and size + len(line) + 1 > SNIPPET_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) < len(lines):
        kept.append(f"… ({len(lines) - len(kept)} more lines)")
    return "\n".join(kept)


def hit_result(hit: Hit) -> dict[str, Any]:
    return {"path": hit.path, "start_line": hit.start_line, "end_line": hit.end_line, "symbol": hit.symbol,
            "language": hit.language, "kind": hit.kind, "score": round(hit.score, 4), "snippet": snippet(hit.text)}


def file_result(found: FileHit, text: str) -> dict[str, Any]:
    """A file as the answer, with its best chunk's lines and snippet (`text`) to open it at."""
    return {"path": found.path, "start_line": found.start_line, "end_line": found.end_line, "symbol": found.symbol,
            "language": found.language, "kind": "file", "score": round(found.score, 4), "snippet": snippet(text)}


def query_result(hit: Hit | None) -> dict[str, Any] | None:
    """What `similar` compared: an indexed chunk's place, without its snippet (the agent gave it)."""
    if hit is None:
        return None
    return {"path": hit.path, "start_line": hit.start_line, "end_line": hit.end_line, "symbol": hit.symbol,
            "language": hit.language, "kind": hit.kind}
