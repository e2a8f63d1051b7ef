"""The Ray engine of the Indexer and of re-embedding: chunking and embedding on Ray Data.

    changed files -> [Ray tasks] read + sha256 + chunk (read_and_chunk) -> Indexer: chunk rows
    missing hashes -> [Ray actor pool, each holding an Embedder] encode in batches
                   -> driver: streamed into the model's vectors table as ONE new table version

`RayEngine` is an `IndexEngine`: the Indexer (and `jobs.reembed`) keep every decision --
scanning, change detection, the lock, which hashes lack a vector, the ANN index,
compaction and the state switch -- so the tables written on Ray equal the single-process
ones (tests/test_distributed.py compares them). Only content hashes without a vector in the
target table are embedded. The vectors of one embedding step are appended in one commit:
a reader sees all of them or none, and an interrupted step leaves the table as it was.

Without an address a local Ray instance is started on this machine's cores; with one
(`ray://host:10001` or `host:6379`) the driver joins that cluster, whose nodes must see
the repository at the same path (a shared checkout), as Ray's own file readers require.
Ray is an optional extra (`pip install 'codekin[ray]'`) imported only here.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codekin.chunking import Chunk
from codekin.config import Config, IndexConfig, ModelConfig
from codekin.embedding import expected_key
from codekin.errors import CodekinError, RayUnavailableError, WorkspaceError
from codekin.index.engines import ChunkedFile, EmbedStats, read_and_chunk
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.progress import ProgressFactory, no_progress

# Ray's notices on every successful run: token auth on by default for a local instance (it
# stays on), and "progress bars disabled" (codekin reports progress itself).
QUIET_LOGGERS = ("ray._private.authentication.authentication_token_setup", "ray.data._internal.progress")
RAY_HINT = "pip install 'codekin[ray]' (Ray Data), or index without --engine ray"
FILES_PER_TASK = 64  # files read and chunked by one Ray task


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
            for name in QUIET_LOGGERS:  # notices that a successful run need not print
                logging.getLogger(name).setLevel(logging.ERROR)
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
# Ray Data keeps only the text of an exception raised in a worker, so a codekin error
# travels back in a `failure` column (pickled) and the driver raises it as itself.
def _failure(exc: CodekinError, rows: int) -> np.ndarray:
    return np.array([pickle.dumps(exc)] * rows, dtype=object)


def _raise_failure(batch: dict[str, np.ndarray]) -> None:
    if len(batch["failure"]) and batch["failure"][0]:
        raise pickle.loads(batch["failure"][0])


def chunk_batch(batch: dict[str, np.ndarray], root: str, index: IndexConfig) -> dict[str, Any]:
    """`read_and_chunk` for each (path, indexed_hash) row: one row per file, chunks as JSON."""
    out: dict[str, Any] = {"path": [], "file_hash": [], "error": [], "chunks": []}
    base = Path(root)
    if not base.is_dir():
        error = WorkspaceError(f"the repository {root} is not visible on Ray node {os.uname().nodename}",
                               "every node of the cluster needs the checkout at the same path")
        paths = batch["path"].tolist()
        return {"path": paths, "file_hash": [""] * len(paths), "error": [""] * len(paths),
                "chunks": ["null"] * len(paths), "failure": _failure(error, len(paths))}
    for path, indexed_hash in zip(batch["path"].tolist(), batch["indexed_hash"].tolist(), strict=True):
        done = read_and_chunk(base, path, indexed_hash, index)
        out["path"].append(done.path)
        out["file_hash"].append(done.file_hash)
        out["error"].append(done.error)
        out["chunks"].append("null" if done.chunks is None else json.dumps(
            [[c.language, c.kind, c.symbol, c.start_line, c.end_line, c.text, c.context] for c in done.chunks]))
    out["failure"] = np.array([b""] * len(out["path"]), dtype=object)
    return out


class EmbedActor:
    """One per worker slot: loads the Embedder once, then encodes the batches it is given."""

    def __init__(self, model: ModelConfig, threads: int = 0) -> None:
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        from codekin.embedding import Embedder, load_embedder

        self.embedder: Embedder | None = None
        self.error: CodekinError | None = None
        try:
            self.embedder = load_embedder(model)
        except CodekinError as exc:  # sent back with the first batch (see _failure)
            self.error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts = batch["text"].tolist()
        if self.embedder is None:
            error = self.error or CodekinError("the embedding model did not load on a Ray worker")
            return {"content_hash": batch["content_hash"], "vector": np.zeros((len(texts), 1), np.float32),
                    "answered": np.array([""] * len(texts), dtype=object), "failure": _failure(error, len(texts))}
        vectors = self.embedder.encode(texts)
        e = self.embedder
        answered = "\t".join((e.key, e.name, e.device, getattr(e, "backend", "torch")))
        return {"content_hash": batch["content_hash"], "vector": vectors,
                "answered": np.array([answered] * len(texts), dtype=object),
                "failure": np.array([b""] * len(texts), dtype=object)}


# -- the driver side -------------------------------------------------------------------------
def _chunked(row: dict[str, str]) -> ChunkedFile:
    payload = json.loads(row["chunks"])
    chunks = None if payload is None else [Chunk(row["path"], *fields) for fields in payload]
    return ChunkedFile(row["path"], row["file_hash"], row["error"], chunks)


class RayEngine:
    """`IndexEngine` on Ray Data: chunk tasks and an embedding actor pool. Connects on first
    use; `close()` shuts down only a local instance it started itself."""

    chunk_progress = True

    def __init__(self, options: RayOptions | None = None) -> None:
        self.session = RaySession(options or RayOptions())
        self._answered: EmbedStats | None = None  # the model that answered on the actors
        self.stats: dict[str, float] = {"ray_init_seconds": 0.0, "chunk_seconds": 0.0, "workers": 0}

    def key(self, model: ModelConfig) -> str:
        return self._answered.key if self._answered else expected_key(model)

    def model_name(self, model: ModelConfig) -> str:
        return self._answered.model if self._answered else model.primary

    def stale(self, model: ModelConfig) -> bool:
        return False  # the actors load the model each run

    def chunk_files(self, root: Path, index: IndexConfig, wanted: dict[str, str]) -> Iterator[ChunkedFile]:
        if not wanted:
            return
        ray = self.session.ray()
        started = time.perf_counter()
        per_task = self.session.options.files_per_task
        dataset = ray.data.from_items([{"path": p, "indexed_hash": h} for p, h in wanted.items()],
                                      override_num_blocks=max(1, -(-len(wanted) // per_task)))
        dataset = dataset.map_batches(chunk_batch, batch_size=per_task, batch_format="numpy",
                                      fn_kwargs={"root": str(root), "index": index})
        try:
            for batch in dataset.iter_batches(batch_size=per_task, batch_format="numpy"):
                _raise_failure(batch)
                for i, path in enumerate(batch["path"].tolist()):
                    yield _chunked({"path": path, "file_hash": str(batch["file_hash"][i]),
                                    "error": str(batch["error"][i]), "chunks": str(batch["chunks"][i])})
        finally:
            self.stats["chunk_seconds"] += time.perf_counter() - started

    def embed(self, store: IndexStore, hashes: set[str], key: str, model: ModelConfig,
              advance: Callable[[int], None]) -> EmbedStats:
        stats = embed_on_ray(self.session, store, model, hashes, advance)
        if stats.key and stats.key != key:  # the actors answered in another space (a fallback): fill it
            rest = store.chunk_hashes() - store.vector_hashes(stats.key)
            more = embed_on_ray(self.session, store, model, rest, advance)
            stats.embedded, stats.seconds = stats.embedded + more.embedded, stats.seconds + more.seconds
        if stats.key:
            self._answered = stats
        self.stats["workers"] = max(self.stats["workers"], stats.workers)
        return stats

    def close(self) -> None:
        self.stats["ray_init_seconds"] = round(self.stats["ray_init_seconds"] + self.session.init_seconds, 2)
        self.session.init_seconds = 0.0  # counted once
        self.session.close()


class RayIndexer(Indexer):
    """The Indexer with the Ray engine: what `codekin index --engine ray` runs."""

    def __init__(self, root: Path, config: Config, options: RayOptions | None = None,
                 progress: ProgressFactory = no_progress) -> None:
        self.ray_engine = RayEngine(options)
        super().__init__(root, config, progress=progress, engine=self.ray_engine)

    @property
    def stats(self) -> dict[str, float]:
        return self.ray_engine.stats


@dataclass
class RayEmbedStats(EmbedStats):
    workers: int = 0


def actor_pool(ray: Any, model: ModelConfig, wanted: int) -> tuple[int, dict[str, float], int]:
    """(actor count, resources per actor, torch threads per actor): one GPU each where the
    cluster has GPUs, else the CPUs shared out (at least one each)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus and model.device in ("auto", "cuda"):
        return (min(wanted, gpus) if wanted else gpus), {"num_gpus": 1, "num_cpus": 1}, 0
    actors = min(wanted, cpus) if wanted else cpus
    threads = max(1, cpus // actors)
    return actors, {"num_cpus": threads}, threads


def embed_on_ray(session: RaySession, store: IndexStore, model: ModelConfig, hashes: set[str],
                 advance: Callable[[int], None] = lambda n: None) -> RayEmbedStats:
    """Embed the chunk texts of `hashes` on an actor pool and append them to the answering
    model's vectors table in one commit (hashes that table already holds are skipped).
    The caller switches state.json afterwards."""
    texts = store.chunk_texts(hashes)
    ordered = sorted(texts, key=lambda h: len(texts[h]))  # neighbours pad alike
    if not ordered:
        return RayEmbedStats()
    ray = session.ray()
    options = session.options
    workers, resources, threads = actor_pool(ray, model, options.workers)
    blocks = -(-len(ordered) // options.batch_size)
    workers = min(workers, blocks)  # a handful of new chunks does not load the model N times
    dataset = ray.data.from_items([{"content_hash": h, "text": texts[h]} for h in ordered],
                                  override_num_blocks=blocks)
    with warnings.catch_warnings():  # ray==2.60 has no named parameter for max_restarts yet
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        dataset = dataset.map_batches(EmbedActor, batch_size=options.batch_size, batch_format="numpy",
                                      compute=ray.data.ActorPoolStrategy(size=workers),
                                      fn_constructor_kwargs={"model": model, "threads": threads},
                                      max_restarts=0,  # a failed actor fails the job with its reason; Ray
                                      # warns (an error-level line) about restarting one whose arguments
                                      # live in the object store
                                      **resources)
    result = RayEmbedStats(workers=workers)
    started = time.perf_counter()
    batches = iter(dataset.iter_batches(batch_size=options.batch_size, batch_format="numpy"))
    first = next(batches, None)
    if first is None:
        return result
    _raise_failure(first)
    answered = str(first["answered"][0])
    result.key, result.model, result.device, result.backend = answered.split("\t")
    known = store.vector_hashes(result.key)

    def rows() -> Iterator[tuple[list[str], np.ndarray]]:
        for batch in _chain(first, batches):
            _raise_failure(batch)
            spaces = set(batch["answered"].tolist())
            if spaces != {answered}:
                raise CodekinError(f"the Ray workers answered in two vector spaces ({answered.split(chr(9))[0]} "
                                   f"and {sorted(spaces - {answered})[0].split(chr(9))[0]}): some loaded the "
                                   "primary model, some the fallback",
                                   "check that model.primary loads on every node (`codekin doctor` there)")
            keep = [i for i, h in enumerate(batch["content_hash"].tolist()) if h not in known]
            new = [str(batch["content_hash"][i]) for i in keep]
            known.update(new)
            result.embedded += len(new)
            advance(len(batch["content_hash"]))
            yield new, np.asarray(batch["vector"], dtype=np.float32)[keep]

    store.add_vector_stream(result.key, np.asarray(first["vector"]).shape[1], rows())
    result.seconds = time.perf_counter() - started
    return result


def _chain(first: dict[str, np.ndarray], rest: Iterator[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    yield first
    yield from rest

