"""The two phases of an index pass, as the state file records them.

Phase 1 (files -> chunk rows, lexical terms, definitions, file summaries) commits first:
from then on the index answers queries by its words. Phase 2 embeds the chunk hashes that
have no vector yet, in slices; each slice is appended to the vectors table and recorded, so
a kill at any point keeps every slice already written and the next pass embeds the rest.

The state file's `dense` entry says how much of the dense layer exists (counts), and
`files_digest` the files as phase 1 saw them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.state import INDEX_STATE, state_path

if TYPE_CHECKING:
    from codekin.index.store import IndexStore
    from codekin.workspace import Scan

SLICE = 2048  # chunk hashes embedded (and recorded) together in phase 2 (CODEKIN_EMBED_SLICE)
SEPARATE_BELOW = 256  # fewer missing vectors than this (and one slice): one commit, no separate phase 1


def scan_digest(found: Scan, key: str, chunking: str) -> str:
    """What a full pass depends on: every file's size and mtime, the skips, the chunking
    settings and (with `key`) the vector space. Equal digests mean nothing changed."""
    digest = hashlib.sha256()
    digest.update(repr((key, chunking)).encode())
    for f in found.files:
        digest.update(f"{f.path}\0{f.size}\0{f.mtime_ns}\n".encode("utf-8", "surrogateescape"))
    for path, reason in sorted(found.skipped.items()):
        digest.update(f"{path}\0{reason}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


class DenseLayer:
    """Which chunk hashes still lack a vector in one table, and how many chunk rows that is."""

    def __init__(self, store: IndexStore, key: str) -> None:
        table = store.load_chunks()
        hashes: list[str] = table.column("content_hash").to_pylist()
        self.rows = Counter(hashes)
        self.chunks = len(hashes)
        self.files = len(set(table.column("path").to_pylist()))
        self.missing = set(self.rows) - store.vector_hashes(key)
        self.missing_rows = sum(self.rows[h] for h in self.missing)

    def done(self, hashes: list[str] | set[str]) -> None:
        for h in hashes:
            if h in self.missing:
                self.missing.discard(h)
                self.missing_rows -= self.rows[h]

    def worth_a_commit(self) -> bool:
        """Whether phase 2 takes long enough (several seconds, or several slices) that phase 1
        should commit on its own first."""
        return len(self.missing) >= min(SEPARATE_BELOW, _slice_size())

    def slices(self) -> list[list[str]]:
        size = _slice_size()
        ordered = sorted(self.missing)
        return [ordered[i:i + size] for i in range(0, len(ordered), size)]

    def record(self) -> dict:
        """The state file's `dense` entry."""
        return {"chunks": self.chunks, "files": self.files, "embedded_chunks": self.chunks - self.missing_rows,
                "missing_chunks": self.missing_rows, "complete": not self.missing, "at": time.time()}


def _slice_size() -> int:
    return max(1, int(os.environ.get("CODEKIN_EMBED_SLICE", "") or SLICE))


def read_state(root: Path) -> dict:
    """The state file as JSON, {} when it is missing or unreadable (the caller decides)."""
    try:
        return json.loads(state_path(root, INDEX_STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def dense_pending(root: Path) -> bool:
    """Whether phase 2 has chunks left to embed, as the last pass recorded it."""
    dense = read_state(root).get("dense")
    return isinstance(dense, dict) and not dense.get("complete", True)
