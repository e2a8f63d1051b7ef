"""Index a repository: scan -> chunk changed files -> embed new content hashes -> write.

The Indexer decides (which files changed, which chunk rows to write, which hashes lack a
vector, the lock, the state switch); an engine does the two heavy steps: reading and
chunking files, and embedding texts. `LocalEngine` runs them in this process;
`codekin.distributed.ray_embed.RayEngine` runs them on Ray Data. Both go through the same
decisions and writes, so both write the same tables.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from codekin.chunking import CHUNKER_VERSION, Chunk
from codekin.config import Config, ModelConfig
from codekin.embedding import Embedder
from codekin.errors import IndexDamagedError, StaleModelError, WorkspaceError
from codekin.git import head as git_head
from codekin.index import integrity, provenance
from codekin.index.engines import IndexEngine, LocalEngine
from codekin.index.lock import IndexLock
from codekin.index.phases import DenseLayer, scan_digest
from codekin.index.query_file import query_file_current, write_query_file
from codekin.index.recorded import files_entry
from codekin.index.store import FileRecord, IndexStore
from codekin.progress import ProgressFactory, no_progress
from codekin.workspace import Scan, scan

FILE_BATCH = 500  # files whose chunk rows are written together

log = logging.getLogger(__name__)


@dataclass
class IndexSummary:
    files: int = 0
    changed_files: int = 0
    removed_files: int = 0
    chunks: int = 0
    new_embeddings: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    seconds: float = 0.0
    embed_seconds: float = 0.0  # model time only: what embeddings/s is measured over
    searchable_seconds: float = 0.0  # when phase 1 (chunks, words, definitions) was committed
    missing_vectors: int = 0  # chunk rows still without a vector (phase 2 skipped or cut short)
    model: str = ""
    device: str = ""
    rebuilt: str = ""  # why the index was discarded and rebuilt from the files ("" when it was not)

    @property
    def embeddings_per_second(self) -> float:
        return self.new_embeddings / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "embeddings_per_second": round(self.embeddings_per_second, 1),
                "seconds": round(self.seconds, 2), "embed_seconds": round(self.embed_seconds, 2),
                "searchable_seconds": round(self.searchable_seconds, 2)}


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


class Indexer:
    """Brings the index of one repository up to date with its files."""

    lexical_only = False  # stop after phase 1: searchable by words; the next pass embeds
    on_searchable: Callable[[IndexSummary], None] | None = None  # told when phase 1 is committed

    def __init__(self, root: Path, config: Config, embedder: Embedder | None = None,
                 progress: ProgressFactory = no_progress, engine: IndexEngine | None = None) -> None:
        self.root = root
        self.config = config
        self.store = IndexStore(root)
        self.engine: IndexEngine = engine if engine is not None else LocalEngine(embedder)
        self.progress = progress
        self.announce: Callable[[str], None] = lambda message: None  # says why it rebuilds, before it does

    def _model(self) -> ModelConfig:
        """The configured model, or the fine-tuned version the model registry makes active."""
        from codekin.models.serving import serving_model

        return serving_model(self.root, self.config.model)

    def run(self, paths: list[str] | None = None, wait: float = 0.0, rebuild: bool = False) -> IndexSummary:
        """Full pass (paths=None) or only the given repository-relative paths. A damaged index
        (and any index with `rebuild`) is discarded and rebuilt by a full pass, announced first."""
        try:
            if rebuild:
                return self._rebuild("a rebuild was asked for", wait)
            if foreign := self.store.foreign():  # committed to git or copied: never used, rebuilt here
                self.announce(f"codekin: ignoring the index in {self.store.state_dir}: {foreign}; "
                              "rebuilding it from the source files")
                return self._rebuild(f"the index was not made here: {foreign}", wait)
            try:
                return self._run(paths, wait)
            except IndexDamagedError as exc:
                self.announce(f"codekin: {exc.message}; rebuilding it from the source files")
                return self._rebuild(exc.message, wait)
        finally:
            self.engine.close()

    def _rebuild(self, reason: str, wait: float) -> IndexSummary:
        with IndexLock(self.store.state_dir, wait=wait):
            if self.store.foreign():
                provenance.remove_foreign(self.root)
            integrity.discard(self.store)
        self.store = IndexStore(self.root)  # no connection to the discarded tables
        summary = self._run(None, wait)
        summary.rebuilt = reason
        return summary

    def _run(self, paths: list[str] | None, wait: float) -> IndexSummary:
        started = time.perf_counter()
        summary = IndexSummary()
        with IndexLock(self.store.state_dir, wait=wait), integrity.guard():
            if paths is None and (repaired := self.store.repair_state()):
                log.warning("codekin: %s", repaired)
            integrity.prepare(self.store)  # leftovers of a killed run go; damage raises IndexDamagedError
            model = self._model()  # resolved once per run: the registry is read here only
            self._check_model_current(model)
            found = self._scan(paths)
            digest = self._scan_digest(found, self.engine.key(model)) if paths is None else ""
            state = self.store.state() if self.store.exists() else {}
            if digest and state.get("scan_digest") == digest:  # nothing changed since the last full pass
                if state.get("dense", {}).get("chunks", 0) < self.config.index.ann_min_rows \
                        and not query_file_current(self.store.state_dir, state):  # e.g. of an older layout
                    write_query_file(self.store, state, self.config.index.ann_min_rows)
                counts = state.get("last_counts", {})
                summary.files, summary.chunks = counts.get("files", 0), counts.get("chunks", 0)
                summary.skipped = counts.get("skipped", {})
                summary.seconds = time.perf_counter() - started
                return summary
            records = self.store.file_records()
            # Chunking code or settings changed since the last full pass: re-chunk every file.
            rechunk = paths is None and state.get("chunking") != self._chunking_signature()
            self._update_files(found, records, paths, summary, rechunk)
            if paths is None and summary.files and not (summary.chunks or self.store.chunk_hashes()):
                raise WorkspaceError(
                    f"no supported files in {self.root}: {len(found.skipped)} skipped",
                    "check [index] include/exclude in .codekin/config.toml; `codekin doctor` lists reasons",
                )
            dense = self._commit_lexical(found, model, paths, summary, started)
            if self.lexical_only:
                summary.seconds = time.perf_counter() - started
                return summary
            dense = self._embed_missing(summary, model, dense)
            key = self.engine.key(model)  # known without loading the model
            self.store.ensure_ann_index(key, self.config.index.ann_min_rows)
            if summary.changed_files or summary.removed_files:
                self.store.compact()
            summary.chunks = dense.chunks
            # Written last: a full pass that completed may let the next one skip everything.
            counts = {"files": summary.files, "chunks": summary.chunks, "skipped": summary.skipped}
            state = self.store.write_state(
                active_key=key, model=self.engine.model_name(model), dense=dense.record(), head=git_head(self.root),
                files=files_entry(self.store.file_records()),
                scan_digest=self._scan_digest(found, key) if paths is None else "", last_counts=counts,
                **({"chunking": self._chunking_signature(),
                    "files_digest": self._scan_digest(found, "")} if paths is None else {}))
            integrity.record(self.store)  # what this run wrote, as written
            write_query_file(self.store, state, self.config.index.ann_min_rows)
        summary.seconds = time.perf_counter() - started
        summary.searchable_seconds = summary.searchable_seconds or summary.seconds
        return summary

    def _scan(self, paths: list[str] | None) -> Scan:
        """The files to index: all of them (paths=None, which must find some) or those of `paths`."""
        found = scan(self.root, self.config.index)
        if paths is not None:
            return _restrict(found, set(paths))
        if not found.files and not found.skipped and found.excluded:
            raise WorkspaceError(
                f"nothing to index in {self.root}: all {found.excluded} files are excluded by "
                f"[index] include/exclude (vendored or generated code: {', '.join(self.config.index.exclude)})",
                "to index them anyway, set [index] exclude in .codekin/config.toml",
            )
        if not found.files and not found.skipped:
            raise WorkspaceError(
                f"nothing to index in {self.root}: the repository is empty",
                "add and commit some source files, or point codekin at another directory",
            )
        return found

    def _chunking_signature(self) -> str:
        """What chunk rows depend on besides file contents: the chunker's code and settings."""
        settings = repr((CHUNKER_VERSION, sorted(vars(self.config.index).items())))
        return hashlib.sha256(settings.encode()).hexdigest()[:16]

    def _scan_digest(self, found: Scan, key: str) -> str:
        """Equal digests mean a full pass would change nothing (index/phases.py)."""
        return scan_digest(found, key, self._chunking_signature())

    def _commit_lexical(self, found: Scan, model: ModelConfig, paths: list[str] | None, summary: IndexSummary,
                        started: float) -> DenseLayer:
        """End of phase 1: record the chunk rows as searchable (by their words until their
        vectors follow). A pass with little to embed commits once, at the end."""
        key = self.engine.key(model)
        dense = DenseLayer(self.store, key)
        summary.chunks, summary.missing_vectors = dense.chunks, dense.missing_rows
        if not (dense.worth_a_commit() or self.lexical_only):
            return dense
        extra = {"files_digest": scan_digest(found, "", self._chunking_signature()),
                 "chunking": self._chunking_signature(), "scan_digest": ""} if paths is None else {}
        state = self.store.write_state(active_key=key, model=self.engine.model_name(model),
                                       head=git_head(self.root), dense=dense.record(),
                                       files=files_entry(self.store.file_records()), **extra)
        integrity.record(self.store)  # phase 1's files, as written
        write_query_file(self.store, state, self.config.index.ann_min_rows)
        summary.searchable_seconds = time.perf_counter() - started
        if self.on_searchable is not None:
            self.on_searchable(summary)
        return dense

    def _check_model_current(self, model: ModelConfig) -> None:
        """A long-lived process (the language server) may hold a model that another process has
        replaced since (`codekin models promote` + `codekin reembed`): indexing with it would
        switch the index back to the old vector space. It must reload first."""
        if self.engine.stale(model):
            raise StaleModelError(
                f"this process embeds with {self.engine.model_name(model)}, but the index now follows "
                f"{model.primary}",
                "the language server reloads the model by itself; restart other long-running commands")

    def _update_files(self, found: Scan, records: dict[str, FileRecord], paths: list[str] | None,
                      summary: IndexSummary, rechunk: bool = False) -> None:
        skipped: Counter[str] = Counter(_reason_kind(r) for r in found.skipped.values())
        by_path = {f.path: f for f in found.files}
        wanted: dict[str, str] = {}  # path -> its indexed file hash ("" when new)
        for file in found.files:
            summary.files += 1
            old = records.get(file.path)
            if rechunk:
                wanted[file.path] = ""  # read and chunk again, whatever its hash
                continue
            if old is not None and old.size == file.size and old.mtime_ns == file.mtime_ns:
                if old.skip_reason:
                    skipped[_reason_kind(old.skip_reason)] += 1
                continue  # unchanged since the last pass: not even read
            wanted[file.path] = old.file_hash if old is not None else ""
        pending_paths: list[str] = []
        pending_chunks: list[Chunk] = []
        pending_records: list[FileRecord] = []

        def flush() -> None:
            self.store.replace_files(pending_paths, pending_chunks, pending_records)
            pending_paths.clear()
            pending_chunks.clear()
            pending_records.clear()

        progress = self.progress if self.engine.chunk_progress else no_progress
        with progress("Chunking", len(wanted)) as bar:
            for done in self.engine.chunk_files(self.root, self.config.index, wanted):
                bar.advance(1)
                file, old = by_path[done.path], records.get(done.path)
                if done.error:
                    skipped[_reason_kind(done.error)] += 1
                    record = FileRecord(file.path, file.size, file.mtime_ns, "", 0, done.error)
                elif done.chunks is None:  # touched, not changed: only its size and mtime are new
                    pending_records.append(FileRecord(file.path, file.size, file.mtime_ns, done.file_hash,
                                                      old.chunks if old is not None else 0))
                    continue
                else:
                    record = FileRecord(file.path, file.size, file.mtime_ns, done.file_hash, len(done.chunks))
                summary.changed_files += 1
                pending_paths.append(file.path)
                pending_chunks.extend(done.chunks or [])
                pending_records.append(record)
                if len(pending_paths) >= FILE_BATCH:
                    flush()
        scope = set(paths) if paths is not None else set(records)
        removed = sorted(p for p in scope if p in records and p not in by_path)
        summary.removed_files = len(removed)
        pending_paths.extend(removed)
        flush()
        summary.skipped = dict(skipped)

    def _embed_missing(self, summary: IndexSummary, model: ModelConfig, dense: DenseLayer) -> DenseLayer:
        """Phase 2: embed every chunk hash that has no vector in the table of `model` (the run's
        model), slice by slice, recording each slice in the state file (a kill keeps them)."""
        key = self.engine.key(model)
        if not dense.missing:
            return dense
        with self.progress("Embedding", len(dense.missing)) as bar:
            for part in dense.slices():
                stats = self.engine.embed(self.store, set(part), key, model, bar.advance)
                if stats.key != key:  # a fallback answered: it embedded all its table lacked
                    key = stats.key
                    dense = DenseLayer(self.store, key)
                dense.done(part)
                summary.model, summary.device = stats.model, stats.device
                summary.new_embeddings += stats.embedded
                summary.embed_seconds += stats.seconds
                if dense.missing:
                    state = self.store.write_state(active_key=key, dense=dense.record())
                    integrity.record(self.store)  # this slice's vectors, as written
                    # a cold search keeps skipping LanceDB while phase 2 runs (the BM25 is kept)
                    write_query_file(self.store, state, self.config.index.ann_min_rows)
        summary.missing_vectors = dense.missing_rows
        return dense


