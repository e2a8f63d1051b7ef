"""Turn a source file into syntax-aware chunks (tree-sitter), or line windows as a fallback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath

from codekin.chunking.chunk import (
    Chunk,
    Unit,
    content_hash,
    header_line,
    part_symbol,
    uncovered_runs,
)
from codekin.chunking.context import chunk_context, first_sentence, section_headings
from codekin.chunking.definitions import definition_units
from codekin.chunking.delegation import Delegations
from codekin.chunking.languages import language_for, parser_for
from codekin.chunking.spec import spec_for
from codekin.chunking.windows import window_units
from codekin.config import IndexConfig

# Bump when chunk boundaries, headers or context change: indexes then re-chunk every file
# on their next full pass (vectors of unchanged chunks are reused by content hash).
CHUNKER_VERSION = 7

__all__ = ["Chunk", "chunk_text", "content_hash", "header_line", "language_for"]

def chunk_text(path: str, text: str, config: IndexConfig | None = None) -> list[Chunk]:
    """Chunks of one file; `text` is its decoded content with \\n line ends."""
    config = config or IndexConfig()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    language = language_for(path)
    syntax = config.chunker == "syntax" and parser_for(language) is not None
    units = _syntax_units(path, language, text, config) if syntax else None
    if not units:
        units = window_units(0, len(lines) - 1, config.window_lines, config.window_stride,
                             "window", PurePosixPath(path).name)
        return _build(path, language, lines, units)
    units = _without_overlaps(units)
    units += _gap_units(units, lines, _file_symbol(units, path))
    units.sort(key=lambda u: (u.start, u.end))
    pieces = [piece for unit in units for piece in _split(unit, config.max_chunk_lines)]
    return _with_context(_build(path, language, lines, pieces), text, config)


def _syntax_units(path: str, language: str, text: str, config: IndexConfig) -> list[Unit]:
    parser = parser_for(language)
    if parser is None:
        return []
    spec = spec_for(language)
    source = (spec.parse_text(text) if spec.parse_text is not None else text).encode("utf-8")
    root = parser.parse(source).root_node
    if spec.prepare is not None:
        root = spec.prepare(parser, source, root)
    try:
        if spec.units is not None:
            return spec.units(root)
        return definition_units(root, language, text.split("\n"), config.max_chunk_lines, PurePosixPath(path).stem)
    except RecursionError:  # pathological nesting: line windows still index the file
        return []


def _without_overlaps(units: list[Unit]) -> list[Unit]:
    kept: list[Unit] = []
    for unit in sorted(units, key=lambda u: (u.start, -u.end)):
        if kept and unit.start <= kept[-1].end:
            if unit.end <= kept[-1].end:
                continue  # nested inside the previous unit
            unit.start = kept[-1].end + 1
        kept.append(unit)
    return kept


def _file_symbol(units: list[Unit], path: str) -> str:
    """What the lines outside definitions are named after: an Elixir/Erlang file's module, else
    the file (not its first class: a symbol query for that class would find them)."""
    for unit in units:
        if unit.kind in ("module", "attributes"):
            return unit.symbol
    return PurePosixPath(path).name


def _gap_units(units: list[Unit], lines: list[str], symbol: str) -> list[Unit]:
    """Blocks for lines no unit covers (top-level statements, macros, tables)."""
    return [Unit("block", symbol, start, end) for start, end in uncovered_runs(units, lines, 0, len(lines) - 1)]


def _split(unit: Unit, max_lines: int) -> list[Unit]:
    """Split at inner boundaries into pieces of at most `max_lines` lines."""
    if unit.end - unit.start + 1 <= max_lines:
        return [unit]
    boundaries = sorted({b for b in unit.boundaries if unit.start < b <= unit.end})
    pieces: list[Unit] = []
    start = unit.start
    while start <= unit.end:
        limit = start + max_lines  # first line that may not be in this piece
        if limit > unit.end:
            end = unit.end
        else:
            candidates = [b for b in boundaries if start + max_lines // 4 < b <= limit]
            end = (candidates[-1] if candidates else limit) - 1
        pieces.append(Unit(unit.kind, unit.symbol, start, end))
        start = end + 1
    if len(pieces) > 1:
        for number, piece in enumerate(pieces, 1):
            piece.symbol = part_symbol(unit.symbol, number, len(pieces))
    return pieces


# Chunks that hold the module doc themselves: no context line of their own.
_DOC_HOLDERS = ("module", "attributes")
# Chunks that may hold a section heading comment (the others are code units).
_SECTION_HOLDERS = ("module", "attributes", "block")
# Chunks that may be thin wrappers around other code of their file.
_DELEGATING = ("function", "macro", "guard")


def _with_context(chunks: list[Chunk], text: str, config: IndexConfig) -> list[Chunk]:
    """Give every chunk but the module heads its context (context.py): the first sentence of its
    module's doc, the heading of its section, and for a thin function an excerpt of what it
    delegates to in the same file (delegation.py)."""
    if not chunks:
        return chunks
    spec = spec_for(chunks[0].language)
    lines = text.split("\n")
    summary = _summaries(chunks, text)
    sections = _sections(chunks, lines) if config.section_context else []
    rules = spec.delegation if config.delegation_context else None
    delegations = Delegations(rules, lines) if rules is not None else None  # other languages: no excerpts

    def context(chunk: Chunk) -> str:
        above = [heading for row, heading in sections if row < chunk.start_line - 1]
        excerpt = (delegations.excerpt(chunk.start_line - 1, chunk.end_line - 1)
                   if delegations is not None and chunk.kind in _DELEGATING else "")
        return chunk_context(summary(chunk), above[-1] if above else "", excerpt)

    return [c if c.kind in _DOC_HOLDERS else replace(c, context=context(c)) for c in chunks]


def _summaries(chunks: list[Chunk], text: str) -> Callable[[Chunk], str]:
    """chunk -> the first sentence of its module's doc."""
    spec = spec_for(chunks[0].language)
    if spec.per_module_doc:
        summaries = {c.symbol: first_sentence(spec.module_doc(c.text).text) for c in chunks if c.kind == "module"}

        def summary(chunk: Chunk) -> str:  # the innermost documented module around the chunk
            owners = [m for m, s in summaries.items() if s and chunk.symbol.startswith((f"{m}.", f"{m} "))]
            return summaries[max(owners, key=len)] if owners else ""

        return summary
    file_summary = first_sentence(spec.module_doc(text).text)  # Erlang, C/C++ and other comment-documented files
    return lambda chunk: file_summary


def _sections(chunks: list[Chunk], lines: list[str]) -> list[tuple[int, str]]:
    """Comment blocks that head a section: outside code units (not a comment inside a function)
    and not directly above one (that is the unit's own comment)."""
    inside: set[int] = set()
    for chunk in chunks:
        if chunk.kind not in _SECTION_HOLDERS:
            inside.update(range(chunk.start_line - 1, chunk.end_line))
    return [(start, heading) for start, after, heading in section_headings(lines)
            if start not in inside and after not in inside]


def _build(path: str, language: str, lines: list[str], units: list[Unit]) -> list[Chunk]:
    chunks = []
    for unit in units:
        end = min(unit.end, len(lines) - 1)
        body = "\n".join(lines[unit.start:end + 1])
        if not body.strip():
            continue
        chunks.append(Chunk(path, language, unit.kind, unit.symbol, unit.start + 1, end + 1, body))
    return chunks
