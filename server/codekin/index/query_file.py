"""The query path's own copy of the index: one Arrow file that a cold `codekin search` maps
instead of opening LanceDB (whose import alone takes seconds).

The indexer writes `.codekin/query.arrow` after each state commit it makes, under the index
lock: the chunk rows, each row's vector of the active table (zeros and `has_vector` false
where phase 2 has not reached it), and in its metadata the state's `updated_at` and
`active_key`. It is written beside and renamed over the old one, so a reader maps a whole file
or the previous one. A reader uses it only when that stamp equals the state file's now. The
indexer's commits, each phase-2 slice and a re-embed's switch rewrite it; any other writer of
the state makes it stale, and queries read LanceDB as before until the next rewrite.

Beside it, `.codekin/query.bm25.npz` holds the search index's BM25 (index/lexical.py), which
costs a cold search seconds to build for 10k chunks and milliseconds to load. It is keyed by a
digest of what it is built from (lexical.py's code, each row's terms, symbol and kind, in
order), which the Arrow file's metadata names: written before the Arrow file, rewritten only
when that digest changes (a phase-2 slice adds vectors, not words), and used only when the
digests agree and the code that built it is the code running now.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from codekin.index import lexical
from codekin.index.lexical import Bm25, chunk_bm25

if TYPE_CHECKING:
    from codekin.index.store import IndexStore

NAME = "query.arrow"
POSTINGS = "query.bm25.npz"
_DIGEST = b"postings_digest"
# Words whose stems pin the stemmer's behaviour (a library upgrade), beside lexical.py's source.
_PROBE_WORDS = ("starts", "entries", "handling", "compression", "retries", "connections", "caches", "indexes")


def _stamp(state: dict) -> dict[bytes, bytes]:
    return {b"updated_at": repr(state.get("updated_at")).encode(), b"active_key": str(state.get("active_key")).encode()}


def _code_stamp() -> str:
    """The code a stored BM25 was built by: lexical.py (terms, stems, weights) and the stems of
    a few probe words; a stored BM25 of other code is rebuilt."""
    digest = hashlib.sha256(Path(lexical.__file__).read_bytes())
    digest.update(" ".join(lexical.stem(w) for w in _PROBE_WORDS).encode())
    return digest.hexdigest()


def _postings_digest(chunks: pa.Table) -> str:
    """What the BM25 of `chunks` is built from: the code, and each row's terms, symbol and kind."""
    digest = hashlib.sha256(_code_stamp().encode())
    for name in ("terms", "symbol", "kind"):
        for value in chunks.column(name).to_pylist():
            digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


def _stored_digest(path: Path) -> str:
    try:
        with np.load(path) as stored:
            if bytes(stored["code"]).decode() != _code_stamp():
                return ""
            return bytes(stored["digest"]).decode()
    except (OSError, KeyError, ValueError, EOFError):
        return ""


def _write_postings(state_dir: Path, chunks: pa.Table, digest: str) -> None:
    """The BM25 of `chunks`, unless the file already holds the one for `digest`."""
    target = state_dir / POSTINGS
    if _stored_digest(target) == digest:
        return
    bm25 = chunk_bm25(chunks.column("terms").to_pylist(), chunks.column("symbol").to_pylist(),
                      chunks.column("kind").to_pylist())
    tmp = target.with_name(f".{POSTINGS}.{os.getpid()}.tmp")
    words = sorted({t for doc in chunks.column("terms").to_pylist() for t in doc.split()}
                   | {t for path in set(chunks.column("path").to_pylist()) for t in lexical.terms(path)})
    stems = "\n".join(f"{w} {lexical.stem(w)}" for w in words)  # for file summaries, built per query process
    arrays: dict[str, Any] = {"digest": np.frombuffer(digest.encode(), dtype=np.uint8),
                              "code": np.frombuffer(_code_stamp().encode(), dtype=np.uint8),
                              "stems": np.frombuffer(stems.encode("utf-8", "surrogateescape"), dtype=np.uint8),
                              **bm25.arrays()}
    with tmp.open("wb") as sink:
        np.savez(sink, **arrays)
    os.replace(tmp, target)


