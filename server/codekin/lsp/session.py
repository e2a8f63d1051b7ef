"""One workspace served over LSP, as plain methods the handlers call (no pygls here).

Start-up happens on a worker lane after `initialize` has been answered: config, the
index snapshot, then the model. Queries run on the query lane; the ones that need a fresh
embedding wait for the model, the others (code lenses, findSimilar of an indexed chunk,
lexical search) are served from the index while it loads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from codekin.errors import (
    ArgumentError,
    CodekinError,
    IndexMissingError,
    ModelLoadError,
    WorkspaceError,
)
from codekin.lsp.background import Freshness
from codekin.lsp.lanes import Lane
from codekin.lsp.memory import release_free_memory
from codekin.lsp.options import ServerOptions
from codekin.lsp.requests import FindSimilarArgs, RetrainArgs, SearchArgs
from codekin.lsp.results import file_result, result
from codekin.modes import mode_of
from codekin.progress import ProgressFactory, no_progress

if TYPE_CHECKING:
    from codekin.config import Config
    from codekin.embedding import Embedder
    from codekin.engine import Engine
    from codekin.index.search import Hit
    from codekin.jobs.loop import LearningLoop
    from codekin.lsp.early import Warmup
    from codekin.lsp.neighbours import Relatives
    from codekin.query_socket import QuerySocket

log = logging.getLogger(__name__)

STARTUP_WAIT_S = 120.0  # importing torch and LanceDB on a busy laptop can take a while
TRAINING_KEYS = ("lastTraining", "nextTraining", "dashboard", "modelVersion", "hotReload", "training",
                 "modelFallback")


class Session:
    def __init__(self, root: Path, options: ServerOptions, overrides: dict[str, dict[str, Any]] | None = None,
                 watch: bool = True, progress: ProgressFactory = no_progress,
                 on_index_changed: Callable[[], None] = lambda: None,
                 warn: Callable[[str], None] = log.warning,
                 on_no_index: Callable[[], None] = lambda: None, warm: Warmup | None = None) -> None:
        self.root = root.resolve()
        self.warm = warm  # an engine already opening for this root (lsp/early.py)
        self.options = options
        self.overrides = overrides or {}
        self.watch = watch
        self.progress = progress
        self.on_index_changed = on_index_changed
        self.warn = warn
        self.on_no_index = on_no_index  # offer to index (the server asks the user)
        self.queries = Lane("codekin-query", 4)
        self.work = Lane("codekin-work", 1)
        self.config: Config | None = None
        self._engine: Engine | None = None
        self.freshness: Freshness | None = None
        from codekin.lsp.neighbours import RelativesCache

        self._relatives = RelativesCache()
        self._started = threading.Event()
        self._startup_error: CodekinError | None = None
        self._model_ready = threading.Event()
        self._model_error: CodekinError | None = None
        self.jobs: LearningLoop | None = None  # the served loop: schedule, retrain, hot reload, dashboard
        self._idle_loop: LearningLoop | None = None  # retrains when the model did not load (never started)
        self._loop_lock = threading.Lock()
        self.socket: QuerySocket | None = None  # where `codekin search` asks this server (query_socket.py)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.work.submit(self._start)

    def _start(self) -> None:
        try:
            engine = self._open()
        except CodekinError as exc:
            self._startup_error = exc
            self.warn(f"codekin: cannot serve {self.root}: {exc}")
            self._model_error = exc
            self._model_ready.set()
            return
        finally:
            self._started.set()
        if engine.store.exists():
            try:
                engine.index()  # warm the snapshot: the first query should not pay for it
            except CodekinError as exc:
                self.warn(f"codekin: the index of {self.root} cannot be read: {exc}")
        try:
            with self.progress("codekin: loading the embedding model", 0):
                engine.embedder  # noqa: B018 - loads the model once, on this lane
        except CodekinError as exc:
            self._model_error = exc
            self.warn(f"codekin: the embedding model did not load, searches by text fail: {exc}")
        finally:
            self._model_ready.set()
            release_free_memory()  # the loading temporaries of the snapshot and the model
        embedder = None if self._model_error is not None else engine.embedder
        if embedder is not None:
            self._open_socket(engine)
            from codekin.jobs.loop import LearningLoop

            self.jobs = LearningLoop(self.root, engine.config, engine, embedder, self.progress, self.warn).start()
            # follows hot reloads, so syncs embed with the served model (an Embedder by duck typing)
            embedder = cast("Embedder", self.jobs.serving)
        self.freshness = Freshness(self.root, engine.config, embedder, self.progress, self._synced, self.warn,
                                   on_stale=self.jobs.follow_index if self.jobs is not None else None)
        self.freshness.start(self.watch)
        if not engine.store.exists() and self._model_error is None:
            if engine.config.index.auto:  # `[index] auto = true` in the user's config
                self._index_on_open()
            else:
                self.on_no_index()

    def _open_socket(self, engine: Engine) -> None:
        """`codekin search` in this workspace asks this server, which has the model loaded."""
        from functools import partial

        from codekin.query_socket import QuerySocket, answer_search

        self.socket = QuerySocket.open(self.root, partial(answer_search, engine))

    def _index_on_open(self) -> None:
        try:
            self.index_repository()
        except CodekinError as exc:
            self.warn(f"codekin: indexing {self.root} failed: {exc}")

    def index_repository(self) -> dict[str, Any]:
        """A full (incremental) `codekin index` of the workspace, on the work lane, with progress;
        the new snapshot is served as soon as it is written."""
        from codekin.indexer import Indexer

        engine = self.engine
        self._wait_model()
        with self.progress(f"codekin: indexing {self.root.name}", 0):
            summary = Indexer(self.root, engine.config, embedder=engine.embedder, progress=self.progress).run(
                wait=STARTUP_WAIT_S)
        self._synced()
        return {"indexed": True, "files": summary.files, "chunks": summary.chunks,
                "message": f"indexed {summary.files} files: {summary.chunks} chunks, "
                           f"{summary.new_embeddings} new embeddings in {summary.seconds:.0f} s"}

    def _open(self) -> Engine:
        from codekin.config import load_config
        from codekin.engine import Engine

        warmed = self.warm.take(self.root, STARTUP_WAIT_S) if self.warm is not None else None
        config = warmed.config if warmed is not None else load_config(self.root, self.overrides)
        apply_search_options(config, self.options)
        self.config = config
        self._engine = warmed if warmed is not None else Engine(self.root, config)
        return self._engine

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.jobs is not None:
            self.jobs.stop()
        if self.freshness is not None:
            self.freshness.stop()
        self.queries.shutdown()
        self.work.shutdown()

    def _synced(self) -> None:
        if self._engine is not None and self._engine.store.exists():
            self._engine.index()  # load the new snapshot here, not in the next request
            release_free_memory()
        self.on_index_changed()

    # -- readiness -------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine once start-up is done (blocks a worker thread, never the loop)."""
        if not self._started.wait(STARTUP_WAIT_S):
            raise WorkspaceError("codekin is still starting", "try again in a few seconds")
        if self._startup_error is not None:
            raise self._startup_error
        if self._engine is None:
            raise WorkspaceError("codekin did not start", "restart the language server")
        return self._engine

    def _wait_model(self) -> None:
        self._model_ready.wait()
        if self._model_error is not None:
            raise ModelLoadError(f"the embedding model is not available: {self._model_error.message}",
                                 self._model_error.hint or "run `codekin doctor` to see why it does not load")

    def _index(self):
        engine = self.engine
        if not engine.store.exists():
            raise IndexMissingError(f"no index in {self.root} yet", f"run `codekin index {self.root}` first")
        return engine.index()

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- queries ---------------------------------------------------------------------------
    def find_similar(self, args: FindSimilarArgs) -> dict[str, Any]:
        rel = self.relative(args.path)
        index = self._index()
        span, text = args.span, args.text
        if text is None:
            self._check_lines(rel, span.end or span.start)
        row = index.enclosing(rel, span.start, span.end or span.start)
        exact = row is not None and (span.end is None or index.span(row) == (span.start, span.end))
        if text is not None and row is not None and exact and index.text(row).rstrip() == text.rstrip():
            text = None  # the buffer matches the index: use the stored vector, no model needed
        if text is not None or (span.end is not None and not (row is not None and exact and index.embedded(row))):
            self._wait_model()  # a free span or unsaved text is embedded; a cursor needs its chunk
        query, hits = self.engine.similar(str(self.root / rel), span.start, span.end, text=text, limit=args.limit,
                                          min_similarity=args.min_similarity)
        return {"query": result(self.root, query) if query else None,
                "results": [result(self.root, h) for h in hits]}

    def _check_lines(self, rel: str, line: int) -> None:
        path = self.root / rel
        if not path.is_file():
            raise ArgumentError(f"{rel} does not exist on disk",
                                "save the file first, or pass its unsaved text as `text`")
        count = path.read_bytes().count(b"\n") + 1
        if line > count:
            raise ArgumentError(f"line {line} is past the end of {rel} ({count} lines)",
                                "ranges are 0-based LSP positions inside the document")

    def search(self, args: SearchArgs) -> dict[str, Any]:
        self._ready(args.mode)
        return search_answer(self.engine, self.root, args)

    def _ready(self, mode: str | None) -> None:
        """Wait for the model only when the query will be embedded (not lexical, vectors exist)."""
        if mode_of(mode or self.engine.config.search.mode).needs_vector and self._index().dim:
            self._wait_model()

    def _search(self, args: SearchArgs) -> list[Hit]:
        self._ready(args.mode)
        return self.engine.search(args.query, args.limit, args.min_similarity, args.mode, tests=args.tests)

    def symbols(self, query: str, limit: int) -> list[tuple[Hit, dict[str, Any]]]:
        """Chunks matching a workspace/symbol query, each with its Result (uri, range)."""
        if not query.strip():
            return []
        return [(h, result(self.root, h)) for h in self._search(SearchArgs(query, limit=limit))]

    def lenses(self, path: Path) -> list[dict[str, Any]]:
        """One entry per function/module chunk of the file: lines and the lens range."""
        return lens_chunks(self.engine, self.root, path)

    def relatives(self, path: Path, start_line: int, end_line: int) -> Relatives | None:
        """Close relatives of the chunk at exactly these lines, None when it is not indexed (now)."""
        index = self._index()
        found = self._relatives.get(index, self.relative(path), self.options.code_lens.min_similarity)
        return found.get((start_line, end_line))

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"root": str(self.root), "indexed": False, "model": None, "chunks": None,
                               "files": None, "queue": None, "device": None, "stale": None,
                               "lastTraining": None, "nextTraining": None, "dashboard": None}
        if self._startup_error is not None:
            out.update(state="error", error=str(self._startup_error))
            return out
        engine = self.engine
        out["state"] = self._state()  # first: the fields below then describe at least this state
        core = engine.status()
        out.update({"indexed": core["indexed"], "model": core.get("model"), "chunks": core.get("chunks"),
                    "files": core.get("files"), "embeddedChunks": core.get("embedded_chunks"),
                    "updatedAt": core.get("updated_at"), "head": core.get("head"),
                    "modelLoaded": engine.embedder_loaded and self._model_error is None})
        if engine.embedder_loaded:
            out["device"] = engine.embedder.device
        if self._model_error is not None:
            out["modelError"] = str(self._model_error)
        if core["indexed"]:
            if self.freshness is not None:
                out["queue"] = self.freshness.pending
            from codekin.index.recorded import recorded_changes

            recorded = recorded_changes(self.root, engine.config.index, engine.store.state())
            if recorded is not None:  # no file changed since the last commit: LanceDB stays closed
                pending = recorded[0]
            else:
                from codekin.indexer import pending_changes

                pending = pending_changes(self.root, engine.config)
            out["pending"] = pending
            out["stale"] = bool(sum(pending.values()) or out["queue"])
        out.update(self._training_status())
        return out

    def _state(self) -> str:
        if not self._started.is_set():
            return "starting"
        if self._startup_error is not None:
            return "error"
        if self._engine is None or not self._engine.store.exists():
            return "no-index"
        if not self._model_ready.is_set():
            return "loading-model"
        if self.freshness is None:  # the learning loop and the sync are still being set up
            return "starting"
        if self.freshness.busy:
            return "syncing"
        return "ready"

    def save(self, path: Path) -> None:
        if self.freshness is not None:
            self.freshness.saved([self.relative(path)])

    def retrain(self, args: RetrainArgs) -> dict[str, Any]:
        """Start a run on the session's learning loop; {"started", "message"}, never pretending it ran."""
        from codekin.jobs.retrain import RetrainOptions

        options = RetrainOptions(epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size)
        try:
            with self.progress("codekin: starting retraining", 0):
                outcome = self._learning_loop().retrain(options, trigger="on demand")
        except CodekinError as exc:
            return {"started": False, "message": str(exc)}
        return {"started": bool(outcome["started"]), "message": str(outcome["message"])}

    def _learning_loop(self) -> LearningLoop:
        """The served loop; while there is none (the model did not load), one that is never started:
        no schedule, but a promoted model is still re-embedded."""
        if self.jobs is not None:
            return self.jobs
        config = self.engine.config
        with self._loop_lock:
            if self._idle_loop is None:
                from codekin.jobs.loop import LearningLoop

                self._idle_loop = LearningLoop(self.root, config)
            return self._idle_loop

    def _training_status(self) -> dict[str, Any]:
        """lastTraining, nextTraining, dashboard, ... of the loop this session holds."""
        from codekin.jobs.loop import training_status

        idle = self._idle_loop
        values = training_status(self.root, self.jobs, running_here=idle is not None and idle.running is not None)
        return {k: values.get(k) for k in TRAINING_KEYS}


