"""The query path's own copy of the index: one Arrow file that a cold `codekin search` maps
instead of opening LanceDB (whose import alone takes seconds).

The indexer writes `.codekin/query.arrow` after each state commit it makes, under the index
lock: the chunk rows, each row's vector of the active table (zeros and `has_vector` false
where phase 2 has not reached it), and in its metadata the state's `updated_at` and
`active_key`. It is written beside and renamed over the old one, so a reader maps a whole file
or the previous one. A reader uses it only when that stamp equals the state file's now. The
indexer's commits, each phase-2 slice and a re-embed's switch rewrite it; any other writer of
the state makes it stale, and queries read LanceDB as before until the next rewrite.

Beside it, `.codekin/query.rows` (an arrays file, arrays_file.py: mapped, not read) holds what
a cold search would otherwise build from the rows (seconds for 10k chunks, a millisecond to
map): the chunks' BM25 (index/lexical.py), the file summaries' BM25 of the file ranking
(index/files.py), each row's module head, path role and twin group (index/row_facts.py) and
the stems of the words. It is keyed by a digest of what it is built from (the code of those
modules, each row's terms, symbol, kind, path and context, in order), which the Arrow file's
metadata names:
written before the Arrow file, rewritten only when that digest changes (a phase-2 slice adds
vectors, not words), and used only when the digests agree and the code that built it is the
code running now. A reader that finds it missing or stale (codekin was upgraded since the
last index) builds it and keeps it for the next process, unless another writer replaced the
file meanwhile.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from codekin.index import definitions, files, lexical, paths, row_facts
from codekin.index.arrays_file import read_arrays, write_arrays
from codekin.index.files import summary_bm25
from codekin.index.lexical import Bm25, chunk_bm25

if TYPE_CHECKING:
    from codekin.index.store import IndexStore

NAME = "query.arrow"
POSTINGS = "query.rows"
OLD_POSTINGS = "query.bm25.npz"  # its .npz predecessor, removed by the next write
_DIGEST = b"postings_digest"
_BUILT_FROM = ("terms", "symbol", "kind", "path", "context")  # the columns the stored BM25s are built from
_FILES = "files_"  # the file summaries' arrays, beside the chunks'
_FACTS = "rows_"  # row_facts' arrays
log = logging.getLogger(__name__)


def _stamp(state: dict) -> dict[bytes, bytes]:
    return {b"updated_at": repr(state.get("updated_at")).encode(), b"active_key": str(state.get("active_key")).encode()}


@cache
def _code_stamp() -> str:
    """The code the stored arrays were built by: lexical.py (terms, stems, weights), files.py (file
    summaries), row_facts.py with paths.py and definitions.py (what it reads) and the English
    Snowball stemmer's source (read, not imported: a library upgrade
    may stem otherwise); stored BM25s of other code are rebuilt."""
    digest = hashlib.sha256()
    for module in (lexical, files, row_facts, paths, definitions):
        digest.update(Path(module.__file__).read_bytes())  # type: ignore[arg-type]
    digest.update(_stemmer_source())
    return digest.hexdigest()


def _stemmer_source() -> bytes:
    spec = importlib.util.find_spec("snowballstemmer")
    if spec is None or spec.origin is None:
        return b""
    try:
        return Path(spec.origin).with_name("english_stemmer.py").read_bytes()
    except OSError:
        return b""


def _postings_digest(chunks: pa.Table) -> str:
    """What the BM25s of `chunks` are built from: the code, and each row's terms, symbol, kind,
    path and context."""
    digest = hashlib.sha256(_code_stamp().encode())
    for name in _BUILT_FROM:
        for value in chunks.column(name).to_pylist():
            digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


def _postings(chunks: pa.Table, digest: str) -> dict[str, np.ndarray]:
    """What query.bm25.npz holds for `chunks`: the chunks' BM25, the file summaries' BM25 and
    the stems of their words (for what is still built per process: modules as wholes)."""
    column = {name: chunks.column(name).to_pylist() for name in _BUILT_FROM}
    bm25 = chunk_bm25(column["terms"], column["symbol"], column["kind"])
    summaries = summary_bm25(column["path"], column["path"], column["context"], column["symbol"], column["kind"])
    words = sorted({t for doc in column["terms"] for t in doc.split()}
                   | {t for path in set(column["path"]) for t in lexical.terms(path)})
    stems = "\n".join(f"{w} {lexical.stem(w)}" for w in words)
    facts = row_facts.row_facts(column["path"], column["kind"], column["symbol"])
    return {"digest": np.frombuffer(digest.encode(), dtype=np.uint8),
            "code": np.frombuffer(_code_stamp().encode(), dtype=np.uint8),
            "stems": np.frombuffer(stems.encode("utf-8", "surrogateescape"), dtype=np.uint8),
            **bm25.arrays(), **{_FILES + name: array for name, array in summaries.arrays().items()},
            **{_FACTS + name: array for name, array in facts.items()}}


def _read_postings(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    """The stored arrays (mapped) when they are for `digest` and built by the code running now."""
    try:
        stored = read_arrays(path)
        if bytes(stored["digest"]).decode() != digest or bytes(stored["code"]).decode() != _code_stamp():
            return None  # other rows, or built by other code (an upgrade since)
        return stored
    except (OSError, ValueError, KeyError, UnicodeDecodeError):  # missing, cut short or of another layout
        return None


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _written_aside(state_dir: Path, arrays: dict[str, Any]) -> Path:
    """`arrays` in a temporary file beside query.bm25.npz, to be renamed over it."""
    tmp = state_dir / f".{POSTINGS}.{os.getpid()}.{threading.get_ident()}.tmp"
    write_arrays(tmp, arrays)
    return tmp


def _keep(state_dir: Path, arrays: dict[str, Any], found: tuple[int, int, int] | None) -> None:
    """Keep what a reader built, unless another writer replaced the file since it was `found`
    stale (an index commit's copy is newer); a read-only index keeps nothing."""
    path = state_dir / POSTINGS
    try:
        tmp = _written_aside(state_dir, arrays)
    except OSError as exc:
        log.info("cannot keep %s (%s)", path, exc)
        return
    try:
        if _identity(path) == found:
            os.replace(tmp, path)
    except OSError as exc:  # the index run removed our temporary file: its copy wins
        log.info("cannot keep %s (%s)", path, exc)
    finally:
        tmp.unlink(missing_ok=True)


def write_query_file(store: IndexStore, state: dict, max_rows: int) -> None:
    """The chunk rows and their vectors in the table of `state`'s active key, for `state`; none
    for an index of `max_rows` rows or more (it searches through LanceDB's ANN index)."""
    target = store.state_dir / NAME
    chunks = store.load_chunks()
    (store.state_dir / OLD_POSTINGS).unlink(missing_ok=True)
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
    if _read_postings(store.state_dir / POSTINGS, digest) is None:
        os.replace(_written_aside(store.state_dir, _postings(chunks, digest)), store.state_dir / POSTINGS)
    # one record batch: a reader maps the vectors as they are (several batches are copied to join them)
    table = table.combine_chunks().replace_schema_metadata({**_stamp(state), _DIGEST: digest.encode()})
    tmp = target.with_name(f".{NAME}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, target)


@dataclass(frozen=True)
class KeptRows:
    """What query.rows keeps for the chunk rows: their BM25, and row_facts' parent, roles, groups."""

    bm25: Bm25
    facts: dict[str, np.ndarray]


class QueryFile:
    """What SearchIndex reads from a store (chunks, vectors), from the mapped file; it searches
    them exactly (a millisecond per 10k rows), as it does any index below `ann_min_rows`."""

    def __init__(self, table: pa.Table, state_dir: Path | None = None) -> None:
        self.table = table
        self.state_dir = state_dir
        self._arrays: dict[str, np.ndarray] | None = None

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

    def _stored(self) -> dict[str, np.ndarray] | None:
        """The arrays of query.rows for exactly these rows; built when the file is missing or
        stale, and kept for the next process (a read-only index: not kept)."""
        digest = (self.table.schema.metadata or {}).get(_DIGEST)
        if self.state_dir is None or digest is None:
            return None
        if self._arrays is None:
            path = self.state_dir / POSTINGS
            found = _identity(path)
            arrays = _read_postings(path, digest.decode())
            if arrays is None:
                arrays = _postings(self.table, digest.decode())
                _keep(self.state_dir, arrays, found)
            lexical.keep_stems(bytes(arrays["stems"]).decode("utf-8", "surrogateescape"))
            self._arrays = arrays
        return self._arrays

    def kept_rows(self) -> KeptRows | None:
        """The chunks' BM25 and the row facts kept for these rows (None: no digest to key them)."""
        arrays = self._stored()
        if arrays is None:
            return None
        return KeptRows(Bm25.from_arrays(arrays),
                        {name[len(_FACTS):]: a for name, a in arrays.items() if name.startswith(_FACTS)})

    def load_bm25(self) -> Bm25 | None:
        """The chunks' BM25 kept for these rows (None: no digest to key it, build it)."""
        kept = self.kept_rows()
        return kept.bm25 if kept is not None else None

    def load_file_bm25(self) -> Bm25 | None:
        """The file summaries' BM25 kept for these rows (files in the order of their first row)."""
        arrays = self._stored()
        if arrays is None:
            return None
        return Bm25.from_arrays({name[len(_FILES):]: a for name, a in arrays.items() if name.startswith(_FILES)})

    def row_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(has a vector, the vectors) in row order, mapped from the file (read-only)."""
        rows = self.table.num_rows
        if "vector" not in self.table.column_names:
            return np.zeros(rows, dtype=bool), np.zeros((rows, 0), dtype=np.float32)
        flags = self.table.column("has_vector").combine_chunks()
        bits = np.frombuffer(flags.buffers()[1], dtype=np.uint8)  # booleans are bit-packed, LSB first
        has_vector = np.unpackbits(bits, bitorder="little", count=flags.offset + rows)[flags.offset:].astype(bool)
        column = self.table.column("vector").combine_chunks()
        values = column.values
        floats = np.frombuffer(values.buffers()[1], dtype=np.float32)[values.offset:values.offset + len(values)]
        return has_vector, floats.reshape(-1, column.type.list_size)[column.offset:column.offset + rows]

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
