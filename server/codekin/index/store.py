"""The on-disk index: LanceDB tables under .codekin/index.lance plus a small state file.

Tables: `files` (what was indexed, for change detection), `chunks` (model independent,
one row per chunk) and `vectors_<model key>` (content_hash -> vector, one table per
vector space, so vectors of two models never mix and unchanged content is never
re-embedded, also across renames and branch switches).
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

os.environ.setdefault("LANCE_LOG", "error")  # lance warns on stderr when it creates a table

import numpy as np  # noqa: E402

from codekin.atomic import write_json_atomic  # noqa: E402
from codekin.errors import IndexForeignError, IndexFormatError  # noqa: E402
from codekin.index import provenance  # noqa: E402
from codekin.index.lexical import terms  # noqa: E402
from codekin.index.recorded import FORMAT, load_state  # noqa: E402
from codekin.state import INDEX_STATE, LANCE_DIR, state_path  # noqa: E402
from codekin.workspace import ensure_state_dir  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import lancedb
    import pyarrow as pa
    from lancedb.query import LanceVectorQueryBuilder

    from codekin.chunking import Chunk

DELETE_BATCH = 400

# pyarrow (~40 ms) is imported where a table is read or written, not by a query that reads
# the state file and the query files only: the schemas are built on first use.
@cache
def files_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        pa.field("path", pa.string()), pa.field("size", pa.int64()), pa.field("mtime_ns", pa.int64()),
        pa.field("file_hash", pa.string()), pa.field("chunks", pa.int32()), pa.field("skip_reason", pa.string()),
    ])


@cache
def chunks_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        pa.field("path", pa.string()), pa.field("language", pa.string()), pa.field("kind", pa.string()),
        pa.field("symbol", pa.string()), pa.field("start_line", pa.int32()), pa.field("end_line", pa.int32()),
        pa.field("content_hash", pa.string()), pa.field("text", pa.string()), pa.field("terms", pa.string()),
        pa.field("context", pa.string()),  # the chunk's module summary (Chunk.context), part of its header
    ])


def vectors_schema(dim: int) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field("content_hash", pa.string()), pa.field("vector", pa.list_(pa.float32(), dim))])


def __getattr__(name: str) -> object:
    """FILES_SCHEMA and CHUNKS_SCHEMA, as before the schemas were built on first use."""
    schemas = {"FILES_SCHEMA": files_schema, "CHUNKS_SCHEMA": chunks_schema}
    if name in schemas:
        return schemas[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    file_hash: str
    chunks: int
    skip_reason: str = ""


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = state_path(root)
        self.state_path = self.state_dir / INDEX_STATE
        self._db: lancedb.DBConnection | None = None
        self._foreign: tuple[object, str] | None = None  # (the state file's stat, the reason)

    # -- state ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """An index this machine made (one that came with the repository or a copy is ignored)."""
        return self.state_path.is_file() and not self.foreign()

    def foreign(self) -> str:
        """Why the index under .codekin/ is not this machine's own (index/provenance.py), else "";
        asked again only when the state file changes."""
        try:
            st = self.state_path.stat()
            key: object = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            key = None
        if self._foreign is None or self._foreign[0] != key:
            self._foreign = (key, provenance.foreign_reason(self.root))
        return self._foreign[1]

    def interrupted(self) -> dict | None:
        """What a first `codekin index` that was stopped committed before it could write the
        state ({"files", "chunks"}: a rerun resumes from there), else None."""
        if self.state_path.is_file() or not (self.state_dir / LANCE_DIR).is_dir() or self.foreign():
            return None
        return {"files": len(self.file_records()), "chunks": len(self.load_chunks())}

    def state(self) -> dict:
        if self.state_path.is_file() and (reason := self.foreign()):
            raise IndexForeignError(f"ignoring the index in {self.state_dir}: {reason}", provenance.FIX)
        return load_state(self.state_path)  # IndexMissingError, IndexFormatError

    def repair_state(self) -> str:
        """Move a damaged state.json aside (the next full pass writes a new one); what was done, or ''."""
        if not self.exists():
            return ""
        try:
            self.state()
            return ""
        except IndexFormatError as exc:
            if not isinstance(exc.__cause__, OSError | ValueError):
                raise  # written by a newer codekin: not damage
            aside = self.state_path.with_name(f"state.json.damaged-{int(time.time())}")
            os.replace(self.state_path, aside)
            return f"{exc.message}; moved it to {aside.name}, this full pass writes a new one"

    def write_state(self, **values: object) -> dict:
        state = self.state() if self.exists() else {}
        state.update(values, format=FORMAT, updated_at=time.time(), **provenance.stamp())
        ensure_state_dir(self.root)
        write_json_atomic(self.state_path, state, sort_keys=False, durable=False)  # readers see old or new
        return state

    # -- tables --------------------------------------------------------------------------
    @property
    def db(self) -> lancedb.DBConnection:
        if self._db is None:
            from codekin.index.lance_import import import_lancedb

            # imported on first use (a no-change re-index needs none), without its REST client
            ensure_state_dir(self.root)
            self._db = import_lancedb().connect(str(self.state_dir / LANCE_DIR))
        return self._db

    def _names(self) -> set[str]:
        return set(self.db.list_tables().tables)

    def _table(self, name: str, schema: pa.Schema):
        if name in self._names():
            return self.db.open_table(name)
        return self.db.create_table(name, schema=schema, mode="create", exist_ok=True)

    def vectors_table_name(self, key: str) -> str:
        return f"vectors_{key}"

    def file_records(self) -> dict[str, FileRecord]:
        table = self._table("files", files_schema()).to_arrow().to_pylist()
        return {row["path"]: FileRecord(**row) for row in table}

    def chunk_hashes(self) -> set[str]:
        table = self._table("chunks", chunks_schema())
        return set(table.to_arrow().column("content_hash").to_pylist())

    def vector_hashes(self, key: str) -> set[str]:
        name = self.vectors_table_name(key)
        if name not in self._names():
            return set()
        return set(self.db.open_table(name).to_arrow().column("content_hash").to_pylist())

    def chunk_texts(self, hashes: set[str]) -> dict[str, str]:
        """The text the model sees for each wanted hash (header + code)."""
        from codekin.chunking import header_line  # the chunkers: a writer's import, not a query's

        table = self._table("chunks", chunks_schema()).to_arrow()
        out: dict[str, str] = {}
        contexts = (table.column("context").to_pylist() if "context" in table.column_names
                    else [""] * table.num_rows)  # an index written before chunks had a context
        cols = zip(table.column("content_hash").to_pylist(), table.column("language").to_pylist(),
                   table.column("kind").to_pylist(), table.column("symbol").to_pylist(),
                   table.column("text").to_pylist(), contexts, strict=True)
        for h, language, kind, symbol, text, context in cols:
            if h in hashes and h not in out:
                out[h] = f"{header_line(language, kind, symbol, context or '')}\n{text}"
        return out

    def add_vectors(self, key: str, hashes: list[str], vectors: np.ndarray) -> None:
        if not hashes:
            return
        import pyarrow as pa

        dim = vectors.shape[1]
        table = self._table(self.vectors_table_name(key), vectors_schema(dim))
        flat = pa.array(vectors.astype(np.float32, copy=False).ravel())
        table.add(pa.table({"content_hash": hashes,
                            "vector": pa.FixedSizeListArray.from_arrays(flat, dim)}))

    def add_vector_stream(self, key: str, dim: int, batches: Iterable[tuple[list[str], np.ndarray]]) -> None:
        """Append streamed (hashes, vectors) batches as ONE new table version: readers see all
        of them or none, and a stream that fails leaves the table as it was (its error is raised).
        An empty stream writes nothing."""
        import pyarrow as pa

        schema = vectors_schema(dim)
        failure: list[BaseException] = []

        def records() -> Iterator[pa.RecordBatch]:
            for hashes, vectors in batches:
                if hashes:
                    flat = pa.array(np.asarray(vectors, dtype=np.float32).ravel())
                    yield pa.record_batch([pa.array(hashes, pa.string()),
                                           pa.FixedSizeListArray.from_arrays(flat, dim)], schema=schema)

        def kept(rows: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            try:
                yield from rows
            except BaseException as exc:  # arrow re-wraps it: keep the original for the caller
                failure.append(exc)
                raise

        rows = records()
        first = next(rows, None)
        if first is None:
            return
        table = self._table(self.vectors_table_name(key), schema)
        try:
            table.add(pa.RecordBatchReader.from_batches(schema, kept(itertools.chain([first], rows))))
        except Exception:
            if failure:
                raise failure[0] from None
            raise

    def replace_files(self, paths: list[str], chunks: list[Chunk], records: list[FileRecord]) -> None:
        """Swap the chunk rows of `paths` for `chunks`, then write `records` (replacing any
        earlier record of the same path; a path in `paths` without a record is forgotten).

        Crash-safe by order: the files table is written last, so an interrupted run
        sees the old file hash and redoes these files.
        """
        import pyarrow as pa

        chunks_table = self._table("chunks", chunks_schema())
        if "context" not in chunks_table.schema.names:  # written before chunks had a context: old rows get ""
            chunks_table.add_columns({"context": "CAST('' AS STRING)"})
        files_table = self._table("files", files_schema())
        for i in range(0, len(paths), DELETE_BATCH):
            chunks_table.delete(f"path IN ({_quoted(paths[i:i + DELETE_BATCH])})")
        if chunks:
            chunks_table.add(pa.Table.from_pylist([_chunk_row(c) for c in chunks], schema=chunks_schema()))
        stale = sorted(set(paths) | {r.path for r in records})
        for i in range(0, len(stale), DELETE_BATCH):
            files_table.delete(f"path IN ({_quoted(stale[i:i + DELETE_BATCH])})")
        if records:
            files_table.add(pa.Table.from_pylist([r.__dict__ for r in records], schema=files_schema()))

    def remove_files(self, paths: list[str]) -> None:
        self.replace_files(paths, [], [])

    def load_chunks(self) -> pa.Table:
        return self._table("chunks", chunks_schema()).to_arrow()

    def load_vectors(self, key: str) -> tuple[list[str], np.ndarray]:
        name = self.vectors_table_name(key)
        if name not in self._names():
            return [], np.zeros((0, 0), dtype=np.float32)
        table = self.db.open_table(name).to_arrow()
        column = table.column("vector").combine_chunks()
        dim = column.type.list_size
        matrix = column.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
        return table.column("content_hash").to_pylist(), matrix

    def ensure_ann_index(self, key: str, min_rows: int) -> bool:
        """An IVF-PQ index on a vectors table of at least `min_rows` rows (brute force below).

        Built once; rows added later are searched exactly by lance until the next
        compaction folds them into the index.
        """
        name = self.vectors_table_name(key)
        if name not in self._names():
            return False
        table = self.db.open_table(name)
        rows = table.count_rows()
        if rows < min_rows:
            return False
        if not any("vector" in idx.columns for idx in table.list_indices()):
            dim = table.schema.field("vector").type.list_size
            table.create_index(metric="cosine", vector_column_name="vector",
                               num_partitions=max(1, int(rows ** 0.5)),
                               num_sub_vectors=next(n for n in (dim // 8, dim // 4, dim // 2, 1) if n and dim % n == 0))
        return True

    def has_ann_index(self, key: str) -> bool:
        name = self.vectors_table_name(key)
        if name not in self._names():
            return False
        return any("vector" in idx.columns for idx in self.db.open_table(name).list_indices())

    def ann_candidates(self, key: str, vector: np.ndarray, limit: int) -> list[str]:
        """Content hashes of the approximate nearest vectors (cosine)."""
        table = self.db.open_table(self.vectors_table_name(key))
        query = cast("LanceVectorQueryBuilder", table.search(vector.astype(np.float32)))  # a vector query
        result = query.metric("cosine").limit(limit).nprobes(20).select(["content_hash"]).to_arrow()
        return result.column("content_hash").to_pylist()

    def compact(self) -> None:
        """Merge small fragments and drop old versions so the index stays small."""
        import warnings
        from datetime import timedelta

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in self._names():
                # Versions older than a minute go; a reader loads a table in well under that.
                self.db.open_table(name).optimize(cleanup_older_than=timedelta(minutes=1))

    def counts(self) -> dict[str, int]:
        names = self._names()
        return {name: self.db.open_table(name).count_rows() for name in sorted(names)}


def _chunk_row(chunk: Chunk) -> dict:
    return {
        "path": chunk.path, "language": chunk.language, "kind": chunk.kind, "symbol": chunk.symbol,
        "start_line": chunk.start_line, "end_line": chunk.end_line, "content_hash": chunk.content_hash,
        "text": chunk.text, "terms": " ".join(terms(f"{chunk.symbol} {chunk.context}\n{chunk.text}")),
        "context": chunk.context,
    }