def lens_chunks(engine: Engine, root: Path, path: Path) -> list[dict[str, Any]]:
    """The Results of the chunks of `path` (inside `root`) that get a code lens, in line order."""
    from codekin.lsp.neighbours import lens_rows

    if not engine.store.exists():
        return []
    index = engine.index()
    return [result(root, index.hit(i, 0.0)) for i in lens_rows(index, path.relative_to(root).as_posix())]


def lens_data(uri: str, chunk: dict[str, Any]) -> dict[str, Any]:
    """What a code lens carries to its resolve: the document, the chunk's lines and full range."""
    return {"uri": uri, "startLine": chunk["startLine"], "endLine": chunk["endLine"], "range": chunk["range"]}


def apply_search_options(config: Config, options: ServerOptions) -> None:
    """Only what the client sent in initializationOptions overrides the configuration."""
    sent = options.search
    config.search.limit = sent.limit if sent.limit is not None else config.search.limit
    if sent.min_similarity is not None:
        config.search.min_similarity = sent.min_similarity
    config.search.mode = sent.mode or config.search.mode


def search_answer(engine: Engine, root: Path, args: SearchArgs) -> dict[str, Any]:
    """The answer to `codekin.search` (the model, when the query needs it, is loaded): the
    results, and whether the dense layer is incomplete (indexing's phase 2 still running)."""
    if args.files:
        files = engine.search_files(args.query, args.limit, args.mode, tests=args.tests)
        answer: dict[str, Any] = {"results": [file_result(root, f) for f in files]}
    else:
        hits = engine.search(args.query, args.limit, args.min_similarity, args.mode, tests=args.tests)
        answer = {"results": [result(root, h) for h in hits]}
    embedded, total = engine.dense_coverage()
    if embedded < total:
        answer["denseIncomplete"] = {"embeddedChunks": embedded, "chunks": total}
    return answer
