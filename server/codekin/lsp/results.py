"""Index hits as the contract's Result objects: uri, LSP range (0-based) and 1-based lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from codekin.index.files import FileHit
    from codekin.index.search import Hit


def file_uri(root: Path, rel: str) -> str:
    return "file://" + quote((root / rel).as_posix())


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def lsp_range(start_line: int, end_line: int, text: str) -> dict[str, Any]:
    """Whole lines start..end (1-based); the end is the end of the last line of `text`."""
    last = text.rsplit("\n", 1)[-1] if text else ""
    end = {"line": end_line - 1, "character": utf16_len(last)} if last else {"line": end_line, "character": 0}
    return {"start": {"line": start_line - 1, "character": 0}, "end": end}


def result(root: Path, hit: Hit) -> dict[str, Any]:
    return {
        "uri": file_uri(root, hit.path), "range": lsp_range(hit.start_line, hit.end_line, hit.text),
        "path": hit.path, "startLine": hit.start_line, "endLine": hit.end_line, "symbol": hit.symbol,
        "language": hit.language, "kind": hit.kind, "score": round(hit.score, 4),
    }


def file_result(root: Path, found: FileHit) -> dict[str, Any]:
    """A file as the answer: its uri, and the range of its best chunk to open it at."""
    return {
        "uri": file_uri(root, found.path), "range": lsp_range(found.start_line, found.end_line, ""),
        "path": found.path, "startLine": found.start_line, "endLine": found.end_line, "symbol": found.symbol,
        "language": found.language, "kind": "file", "score": round(found.score, 4),
    }
