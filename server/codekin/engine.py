"""The query side of codekin as plain methods: search, similar, status.

Shared by the CLI and the language server. The model is loaded only when a query
needs a fresh embedding; the index snapshot is reloaded when the index changes,
by building the new one before swapping it in (readers never see a half state).
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from codekin.ahead import Ahead
from codekin.config import Config, ModelConfig
from codekin.embedding import Embedder
from codekin.errors import CodekinError, ConfigError, WorkspaceError
from codekin.index import integrity
from codekin.index import query as queries
from codekin.index.files import FileHit, FileWeights
from codekin.index.paths import asks_for_tests
from codekin.index.query_file import QueryFile
from codekin.index.ranking import weights_for
from codekin.index.recorded import index_status
from codekin.index.search import Hit, SearchIndex
from codekin.index.store import IndexStore
from codekin.models.adapters import AdapterStore, adapted, served_adapter
from codekin.models.serving import load_verified
from codekin.modes import mode_of
from codekin.parts import base_symbol
from codekin.workspace import UnreadableFile, read_text

log = logging.getLogger(__name__)
BACKGROUND_NICE = 10  # a server's model loads in spare CPU: the editor starting beside it comes first


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Lower the CPU priority of the calling thread and of the threads it starts (Linux sets it
    per thread; elsewhere it would lower the whole process, so it does nothing)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass


class Engine:
    def __init__(self, root: Path, config: Config, embedder: Embedder | None = None,
                 ahead: Ahead | None = None) -> None:
        """`ahead`: the query model loading on a thread (ahead.embed_ahead), taken when a query
        needs the model."""
        self.root = root
        self.config = config
        self.store = IndexStore(root)
        self._embedder = embedder
        self._index: SearchIndex | None = None
        self._owner: Engine | None = None  # the engine a view (with_config) shares its snapshots with
        self._index_stamp: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._spaces: dict[str, Embedder] = {}  # key -> embedder, for snapshots of an earlier model
        self.adapters = AdapterStore(root)  # a promoted query-side adapter moves text queries
        self._ahead = ahead  # the model loading (and a query's text embedded) on a thread

    # -- lazily loaded parts ---------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lock:
            self._take_ahead()
            if self._embedder is None:
                self._embedder = load_verified(self.root, self._query_model())
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
            self._take_ahead()
            previous = self._embedder
            self._spaces[embedder.key] = embedder
            if current:
                self._embedder = embedder
                self._spaces = {e.key: e for e in (previous, embedder) if e is not None}

    def _take_ahead(self) -> None:
        """The model loading on its thread becomes this engine's once loaded (under `_lock`)."""
        if self._embedder is None and self._ahead is not None:
            self._embedder, self._ahead = self._ahead.wait(), None

    def load_model_meanwhile(self, mode: str | None = None, text: str | None = None,
                             background: bool = False) -> None:
        """Start loading the query model on a thread when a query of `mode` will embed and the
        index holds vectors, so it loads while the index snapshot does (each ~0.2 s cold); with
        `text`, the thread embeds it too (the query's own text: _embed takes that vector);
        `background`: at low CPU priority (a language server: code lenses need no model)."""
        if self._embedder is not None or self._ahead is not None \
                or not mode_of(mode or self.config.search.mode).needs_vector:
            return
        try:
            embedded = self.store.state().get("dense", {}).get("embedded_chunks") if self.store.exists() else 0
        except CodekinError:
            return  # the query reports it
        if embedded:
            def load() -> Embedder:
                if background:
                    lower_thread_priority()
                return load_verified(self.root, self._query_model())

            self._ahead = Ahead(load, (lambda: text) if text is not None else None)

    def with_config(self, config: Config) -> Engine:
        """This engine's snapshot, model and adapters answering with `config`'s search settings
        (a CLI search that the running language server answers: query_socket.py)."""
        view = copy.copy(self)
        view.config = config
        view._owner = self._owner or self  # snapshots are loaded (and reloaded) once, by the owner
        return view

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    def index(self) -> SearchIndex:
        """The current snapshot, reloaded if the index was written since."""
        if self._owner is not None:
            return self._owner.index()
        state = self.store.state()
        stamp = (self.store.state_path.stat().st_mtime_ns, state.get("active_key", ""))
        if self._index is None or stamp != self._index_stamp:
            integrity.check(self.store, state.get("active_key", ""))  # damaged files: IndexDamagedError
            # Mapped instead of LanceDB while every index file is as recorded (else LanceDB
            # reads them, and reports damage the checksums could not see).
            mapped = QueryFile.open(self.store.state_dir, state) \
                if integrity.intact_as_recorded(self.store.state_dir) else None
            source = mapped or self.store
            with integrity.guard():
                snapshot = SearchIndex(source, state["active_key"])
            self._index, self._index_stamp = snapshot, stamp
        return self._index

    def _embed(self, text: str, key: str | None = None) -> np.ndarray:
        ahead = self._ahead
        if ahead is not None:
            vector = ahead.vector_for(text, key)  # the query's text, embedded while the index loaded
            self.embedder  # noqa: B018 - takes the model the thread loaded
            if vector is not None:
                return vector
        embedder = self._spaces.get(key) if key is not None else None
        if embedder is None:
            embedder = self.embedder
            if key is not None and embedder.key != key:
                embedder = self._embedder_of(key)
        return embedder.encode([text])[0]

    def _query_vector(self, parsed: queries.Query, key: str) -> np.ndarray:
        """The query's vector; a text question is moved by the adapter promoted for table `key`."""
        vector = self._embed(parsed.text, key)
        found = self.adapters.active(key) if adapted(parsed.kind) else None
        return found[1].apply(vector[None, :])[0] if found is not None else vector

    def _embedder_of(self, key: str) -> Embedder:
        """The model of table `key`, which another process made active (`codekin index` or
        `codekin reembed` after a promotion, before this process hot-reloaded): a query is
        never embedded in one vector space and searched in another."""
        import dataclasses

        from codekin.errors import ModelLoadError

        model = self._query_model()
        embedder = load_verified(self.root, dataclasses.replace(model, fallback=model.primary))
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
               path_glob: str | None = None, tests: bool = False) -> list[Hit]:
        """Ranked chunks for a symbol, a question or a code snippet (told apart by index/query.py);
        `tests` ranks tests like the code (a query that names tests does so by itself)."""
        check_query_arguments(limit, min_similarity)
        if self._index is None and self._owner is None:  # a cold process: embed while the index loads
            self.load_model_meanwhile(mode, queries.parse(query).text if query.strip() else None)
        index, parsed, keep, mode = self._prepare(query, mode, language, path_glob)
        weights = weights_for(self.config.search, parsed.kind, tests or asks_for_tests(query))
        if weights.files and self._ahead is not None:
            index.files()  # built while the model still loads on its thread, not after
        vector = self._query_vector(parsed, index.key) if mode_of(mode).needs_vector and index.dim else None
        return index.search(vector, parsed, mode, limit or self.config.search.limit,
                            _min(min_similarity, self.config.search.min_similarity), keep, weights,
                            self._file_weights(mode))

    def search_files(self, query: str, limit: int | None = None, mode: str | None = None,
                     language: str | None = None, path_glob: str | None = None,
                     tests: bool = False) -> list[FileHit]:
        """Files as answers: each file's best chunks, its summary and its mean vector."""
        check_query_arguments(limit, None)
        if self._index is None and self._owner is None:
            self.load_model_meanwhile(mode, queries.parse(query).text if query.strip() else None)
        index, parsed, keep, mode = self._prepare(query, mode, language, path_glob)
        weights = weights_for(self.config.search, parsed.kind, tests or asks_for_tests(query))
        vector = self._query_vector(parsed, index.key) if mode_of(mode).needs_vector and index.dim else None
        rank, _ = index.scores(vector, parsed, mode, keep, weights)
        files = index.files()
        file_score = files.rank(rank, vector, parsed.terms, files.keep(keep), self._file_weights(mode),
                                weights.prior_vector())
        return files.hits(file_score, rank, limit or self.config.search.limit)

    def dense_coverage(self) -> tuple[int, int]:
        """(chunks with a vector, chunks): below the total while phase 2 has not finished."""
        index = self.index()
        return index.embedded_count(), len(index)

    def undefined_symbol(self, query: str) -> str | None:
        """The query when it is a symbol that nothing in the index defines (say so beside the
        text matches, rather than pass them off as its definition)."""
        parsed = queries.parse(query)
        if parsed.kind != queries.SYMBOL or self.index().definitions.defines(parsed.symbols):
            return None
        return parsed.symbols[0]

    def _file_weights(self, mode: str) -> FileWeights:
        search = self.config.search
        return FileWeights(search.file_chunk_decay, search.file_summary_weight if mode_of(mode).uses_words else 0.0,
                           search.file_dense_weight if mode_of(mode).needs_vector else 0.0)

    def _prepare(self, query: str, mode: str | None, language: str | None,
                 path_glob: str | None) -> tuple[SearchIndex, queries.Query, np.ndarray, str]:
        if not query.strip():
            raise WorkspaceError("the search query is empty", 'give some text, e.g. codekin search "retry with backoff"')
        parsed = queries.parse(query)
        if not parsed.has_words:
            raise WorkspaceError(f"the query {query.strip()[:40]!r} has no words or names to search for",
                                 'give words or a symbol, e.g. codekin search "retry with backoff"')
        index = self.index()
        keep = index.mask(language, path_glob)
        if not keep.any():
            raise _empty_filter(index, language, path_glob)
        return index, parsed, keep, mode or self.config.search.mode

    def similar(self, path: str, start_line: int, end_line: int | None = None, text: str | None = None,
                limit: int | None = None, min_similarity: float | None = None,
                mode: str | None = None) -> tuple[Hit | None, list[Hit]]:
        """Chunks like the one at path:line (or like the span / the given unsaved text).

        Returns the query chunk (None for a free span) and the ranked hits, the query's
        own lines excluded. A span that holds a module (its head, or several chunks) is
        compared with other modules as wholes, and answers with their heads.
        """
        check_query_arguments(limit, min_similarity)
        rel = self.relative(path)
        index = self.index()
        end = end_line if end_line is not None else start_line
        if start_line < 1 or end < start_line:
            raise WorkspaceError(f"invalid line range {start_line}-{end}", "lines are 1-based: FILE:LINE or FILE:START-END")
        mode = mode or self.config.search.mode
        limit = limit or self.config.search.limit
        min_similarity = _min(min_similarity, self.config.search.min_similarity)
        query_row = index.enclosing(rel, start_line, end) if text is None else None
        if end_line is not None and query_row is not None:
            exact = index.span(query_row) == (start_line, end_line)
            query_row = query_row if exact else None
        inside = index.rows_within(rel, start_line, end) if text is None and end_line is not None else []
        covered = query_row is None and len(inside) >= 2 and index.all_embedded(inside)
        if covered and index.holds_module(inside):
            return None, self._similar_modules(index, rel, inside, mode, limit, min_similarity)
        if covered:  # the pieces of one long function: their mean vector, their words
            query_text = index.joined_text(inside)
            vector = index.mean_vector(inside) if mode_of(mode).needs_vector else None
            lo, hi = start_line, end
        elif query_row is not None and index.embedded(query_row):
            query_text = index.text(query_row)
            vector = index.vector(query_row) if mode_of(mode).needs_vector else None
            lo, hi = index.span(query_row)
        else:
            # imported here: a free span's language is the only use of the chunkers in queries
            from codekin.chunking import language_for

            query_text = text if text is not None else self._span_text(rel, start_line, end_line)
            vector = self._embed(f"{language_for(rel)} code\n{query_text}", index.key) if mode_of(mode).needs_vector else None
            lo, hi = start_line, end
        keep = index.similar_mask(rel, lo, hi, query_row)
        parsed = queries.parse(query_text, queries.CODE)
        weights = weights_for(self.config.search, queries.CODE, tests=index.is_test(rel))
        hits = index.search(vector, parsed, mode, limit, min_similarity, keep, weights)
        query_hit = index.hit(query_row, 1.0) if query_row is not None else None
        return query_hit, hits

    def similar_code(self, text: str, language: str | None = None, limit: int | None = None,
                     min_similarity: float | None = None, mode: str | None = None) -> list[Hit]:
        """Chunks like a piece of code that is in no indexed file (pasted, or not saved yet),
        ranked as `similar` ranks them; `language` is the snippet's, and only names it for the model."""
        check_query_arguments(limit, min_similarity)
        if not text.strip():
            raise WorkspaceError("the code is empty", "give the code to compare, or a FILE:LINE")
        parsed = queries.parse(text, queries.CODE)
        if not parsed.has_words:
            raise WorkspaceError("the code has no words or names to compare", "give a longer piece of code")
        index = self.index()
        mode = mode or self.config.search.mode
        prefix = f"{language} code\n" if language else ""
        vector = self._embed(prefix + text, index.key) if mode_of(mode).needs_vector else None
        weights = weights_for(self.config.search, queries.CODE)
        return index.search(vector, parsed, mode, limit or self.config.search.limit,
                            _min(min_similarity, self.config.search.min_similarity), index.mask(), weights)

    def definitions(self, symbol: str, limit: int | None = None, language: str | None = None,
                    path_glob: str | None = None, tests: bool = False) -> list[Hit]:
        """Where `symbol` is defined (`Shop.Cart`, `put_header/3`, `re2::RE2::FullMatch`, `cart.ex`):
        the chunks that define it (index/definitions.py), each scored by how exactly it matches
        (1 the whole name, less for a shorter form or the file name), code before tests; a function
        split in parts answers with all its lines. Empty when nothing in the index defines it."""
        check_query_arguments(limit, None)
        if not symbol.strip():
            raise WorkspaceError("the symbol is empty", "give a name, e.g. Shop.Cart or put_header/3")
        index = self.index()
        keep = index.mask(language, path_glob)
        if not keep.any():
            raise _empty_filter(index, language, path_glob)
        strength = index.definitions.scores([symbol.strip()])
        prior = weights_for(self.config.search, queries.SYMBOL, tests or asks_for_tests(symbol)).prior_vector()
        rank = strength * index.role_weights(prior)
        rows = [int(r) for r in np.flatnonzero((strength > 0) & keep)]
        rows.sort(key=lambda r: (-float(rank[r]), *index.definition_order(r)))
        hits = []
        for row in rows[:limit or self.config.search.limit]:
            hit = index.hit(row, float(strength[row]))
            base = base_symbol(hit.symbol)
            if base != hit.symbol:  # part 1 of a long function: the definition is all of its parts
                end = index.parts_end(hit.path, base)
                hit = replace(hit, symbol=base, end_line=max(end, hit.end_line))
            hits.append(hit)
        return hits

    def _similar_modules(self, index: SearchIndex, rel: str, rows: list[int], mode: str, limit: int,
                         min_similarity: float) -> list[Hit]:
        """Other modules like the one made of `rows`: their heads, ranked as files."""
        vector = index.mean_vector(rows) if mode_of(mode).needs_vector else None
        parsed = queries.parse(index.joined_text(rows), queries.CODE)
        weights = weights_for(self.config.search, queries.CODE, tests=index.is_test(rel))
        lo, hi = index.line_range(rows)
        keep = index.similar_mask(rel, lo, hi, None)
        rank, _ = index.scores(vector, parsed, mode, keep, weights)
        modules = index.modules()
        own = np.zeros(len(modules.paths), dtype=bool)
        own[modules.file_of_row[rows]] = True  # the module(s) the query is made of
        module_weights = replace(self._file_weights(mode),
                                 text=self.config.search.module_text_weight if mode_of(mode).uses_words else 0.0,
                                 callbacks=self.config.search.module_callback_weight)
        module_score = modules.rank(rank, vector, parsed.terms, modules.keep(keep) & ~own, module_weights,
                                    weights.prior_vector(), rows)
        found = modules.hits(module_score, rank, limit, head=True)
        shown = [float(modules.vectors[modules.file_of_row[f.row]] @ vector) if vector is not None else f.score
                 for f in found]
        return [index.hit(f.row, s, f.score) for f, s in zip(found, shown, strict=True) if s >= min_similarity]

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
        fields, state = index_status(self.root, self.counts)
        if state:
            fields["query_adapter"] = served_adapter(self.root, state)
        return dict(fields, **self._device())

    def counts(self) -> dict:
        """Chunk and file counts of the current snapshot (status's fallback for an index whose
        state file does not record them)."""
        index = self.index()
        embedded = index.embedded_count()
        return {"chunks": len(index), "embedded_chunks": embedded,
                "dense_complete": embedded == len(index), "files": index.file_count(),
                "indexed_files": len(self.store.file_records())}

    def _device(self) -> dict:
        out: dict = {}
        if self._embedder is not None:
            out.update({"device": self._embedder.device, "fallback_reason": self._embedder.fallback_reason})
        return out


