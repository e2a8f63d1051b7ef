"""Keeps the index following the files while the server runs (plain threads, no pygls).

Two sources of change, both ending in `codekin.sync.drain` (one sync at a time per
repository, crash-safe, incremental), and one catch-up: chunks indexed without a vector
(`codekin index --lexical-only`, or a phase 2 that was cut short) are embedded once at start
while the server answers from what exists (index/phases.py).
- saves: didSave puts the path in the durable change queue and a sync thread drains it
  after a short debounce, reporting progress;
- everything else (edits outside the editor, checkouts, the git hooks' records):
  `codekin.sync.Watcher`, which also catches up once at start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.config import Config
from codekin.errors import CodekinError, IndexLockedError, IndexMissingError, StaleModelError
from codekin.progress import ProgressFactory

if TYPE_CHECKING:
    from codekin.embedding import Embedder
    from codekin.sync import SyncSummary, Watcher

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.2  # saves arriving together are synced together
LOCK_WAIT_S = 10.0  # the watcher or a CLI command may be syncing right now
RETRY_S = 3.0


class Freshness:
    """The save queue, its sync thread and the workspace watcher of one repository."""

    def __init__(self, root: Path, config: Config, embedder: Embedder | None, progress: ProgressFactory,
                 on_synced: Callable[[], None], warn: Callable[[str], None],
                 on_stale: Callable[[], bool] | None = None) -> None:
        self.root = root
        self.on_stale = on_stale  # serves the model another process promoted; True once it does
        self.config = config
        self.embedder = embedder
        self.progress = progress
        self.on_synced = on_synced
        self.warn = warn
        self._saved: set[str] = set()
        self._busy = False
        self._filling = False  # embedding what the index holds without a vector
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._watcher: Watcher | None = None

    # -- public ----------------------------------------------------------------------------
    def start(self, watch: bool) -> None:
        threading.Thread(target=self._save_loop, name="codekin-save-sync", daemon=True).start()
        threading.Thread(target=self._fill_dense, name="codekin-dense", daemon=True).start()
        if watch:
            from codekin.sync import Watcher

            self._watcher = Watcher(self.root, self.config, self.embedder, on_sync=self._watcher_synced,
                                    on_error=self._watcher_error)
            self._watcher.start()

    def stop(self) -> None:
        """Stop at once: a sync in progress finishes in its daemon thread (it is crash-safe)."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if self._watcher is not None:
            self._watcher.stop(timeout=0)

    def saved(self, paths: list[str]) -> None:
        with self._wake:
            self._saved.update(paths)
            self._wake.notify_all()

    @property
    def busy(self) -> bool:
        with self._wake:
            return self._busy or self._filling or bool(self._saved)

    @property
    def pending(self) -> int:
        """Saved paths not synced yet plus the durable queue (hooks, watcher)."""
        from codekin.queue import ChangeQueue

        with self._wake:
            saved = len(self._saved)
        with ChangeQueue(self.root) as queue:
            return saved + queue.stats().pending

    # -- the save thread -------------------------------------------------------------------
    def _save_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                self._wake.wait_for(lambda: self._saved or self._stop.is_set())
            if self._stop.wait(DEBOUNCE_S):
                return
            with self._wake:
                paths = sorted(self._saved)
                self._saved.clear()
                self._busy = True
            try:
                self._sync_saved(paths)
            except IndexLockedError as exc:
                log.info("index busy (%s); retrying in %.0f s", exc.message, RETRY_S)
                self.saved(paths)
                self._stop.wait(RETRY_S)
            except IndexMissingError:
                log.info("no index yet in %s: saved files wait for `codekin index`", self.root)
            except StaleModelError as exc:
                if self._follow_model(exc):
                    self.saved(paths)  # again, with the model the index follows now
            except CodekinError as exc:
                self.warn(f"codekin: indexing saved files failed: {exc}")
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def _sync_saved(self, paths: list[str]) -> None:
        from codekin.index.store import IndexStore
        from codekin.queue import ChangeQueue
        from codekin.sync import drain

        if not IndexStore(self.root).exists():
            raise IndexMissingError(f"no index in {self.root}")
        with ChangeQueue(self.root) as queue:
            queue.add(paths, event="save")
        with self.progress(f"codekin: indexing {len(paths)} saved file(s)", len(paths)) as bar:
            summary = drain(self.root, self.config, self.embedder, wait=LOCK_WAIT_S, progress=self.progress)
            bar.advance(len(paths))
        if summary.index is not None:
            self.on_synced()

    # -- phase 2 of an index that has none yet (its thread) ----------------------------------
    def _fill_dense(self) -> None:
        """Embed what the index holds without a vector, while queries use what exists."""
        from codekin.index.phases import dense_pending
        from codekin.indexer import Indexer

        if self.embedder is None or not dense_pending(self.root):
            return
        with self._wake:
            self._filling = True
        try:
            Indexer(self.root, self.config, embedder=self.embedder, progress=self.progress).run(paths=[],
                                                                                              wait=LOCK_WAIT_S)
        except IndexLockedError as exc:
            log.info("dense layer: %s; the next sync embeds it", exc.message)
            return
        except StaleModelError as exc:
            self._follow_model(exc)
            return
        except CodekinError as exc:
            self.warn(f"codekin: embedding the index failed: {exc}")
            return
        finally:
            with self._wake:
                self._filling = False
        self.on_synced()

    # -- watcher callbacks (its thread) ------------------------------------------------------
    def _watcher_synced(self, summary: SyncSummary) -> None:
        log.info("watcher: %s", summary.describe())
        self.on_synced()

    def _follow_model(self, exc: StaleModelError) -> bool:
        """Another process promoted and re-embedded a model: reload it. False when nothing reloaded."""
        log.info("%s: reloading", exc.message)
        problem: CodekinError = exc
        try:
            if self.on_stale is not None and self.on_stale():
                return True
        except CodekinError as error:
            problem = error
        self.warn(f"codekin: {problem}")
        return False

    def _watcher_error(self, exc: BaseException) -> None:
        if isinstance(exc, StaleModelError):
            self._follow_model(exc)  # the queued paths wait in the queue for the next sync
        elif isinstance(exc, IndexLockedError | IndexMissingError):
            log.info("watcher: %s", exc)  # retried on the next change
        elif isinstance(exc, CodekinError):
            self.warn(f"codekin: keeping the index fresh failed: {exc}")
        else:
            self.warn(f"codekin: the workspace watcher stopped: {exc!r}")
