"""Keep the index in step with the repository: drain the change queue, watch the tree.

The plain API, shared by the CLI and the language server (safe to call from a
background thread; every call opens its own queue connection):

- `drain(root, config, embedder=None, full_check=False, wait=0.0) -> SyncSummary`
  ingests the git hooks' records, indexes every queued path in one batched
  `Indexer.run(paths=...)` and only then removes those paths from the queue.
- `Watcher(root, config, embedder=None, ...)` with `start()` / `stop()` (a thread) or
  `run()` (blocking): watchfiles with a debounce; queues changed files, drains.

One sync at a time per repository: `.codekin/sync.lock`, then the indexer's own
`index.lock`; a second caller waits `wait` seconds, then gets IndexLockedError.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from codekin import git
from codekin.config import Config
from codekin.embedding import Embedder, load_embedder
from codekin.errors import CodekinError, IndexMissingError
from codekin.index.lock import IndexLock
from codekin.index.store import FileRecord, IndexStore
from codekin.indexer import Indexer, IndexSummary, workspace_changes
from codekin.progress import ProgressFactory, no_progress
from codekin.queue import ChangeQueue
from codekin.state import SPOOL_DIR, STATE_DIR, SYNC_LOCK, in_state_dir
from codekin.workspace import matches


@dataclass
class SyncSummary:
    records: int = 0  # git hook records moved into the queue
    queued: int = 0  # paths taken from the queue
    full_check: bool = False  # every file's size and mtime were compared with the index
    changed: int = 0  # paths handed to the indexer: their size or mtime differ from the index
    completed: int = 0  # queue rows removed after the index committed
    remaining: int = 0  # paths still queued (queued again while this sync ran)
    resumed: bool = False  # the previous sync died half way; this one finished its work
    index: IndexSummary | None = None  # None: nothing had changed, the indexer did not run
    seconds: float = 0.0

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "index"}
        out["seconds"] = round(self.seconds, 3)
        out["index"] = self.index.to_dict() if self.index else None
        return out

    def describe(self) -> str:
        source = f"{self.queued} queued paths" + (" and a full check" if self.full_check else "")
        if self.index is None:
            return f"Index is up to date ({source}, nothing changed)"
        idx = self.index
        if idx.rebuilt:
            return f"Rebuilt the index from the source files ({idx.rebuilt}): {idx.chunks} chunks in {self.seconds:.1f} s"
        return (f"Synced {self.changed} changed paths ({source}): {idx.changed_files} files re-chunked, "
                f"{idx.removed_files} removed, {idx.new_embeddings} new embeddings in {self.seconds:.1f} s"
                + (f"; {self.remaining} queued meanwhile" if self.remaining else ""))


def changed_paths(root: Path, paths: Iterable[str], records: dict[str, FileRecord]) -> set[str]:
    """The paths whose size or mtime differ from their index record, new files and indexed
    files that are gone: what the indexer would look at (stat only, nothing is read)."""
    out: set[str] = set()
    for rel in paths:
        try:
            st = os.lstat(root / rel)
        except OSError:
            if rel in records:
                out.add(rel)
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        record = records.get(rel)
        if record is None or (record.size, record.mtime_ns) != (st.st_size, st.st_mtime_ns):
            out.add(rel)
    return out


def stale_paths(root: Path, config: Config, records: dict[str, FileRecord]) -> set[str]:
    """Every file of the workspace scan that differs from the index, and indexed files no
    longer in it (deleted, newly ignored or excluded)."""
    return set().union(*workspace_changes(root, config, records).values())


def expand_paths(root: Path, paths: Iterable[str], records: dict[str, FileRecord]) -> set[str]:
    """The files behind queued paths: a directory (as a watcher reports a renamed or
    removed folder) stands for the files under it now and the indexed files it held."""
    out: set[str] = set()
    folders: set[str] | None = None  # every folder that holds an indexed file
    for rel in paths:
        full = root / rel
        out.add(rel)
        if full.is_dir() and not full.is_symlink():
            for directory, dirnames, filenames in os.walk(full):
                dirnames[:] = [d for d in dirnames if d != ".git"]
                out.update(Path(directory, name).relative_to(root).as_posix() for name in filenames)
        if rel not in records:
            if folders is None:
                folders = {parent for p in records for parent in _parents(p)}
            if rel.rstrip("/") in folders:
                prefix = rel.rstrip("/") + "/"
                out.update(p for p in records if p.startswith(prefix))
    return out


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def require_index(root: Path) -> IndexStore:
    """The repository's index store; IndexMissingError (with the fix) when there is none."""
    store = IndexStore(root)
    if not store.exists():
        raise IndexMissingError(f"no index in {root} yet, so there is nothing to sync",
                                f"run `codekin index {root}` once; hooks and `codekin sync` keep it fresh after that")
    return store