def check_query_arguments(limit: int | None, min_similarity: float | None) -> None:
    """A limit below 1 or a similarity outside [-1, 1] is a mistake, never a silent default."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be 1 or more, got {limit}", "e.g. --limit 10 (the default)")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise ConfigError(f"--min-similarity must be between -1 and 1 (a cosine similarity), got {min_similarity}",
                          "e.g. --min-similarity 0.3; the default 0 keeps every result")


def _empty_filter(index: SearchIndex, language: str | None, path_glob: str | None) -> WorkspaceError:
    """Name the filter that matched nothing (each one alone), with what the index does hold."""
    languages = sorted(index.language_counts())
    if language and not index.mask(language, None).any():
        return WorkspaceError(f"--lang {language} matches no indexed file",
                              f"the index holds: {', '.join(languages)}")
    if path_glob and not index.mask(None, path_glob).any():
        tops = sorted({p.split("/")[0] + ("/**" if "/" in p else "") for p in index.file_paths()})
        return WorkspaceError(f"--path {path_glob!r} matches no indexed file",
                              "globs are repository-relative, e.g. " + ", ".join(repr(t) for t in tops[:8]))
    return WorkspaceError(f"no indexed {language} file matches --path {path_glob!r}",
                          "each filter matches files, but none both; drop one of them")


def _min(value: float | None, default: float) -> float:
    return default if value is None else value
