"""Chunk and embed a repository as a Ray Data pipeline; the driver writes the index.

    changed files -> [Ray tasks] read + sha256 + chunk_text -> driver: chunk rows (as Indexer)
    missing hashes -> [Ray actor pool, each holding an Embedder] encode in batches
                   -> driver: IndexStore.add_vectors, state.json names the table

`RayIndexer` is the single-process `Indexer` with its two heavy steps moved onto Ray:
scanning, change detection, the lock, the ANN index, compaction and the state switch are
the Indexer's own, so the tables it writes equal the single-process ones (the tests
compare them). Only content hashes without a vector in the active table are embedded.

Without an address a local Ray instance is started on this machine's cores; with one
(`ray://host:10001` or `host:6379`) the driver joins that cluster, whose nodes must see
the repository at the same path (a shared checkout), as Ray's own file readers require.
Ray is an optional extra (`pip install 'codekin[ray]'`) imported only here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codekin.chunking import Chunk, chunk_text
from codekin.config import Config, IndexConfig, ModelConfig
from codekin.embedding import expected_key
from codekin.errors import CodekinError, WorkspaceError
from codekin.index.store import FileRecord, IndexStore
from codekin.indexer import EMBED_BATCH, FILE_BATCH, Indexer, IndexSummary, _reason_kind
from codekin.progress import ProgressFactory, no_progress
from codekin.workspace import Scan, UnreadableFile, read_text

RAY_HINT = "pip install 'codekin[ray]' (Ray Data), or index without --engine ray"
FILES_PER_TASK = 64  # files read and chunked by one Ray task


class RayUnavailableError(CodekinError):
    exit_code = 11


def import_ray() -> Any:
    """The `ray` module with Ray Data, or RayUnavailableError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailableError(f"the Ray engine needs Ray Data, which is not importable ({exc})",
                                  RAY_HINT) from exc
    return ray


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local instance on this machine
    num_cpus: int | None = None  # local instance only; None: every core
    workers: int = 0  # embedding actors; 0: one per GPU, else one per CPU of the cluster
    batch_size: int = 256  # texts per actor call
    files_per_task: int = FILES_PER_TASK

    def validate(self) -> RayOptions:
        if self.workers < 0 or self.batch_size < 1 or self.files_per_task < 1:
            raise CodekinError(f"invalid Ray options: workers={self.workers}, batch_size={self.batch_size}",
                               "pass --workers 0 (automatic) or more, and a batch size of 1 or more")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise CodekinError(f"--num-cpus must be >= 1, got {self.num_cpus}")
        return self


