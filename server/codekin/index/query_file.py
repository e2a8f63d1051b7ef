"""The query path's own copy of the index: files that a cold `codekin search` maps instead of
opening LanceDB (whose import alone takes seconds), laid out as arrays (arrays_file.py), so
it needs neither LanceDB nor pyarrow.

The indexer writes `.codekin/query.chunks` after each state commit it makes, under the index
lock: the chunk rows (strings as UTF-8 blobs with offsets; paths, languages and kinds once
each, with a code per row), each row's vector of the active table (zeros and `has_vector`
false where phase 2 has not reached it), and in its meta the state's `updated_at` and
`active_key`. It is written beside and renamed over the old one, so a reader maps a whole file
or the previous one. A reader uses it only when that stamp equals the state file's now. The
indexer's commits, each phase-2 slice and a re-embed's switch rewrite it; any other writer of
the state makes it stale, and queries read LanceDB as before until the next rewrite (a
`codekin index` with nothing to do rewrites a missing or stale one).

Beside it, `.codekin/query.rows` holds what a cold search would otherwise build from the rows
(seconds for 10k chunks, a millisecond to map): the chunks' BM25 (index/lexical.py), the
file summaries' BM25 of the file ranking (index/files.py), each row's module head, path role
and twin group (index/row_facts.py) and the stems of the words. It is keyed by a digest of
what it is built from (the code of those modules, each row's terms, symbol, kind, path and
context, in order), which query.chunks' meta names: written before query.chunks, rewritten
only when that digest changes (a phase-2 slice adds vectors, not words), and used only when
the digests agree and the code that built it is the code running now. A reader that finds it
missing or stale (codekin was upgraded since the last index) builds it and keeps it for the
next process, unless another writer replaced the file meanwhile.
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

from codekin.index import definitions, files, lexical, paths, row_facts
from codekin.index.arrays_file import (
    pack_strings,
    read_arrays,
    read_arrays_and_meta,
    string_at,
    unpack_strings,
    write_arrays,
)
from codekin.index.files import summary_bm25
from codekin.index.lexical import Bm25, chunk_bm25

if TYPE_CHECKING:
    import pyarrow as pa

    from codekin.index.store import IndexStore

NAME = "query.chunks"
POSTINGS = "query.rows"
LEGACY = ("query.arrow", "query.bm25.npz")  # the Arrow and .npz files before them, removed by the next write
_STRINGS = ("path", "language", "kind", "symbol", "content_hash", "text", "terms", "context")
_CODED = frozenset({"path", "language", "kind"})  # few distinct values: each kept once, and a code per row
_DIGEST = "postings_digest"
_BUILT_FROM = ("terms", "symbol", "kind", "path", "context")  # the columns the stored BM25s are built from
_FILES = "files_"  # the file summaries' arrays, beside the chunks'
_FACTS = "rows_"  # row_facts' arrays
log = logging.getLogger(__name__)


def _stamp(state: dict) -> dict[str, str]:
    return {"updated_at": repr(state.get("updated_at")), "active_key": str(state.get("active_key"))}


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


def _postings_digest(chunks: TableRows | QueryFile) -> str:
    """What the BM25s of `chunks` are built from: the code, and each row's terms, symbol, kind,
    path and context."""
    digest = hashlib.sha256(_code_stamp().encode())
    for name in _BUILT_FROM:
        for value in chunks.strings(name):
            digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


def _postings(chunks: TableRows | QueryFile, digest: str) -> dict[str, np.ndarray]:
    """What query.rows holds for `chunks`: the chunks' BM25, the file summaries' BM25, the row
    facts and the stems of their words (for what is still built per process: modules as wholes)."""
    column = {name: chunks.strings(name) for name in _BUILT_FROM}
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
    chunks = TableRows(store.load_chunks())
    for legacy in LEGACY:
        (store.state_dir / legacy).unlink(missing_ok=True)
    if chunks.num_rows >= max_rows:
        target.unlink(missing_ok=True)
        (store.state_dir / POSTINGS).unlink(missing_ok=True)
        return
    hashes, matrix = store.load_vectors(str(state.get("active_key")))
    position = {h: i for i, h in enumerate(hashes)}
    rows = np.array([position.get(h, -1) for h in chunks.strings("content_hash")], dtype=np.int64)
    has_vector = rows >= 0
    dim = matrix.shape[1] if matrix.size else 0
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    if dim:
        vectors[has_vector] = matrix[rows[has_vector]]
    arrays: dict[str, np.ndarray] = {"has_vector": has_vector, "vector": vectors,
                                     "start_line": chunks.ints("start_line"), "end_line": chunks.ints("end_line")}
    for name in _STRINGS:
        arrays.update(_packed(name, chunks.strings(name)))
    for name in (NAME, POSTINGS):  # a killed writer's (the caller holds the lock)
        for left in store.state_dir.glob(f".{name}.*.tmp"):
            left.unlink(missing_ok=True)
    digest = _postings_digest(chunks)
    if _read_postings(store.state_dir / POSTINGS, digest) is None:
        os.replace(_written_aside(store.state_dir, _postings(chunks, digest)), store.state_dir / POSTINGS)
    tmp = target.with_name(f".{NAME}.{os.getpid()}.tmp")
    write_arrays(tmp, arrays, {**_stamp(state), _DIGEST: digest})
    os.replace(tmp, target)


def query_file_current(state_dir: Path, state: dict) -> bool:
    """Whether query.chunks was written for exactly `state` (else a search reads LanceDB)."""
    return QueryFile.open(state_dir, state) is not None


def _packed(name: str, values: list[str]) -> dict[str, np.ndarray]:
    """A string column as query.chunks keeps it."""
    if name not in _CODED:
        offsets, blob = pack_strings(values)
        return {f"{name}.offsets": offsets, f"{name}.bytes": blob}
    codes: dict[str, int] = {}
    rows = np.array([codes.setdefault(v, len(codes)) for v in values], dtype=np.int32)
    offsets, blob = pack_strings(list(codes))
    return {f"{name}.codes": rows, f"{name}.offsets": offsets, f"{name}.bytes": blob}


class TableRows:
    """The reads SearchIndex makes of its rows, over a pyarrow table (the LanceDB chunks table);
    QueryFile makes the same over its mapped arrays."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.num_rows = table.num_rows

    def strings(self, name: str) -> list[str]:
        return self.table.column(name).to_pylist()

    def ints(self, name: str) -> np.ndarray:
        # not .to_numpy(): pyarrow imports pandas for it (a second of a cold start)
        return np.array(self.table.column(name).to_pylist(), dtype=np.int32)

    def string(self, name: str, row: int) -> str:
        return self.table.column(name)[row].as_py()


