"""The learning loop of one served repository: schedule, retrain, hot reload, dashboard.

`codekin serve` starts a LearningLoop once its model is loaded and holds it (stopped with the
session); its `serving` embedder is the one the sync threads must use (it follows hot reloads). Everything runs on plain threads:
- the scheduler thread fires the nightly run (skipped without a new commit) and, every
  tick, notices a new active model in the registry (`codekin train`/`models promote` or
  `rollback` from a terminal) and hot-reloads it;
- `retrain()` starts an on-demand run on its own thread and returns at once;
- one run at a time: a lock in this process, `.codekin/train.lock` across processes.

A hot reload loads the new weights (sha256-checked), re-embeds every chunk into the new
model's table with progress while queries are served from the old one, then switches.
When the new version cannot load, the server stays on its model, says "Hot-reload
failed: ...", marks the version failed in the registry and points the registry back at
the model it serves.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.config import Config, ModelConfig
from codekin.errors import CodekinError, IndexMissingError, RegistryError, TrainingRunningError
from codekin.jobs.reembed import ReembedSummary, load_active_model, reembed
from codekin.jobs.retrain import RetrainOptions, run_training
from codekin.jobs.scheduler import (
    TICK_S,
    Clock,
    NightlyScheduler,
    git_head,
    last_training,
    read_jobs_state,
    should_train,
    utc_now,
    write_jobs_state,
)
from codekin.models.registry import BASE, ModelRegistry
from codekin.models.serving import ServingEmbedder, serving_model, version_ref
from codekin.progress import ProgressFactory, no_progress

if TYPE_CHECKING:
    from codekin.dashboard.server import DashboardServer
    from codekin.embedding import Embedder
    from codekin.engine import Engine

log = logging.getLogger(__name__)

class LearningLoop:
    def __init__(self, root: Path, config: Config, engine: Engine | None = None, embedder: Embedder | None = None,
                 progress: ProgressFactory = no_progress, warn: Callable[[str], None] = log.warning,
                 clock: Clock = utc_now, tick_s: float = TICK_S) -> None:
        self.root = Path(root).resolve()
        self.config = config
        self.engine = engine
        self.serving = ServingEmbedder(embedder) if embedder is not None else None
        self.progress = progress
        self.warn = warn
        self.scheduler = NightlyScheduler(self.root, config.schedule, self._scheduled, clock, tick_s,
                                          on_tick=self.check_registry)
        self.dashboard: DashboardServer | None = None
        self.hot_reload_error: str | None = None
        self.last_reembed: ReembedSummary | None = None
        self.running: str | None = None  # "nightly since 02:00:03" while a run is in progress
        self._run_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._failed_refs: set[str] = set()
        self.fallback_note: str | None = None  # why the configured fallback model serves
        self.reloading: str | None = None  # set while a hot reload runs

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, dashboard: bool = True) -> LearningLoop:
        port = self.config.schedule.dashboard_port
        if dashboard and port >= 0:
            from codekin.dashboard.server import DashboardServer

            try:
                self.dashboard = DashboardServer(self.root, port).start()
            except OSError as exc:
                self.warn(f"codekin: the dashboard cannot listen on 127.0.0.1:{port}: {exc}")
        self.scheduler.start()
        return self

    def stop(self) -> None:
        self.scheduler.stop()
        if self.dashboard is not None:
            self.dashboard.stop()

    # -- training runs ---------------------------------------------------------------------
    def retrain(self, options: RetrainOptions, trigger: str = "on demand", wait: bool = False) -> dict[str, Any]:
        """Start a run on a thread now; {"started": False, ...} when one is already running.

        With `wait`, run it on this thread instead (re-embedding a promoted model included) and
        return how it ended: {"started": True, "finished": True, "outcome", "message", ...}."""
        from codekin.training.pipeline import training_holder

        if not self._run_lock.acquire(blocking=False):
            return {"started": False, "message": f"training already running ({self.running})"}
        holder = training_holder(self.root)
        if holder is not None:
            self._run_lock.release()
            return {"started": False, "message": f"training already running (pid {holder.get('pid', '?')} "
                                                 f"since {holder.get('since', '?')})"}
        self.running = f"{trigger} since {time.strftime('%H:%M:%S')}"
        if wait:
            before = (self.last_reembed, self.hot_reload_error)
            self._run(options, trigger)
            return self._finished(*before)
        threading.Thread(target=self._run, args=(options, trigger), name="codekin-retrain", daemon=True).start()
        return {"started": True, "message": f"retraining started ({options.describe()}); "
                                            "`codekin.status` shows the result, the model switches when it is better"}

    def _finished(self, reembed: ReembedSummary | None, reload_error: str | None) -> dict[str, Any]:
        """How the run that just ended went (its record in jobs.json), and its hot reload if any."""
        last = read_jobs_state(self.root).get("last_run") or {}
        failed = self.hot_reload_error if self.hot_reload_error != reload_error else None
        reloaded = self.last_reembed.describe() if self.last_reembed is not reembed and self.last_reembed else None
        return {"started": True, "finished": True, "outcome": last.get("outcome"), "message": last.get("message"),
                "version": last.get("version"), "hotReload": failed or reloaded}

    def _scheduled(self, trigger: str) -> None:
        """The nightly (or catch-up) run, on the scheduler thread: skipped without a new commit."""
        due, why = should_train(self.root, force=False)
        if not due:
            log.info("%s training skipped: %s", trigger, why)
            write_jobs_state(self.root, last_run=_record(trigger, "skipped", why))
            return
        if not self._run_lock.acquire(blocking=False):
            log.info("%s training skipped: training already running (%s)", trigger, self.running)
            write_jobs_state(self.root, last_run=_record(trigger, "skipped", f"training already running ({self.running})"))
            return
        self.running = f"{trigger} since {time.strftime('%H:%M:%S')}"
        self._run(RetrainOptions(force=False), trigger)

    def _run(self, options: RetrainOptions, trigger: str) -> None:
        """One run while holding the run lock (released here)."""
        head = git_head(self.root)
        try:
            write_jobs_state(self.root, last_run=_record(trigger, "running", options.describe()))
            result = run_training(self.root, self.config, options, self.progress)
            write_jobs_state(self.root, trained_head=head,
                             last_run=_record(trigger, result.outcome, result.message(), version=result.version))
            if result.promoted:
                self.hot_reload()
        except TrainingRunningError as exc:  # `codekin train` in a terminal got there first
            log.info("%s training skipped: %s", trigger, exc.message)
            write_jobs_state(self.root, last_run=_record(trigger, "skipped", exc.message))
        except CodekinError as exc:
            write_jobs_state(self.root, last_run=_record(trigger, "failed", exc.message))
            self.warn(f"codekin: {trigger} training failed: {exc}")
        finally:
            self.running = None
            self._run_lock.release()

    # -- hot reload ------------------------------------------------------------------------
    def served_ref(self) -> str:
        from codekin.index.store import IndexStore

        store = IndexStore(self.root)
        return version_ref(self.root, store.state().get("model")) if store.exists() else BASE

    def check_registry(self) -> None:
        """Each tick: hot-reload when the registry's active model is not the one served."""
        self.check_fallback()
        try:
            wanted = ModelRegistry(self.root).active_ref()
            served = self.served_ref()
        except (RegistryError, IndexMissingError) as exc:
            log.info("registry check skipped: %s", exc)
            return
        if wanted != served and wanted not in self._failed_refs and not self._run_lock.locked():
            self.hot_reload()

    def check_fallback(self) -> None:
        """The model of the active table did not load and the fallback answers instead: re-embed
        the index with the fallback, so queries and table share one vector space again."""
        from codekin.index.store import IndexStore

        engine = self.engine
        if engine is None or not engine.embedder_loaded or self.fallback_note is not None:
            return
        embedder = engine.embedder
        store = IndexStore(self.root)
        if not embedder.fallback_reason or not store.exists() or store.state().get("active_key") == embedder.key:
            return
        self.fallback_note = f"the model of the index did not load ({embedder.fallback_reason}); " \
                             f"serving the configured fallback {embedder.name}"
        self.warn(f"codekin: {self.fallback_note}; re-embedding the index with it")
        with self._reload_lock:
            try:
                self.last_reembed = reembed(self.root, self.config, embedder, self.progress,
                                            after_switch=self._switch)
            except CodekinError as exc:
                self.warn(f"codekin: re-embedding with the fallback model failed: {exc}")

    def hot_reload(self) -> ReembedSummary | None:
        """Switch to the registry's active model: load, re-embed, swap. None when nothing to do or failed."""
        with self._reload_lock:
            registry = ModelRegistry(self.root)
            wanted, served = registry.active_ref(), self.served_ref()
            if wanted == served:
                return None
            log.info("hot reload: %s -> %s", served, wanted)
            self.reloading = f"hot reload in progress: {served} -> {wanted}"
            try:
                embedder = load_active_model(self.root, self.config)
                summary = reembed(self.root, self.config, embedder, self.progress,
                                  before_switch=self._prepare, after_switch=self._switch)
            except IndexMissingError:
                log.info("hot reload of %s waits for an index (`codekin index`)", wanted)
                return None
            except CodekinError as exc:
                self._reload_failed(wanted, served, exc)
                return None
            finally:
                self.reloading = None
            self.hot_reload_error = None
            self.last_reembed = summary
            log.info("hot reload done: %s", summary.describe())
            return summary

    def follow_index(self) -> bool:
        """After another process promoted (and maybe re-embedded) a model: serve it too.

        Called by the server's syncs when the indexer refuses a stale model. True when the
        served model is now the one the index follows."""
        from codekin.index.store import IndexStore

        wanted = serving_model(self.root, self.config.model)
        store = IndexStore(self.root)
        if (store.state().get("model") if store.exists() else None) != wanted.primary:
            self.hot_reload()  # the registry is ahead of the index: re-embed here (or wait for the running one)
        else:
            with self._reload_lock:  # the index is already re-embedded: only load and swap
                if not self._serves(wanted):
                    self._switch(load_active_model(self.root, self.config))
        return self._serves(wanted)

    def _serves(self, wanted: ModelConfig) -> bool:
        return self.serving is None or self.serving.loads_as(wanted)

    def _prepare(self, embedder: Embedder) -> None:
        if self.engine is not None:
            self.engine.use_embedder(embedder, current=False)  # ready for the new table's first query

    def _switch(self, embedder: Embedder) -> None:
        if self.engine is not None:
            self.engine.use_embedder(embedder)
        if self.serving is not None:
            self.serving.swap(embedder)

    def _reload_failed(self, wanted: str, served: str, exc: CodekinError) -> None:
        message = f"Hot-reload failed: {exc.message}"
        self._failed_refs.add(wanted)
        registry = ModelRegistry(self.root)
        try:
            if wanted != BASE:
                version, _ = registry.resolve(wanted)
                registry.update(version, status="failed", reason=message)
            registry.activate(served)
        except RegistryError as error:
            log.error("could not point the registry back at %s: %s", served, error)
        self.hot_reload_error = f"{message} (still serving {served})"
        log.error("%s", self.hot_reload_error)
        self.warn(f"codekin: {self.hot_reload_error}")

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        next_run = self.scheduler.next_run
        return {
            "nextTraining": next_run.astimezone(dt.UTC).isoformat(timespec="seconds") if next_run else None,
            "dashboard": self.dashboard.url if self.dashboard is not None else None,
            "modelVersion": self.served_ref(),
            "hotReload": self.reloading or self.hot_reload_error or (
                self.last_reembed.describe() if self.last_reembed else None),
            "training": self.running,
            "modelFallback": self.fallback_note,
        }


