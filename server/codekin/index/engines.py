"""The two heavy steps of an index run, shared by every engine: reading and chunking files,
and embedding content hashes. `LocalEngine` runs them in this process;
`codekin.distributed.ray_embed.RayEngine` on Ray Data. The Indexer (codekin.indexer) decides
what to read and embed, so both engines write the same tables.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from codekin.chunking import Chunk, chunk_text
from codekin.config import IndexConfig, ModelConfig
from codekin.embedding import Embedder, expected_key, load_embedder
from codekin.index.store import IndexStore
from codekin.workspace import UnreadableFile, read_text

EMBED_BATCH = 1024  # vectors appended per write: an interrupted run keeps what it embedded


@dataclass
class ChunkedFile:
    """One file as an engine read it: its chunks, or why it needs none."""

    path: str
    file_hash: str = ""
    error: str = ""  # why it could not be read ("" when it was)
    chunks: list[Chunk] | None = None  # None: unreadable, or the same content as indexed (not chunked)


def read_and_chunk(root: Path, path: str, indexed_hash: str, index: IndexConfig) -> ChunkedFile:
    """Read and hash one file; chunk it only when its content differs from `indexed_hash`."""
    try:
        text = read_text(root, path)
    except UnreadableFile as exc:
        return ChunkedFile(path, error=str(exc))
    file_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if file_hash == indexed_hash:
        return ChunkedFile(path, file_hash)  # touched, not changed
    return ChunkedFile(path, file_hash, chunks=chunk_text(path, text, index))


@dataclass
class EmbedStats:
    """What one embedding step did, and in which model's vector space it answered."""

    embedded: int = 0
    seconds: float = 0.0  # model time only
    key: str = ""
    model: str = ""
    device: str = ""
    backend: str = ""


def embed_hashes(store: IndexStore, embedder: Embedder, hashes: set[str] | list[str],
                 advance: Callable[[int], None]) -> tuple[int, float]:
    """Embed the chunk texts of `hashes` (shortest first) into the embedder's table, appending
    every EMBED_BATCH vectors (an interrupted run keeps them); (count, model seconds)."""
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


class IndexEngine(Protocol):
    """Where reading/chunking and embedding run; the caller decides what to read and embed."""

    chunk_progress: bool  # worth a "Chunking" progress of its own

    def key(self, model: ModelConfig) -> str:
        """The vector space it embeds in: the answering model's once known, else the expected one."""
        ...

    def model_name(self, model: ModelConfig) -> str: ...

    def stale(self, model: ModelConfig) -> bool:
        """True when it holds a model other than `model` (another process promoted one since)."""
        ...

    def chunk_files(self, root: Path, index: IndexConfig, wanted: dict[str, str]) -> Iterator[ChunkedFile]:
        """`read_and_chunk` for each path of `wanted` (path -> indexed file hash), in any order."""
        ...

    def embed(self, store: IndexStore, hashes: set[str], key: str, model: ModelConfig,
              advance: Callable[[int], None]) -> EmbedStats:
        """Embed `hashes` into the answering model's table; when that model's key is not `key`
        (a fallback answered), every chunk hash missing from its table instead."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Both steps in this process: the default engine."""

    chunk_progress = True  # phase 1 is worth watching on its own

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder

    def embedder(self, model: ModelConfig) -> Embedder:
        if self._embedder is None:  # loaded only when something needs embedding
            self._embedder = load_embedder(model)
        return self._embedder

    def key(self, model: ModelConfig) -> str:
        return self._embedder.key if self._embedder is not None else expected_key(model)

    def model_name(self, model: ModelConfig) -> str:
        return self._embedder.name if self._embedder is not None else model.primary

    def stale(self, model: ModelConfig) -> bool:
        return self._embedder is not None and not self._embedder.loads_as(model)

    def chunk_files(self, root: Path, index: IndexConfig, wanted: dict[str, str]) -> Iterator[ChunkedFile]:
        for path, indexed_hash in wanted.items():
            yield read_and_chunk(root, path, indexed_hash, index)

    def embed(self, store: IndexStore, hashes: set[str], key: str, model: ModelConfig,
              advance: Callable[[int], None]) -> EmbedStats:
        embedder = self.embedder(model)
        if embedder.key != key:  # the fallback model answered: its own vector space
            hashes = store.chunk_hashes() - store.vector_hashes(embedder.key)
        count, seconds = embed_hashes(store, embedder, hashes, advance)
        return EmbedStats(count, seconds, embedder.key, embedder.name, embedder.device,
                          getattr(embedder, "backend", "torch"))

    def close(self) -> None:
        return None