class RaySession:
    """Connects on first use; shuts down on exit only the instance it started itself."""

    def __init__(self, options: RayOptions) -> None:
        self.options = options.validate()
        self._ray: Any = None
        self._started = False
        self.init_seconds = 0.0

    def ray(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        started = time.perf_counter()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if self.options.address:
                kwargs["address"] = self.options.address
            else:
                kwargs["num_cpus"] = self.options.num_cpus or os.cpu_count() or 1  # workers inherit our env
            try:
                with warnings.catch_warnings():  # lancedb warns about forks; Ray's raylet forks then execs
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.options.address or "a local instance"
                raise RayUnavailableError(f"cannot start or join Ray at {where}: {exc}".splitlines()[0],
                                          "check the address (ray://HOST:10001 or HOST:6379) and that "
                                          "`ray status` works there; drop --address for a local instance") from exc
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        self.init_seconds = time.perf_counter() - started
        self._ray = ray
        return ray

    def close(self) -> None:
        if self._ray is not None and self._started:
            self._ray.shutdown()
        self._ray = None
        self._started = False

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the Ray side: plain functions and one actor class (pickled to the workers) ---------------
def chunk_files(batch: dict[str, np.ndarray], root: str, index: IndexConfig) -> dict[str, list]:
    """Read, hash and chunk each path of the batch: one row per file (chunks as JSON)."""
    out: dict[str, list] = {"path": [], "file_hash": [], "error": [], "chunks": []}
    base = Path(root)
    if not base.is_dir():
        raise WorkspaceError(f"the repository {root} is not visible on Ray node {os.uname().nodename}",
                             "every node of the cluster needs the checkout at the same path")
    for path in batch["path"].tolist():
        try:
            text = read_text(base, path)
        except UnreadableFile as exc:
            out["path"].append(path)
            out["file_hash"].append("")
            out["error"].append(str(exc))
            out["chunks"].append("[]")
            continue
        chunks = chunk_text(path, text, index)
        out["path"].append(path)
        out["file_hash"].append(hashlib.sha256(text.encode("utf-8")).hexdigest())
        out["error"].append("")
        out["chunks"].append(json.dumps([[c.language, c.kind, c.symbol, c.start_line, c.end_line, c.text]
                                         for c in chunks]))
    return out


class EmbedActor:
    """One per worker slot: loads the Embedder once, then encodes the batches it is given."""

    def __init__(self, model: ModelConfig, threads: int = 0) -> None:
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        from codekin.embedding import load_embedder

        self.embedder = load_embedder(model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts = batch["text"].tolist()
        vectors = self.embedder.encode(texts)
        answered = f"{self.embedder.key}\t{self.embedder.name}\t{self.embedder.device}"
        return {"content_hash": batch["content_hash"], "vector": vectors,
                "answered": np.array([answered] * len(texts), dtype=object)}


# -- the driver side -------------------------------------------------------------------------
def _chunks_from_json(path: str, payload: str) -> list[Chunk]:
    return [Chunk(path, language, kind, symbol, start, end, text)
            for language, kind, symbol, start, end, text in json.loads(payload)]


class RayIndexer(Indexer):
    """`Indexer` whose chunking and embedding run on Ray; everything else is the Indexer's."""

    def __init__(self, root: Path, config: Config, options: RayOptions | None = None,
                 progress: ProgressFactory = no_progress) -> None:
        super().__init__(root, config, embedder=None, progress=progress)
        self.session = RaySession(options or RayOptions())
        self._answered: tuple[str, str, str] | None = None  # key, model name, device of the actors
        self.stats: dict[str, float] = {"ray_init_seconds": 0.0, "chunk_seconds": 0.0, "workers": 0}

    def run(self, paths: list[str] | None = None, wait: float = 0.0) -> IndexSummary:
        try:
            return super().run(paths, wait)
        finally:
            self.stats["ray_init_seconds"] = round(self.session.init_seconds, 2)
            self.session.close()

    def _active_key(self) -> str:
        return self._answered[0] if self._answered else expected_key(self._model())

    def _active_model(self) -> str:
        return self._answered[1] if self._answered else self._model().primary

    # -- files -> chunk rows ---------------------------------------------------------------------
    def _chunk_results(self, paths: list[str]) -> Iterator[dict[str, Any]]:
        if not paths:
            return
        ray = self.session.ray()
        started = time.perf_counter()
        per_task = self.session.options.files_per_task
        dataset = ray.data.from_items([{"path": p} for p in paths],
                                      override_num_blocks=max(1, -(-len(paths) // per_task)))
        dataset = dataset.map_batches(chunk_files, batch_size=per_task, batch_format="numpy",
                                      fn_kwargs={"root": str(self.root), "index": self.config.index})
        try:
            for batch in dataset.iter_batches(batch_size=per_task, batch_format="numpy"):
                for i, path in enumerate(batch["path"].tolist()):
                    yield {"path": path, "file_hash": str(batch["file_hash"][i]), "error": str(batch["error"][i]),
                           "chunks": str(batch["chunks"][i])}
        finally:
            self.stats["chunk_seconds"] += time.perf_counter() - started

    def _update_files(self, found: Scan, records: dict[str, FileRecord], paths: list[str] | None,
                      summary: IndexSummary) -> None:
        """Indexer._update_files with reading and chunking done by Ray tasks (same decisions)."""
        skipped: Counter[str] = Counter(_reason_kind(r) for r in found.skipped.values())
        by_path = {f.path: f for f in found.files}
        candidates: list[str] = []
        for file in found.files:
            summary.files += 1
            old = records.get(file.path)
            if old is not None and old.size == file.size and old.mtime_ns == file.mtime_ns:
                if old.skip_reason:
                    skipped[_reason_kind(old.skip_reason)] += 1
                continue  # unchanged since the last pass: not even read
            candidates.append(file.path)
        pending_paths: list[str] = []
        pending_chunks: list[Chunk] = []
        pending_records: list[FileRecord] = []

        def flush() -> None:
            self.store.replace_files(pending_paths, pending_chunks, pending_records)
            pending_paths.clear()
            pending_chunks.clear()
            pending_records.clear()

        with self.progress("Chunking", len(candidates)) as bar:
            for row in self._chunk_results(candidates):
                bar.advance(1)
                file, old = by_path[row["path"]], records.get(row["path"])
                if row["error"]:
                    skipped[_reason_kind(row["error"])] += 1
                    record = FileRecord(file.path, file.size, file.mtime_ns, "", 0, row["error"])
                    chunks: list[Chunk] = []
                else:
                    if old is not None and old.file_hash == row["file_hash"]:  # touched, not changed
                        pending_records.append(FileRecord(file.path, file.size, file.mtime_ns, row["file_hash"],
                                                          old.chunks))
                        continue
                    chunks = _chunks_from_json(file.path, row["chunks"])
                    record = FileRecord(file.path, file.size, file.mtime_ns, row["file_hash"], len(chunks))
                summary.changed_files += 1
                pending_paths.append(file.path)
                pending_chunks.extend(chunks)
                pending_records.append(record)
                if len(pending_paths) >= FILE_BATCH:
                    flush()
        present = set(by_path)
        scope = set(paths) if paths is not None else set(records)
        removed = sorted(p for p in scope if p in records and p not in present)
        summary.removed_files = len(removed)
        pending_paths.extend(removed)
        flush()
        summary.skipped = dict(skipped)

    # -- missing hashes -> vectors ---------------------------------------------------------------
    def _embed_missing(self, summary: IndexSummary) -> None:
        """Embed every chunk hash without a vector in the active table on a Ray actor pool."""
        key = self._active_key()
        missing = self.store.chunk_hashes() - self.store.vector_hashes(key)
        if not missing:
            return
        result = embed_on_ray(self.session, self.store, self._model(), missing, self.progress)
        self.stats["workers"] = result.workers
        if result.key:
            self._answered = (result.key, result.model, result.device)
            summary.model, summary.device = result.model, result.device
        summary.new_embeddings += result.embedded
        summary.embed_seconds = result.seconds


@dataclass
class RayEmbedResult:
    embedded: int = 0
    seconds: float = 0.0
    workers: int = 0
    key: str = ""  # the vector space the actors answered in (the fallback model's if the primary failed)
    model: str = ""
    device: str = ""


def actor_pool(ray: Any, model: ModelConfig, wanted: int) -> tuple[int, dict[str, float]]:
    """(actor count, resources per actor): one GPU each where the cluster has GPUs, else one CPU."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus and model.device in ("auto", "cuda"):
        return (min(wanted, gpus) if wanted else gpus), {"num_gpus": 1, "num_cpus": 1}
    return (min(wanted, cpus) if wanted else cpus), {"num_cpus": 1}


def embed_on_ray(session: RaySession, store: IndexStore, model: ModelConfig, hashes: set[str],
                 progress: ProgressFactory = no_progress) -> RayEmbedResult:
    """Embed the chunk texts of `hashes` on an actor pool and append them to the answering
    model's vectors table in batches (an interrupted run keeps what it wrote). Hashes that
    table already holds are skipped. The caller switches state.json afterwards."""
    texts = store.chunk_texts(hashes)
    ordered = sorted(texts, key=lambda h: len(texts[h]))  # neighbours pad alike
    if not ordered:
        return RayEmbedResult()
    ray = session.ray()
    options = session.options
    workers, resources = actor_pool(ray, model, options.workers)
    blocks = -(-len(ordered) // options.batch_size)
    workers = min(workers, blocks)  # a handful of new chunks does not load the model N times
    dataset = ray.data.from_items([{"content_hash": h, "text": texts[h]} for h in ordered],
                                  override_num_blocks=blocks)
    dataset = dataset.map_batches(EmbedActor, batch_size=options.batch_size, batch_format="numpy",
                                  compute=ray.data.ActorPoolStrategy(size=workers),
                                  fn_constructor_kwargs={"model": model,
                                                         "threads": 0 if "num_gpus" in resources else 1},
                                  **resources)
    result = RayEmbedResult(workers=workers)
    known: dict[str, set[str]] = {}  # per answering key: the hashes its table holds
    started = time.perf_counter()
    with progress("Embedding", len(ordered)) as bar:
        for batch in dataset.iter_batches(batch_size=EMBED_BATCH, batch_format="numpy"):
            _write_vectors(store, batch, known, result)
            bar.advance(len(batch["content_hash"]))
    result.seconds = time.perf_counter() - started
    return result


def _write_vectors(store: IndexStore, batch: dict[str, np.ndarray], known: dict[str, set[str]],
                   result: RayEmbedResult) -> None:
    answered = batch["answered"].tolist()
    hashes = batch["content_hash"].tolist()
    vectors = np.asarray(batch["vector"], dtype=np.float32)
    for value in sorted(set(answered)):
        key, name, device = value.split("\t")
        if key not in known:
            known[key] = store.vector_hashes(key)
        rows = [i for i, a in enumerate(answered) if a == value and hashes[i] not in known[key]]
        store.add_vectors(key, [hashes[i] for i in rows], vectors[rows])
        known[key].update(hashes[i] for i in rows)
        result.embedded += len(rows)
        result.key, result.model, result.device = key, name, device
