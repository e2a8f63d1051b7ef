"""The query side of codekin as plain methods: search, similar, status.

Shared by the CLI and the language server. The model is loaded only when a query
needs a fresh embedding; the index snapshot is reloaded when the index changes,
by building the new one before swapping it in (readers never see a half state).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from codekin.chunking import language_for
from codekin.config import Config, ModelConfig
from codekin.embedding import Embedder, load_embedder
from codekin.errors import WorkspaceError
from codekin.index.lexical import terms
from codekin.index.search import Hit, SearchIndex
from codekin.index.store import IndexStore
from codekin.workspace import UnreadableFile, read_text


class Engine:
    def __init__(self, root: Path, config: Config, embedder: Embedder | None = None) -> None:
        self.root = root
        self.config = config
        self.store = IndexStore(root)
        self._embedder = embedder
        self._index: SearchIndex | None = None
        self._index_stamp: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._spaces: dict[str, Embedder] = {}  # key -> embedder, for snapshots of an earlier model

    # -- lazily loaded parts ---------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self._query_model())
            return self._embedder

    def _query_model(self) -> ModelConfig:
        """The model that wrote the active vectors table (a promoted version after a re-embed)."""
        from codekin.models.serving import indexed_model

        return indexed_model(self.root, self.config.model, self.store.state() if self.store.exists() else {})

    def use_embedder(self, embedder: Embedder, current: bool = True) -> None:
        """Hot reload: make `embedder` answer for snapshots of its vector space; with `current`,
        also for new queries. The previous model keeps answering for its own snapshots, so a
        query never embeds with one model and searches the table of another."""
        with self._lock:
            previous = self._embedder
            self._spaces[embedder.key] = embedder
            if current:
                self._embedder = embedder
                self._spaces = {e.key: e for e in (previous, embedder) if e is not None}

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    def index(self) -> SearchIndex:
        """The current snapshot, reloaded if the index was written since."""
        state = self.store.state()
        stamp = (self.store.state_path.stat().st_mtime_ns, state.get("active_key", ""))
        if self._index is None or stamp != self._index_stamp:
            snapshot = SearchIndex(self.store, state["active_key"])
            self._index, self._index_stamp = snapshot, stamp
        return self._index

    def _embed(self, text: str, key: str | None = None) -> np.ndarray:
        embedder = self._spaces.get(key) if key is not None else None
        if embedder is None:
            embedder = self.embedder
            if key is not None and embedder.key != key:
                embedder = self._embedder_of(key)
        return embedder.encode([text])[0]

    def _embedder_of(self, key: str) -> Embedder:
        """The model of table `key`, which another process made active (`codekin index` or
        `codekin reembed` after a promotion, before this process hot-reloaded): a query is
        never embedded in one vector space and searched in another."""
        import dataclasses

        from codekin.errors import ModelLoadError

        model = self._query_model()
        embedder = load_embedder(dataclasses.replace(model, fallback=model.primary))
        if embedder.key != key:
            raise ModelLoadError(f"the index's active table vectors_{key} was written by a model that does not "
                                 f"load here (loaded {embedder.name})",
                                 "run `codekin reembed` (or `codekin index`) to embed the index with the active model")
        with self._lock:
            self._spaces[key] = embedder
        return embedder

    # -- queries ---------------------------------------------------------------------------
    def search(self, query: str, limit: int | None = None, min_similarity: float | None = None,
               mode: str | None = None, language: str | None = None,
               path_glob: str | None = None) -> list[Hit]:
        if not query.strip():
            raise WorkspaceError("the search query is empty", 'give some text, e.g. codekin search "retry with backoff"')
        index = self.index()
        mode = mode or self.config.search.mode
        vector = self._embed(query, index.key) if mode != "lexical" else None
        return index.search(vector, terms(query), mode, limit or self.config.search.limit,
                            _min(min_similarity, self.config.search.min_similarity),
                            index.mask(language, path_glob), lexical_weight=self.config.search.lexical_weight,
                            context_weight=self.config.search.context_weight,
                            name_weight=self.config.search.name_weight)

    def similar(self, path: str, start_line: int, end_line: int | None = None, text: str | None = None,
                limit: int | None = None, min_similarity: float | None = None,
                mode: str | None = None) -> tuple[Hit | None, list[Hit]]:
        """Chunks like the one at path:line (or like the span / the given unsaved text).

        Returns the query chunk (None for a free span) and the ranked hits, the query's
        own lines excluded.
        """
        rel = self.relative(path)
        index = self.index()
        end = end_line if end_line is not None else start_line
        if start_line < 1 or end < start_line:
            raise WorkspaceError(f"invalid line range {start_line}-{end}", "lines are 1-based: FILE:LINE or FILE:START-END")
        mode = mode or self.config.search.mode
        query_row = index.enclosing(rel, start_line, end) if text is None else None
        if end_line is not None and query_row is not None:
            exact = index.starts[query_row] == start_line and index.ends[query_row] == end_line
            query_row = query_row if exact else None
        if query_row is not None and index.has_vector[query_row]:
            query_text = index.texts[query_row]
            vector = index.vectors[query_row] if mode != "lexical" else None
            lo, hi = int(index.starts[query_row]), int(index.ends[query_row])
        else:
            query_text = text if text is not None else self._span_text(rel, start_line, end_line)
            vector = self._embed(f"{language_for(rel)} code\n{query_text}", index.key) if mode != "lexical" else None
            lo, hi = start_line, end
        keep = index.mask()
        for i in index.by_path.get(rel, []):
            if index.starts[i] <= hi and lo <= index.ends[i]:
                keep[i] = False  # the query itself and what overlaps it
        if query_row is not None:
            keep[index.parent[query_row]] = False  # its own module head holds it; it is not a look-alike
        # No module context and no name field: a code query names its callees, and
        # those are not what "similar" asks for.
        hits = index.search(vector, terms(query_text), mode, limit or self.config.search.limit,
                            _min(min_similarity, self.config.search.min_similarity), keep,
                            lexical_weight=self.config.search.lexical_weight)
        query_hit = index.hit(query_row, 1.0) if query_row is not None else None
        return query_hit, hits

    def _span_text(self, rel: str, start: int, end_line: int | None) -> str:
        try:
            lines = read_text(self.root, rel).split("\n")
        except UnreadableFile as exc:
            raise WorkspaceError(f"cannot read {rel}: {exc}") from exc
        end = end_line if end_line is not None else start
        if start > len(lines):
            raise WorkspaceError(f"{rel} has {len(lines)} lines; line {start} is past its end")
        if end_line is None:
            raise WorkspaceError(
                f"no indexed chunk of {rel} covers line {start}",
                "run `codekin index` if the file is new, or give a span FILE:START-END",
            )
        return "\n".join(lines[start - 1:end])

    def relative(self, path: str) -> str:
        """A repository-relative POSIX path; refuses paths outside the repository.

        A relative path is tried against the current directory, then the repository root.
        """
        root = self.root.resolve()
        candidate = Path(path)
        options = [candidate] if candidate.is_absolute() else [Path.cwd() / candidate, root / candidate]
        resolved = [p.resolve() for p in options]
        inside = [p for p in resolved if p.is_relative_to(root)]
        if not inside:
            raise WorkspaceError(f"{path} is outside the repository {root}")
        full = next((p for p in inside if p.exists()), inside[0])
        return full.relative_to(root).as_posix()

    def status(self) -> dict:
        state = self.store.state() if self.store.exists() else {}
        out: dict = {"root": str(self.root), "indexed": bool(state)}
        if state:
            index = self.index()
            out.update({
                "model": state.get("model"), "active_table": f"vectors_{state.get('active_key')}",
                "chunks": len(index), "embedded_chunks": int(index.has_vector.sum()),
                "files": len(index.by_path), "updated_at": state.get("updated_at"),
                "age_seconds": round(time.time() - state.get("updated_at", time.time()), 1),
                "head": state.get("head", ""),
            })
        if self._embedder is not None:
            out.update({"device": self._embedder.device, "fallback_reason": self._embedder.fallback_reason})
        return out


def _min(value: float | None, default: float) -> float:
    return default if value is None else value