def _record(trigger: str, outcome: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"trigger": trigger, "outcome": outcome, "message": message, "at": time.time(), **extra}


def describe_last_training(root: Path, running_here: bool = False) -> dict[str, Any] | None:
    """The newest run (metrics.db) and the newest attempt (a skipped night counts), for status;
    `running_here`: a loop of the caller runs one now (its child may not hold the train lock yet)."""
    from codekin.training.pipeline import training_holder

    run = last_training(root)
    attempt = read_jobs_state(root).get("last_run")
    if run is None and attempt is None:
        return None
    out: dict[str, Any] = {}
    live = running_here or training_holder(Path(root).resolve()) is not None
    if attempt is not None and attempt.get("outcome") == "running" and not live:  # its process was killed
        attempt = {**attempt, "outcome": "interrupted",
                   "message": "the process that ran it ended; the next training resumes it"}
    if run is not None:
        status = "interrupted" if run["status"] == "running" and not live else run["status"]
        out.update({"run": run["id"], "status": status, "version": run["new_version"],
                    "promoted": bool(run["promoted"]), "reason": run["reason"], "startedAt": _iso(run["started_at"]),
                    "finishedAt": _iso(run["finished_at"])})
    if attempt is not None:
        out["lastAttempt"] = {**attempt, "at": _iso(attempt.get("at"))}
    return out


def training_status(root: Path, loop: LearningLoop | None, running_here: bool = False) -> dict[str, Any]:
    """lastTraining, nextTraining, dashboard, modelVersion, hotReload, training and modelFallback
    for `codekin.status`: the served loop's own state when there is one."""
    running_here = running_here or (loop is not None and loop.running is not None)
    out: dict[str, Any] = {"lastTraining": describe_last_training(root, running_here), "nextTraining": None,
                           "dashboard": None}
    if loop is not None:
        out.update(loop.status())
    return out


def _iso(timestamp: float | None) -> str | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds") if timestamp else None
