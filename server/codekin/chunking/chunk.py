"""The Chunk record and the Unit that chunkers produce before splitting."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

# re-exported: the chunkers import them from here; their home is parts.py
from codekin.parts import base_symbol as base_symbol
from codekin.parts import part_symbol as part_symbol

# Lines that carry no meaning alone: a run made only of these is not worth a chunk
# (a C `#define` is code, not a `#` comment).
_CLOSER = re.compile(r"^\s*(end|[})\].;,]+|#(?!\s*(define|undef)\b).*|//.*|%.*)?\s*$")


@dataclass(frozen=True)
class Chunk:
    path: str
    language: str
    kind: str  # module, function, macro, class, method, template, nif_table, block, window, ...
    symbol: str  # e.g. MyApp.Worker.handle_call/3
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str
    context: str = ""  # what its module is for (first sentence of the module doc); see context.py

    @property
    def header(self) -> str:
        return header_line(self.language, self.kind, self.symbol, self.context)

    @property
    def embed_text(self) -> str:
        return f"{self.header}\n{self.text}"

    @property
    def content_hash(self) -> str:
        return content_hash(self.embed_text)


def header_line(language: str, kind: str, symbol: str, context: str = "") -> str:
    """The line of context the model sees before the code (no path: renames keep the hash),
    e.g. `elixir function Shop.Cache.fetch/2: Read-through cache of stock per SKU.`"""
    head = f"{language} {kind} {symbol}"
    return f"{head}: {context}" if context else head


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class Unit:
    """A syntactic unit in 0-based inclusive line numbers, with places it may be split."""

    kind: str
    symbol: str
    start: int
    end: int
    boundaries: list[int] = field(default_factory=list)  # lines where a piece may start


def uncovered_runs(units: list[Unit], lines: list[str], first: int, last: int) -> list[tuple[int, int]]:
    """Runs of rows in [first, last] that no unit covers and that hold at least two lines of
    code (not only blanks, closing brackets or comments): the blocks between definitions."""
    covered = [False] * (last - first + 1)
    for unit in units:
        for row in range(max(unit.start, first), min(unit.end, last) + 1):
            covered[row - first] = True
    runs: list[tuple[int, int]] = []
    row = first
    while row <= last:
        if covered[row - first]:
            row += 1
            continue
        start = row
        while row <= last and not covered[row - first]:
            row += 1
        if sum(1 for line in lines[start:row] if not _CLOSER.match(line)) >= 2:
            runs.append((start, row - 1))
    return runs