def write_query_file(store: IndexStore, state: dict, max_rows: int) -> None:
    """The chunk rows and their vectors in the table of `state`'s active key, for `state`; none
    for an index of `max_rows` rows or more (it searches through LanceDB's ANN index)."""
    target = store.state_dir / NAME
    chunks = store.load_chunks()
    if chunks.num_rows >= max_rows:
        target.unlink(missing_ok=True)
        (store.state_dir / POSTINGS).unlink(missing_ok=True)
        return
    hashes, matrix = store.load_vectors(str(state.get("active_key")))
    position = {h: i for i, h in enumerate(hashes)}
    rows = np.array([position.get(h, -1) for h in chunks.column("content_hash").to_pylist()], dtype=np.int64)
    has_vector = rows >= 0
    dim = matrix.shape[1] if matrix.size else 0
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    if dim:
        vectors[has_vector] = matrix[rows[has_vector]]
    table = chunks.append_column("has_vector", pa.array(has_vector))
    table = table.append_column("vector", pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)) \
        if dim else table
    for name in (NAME, POSTINGS):  # a killed writer's (the caller holds the lock)
        for left in store.state_dir.glob(f".{name}.*.tmp"):
            left.unlink(missing_ok=True)
    digest = _postings_digest(chunks)
    _write_postings(store.state_dir, chunks, digest)
    table = table.replace_schema_metadata({**_stamp(state), _DIGEST: digest.encode()})
    tmp = target.with_name(f".{NAME}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, target)


class QueryFile:
    """What SearchIndex reads from a store (chunks, vectors), from the mapped file; it searches
    them exactly (a millisecond per 10k rows), as it does any index below `ann_min_rows`."""

    def __init__(self, table: pa.Table, state_dir: Path | None = None) -> None:
        self.table = table
        self.state_dir = state_dir

    @classmethod
    def open(cls, state_dir: Path, state: dict) -> QueryFile | None:
        """The mapped file when it was written for exactly `state`, else None (read LanceDB)."""
        try:
            with pa.memory_map(str(state_dir / NAME), "r") as source:
                table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid):
            return None
        stamp = _stamp(state)
        metadata = table.schema.metadata or {}
        if {k: metadata.get(k) for k in stamp} != stamp:
            return None
        return cls(table, state_dir)

    def load_bm25(self) -> Bm25 | None:
        """The stored BM25 of these rows, None when there is none for exactly them (build it)."""
        digest = (self.table.schema.metadata or {}).get(_DIGEST)
        if self.state_dir is None or digest is None:
            return None
        try:
            with np.load(self.state_dir / POSTINGS) as stored:
                arrays = {name: stored[name] for name in stored.files}
            if bytes(arrays.pop("digest", b"")) != digest or bytes(arrays.pop("code", b"")).decode() != _code_stamp():
                return None  # other rows, or built by other code (an upgrade since)
            stems = bytes(arrays.pop("stems", b"")).decode("utf-8", "surrogateescape")
            lexical.keep_stems(dict(line.split(" ", 1) for line in stems.split("\n") if " " in line))
            return Bm25.from_arrays(arrays)
        except (OSError, ValueError, EOFError, KeyError):  # missing, cut short or of another layout
            return None

    def load_chunks(self) -> pa.Table:
        return self.table

    def load_vectors(self, key: str) -> tuple[list[str], np.ndarray]:
        if "vector" not in self.table.column_names:
            return [], np.zeros((0, 0), dtype=np.float32)
        # not .to_numpy(): pyarrow imports pandas for it (half a second of a cold start)
        keep = np.array(self.table.column("has_vector").to_pylist(), dtype=bool)
        column = self.table.column("vector").combine_chunks()
        values = column.values
        floats = np.frombuffer(values.buffers()[1], dtype=np.float32)[values.offset:values.offset + len(values)]
        matrix = floats.reshape(-1, column.type.list_size)
        hashes = np.array(self.table.column("content_hash").to_pylist(), dtype=object)
        return list(hashes[keep]), matrix[keep]
