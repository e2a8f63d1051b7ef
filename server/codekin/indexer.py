"""Index a repository: scan -> chunk changed files -> embed new content hashes -> write."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from codekin.chunking import Chunk, chunk_text
from codekin.config import Config, ModelConfig
from codekin.embedding import Embedder, expected_key, load_embedder
from codekin.errors import WorkspaceError
from codekin.index.lock import IndexLock
from codekin.index.store import FileRecord, IndexStore
from codekin.progress import ProgressFactory, no_progress
from codekin.workspace import Scan, UnreadableFile, read_text, scan

FILE_BATCH = 500  # files whose chunk rows are written together
EMBED_BATCH = 1024  # vectors appended per write: an interrupted run keeps what it embedded


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
    model: str = ""
    device: str = ""

    @property
    def embeddings_per_second(self) -> float:
        return self.new_embeddings / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "embeddings_per_second": round(self.embeddings_per_second, 1),
                "seconds": round(self.seconds, 2), "embed_seconds": round(self.embed_seconds, 2)}


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


def git_head(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


class Indexer:
    """Brings the index of one repository up to date with its files."""

    def __init__(self, root: Path, config: Config, embedder: Embedder | None = None,
                 progress: ProgressFactory = no_progress) -> None:
        self.root = root
        self.config = config
        self.store = IndexStore(root)
        self._embedder = embedder
        self.progress = progress

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:  # loaded only when something needs embedding
            self._embedder = load_embedder(self._model())
        return self._embedder

    def _model(self) -> ModelConfig:
        """The configured model, or the fine-tuned version the model registry makes active."""
        from codekin.jobs.serving import serving_model

        return serving_model(self.root, self.config.model)

    def run(self, paths: list[str] | None = None, wait: float = 0.0) -> IndexSummary:
        """Full pass (paths=None) or only the given repository-relative paths."""
        started = time.perf_counter()
        summary = IndexSummary()
        with IndexLock(self.store.state_dir, wait=wait):
            found = scan(self.root, self.config.index)
            if paths is not None:
                found = _restrict(found, set(paths))
            elif not found.files and not found.skipped and found.excluded:
                raise WorkspaceError(
                    f"nothing to index in {self.root}: all {found.excluded} files are excluded by "
                    f"[index] include/exclude (vendored or generated code: {', '.join(self.config.index.exclude)})",
                    "to index them anyway, set [index] exclude in .codekin/config.toml",
                )
            elif not found.files and not found.skipped:
                raise WorkspaceError(
                    f"nothing to index in {self.root}: the repository is empty",
                    "add and commit some source files, or point codekin at another directory",
                )
            digest = self._scan_digest(found) if paths is None else ""
            state = self.store.state() if self.store.exists() else {}
            if digest and state.get("scan_digest") == digest:  # nothing changed since the last full pass
                counts = state.get("last_counts", {})
                summary.files, summary.chunks = counts.get("files", 0), counts.get("chunks", 0)
                summary.skipped = counts.get("skipped", {})
                summary.seconds = time.perf_counter() - started
                return summary
            records = self.store.file_records()
            self._update_files(found, records, paths, summary)
            if paths is None and summary.files and not (summary.chunks or self.store.chunk_hashes()):
                raise WorkspaceError(
                    f"no supported files in {self.root}: {len(found.skipped)} skipped",
                    "check [index] include/exclude in .codekin/config.toml; `codekin doctor` lists reasons",
                )
            self._embed_missing(summary)
            self.store.ensure_ann_index(self._active_key(), self.config.index.ann_min_rows)
            if summary.changed_files or summary.removed_files:
                self.store.compact()
            summary.chunks = len(self.store.load_chunks())
            # Written last: a full pass that completed may let the next one skip everything.
            counts = {"files": summary.files, "chunks": summary.chunks, "skipped": summary.skipped}
            self.store.write_state(active_key=self._active_key(), model=self._active_model(),
                                   head=git_head(self.root), scan_digest=self._scan_digest(found, self._active_key())
                                   if paths is None else "", last_counts=counts)
        summary.seconds = time.perf_counter() - started
        return summary

    def _scan_digest(self, found: Scan, key: str | None = None) -> str:
        """What a full pass depends on: every file's size and mtime, the skips, the chunking
        settings and the vector space. Equal digests mean a full pass would change nothing."""
        digest = hashlib.sha256()
        digest.update(repr((key or self._active_key(), sorted(vars(self.config.index).items()))).encode())
        for f in found.files:
            digest.update(f"{f.path}\0{f.size}\0{f.mtime_ns}\n".encode("utf-8", "surrogateescape"))
        for path, reason in sorted(found.skipped.items()):
            digest.update(f"{path}\0{reason}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def _active_key(self) -> str:
        if self._embedder is not None:
            return self._embedder.key
        return expected_key(self._model())  # the backend's key, known without loading the model

    def _active_model(self) -> str:
        return self._embedder.name if self._embedder is not None else self._model().primary

    def _update_files(self, found: Scan, records: dict[str, FileRecord], paths: list[str] | None,
                      summary: IndexSummary) -> None:
        skipped: Counter[str] = Counter(_reason_kind(r) for r in found.skipped.values())
        pending_paths: list[str] = []
        pending_chunks: list[Chunk] = []
        pending_records: list[FileRecord] = []

        def flush() -> None:
            self.store.replace_files(pending_paths, pending_chunks, pending_records)
            pending_paths.clear()
            pending_chunks.clear()
            pending_records.clear()

        for file in found.files:
            summary.files += 1
            old = records.get(file.path)
            if old is not None and old.size == file.size and old.mtime_ns == file.mtime_ns:
                if old.skip_reason:
                    skipped[_reason_kind(old.skip_reason)] += 1
                continue  # unchanged since the last pass: not even read
            try:
                text = read_text(self.root, file.path)
            except UnreadableFile as exc:
                skipped[_reason_kind(str(exc))] += 1
                record = FileRecord(file.path, file.size, file.mtime_ns, "", 0, str(exc))
                chunks: list[Chunk] = []
            else:
                file_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
                if old is not None and old.file_hash == file_hash:  # touched, not changed
                    pending_records.append(FileRecord(file.path, file.size, file.mtime_ns, file_hash, old.chunks))
                    continue
                chunks = chunk_text(file.path, text, self.config.index)
                record = FileRecord(file.path, file.size, file.mtime_ns, file_hash, len(chunks))
            summary.changed_files += 1
            pending_paths.append(file.path)
            pending_chunks.extend(chunks)
            pending_records.append(record)
            if len(pending_paths) >= FILE_BATCH:
                flush()
        present = {f.path for f in found.files}
        scope = set(paths) if paths is not None else set(records)
        removed = sorted(p for p in scope if p in records and p not in present)
        summary.removed_files = len(removed)
        pending_paths.extend(removed)
        flush()
        summary.skipped = dict(skipped)

    def _embed_missing(self, summary: IndexSummary) -> None:
        """Embed every chunk hash that has no vector in the active model's table."""
        key = self._active_key()
        missing = self.store.chunk_hashes() - self.store.vector_hashes(key)
        if not missing:
            return
        embedder = self.embedder
        if embedder.key != key:  # the fallback model answered: its own vector space
            missing = self.store.chunk_hashes() - self.store.vector_hashes(embedder.key)
        summary.model, summary.device = embedder.name, embedder.device
        texts = self.store.chunk_texts(missing)
        hashes = sorted(texts, key=lambda h: len(texts[h]))
        started = time.perf_counter()
        with self.progress("Embedding", len(hashes)) as bar:
            for first in range(0, len(hashes), EMBED_BATCH):
                batch = hashes[first:first + EMBED_BATCH]
                vectors = embedder.encode([texts[h] for h in batch], progress=bar.advance)
                self.store.add_vectors(embedder.key, batch, vectors)
                summary.new_embeddings += len(batch)
        summary.embed_seconds = time.perf_counter() - started


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