def drain(root: Path, config: Config, embedder: Embedder | None = None, *, full_check: bool = False,
          wait: float = 0.0, progress: ProgressFactory = no_progress) -> SyncSummary:
    """Bring the index up to date with the queued changes (and, with `full_check`, with
    every file whose size or mtime changed, e.g. after `git stash`, which runs no hook).

    Idempotent, and a no-op (the indexer does not even run) when nothing changed. A path
    leaves the queue only after `Indexer.run` has committed it, so a crash or kill at
    any point loses nothing. Raises IndexMissingError when the repository has no index
    yet and IndexLockedError when another sync or indexer holds the lock longer than
    `wait` seconds.
    """
    started = time.perf_counter()
    store = require_index(root)
    summary = SyncSummary(full_check=full_check)
    with IndexLock(store.state_dir, wait=wait, name=SYNC_LOCK), ChangeQueue(root) as queue:
        summary.resumed = queue.begin_sync()
        summary.records = queue.ingest()
        batch = queue.take()
        summary.queued = len(batch.seqs)
        summary.full_check = full_check or batch.full_scan
        paths: set[str] = set()
        if batch.seqs or summary.full_check:
            records = store.file_records()
            paths = changed_paths(root, expand_paths(root, batch.seqs, records), records)
            paths = indexable(root, config, paths, records)
            if summary.full_check:
                paths |= stale_paths(root, config, records)
        summary.changed = len(paths)
        if paths or summary.resumed:  # the indexer also embeds what a killed sync left unembedded
            indexer = Indexer(root, config, embedder=embedder, progress=progress)
            summary.index = indexer.run(paths=sorted(paths), wait=wait)
        summary.completed = queue.complete(batch)
        summary.remaining = queue.stats().pending
    summary.seconds = time.perf_counter() - started
    return summary


def indexable(root: Path, config: Config, paths: set[str], records: dict[str, FileRecord]) -> set[str]:
    """Drop the paths the workspace scan would leave out (excluded, not included, ignored
    by git) unless the index holds them: those must go."""
    candidates = sorted(p for p in paths if p not in records and not p.startswith(f"{STATE_DIR}/")
                        and not (config.index.include and not matches(p, config.index.include))
                        and not matches(p, config.index.exclude))
    return {p for p in paths if p in records} | (set(candidates) - ignored_by_git(root, candidates))


def ignored_by_git(root: Path, paths: list[str]) -> set[str]:
    """The paths .gitignore (and info/exclude, core.excludesFile) ignore; tracked files never are."""
    return git.ignored(root, paths)  # outside a git repository nothing is ignored