@dataclass(frozen=True)
class KeptRows:
    """What query.rows keeps for the chunk rows: their BM25, and row_facts' parent, roles, groups."""

    bm25: Bm25
    facts: dict[str, np.ndarray]


class QueryFile:
    """What SearchIndex reads from a store (rows, vectors), from the mapped file; it searches
    them exactly (a millisecond per 10k rows), as it does any index below `ann_min_rows`."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict, state_dir: Path | None = None) -> None:
        self.arrays = arrays
        self.meta = meta
        self.state_dir = state_dir
        self.num_rows = len(arrays["has_vector"])
        self._arrays: dict[str, np.ndarray] | None = None
        self._columns: dict[str, list[str]] = {}

    @classmethod
    def open(cls, state_dir: Path, state: dict) -> QueryFile | None:
        """The mapped file when it was written for exactly `state`, else None (read LanceDB)."""
        try:
            arrays, meta = read_arrays_and_meta(state_dir / NAME)
        except (OSError, ValueError):
            return None
        stamp = _stamp(state)
        if {k: meta.get(k) for k in stamp} != stamp or "has_vector" not in arrays:
            return None
        return cls(arrays, meta, state_dir)

    def strings(self, name: str) -> list[str]:
        """A string column, decoded once."""
        if name not in self._columns:
            values = unpack_strings(self.arrays[f"{name}.offsets"], self.arrays[f"{name}.bytes"])
            codes = self.arrays.get(f"{name}.codes")
            self._columns[name] = values if codes is None else [values[c] for c in codes.tolist()]
        return self._columns[name]

    def ints(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def string(self, name: str, row: int) -> str:
        """One row's value, without decoding the column (a hit's text)."""
        if name in self._columns:
            return self._columns[name][row]
        codes = self.arrays.get(f"{name}.codes")
        index = int(codes[row]) if codes is not None else row
        return string_at(self.arrays[f"{name}.offsets"], self.arrays[f"{name}.bytes"], index)

    def _stored(self) -> dict[str, np.ndarray] | None:
        """The arrays of query.rows for exactly these rows; built when the file is missing or
        stale, and kept for the next process (a read-only index: not kept)."""
        digest = self.meta.get(_DIGEST)
        if self.state_dir is None or not isinstance(digest, str):
            return None
        if self._arrays is None:
            path = self.state_dir / POSTINGS
            found = _identity(path)
            arrays = _read_postings(path, digest)
            if arrays is None:
                arrays = _postings(self, digest)
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
        return self.arrays["has_vector"], self.arrays["vector"]
