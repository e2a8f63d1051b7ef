"""The durable change queue: which paths the index must look at again.

Two parts under .codekin/:
- `queue.d/`: one record file per git hook event, written by the POSIX sh hook (no
  Python on the commit path) under a name it claims with noclobber, and ended by a
  trailer line, so a reader takes whole records only. One file per event rather than
  one shared journal: a writer that opened a journal just before a reader renamed it
  away would append to the renamed file after the reader had read it, and that tail
  would be lost.
- `queue.db` (SQLite, WAL): the paths still to index, one row per path. `ingest()` moves
  records in (commit first, then delete the file: a crash in between re-reads the file,
  which is harmless because rows are keyed by path). A row leaves the queue only through
  `complete(batch)`, called after the index has committed the new rows; a path queued
  again while it was being indexed has a newer `seq` and stays.

The queue can also hold a request for a full scan (a file checkout, a record that could
not be read): then the next sync checks every file rather than a list.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from codekin.errors import QueueError
from codekin.index.lock import IndexLock
from codekin.state import QUEUE_DB, QUEUE_LOCK, SPOOL_DIR, state_path
from codekin.workspace import ensure_state_dir

RECORD_MAGIC = b"codekin-queue 2"
RECORD_END = b"codekin-end\n"
UNFINISHED_SECONDS = 60  # a record still without its end line after this belongs to a hook that died

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    path BLOB PRIMARY KEY,  -- repository-relative, file-system bytes
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    head TEXT NOT NULL,
    queued_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ChangeRecord:
    """One hook event as written to queue.d/."""

    event: str
    head: str
    full_scan: bool
    paths: tuple[str, ...]


def parse_record(data: bytes) -> ChangeRecord:
    """Read a whole record; anything unreadable asks for a full scan (nothing is dropped)."""
    header, sep, body = data.partition(b"\n\n")
    lines = header.split(b"\n")
    if not sep or lines[0] != RECORD_MAGIC or len(lines) != 3 or not body.endswith(RECORD_END):
        return ChangeRecord("unreadable", "", True, ())
    event, scan = (line.decode("utf-8", "replace") for line in lines[1:])
    head, *paths = body[:-len(RECORD_END)].split(b"\0")
    return ChangeRecord(event, head.decode("ascii", "replace"), scan != "0",
                        tuple(os.fsdecode(p) for p in paths if p))


def is_whole(data: bytes) -> bool:
    """False for a record its hook is still writing (or died writing)."""
    return data.endswith(RECORD_END)


@dataclass
class Batch:
    """A snapshot of the queue taken by a sync."""

    seqs: dict[str, int] = field(default_factory=dict)  # path -> seq when taken
    scan_seq: int = 0  # > 0: a full scan was asked for

    @property
    def paths(self) -> list[str]:
        return sorted(self.seqs)

    @property
    def full_scan(self) -> bool:
        return self.scan_seq > 0

    def __bool__(self) -> bool:
        return bool(self.seqs) or self.full_scan


@dataclass
class QueueStats:
    pending: int  # queued paths
    full_scan: bool  # a full scan is queued
    records: int  # hook records not yet ingested
    oldest_at: float | None  # when the oldest queued path was queued (epoch seconds)
    last_event: str
    last_head: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ChangeQueue:
    """The queue of one repository. Use from one thread; open one per thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_dir = state_path(root)
        self.spool = self.state_dir / SPOOL_DIR
        self.path = self.state_dir / QUEUE_DB
        ensure_state_dir(root)
        self.spool.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # queued paths survive a power cut
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> QueueError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return QueueError(f"the change queue {self.path} stayed locked for 10 s",
                              "another codekin process holds it; try again in a moment")
        return QueueError(f"the change queue {self.path} is unusable: {exc}",
                          f"delete {self.path} and run `codekin sync` (a full check finds every change again)")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ChangeQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def _next_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        seq = int(row[0]) + 1 if row else 1
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seq', ?)", (str(seq),))
        return seq

    def _put(self, records: list[ChangeRecord]) -> None:
        """Queue the records' paths under one new seq (inside a transaction)."""
        seq = self._next_seq()
        now = time.time()
        self._db.executemany(
            "INSERT INTO changes VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "seq = excluded.seq, event = excluded.event, head = excluded.head, queued_at = excluded.queued_at",
            ((os.fsencode(p), seq, r.event, r.head, now) for r in records for p in r.paths))
        if any(r.full_scan for r in records):
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('scan_seq', ?)", (str(seq),))
        last = records[-1]
        meta = {"last_event": last.event, "last_head": last.head} if last.head else {"last_event": last.event}
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def add(self, paths: Iterable[str], event: str = "manual", head: str = "", full_scan: bool = False) -> None:
        """Queue repository-relative paths (and/or a full scan)."""
        try:
            with self._transaction():
                self._put([ChangeRecord(event, head, full_scan, tuple(paths))])
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def ingest(self) -> int:
        """Move the hooks' whole records into the database; returns how many were moved.

        A record without its end line is being written and is left for next time, unless
        it is older than UNFINISHED_SECONDS: its hook died, and a full scan is queued.
        """
        with IndexLock(self.state_dir, wait=10.0, name=QUEUE_LOCK):  # one reader of queue.d at a time
            cutoff = time.time() - UNFINISHED_SECONDS
            taken: list[tuple[Path, ChangeRecord]] = []
            for file in sorted(self.spool.glob("*.ev"), key=_mtime):
                try:
                    data = file.read_bytes()
                except FileNotFoundError:
                    continue
                except OSError:
                    data = b""
                if is_whole(data):
                    taken.append((file, parse_record(data)))
                elif _mtime(file) < cutoff:
                    taken.append((file, ChangeRecord("interrupted-hook", "", True, ())))
            if taken:
                try:
                    with self._transaction():
                        self._put([record for _, record in taken])
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc
                for file, _ in taken:  # only after the commit: a crash before here re-reads them
                    file.unlink(missing_ok=True)
        return len(taken)

    # -- draining --------------------------------------------------------------------------
    def take(self) -> Batch:
        """A snapshot of everything queued now."""
        try:
            rows = self._db.execute("SELECT path, seq FROM changes").fetchall()
            scan = self._db.execute("SELECT value FROM meta WHERE key = 'scan_seq'").fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return Batch({os.fsdecode(path): seq for path, seq in rows}, int(scan[0]) if scan else 0)

    def begin_sync(self) -> bool:
        """Mark a sync as started (call with the sync lock held). True when the previous
        sync died before `complete`: its marker is still there, so the index may miss
        the embeddings of files it had already written."""
        try:
            with self._transaction():
                interrupted = self._db.execute("SELECT 1 FROM meta WHERE key = 'sync_started'").fetchone()
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('sync_started', ?)", (str(time.time()),))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return interrupted is not None

    def complete(self, batch: Batch) -> int:
        """Forget what `batch` held, except paths queued again since, and end the sync
        `begin_sync` started; returns rows removed."""
        try:
            with self._transaction():
                self._db.execute("DELETE FROM meta WHERE key = 'sync_started'")
                removed = 0
                for path, seq in batch.seqs.items():
                    cursor = self._db.execute("DELETE FROM changes WHERE path = ? AND seq = ?",
                                              (os.fsencode(path), seq))
                    removed += cursor.rowcount
                if batch.scan_seq:
                    self._db.execute("DELETE FROM meta WHERE key = 'scan_seq' AND value = ?",
                                     (str(batch.scan_seq),))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return removed

    def stats(self) -> QueueStats:
        try:
            pending, oldest = self._db.execute("SELECT count(*), min(queued_at) FROM changes").fetchone()
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return QueueStats(pending=pending, full_scan="scan_seq" in meta,
                          records=sum(1 for _ in self.spool.glob("*.ev")), oldest_at=oldest,
                          last_event=meta.get("last_event", ""), last_head=meta.get("last_head", ""))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