def _restrict(found: Scan, wanted: set[str]) -> Scan:
    return Scan(found.root, [f for f in found.files if f.path in wanted],
                {p: r for p, r in found.skipped.items() if p in wanted})



def workspace_changes(root: Path, config: Config,
                      records: dict[str, FileRecord] | None = None) -> dict[str, set[str]]:
    """Files that differ from the index by size/mtime ("changed"), are not in it ("new"),
    or are indexed but gone from the scan ("removed"). Stat only, nothing is read."""
    found = scan(root, config.index)
    records = IndexStore(root).file_records() if records is None else records
    present = {f.path for f in found.files}
    changed = {f.path for f in found.files if f.path in records
               and (records[f.path].size, records[f.path].mtime_ns) != (f.size, f.mtime_ns)}
    return {"changed": changed, "new": present - set(records), "removed": set(records) - present}


def pending_changes(root: Path, config: Config) -> dict[str, int]:
    """How far the index is behind the files, as counts."""
    return {kind: len(paths) for kind, paths in workspace_changes(root, config).items()}


def skipped_files(root: Path, config: Config) -> dict[str, str]:
    """Every file the index leaves out, by name, with the reason: those read and refused (binary,
    not UTF-8, empty...) and those the scan passes over (symlinks, too large)."""
    found = {path: reason for path, reason in scan(root, config.index).skipped.items()}
    found.update({path: r.skip_reason for path, r in IndexStore(root).file_records().items() if r.skip_reason})
    return dict(sorted(found.items()))
