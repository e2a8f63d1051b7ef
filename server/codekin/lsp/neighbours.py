"""How many close relatives each chunk of a file has: one matrix product per file, cached.

A code lens asks for one chunk, but an editor resolves all visible lenses of a file at
once; computing the whole file in one product (k chunks x n index rows) makes the first
resolve cost a few milliseconds and the rest a dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from codekin.index.search import SearchIndex

CACHED_FILES = 64
LENS_KINDS_SKIPPED = frozenset({"window"})  # line windows of files without a grammar are not code units


@dataclass(frozen=True)
class Relatives:
    count: int  # chunks at or above the threshold (the chunk itself and its overlaps excluded)
    best: float  # highest similarity to any other chunk (-1 when there is none)

    def title(self) -> str:
        if self.count == 0:
            return "no similar code"
        return f"{self.count} similar · best {self.best:.2f}"


def lens_rows(index: SearchIndex, path: str) -> list[int]:
    """Rows of `path` that get a lens: its function/module/class chunks, in line order."""
    return index.rows_of(path, LENS_KINDS_SKIPPED)


def relatives_of_file(index: SearchIndex, path: str, threshold: float) -> dict[tuple[int, int], Relatives]:
    """(start_line, end_line) -> Relatives for every embedded chunk of `path`."""
    rows = index.rows_of(path, embedded=True)
    if not rows or not index.dim:
        return {}
    scores = index.similar_scores(path, rows)  # what `similar` leaves out: one rule, SearchIndex.similar_masks
    counts = (scores >= threshold).sum(axis=1)
    best = scores.max(axis=1)
    return {index.span(r): Relatives(int(c), float(b) if np.isfinite(b) else -1.0)
            for r, c, b in zip(rows, counts, best, strict=True)}


class RelativesCache:
    """Per-file results for the current index snapshot; a new snapshot empties it."""

    def __init__(self) -> None:
        self._snapshot: SearchIndex | None = None
        self._files: OrderedDict[tuple[str, float], dict[tuple[int, int], Relatives]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: SearchIndex, path: str, threshold: float) -> dict[tuple[int, int], Relatives]:
        key = (path, threshold)
        with self._lock:
            if self._snapshot is not index:
                self._snapshot, self._files = index, OrderedDict()
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
        found = relatives_of_file(index, path, threshold)
        with self._lock:
            if self._snapshot is index:
                self._files[key] = found
                while len(self._files) > CACHED_FILES:
                    self._files.popitem(last=False)
        return found