class Watcher:
    """Keeps one repository's index fresh while it runs.

    Watches the working tree with watchfiles (changes are debounced by `debounce_ms`),
    queues the changed paths outside .git/ and [index] exclude, and drains the queue
    (the drain keeps only what the workspace scan includes), including the git hooks'
    records, which land in `.codekin/queue.d/`. So saved-but-uncommitted edits are
    indexed too, exactly as a full index would see them.
    Before watching it runs one full check, catching up on what changed while nothing
    watched, and another at the first quiet moment (covering the start-up gap).

    `on_sync(summary)` is called after every sync that did something; `on_error(exc)`
    with a CodekinError (e.g. IndexLockedError while `codekin index` runs; the queued
    paths are retried every `retry_s` seconds) or, once, with any other exception that
    ended the watcher. The embedder is loaded in the watcher's thread when none is
    given; pass the language server's own to load the model only once.

        watcher = Watcher(root, config, embedder=engine.embedder, on_sync=report)
        watcher.start()   # returns at once; the work happens in a daemon thread
        ...
        watcher.stop()    # stops watching and joins the thread
    """

    def __init__(self, root: Path, config: Config, embedder: Embedder | None = None, *,
                 debounce_ms: int = 200, retry_s: float = 2.0, lock_wait: float = 30.0,
                 on_sync: Callable[[SyncSummary], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.config = config
        self.embedder = embedder
        self.debounce_ms = debounce_ms
        self.retry_s = retry_s
        self.lock_wait = lock_wait
        self.on_sync = on_sync
        self.on_error = on_error
        self.syncs = 0  # syncs that indexed something
        self.error: BaseException | None = None  # what ended the watcher, if anything
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._spool_prefix = f"{STATE_DIR}/{SPOOL_DIR}/"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Run the watcher in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_reporting, name="codekin-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; waits for a sync in progress to finish (up to `timeout`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the first full check is done and changes are being watched."""
        return self._ready.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run_reporting(self) -> None:
        try:
            self.run()
        except Exception as exc:  # reported, not hidden: the thread would swallow it silently
            self.error = exc
            if self.on_error:
                self.on_error(exc)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """Watch and sync until stop() is called (blocking)."""
        from watchfiles import watch

        if self.embedder is None:
            self.embedder = load_embedder(self.config.model)
        full_due = not self._sync(full_check=True)  # catch up; owed again if it failed
        quiet_check = True  # one more full check at the first quiet moment: the start-up gap
        retry = False
        self._ready.set()
        for changes in watch(self.root, watch_filter=self._wanted, debounce=self.debounce_ms, step=50,
                             stop_event=self._stop, rust_timeout=int(self.retry_s * 1000),
                             yield_on_timeout=True, raise_interrupt=False):
            rels = {self._relative(path) for _, path in changes}
            hook_records = any(rel.startswith(self._spool_prefix) for rel in rels)
            files = sorted(rel for rel in rels if not rel.startswith(f"{STATE_DIR}/"))
            if files:
                self._enqueue(files)
            if not changes and quiet_check:
                full_due, quiet_check = True, False
            if files or hook_records or retry or full_due:
                retry = not self._sync(full_check=full_due)
                full_due = full_due and retry

    def _relative(self, path: str) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def _wanted(self, change: object, path: str) -> bool:
        rel = self._relative(path)
        if rel.startswith("../") or rel == ".":
            return False
        if rel.startswith(self._spool_prefix):
            return rel.endswith(".ev")  # a git hook published a record
        if in_state_dir(rel):
            return False  # the index's own writes
        first = rel.split("/", 1)[0]
        return first != ".git" and not matches(rel, self.config.index.exclude)

    def _enqueue(self, paths: list[str]) -> None:
        try:
            with ChangeQueue(self.root) as queue:
                queue.add(paths, event="watch")
        except CodekinError as exc:
            if self.on_error:
                self.on_error(exc)

    def _sync(self, full_check: bool) -> bool:
        """One drain; False when it failed and should be retried."""
        try:
            summary = drain(self.root, self.config, self.embedder, full_check=full_check, wait=self.lock_wait)
        except CodekinError as exc:
            if self.on_error:
                self.on_error(exc)
            return False
        if summary.index is not None:
            self.syncs += 1
            if self.on_sync:
                self.on_sync(summary)
        return True
