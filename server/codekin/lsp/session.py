"""One workspace served over LSP, as plain methods the handlers call (no pygls here).

Start-up happens on a worker lane after `initialize` has been answered: config, the
index snapshot, then the model. Queries run on the query lane; the ones that need a fresh
embedding wait for the model, the others (code lenses, findSimilar of an indexed chunk,
lexical search) are served from the index while it loads.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.errors import CodekinError, IndexMissingError, ModelLoadError, WorkspaceError
from codekin.lsp.background import Freshness
from codekin.lsp.lanes import Lane
from codekin.lsp.memory import release_free_memory
from codekin.lsp.options import ServerOptions
from codekin.lsp.requests import ArgumentError, FindSimilarArgs, RetrainArgs, SearchArgs
from codekin.lsp.results import file_result, result
from codekin.progress import ProgressFactory, no_progress

if TYPE_CHECKING:
    from codekin.config import Config
    from codekin.engine import Engine
    from codekin.index.search import Hit
    from codekin.lsp.neighbours import Relatives

log = logging.getLogger(__name__)

STARTUP_WAIT_S = 120.0  # importing torch and LanceDB on a busy laptop can take a while
RETRAIN_MODULE = "codekin.jobs.retrain"
NOT_AVAILABLE = "training is not available yet in this version"


class Session:
    def __init__(self, root: Path, options: ServerOptions, overrides: dict[str, dict[str, Any]] | None = None,
                 watch: bool = True, progress: ProgressFactory = no_progress,
                 on_index_changed: Callable[[], None] = lambda: None,
                 warn: Callable[[str], None] = log.warning,
                 on_no_index: Callable[[], None] = lambda: None) -> None:
        self.root = root.resolve()
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
        self.jobs: Any = None  # codekin.jobs.loop.LearningLoop: schedule, retrain, hot reload, dashboard

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
            from codekin.jobs.loop import attach

            self.jobs = attach(self.root, engine.config, engine, embedder, self.progress, self.warn)
            embedder = self.jobs.serving  # follows hot reloads, so syncs embed with the served model
        self.freshness = Freshness(self.root, engine.config, embedder, self.progress, self._synced, self.warn,
                                   on_stale=self.jobs.follow_index if self.jobs is not None else None)
        self.freshness.start(self.watch)
        if not engine.store.exists() and self._model_error is None:
            if engine.config.index.auto:  # `[index] auto = true` in the user's config
                self._index_on_open()
            else:
                self.on_no_index()

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

        config = load_config(self.root, self.overrides)
        sent = self.options.search  # only what the client sent overrides the configuration
        config.search.limit = sent.limit if sent.limit is not None else config.search.limit
        if sent.min_similarity is not None:
            config.search.min_similarity = sent.min_similarity
        config.search.mode = sent.mode or config.search.mode
        self.config = config
        self._engine = Engine(self.root, config)
        return self._engine

    def close(self) -> None:
        if self.jobs is not None:
            from codekin.jobs.loop import detach

            detach(self.root)
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
        exact = row is not None and (span.end is None or (index.starts[row], index.ends[row]) == (span.start, span.end))
        if text is not None and exact and index.texts[row].rstrip() == text.rstrip():
            text = None  # the buffer matches the index: use the stored vector, no model needed
        if text is not None or (span.end is not None and not (exact and index.has_vector[row])):
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
        if args.files:
            self._ready(args.mode)
            files = self.engine.search_files(args.query, args.limit, args.mode, tests=args.tests)
            return self._with_coverage({"results": [file_result(self.root, f) for f in files]})
        return self._with_coverage({"results": [result(self.root, h) for h in self._search(args)]})

    def _with_coverage(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Say when the dense layer is incomplete (indexing's phase 2 still running)."""
        embedded, total = self.engine.dense_coverage()
        if embedded < total:
            answer["denseIncomplete"] = {"embeddedChunks": embedded, "chunks": total}
        return answer

    def _ready(self, mode: str | None) -> None:
        self._index()
        if (mode or self.engine.config.search.mode) != "lexical":
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
        from codekin.lsp.neighbours import lens_rows

        engine = self.engine
        if not engine.store.exists():
            return []
        index = engine.index()
        rel = self.relative(path)
        return [result(self.root, index.hit(i, 0.0)) for i in lens_rows(index, rel)]

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
            from codekin.indexer import pending_changes

            pending = pending_changes(self.root, engine.config)
            out["pending"] = pending
            out["stale"] = bool(sum(pending.values()) or out["queue"])
        out.update(_training_status(self.root, engine.config))
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
        if self.freshness is not None and self.freshness.busy:
            return "syncing"
        return "ready"

    def save(self, path: Path) -> None:
        if self.freshness is not None:
            self.freshness.saved([self.relative(path)])

    def retrain(self, args: RetrainArgs) -> dict[str, Any]:
        """Start the training pipeline when it exists; never pretend it ran."""
        module = _optional_module(RETRAIN_MODULE)
        start = getattr(module, "start_retrain", None) if module is not None else None
        if start is None:
            return {"started": False, "message": NOT_AVAILABLE}
        try:
            with self.progress("codekin: starting retraining", 0):
                outcome = start(self.root, self.engine.config, **args.as_options())
        except CodekinError as exc:
            return {"started": False, "message": str(exc)}
        return _retrain_reply(outcome)


def _optional_module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None  # the module (or its package) does not exist yet
        raise


def _retrain_reply(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, dict):
        return {"started": bool(outcome.get("started", True)),
                "message": str(outcome.get("message", "retraining started"))}
    if isinstance(outcome, str):
        return {"started": True, "message": outcome}
    started = getattr(outcome, "started", True)
    return {"started": bool(started), "message": str(getattr(outcome, "message", "retraining started"))}


def _training_status(root: Path, config: Config) -> dict[str, Any]:
    """lastTraining/nextTraining/dashboard from the jobs module once it offers them."""
    module = _optional_module(RETRAIN_MODULE)
    report = getattr(module, "training_status", None) if module is not None else None
    if report is None:
        return {}
    values = report(root, config)
    keys = ("lastTraining", "nextTraining", "dashboard", "modelVersion", "hotReload", "training", "modelFallback")
    return {k: values.get(k) for k in keys}
