"""Re-embed the index with the active model version, then switch queries to it atomically.

Every chunk is embedded into the new model's own vectors table (`vectors_<key>`) while
the old table keeps answering queries; nothing holds the index lock meanwhile, so syncs
go on. Then, under the index lock, the chunks that arrived in the meantime are embedded
too and state.json's `active_key` is replaced in one atomic write: a reader sees the old
model's table or the new one, never a mix. The job is recorded in metrics.db.

The embedding runs on an `IndexEngine` (codekin.index.engines): in this process by default, or on
Ray Data (`reembed(..., ray=RayOptions(...))`, `codekin reembed --engine ray`), which
appends the new table's vectors in one commit. Content-hash reuse and the switch are the
same for both: `codekin serve` sees the same state.json change either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.config import Config, ModelConfig
from codekin.errors import HotReloadError, ModelLoadError
from codekin.index import integrity
from codekin.index.engines import EmbedStats, IndexEngine, LocalEngine
from codekin.index.lock import IndexLock
from codekin.index.phases import DenseLayer
from codekin.index.query_file import write_query_file
from codekin.index.store import IndexStore
from codekin.progress import ProgressFactory, no_progress
from codekin.state import REEMBED_LOCK

if TYPE_CHECKING:
    from codekin.distributed.ray_embed import RayOptions
    from codekin.embedding import Embedder

log = logging.getLogger(__name__)

SWITCH_LOCK_WAIT_S = 60.0  # a sync may hold the index lock for a while
SwitchHook = Callable[["Embedder"], None]


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


def active_model_config(root: Path, config: Config) -> tuple[str, ModelConfig]:
    """(registry ref, model config) of the registry's active version, its weights checked
    against their sha256 first, with no fallback: a version that does not load is an error,
    never silently replaced by another model (the caller decides what keeps serving)."""
    import dataclasses

    from codekin.errors import RegistryError
    from codekin.models.registry import BASE, ModelRegistry
    from codekin.models.serving import serving_model

    registry = ModelRegistry(root)
    try:
        ref = registry.active_ref()
        if ref != BASE:
            registry.model_path(ref, verify=True)
    except RegistryError as exc:
        raise HotReloadError(exc.message, exc.hint) from exc
    model = serving_model(root, config.model)
    return ref, dataclasses.replace(model, fallback=model.primary)


def load_active_model(root: Path, config: Config) -> Embedder:
    """The registry's active version, loaded in this process (HotReloadError when it cannot be)."""
    from codekin.embedding import load_embedder

    ref, model = active_model_config(root, config)
    try:
        return load_embedder(model)
    except ModelLoadError as exc:
        raise HotReloadError(f"model {ref} does not load: {exc.message}", exc.hint) from exc


def _engine_for(root: Path, config: Config, embedder: Embedder | None,
                ray: RayOptions | None) -> tuple[str, ModelConfig, IndexEngine, tuple[str, str, str]]:
    """(version ref, model config, engine, (vector key, device, backend)): the local model in
    this process, or the active version on a Ray Data actor pool."""
    from codekin.models.serving import version_ref

    if ray is None:
        assert embedder is not None
        backend = getattr(embedder, "backend", "torch")
        return version_ref(root, embedder.name), config.model, LocalEngine(embedder), \
            (embedder.key, embedder.device, backend)
    from codekin.distributed.ray_embed import RayEngine

    ref, model = active_model_config(root, config)
    engine = RayEngine(ray)
    return ref, model, engine, (engine.key(model), "ray", "")


def reembed(root: Path, config: Config, embedder: Embedder | None = None, progress: ProgressFactory = no_progress,
            before_switch: SwitchHook | None = None, after_switch: SwitchHook | None = None,
            lock_wait: float = SWITCH_LOCK_WAIT_S, ray: RayOptions | None = None) -> ReembedSummary:
    """Embed every chunk with `embedder` (default: the active version) and make its table active.

    With `ray`, the active version embeds on a Ray Data actor pool instead (a local instance
    without an address), its vectors appended to the table in one commit; the switch is the
    same. `before_switch(embedder)` runs under the index lock just before state.json changes
    (the server registers the new model for the new table there), `after_switch(embedder)`
    right after (the server makes it the model of new queries and syncs); both need the model
    in this process, so they go with the local engine only."""
    from codekin.metrics import MetricsStore
    from codekin.models.serving import version_ref

    store = IndexStore(root)
    previous_key = store.state().get("active_key", "")  # IndexMissingError when there is no index
    if ray is not None and (embedder is not None or before_switch is not None or after_switch is not None):
        raise ValueError("reembed on Ray loads the model on the workers: no embedder or switch hooks")
    if ray is None:
        embedder = embedder if embedder is not None else load_active_model(root, config)
    ref, model, engine, (key, device, backend) = _engine_for(root, config, embedder, ray)
    name = engine.model_name(model)
    version = version_ref(root, name)
    started = time.perf_counter()
    embedded, embed_seconds = 0, 0.0
    with IndexLock(store.state_dir, wait=0.0, name=REEMBED_LOCK), MetricsStore(root) as metrics:
        job = metrics.start_embedding_job(model_version=version, model_key=key, device=device)
        try:
            missing = store.chunk_hashes() - store.vector_hashes(key)
            with progress(f"codekin: re-embedding {len(missing)} chunks with {version}", len(missing)) as bar:
                done = _embed(engine, store, missing, key, model, bar.advance, ref)
            key, device, backend = done.key or key, done.device or device, done.backend or backend
            embedded, embed_seconds = done.embedded, done.seconds
            with IndexLock(store.state_dir, wait=lock_wait):
                late = store.chunk_hashes() - store.vector_hashes(key)  # synced meanwhile
                done = _embed(engine, store, late, key, model, lambda n: None, ref)
                embedded, embed_seconds = embedded + done.embedded, embed_seconds + done.seconds
                total = len(store.chunk_hashes())
                if before_switch is not None and embedder is not None:
                    before_switch(embedder)
                state = store.write_state(active_key=key, model=name, dense=DenseLayer(store, key).record())
                integrity.record(store)  # the new table's files, as written
                write_query_file(store, state, config.index.ann_min_rows)  # cold searches skip LanceDB
                if after_switch is not None and embedder is not None:
                    after_switch(embedder)
        except BaseException as exc:
            metrics.finish_embedding_job(job, "failed", embedded, reason=str(exc).splitlines()[0] if str(exc) else
                                         exc.__class__.__name__)
            raise
        finally:
            engine.close()
        metrics.finish_embedding_job(job, "completed", embedded,
                                     embeddings_per_second=embedded / embed_seconds if embed_seconds else 0.0)
    summary = ReembedSummary(name, version, key, previous_key, device, backend, total, embedded,
                             time.perf_counter() - started, embed_seconds, True)
    log.info("%s", summary.describe())
    return summary


def _embed(engine: IndexEngine, store: IndexStore, hashes: set[str], key: str, model: ModelConfig,
           advance: Callable[[int], None], ref: str) -> EmbedStats:
    """One embedding step of the job; a model that does not load on the engine is a HotReloadError."""
    if not hashes:
        return EmbedStats()
    try:
        return engine.embed(store, hashes, key, model, advance)
    except ModelLoadError as exc:
        raise HotReloadError(f"model {ref} does not load: {exc.message}", exc.hint) from exc
