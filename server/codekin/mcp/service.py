"""The tools as plain methods over one repository (no SDK here): what the server calls on a
worker thread. Queries go to the Engine the CLI and the language server use; retraining to
the learning loop (codekin.jobs), run on the calling thread so that its progress belongs to
the call. Failures the user can act on are CodekinErrors; the server turns them into error
results."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.config import Config, load_config, user_config_path
from codekin.errors import CodekinError, IndexMissingError
from codekin.mcp.arguments import DefinitionArgs, RetrainArgs, SearchArgs, SimilarArgs
from codekin.mcp.results import file_result, hit_result, query_result
from codekin.progress import Progress, ProgressFactory, no_progress

if TYPE_CHECKING:
    from codekin.engine import Engine
    from codekin.jobs.loop import LearningLoop

log = logging.getLogger(__name__)

TRIGGER = "on demand (agent)"


class Workspace:
    """One repository served to agents."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root.resolve()
        self.config = config
        self._engine: Engine | None = None
        self._loop: LearningLoop | None = None
        self._lock = threading.Lock()
        self._snapshot = threading.Lock()  # held while warm() loads the snapshot: calls wait, not load it twice
        self._progress: ProgressFactory = no_progress  # the retrain call's, while one runs
        self._training: str | None = None  # since when a retrain call of this server runs

    @property
    def engine(self) -> Engine:
        with self._snapshot:
            return self._engine_now()

    def _engine_now(self) -> Engine:
        with self._lock:
            if self._engine is None:
                from codekin.engine import Engine

                self._engine = Engine(self.root, self.config)
            return self._engine

    def warm(self) -> None:
        """Load the index snapshot, then the model: the first query should pay for neither."""
        try:
            with self._snapshot:
                engine = self._engine_now()
                if not engine.store.exists():
                    return
                engine.index()
            engine.embedder  # noqa: B018 - loads the model once; a query needing it waits for it
        except CodekinError as exc:
            log.warning("codekin mcp: %s", exc)  # each tool call reports it again

    # -- queries ---------------------------------------------------------------------------
    def search(self, args: SearchArgs) -> dict[str, Any]:
        engine = self.engine
        if args.files:
            files = engine.search_files(args.query, args.limit, args.mode, args.lang, self._glob(args.path),
                                        tests=args.tests)
            index = engine.index()
            return {"results": [file_result(f, index.text(f.row) if index.holds_at(f.row, f.path, f.start_line) else "") for f in files]}
        hits = engine.search(args.query, args.limit, args.min_similarity, args.mode, args.lang,
                             self._glob(args.path), tests=args.tests)
        out: dict[str, Any] = {"results": [hit_result(h) for h in hits]}
        undefined = engine.undefined_symbol(args.query)
        if undefined:
            out["note"] = f"nothing in the index defines {undefined}; these are the closest text matches"
        return out

    def similar(self, args: SimilarArgs) -> dict[str, Any]:
        engine = self.engine
        if args.path is not None and args.line is not None:
            query, hits = engine.similar(str(self._inside(args.path)), args.line, args.end_line, text=args.code,
                                         limit=args.limit, min_similarity=args.min_similarity, mode=args.mode)
            return {"query": query_result(query), "results": [hit_result(h) for h in hits]}
        from codekin.chunking import language_for

        assert args.code is not None  # arguments.py: path and line, or code
        language = args.language or (language_for(engine.relative(str(self._inside(args.path))))
                                     if args.path is not None else None)
        hits = engine.similar_code(args.code, language, args.limit, args.min_similarity, args.mode)
        return {"query": None, "results": [hit_result(h) for h in hits]}

    def definition(self, args: DefinitionArgs) -> dict[str, Any]:
        hits = self.engine.definitions(args.symbol, args.limit, args.lang, self._glob(args.path), args.tests)
        out: dict[str, Any] = {"results": [hit_result(h) for h in hits]}
        if not hits:
            out["note"] = f"nothing in the index defines {args.symbol.strip()}; `search` finds where it is used"
        return out

    def _glob(self, path: str | None) -> str | None:
        """A path filter as a glob: a directory of the repository without wildcards (`lib`, `lib/`,
        or its absolute path) means everything under it, as an agent means it."""
        if path is None or any(c in path for c in "*?["):
            return path
        if Path(path).is_absolute():  # the agent's absolute path of a folder or file in the repository
            try:
                path = Path(path).resolve().relative_to(self.root).as_posix()
            except ValueError:
                return path  # outside: matches nothing, and the tool says so
        name = path.strip("/").removeprefix("./")
        if name in ("", "."):
            return None  # the whole repository
        folder = (self.root / name).resolve()
        return f"{name}/*" if folder.is_relative_to(self.root) and folder.is_dir() else path

    def _inside(self, path: str) -> Path:
        """A tool's path: absolute, or relative to the repository root (never to the server's
        working directory); Engine.relative refuses what lies outside the repository."""
        given = Path(path)
        return given if given.is_absolute() else self.root / given

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from codekin.indexer import git_head, pending_changes
        from codekin.jobs.loop import describe_last_training
        from codekin.training.pipeline import training_holder

        engine = self.engine
        core = engine.status()
        out: dict[str, Any] = {"root": str(self.root), "indexed": core["indexed"]}
        if core["indexed"]:
            index = engine.index()
            pending = pending_changes(self.root, self.config)
            head = git_head(self.root)
            out["index"] = {"files": core["files"], "chunks": core["chunks"], "embedded_chunks": core["embedded_chunks"],
                            "languages": dict(index.language_counts().most_common()),
                            "updated_at": _iso(core.get("updated_at")), "age_seconds": core.get("age_seconds"),
                            "commit": core.get("head") or None}
            out["freshness"] = {"stale": bool(sum(pending.values())), "files_pending": pending, "head": head or None,
                                "head_indexed": bool(head) and head == core.get("head")}
            if out["freshness"]["stale"]:
                out["freshness"]["hint"] = f"run `codekin sync` (or `codekin index {self.root}`) to catch up"
            out["model"] = self._model(engine, core)
        else:
            partial = engine.store.interrupted()
            if partial is not None:
                out["interrupted"] = partial
            out["hint"] = f"run `codekin index {self.root}` in a terminal to build the index" + \
                (" (it resumes where the interrupted run stopped)" if partial else "")
        holder = training_holder(self.root)
        out["training"] = {"last": describe_last_training(self.root),
                           "running": f"pid {holder.get('pid', '?')} since {holder.get('since', '?')}" if holder else None,
                           "retrain_allowed": _retrain_allowed(self.root)}
        return out

    def _model(self, engine: Engine, core: dict[str, Any]) -> dict[str, Any]:
        """The model whose vectors answer, the registry's active one, and what to run when they differ."""
        from codekin.models.serving import answering_and_active, model_note

        state = engine.store.state()
        answering, active = answering_and_active(self.root, state)
        model: dict[str, Any] = {"name": core.get("model"), "version": answering, "active_version": active,
                                 "note": model_note(self.root, state) or None, "table": core.get("active_table"),
                                 "loaded": engine.embedder_loaded}
        if engine.embedder_loaded:
            model.update(device=core.get("device"), fallback_reason=core.get("fallback_reason") or None)
        return model

    # -- retraining ------------------------------------------------------------------------
    def retrain(self, args: RetrainArgs, progress: ProgressFactory = no_progress) -> dict[str, Any]:
        """Train now and wait for the outcome (a promoted model is re-embedded and served)."""
        from codekin.jobs.retrain import RetrainOptions

        if not load_config(self.root).mcp.allow_retrain:  # read now: allowing it needs no restart
            raise CodekinError("retraining from an agent is off for this user",
                               f"to allow it, set `[mcp]` `allow_retrain = true` in your own config "
                               f"{user_config_path()} (a repository's config cannot), or run `codekin train` "
                               "in a terminal")
        engine = self.engine
        if not engine.store.exists():
            raise IndexMissingError(f"no index in {self.root} yet", f"run `codekin index {self.root}` first")
        options = RetrainOptions(epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size)
        with self._lock:
            if self._training is not None:
                raise CodekinError(f"training already running (started by this server {self._training})",
                                   "wait for it to end; `status` shows how it went")
            self._training = f"at {time.strftime('%H:%M:%S')}"
        try:
            with self._routed(progress):
                outcome = self._learning_loop(engine).retrain(options, trigger=TRIGGER, wait=True)
        finally:
            self._training = None
        if not outcome.get("started"):  # another process trains (`codekin train`, `codekin serve`)
            raise CodekinError(str(outcome.get("message")), "wait for it to end; `status` shows how it went")
        return outcome

    def _learning_loop(self, engine: Engine) -> LearningLoop:
        """This server's loop: never started, so no schedule and no dashboard port; a promoted
        model is re-embedded and swapped into the engine."""
        from codekin.jobs.loop import LearningLoop

        with self._lock:
            if self._loop is None:
                self._loop = LearningLoop(self.root, self.config, engine, None, self._report, log.warning)
            return self._loop

    def _report(self, title: str, total: int) -> Progress:
        return self._progress(title, total)

    @contextlib.contextmanager
    def _routed(self, progress: ProgressFactory) -> Iterator[None]:
        self._progress = progress
        try:
            yield
        finally:
            self._progress = no_progress


def _retrain_allowed(root: Path) -> bool:
    """Whether the user's own config allows `retrain` now (config.USER_ONLY_KEYS: only it can)."""
    try:
        return load_config(root).mcp.allow_retrain
    except CodekinError:
        return False


def _iso(timestamp: float | None) -> str | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds") if timestamp else None
