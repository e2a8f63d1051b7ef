"""Re-embed the index with the active model version, then switch queries to it atomically.

Every chunk is embedded into the new model's own vectors table (`vectors_<key>`) while
the old table keeps answering queries; nothing holds the index lock meanwhile, so syncs
go on. Then, under the index lock, the chunks that arrived in the meantime are embedded
too and state.json's `active_key` is replaced in one atomic write: a reader sees the old
model's table or the new one, never a mix. The job is recorded in metrics.db.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.config import Config
from codekin.errors import CodekinError, ModelLoadError
from codekin.index.lock import IndexLock
from codekin.index.store import IndexStore
from codekin.progress import ProgressFactory, no_progress

if TYPE_CHECKING:
    from codekin.embedding import Embedder

log = logging.getLogger(__name__)

EMBED_BATCH = 1024  # vectors appended per write: an interrupted re-embed keeps what it did
SWITCH_LOCK_WAIT_S = 60.0  # a sync may hold the index lock for a while
REEMBED_LOCK = "reembed.lock"
SwitchHook = Callable[["Embedder"], None]


class HotReloadError(CodekinError):
    exit_code = 11


@dataclass
class ReembedSummary:
    model: str
    version: str  # registry ref: v3, v3/epoch-1 or base
    key: str
    previous_key: str
    device: str
    backend: str
    total: int  # chunks in the index
    embedded: int  # vectors computed by this job (the rest were already in the table)
    seconds: float  # the whole job, model loading excluded
    embed_seconds: float  # model time only
    switched: bool

    @property
    def embeddings_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def describe(self) -> str:
        rate = f" ({self.embeddings_per_second:.1f} embeddings/s)" if self.embedded else ""
        table = f"vectors_{self.key}"
        switch = f"; queries now use {table}" if self.switched and self.key != self.previous_key \
            else f"; {table} was already active"
        return (f"Re-embedded {self.embedded} of {self.total} chunks with {self.version} on {self.device} "
                f"in {self.seconds:.1f} s{rate}{switch}")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 2), "embed_seconds": round(self.embed_seconds, 2),
                "embeddings_per_second": round(self.embeddings_per_second, 1)}


def load_active_model(root: Path, config: Config) -> Embedder:
    """The registry's active version, its weights checked against their sha256 first.

    Raises HotReloadError when they are missing or damaged, or the model does not load; never
    falls back silently to another model (the caller decides what keeps serving)."""
    import dataclasses

    from codekin.embedding import load_embedder
    from codekin.jobs.serving import serving_model
    from codekin.training.registry import BASE, ModelRegistry, RegistryError

    registry = ModelRegistry(root)
    try:
        ref = registry.active_ref()
        if ref != BASE:
            registry.model_path(ref, verify=True)
    except RegistryError as exc:
        raise HotReloadError(exc.message, exc.hint) from exc
    model = serving_model(root, config.model)
    try:
        return load_embedder(dataclasses.replace(model, fallback=model.primary))
    except ModelLoadError as exc:
        raise HotReloadError(f"model {ref} does not load: {exc.message}", exc.hint) from exc


def reembed(root: Path, config: Config, embedder: Embedder | None = None, progress: ProgressFactory = no_progress,
            before_switch: SwitchHook | None = None, after_switch: SwitchHook | None = None,
            lock_wait: float = SWITCH_LOCK_WAIT_S) -> ReembedSummary:
    """Embed every chunk with `embedder` (default: the active version) and make its table active.

    `before_switch(embedder)` runs under the index lock just before state.json changes (the
    server registers the new model for the new table there), `after_switch(embedder)` right
    after (the server makes it the model of new queries and syncs)."""
    from codekin.jobs.serving import version_ref
    from codekin.metrics import MetricsStore

    store = IndexStore(root)
    previous_key = store.state().get("active_key", "")  # IndexMissingError when there is no index
    embedder = embedder if embedder is not None else load_active_model(root, config)
    version = version_ref(root, embedder.name)
    started = time.perf_counter()
    embedded, embed_seconds = 0, 0.0
    with IndexLock(store.state_dir, wait=0.0, name=REEMBED_LOCK), MetricsStore(root) as metrics:
        job = metrics.start_embedding_job(model_version=version, model_key=embedder.key, device=embedder.device)
        try:
            missing = sorted(store.chunk_hashes() - store.vector_hashes(embedder.key))
            with progress(f"codekin: re-embedding {len(missing)} chunks with {version}", len(missing)) as bar:
                count, seconds = _embed(store, embedder, missing, bar.advance)
            embedded, embed_seconds = embedded + count, embed_seconds + seconds
            with IndexLock(store.state_dir, wait=lock_wait):
                late = sorted(store.chunk_hashes() - store.vector_hashes(embedder.key))
                count, seconds = _embed(store, embedder, late, lambda n: None)  # synced meanwhile
                embedded, embed_seconds = embedded + count, embed_seconds + seconds
                total = len(store.chunk_hashes())
                if before_switch is not None:
                    before_switch(embedder)
                store.write_state(active_key=embedder.key, model=embedder.name)
                if after_switch is not None:
                    after_switch(embedder)
        except BaseException as exc:
            metrics.finish_embedding_job(job, "failed", embedded, reason=str(exc).splitlines()[0] if str(exc) else
                                         exc.__class__.__name__)
            raise
        metrics.finish_embedding_job(job, "completed", embedded,
                                     embeddings_per_second=embedded / embed_seconds if embed_seconds else 0.0)
    summary = ReembedSummary(embedder.name, version, embedder.key, previous_key, embedder.device,
                             getattr(embedder, "backend", "torch"), total, embedded,
                             time.perf_counter() - started, embed_seconds, True)
    log.info("%s", summary.describe())
    return summary


def _embed(store: IndexStore, embedder: Embedder, hashes: list[str], advance: Callable[[int], None]) -> tuple[int, float]:
    """Embed `hashes` (shortest texts first) into the embedder's table; (count, model seconds)."""
    if not hashes:
        return 0, 0.0
    texts = store.chunk_texts(set(hashes))
    ordered = sorted(texts, key=lambda h: len(texts[h]))
    seconds = 0.0
    for first in range(0, len(ordered), EMBED_BATCH):
        batch = ordered[first:first + EMBED_BATCH]
        started = time.perf_counter()
        vectors = embedder.encode([texts[h] for h in batch], progress=advance)
        seconds += time.perf_counter() - started
        store.add_vectors(embedder.key, batch, vectors)
    return len(ordered), seconds
