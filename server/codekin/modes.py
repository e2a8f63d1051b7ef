"""The search modes and what each one needs: a query vector (the model), the words, or both.

`mode_of(name).needs_vector` decides whether a search embeds its query (and so waits for the
embedding model), `uses_words` whether the lexical channels weigh in (the Engine, the language
server's readiness check). SearchIndex.scores (index/search.py) combines the channels by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchMode:
    name: str
    needs_vector: bool  # dense similarity: the query is embedded, so the model must be loaded
    uses_words: bool  # lexical channels: BM25, the name field, definitions


MODES: dict[str, SearchMode] = {mode.name: mode for mode in (
    SearchMode("dense", needs_vector=True, uses_words=False),
    SearchMode("lexical", needs_vector=False, uses_words=True),
    SearchMode("hybrid", needs_vector=True, uses_words=True),
)}
SEARCH_MODES = tuple(MODES)  # dense, lexical, hybrid: what `[search] mode` and --mode accept


def mode_of(name: str) -> SearchMode:
    """The mode called `name` (already validated: config, the CLI and both servers check it)."""
    return MODES[name]
