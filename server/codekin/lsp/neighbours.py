"""What a code lens says over a chunk: the head of Find Similar's own list for it.

A lens counts the results that Find Similar lists for the chunk with a score (the one the list
shows and is ranked by) of at least `codeLens.minSimilarity`, and shows the first one's score:
"3 similar · best 0.95" over `compute_backoff/1` means its list starts with those three, at
0.95. One rule for both, so a lens never counts what the list ranks low, nor misses a twin the
list puts first. Each lens costs one Find Similar of an indexed chunk (a few milliseconds),
cached per index snapshot; editors resolve the lenses they show.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from codekin.index.search import Hit, SearchIndex

CACHED_LENSES = 4096
LENS_COUNTED = 50  # a lens counts at most this many results of the list
LENS_KINDS_SKIPPED = {"window"}  # line windows of files without a grammar are not code units


@dataclass(frozen=True)
class Relatives:
    count: int  # results of Find Similar scoring at least the threshold
    best: float  # the score of its first result (-1 when there is none)

    def title(self) -> str:
        if self.count == 0:
            return "no similar code"
        return f"{self.count} similar · best {self.best:.2f}"


def lens_rows(index: SearchIndex, path: str) -> list[int]:
    """Rows of `path` that get a lens: its function/module/class chunks, in line order."""
    rows = [i for i in index.by_path.get(path, []) if index.kinds[i] not in LENS_KINDS_SKIPPED]
    return sorted(rows, key=lambda i: (int(index.starts[i]), int(index.ends[i])))


def relatives_of_hits(hits: list[Hit], threshold: float) -> Relatives:
    """The lens of a chunk from its Find Similar list (ranked, best first)."""
    scores = [hit.shown_score for hit in hits]
    return Relatives(sum(score >= threshold for score in scores), scores[0] if scores else -1.0)


class RelativesCache:
    """Lenses of the current index snapshot, per (path, start, end, threshold); a new snapshot
    empties it."""

    def __init__(self) -> None:
        self._snapshot: SearchIndex | None = None
        self._lenses: OrderedDict[tuple[str, int, int, float], Relatives | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: SearchIndex, key: tuple[str, int, int, float],
            compute: Callable[[], Relatives | None]) -> Relatives | None:
        with self._lock:
            if self._snapshot is not index:
                self._snapshot, self._lenses = index, OrderedDict()
            if key in self._lenses:
                self._lenses.move_to_end(key)
                return self._lenses[key]
        found = compute()
        with self._lock:
            if self._snapshot is index:
                self._lenses[key] = found
                while len(self._lenses) > CACHED_LENSES:
                    self._lenses.popitem(last=False)
        return found
