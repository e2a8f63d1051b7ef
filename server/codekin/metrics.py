"""`.codekin/metrics.db` (SQLite): training runs, epochs, evaluations and embedding jobs.

Written by the training pipeline and the re-embedding job, read by the dashboard and
`codekin models list`. WAL mode so a reader never blocks the writer.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

from codekin.processes import pid_alive
from codekin.state import METRICS_DB, state_path
from codekin.workspace import ensure_state_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL, pid INTEGER,
    base_version TEXT, new_version TEXT, base_model TEXT, device TEXT,
    triplets INTEGER, epochs INTEGER, learning_rate REAL, batch_size INTEGER, loss TEXT,
    promoted INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', seconds REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id), epoch INTEGER NOT NULL,
    loss REAL, accuracy REAL, seconds REAL, recorded_at REAL NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS evals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER REFERENCES runs(id),
    model_version TEXT NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embedding_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL,
    status TEXT NOT NULL, model_version TEXT, model_key TEXT, device TEXT,
    chunks INTEGER, seconds REAL, embeddings_per_second REAL, reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS evals_run ON evals(run_id);
"""
RUN_FIELDS = ("base_version", "new_version", "base_model", "device", "triplets", "epochs", "learning_rate",
              "batch_size", "loss", "promoted", "reason", "seconds", "status", "finished_at")
JOB_FIELDS = ("model_version", "model_key", "device", "chunks", "seconds", "embeddings_per_second", "reason",
              "status", "finished_at")


# The metric a promotion was decided on, most specific first: doc->code MRR@10 through search,
# the search mean over query kinds, the held-out triplets' MRR@10 (training/judging/).
DECIDING_METRICS = ("search_doc_to_code_mrr@10", "search_mrr@10", "mrr@10")


def deciding_metric(metrics: dict[str, Any]) -> str | None:
    """The first of DECIDING_METRICS that `metrics` holds as a finite number."""
    for name in DECIDING_METRICS:
        value = metrics.get(name)
        if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
            return name
    return None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _damaged(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(sign in text for sign in ("malformed", "not a database", "unsupported file format", "corrupt"))


class MetricsStore:
    """`with MetricsStore(root) as metrics: run = metrics.start_run(...)`."""

    def __init__(self, root: Path) -> None:
        self.path = state_path(root, METRICS_DB)
        ensure_state_dir(Path(root))
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _damaged(exc):
                raise  # locked or busy: not damage
            self._move_aside(exc)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.text_factory = _text  # a scribbled page that passes quick_check may hold invalid UTF-8
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed (quick_check)")
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                db.executescript(SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, exc: sqlite3.DatabaseError) -> None:
        """The metrics are a record, not a dependency: a damaged database is kept for a look
        and a fresh one started, so training and the dashboard go on."""
        aside = self.path.with_name(f"metrics.db.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{aside}{suffix}"))
        log.warning("codekin: %s was damaged (%s); moved it to %s and started a new one "
                    "(earlier runs are missing from the dashboard)", self.path, exc, aside.name)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> MetricsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _known(fields: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
        unknown = set(fields) - set(allowed)
        if unknown:
            raise ValueError(f"unknown metrics fields: {', '.join(sorted(unknown))}")
        return fields

    def _update(self, table: str, row_id: int, fields: dict[str, Any]) -> None:
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*fields.values(), row_id))

    # -- training runs ---------------------------------------------------------------------
    def start_run(self, **fields: Any) -> int:
        fields = self._known({"status": "running", **fields}, RUN_FIELDS)
        columns = ", ".join(["started_at", "pid", *fields])
        marks = ", ".join("?" * (len(fields) + 2))
        cursor = self.db.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})",
                                 (time.time(), os.getpid(), *fields.values()))
        return cast(int, cursor.lastrowid)  # set by every INSERT

    def update_run(self, run_id: int, **fields: Any) -> None:
        self._update("runs", run_id, self._known(fields, RUN_FIELDS))

    def finish_run(self, run_id: int, status: str, **fields: Any) -> None:
        """status: completed | failed. Sets finished_at and the run's duration."""
        row = self.db.execute("SELECT started_at FROM runs WHERE id = ?", (run_id,)).fetchone()
        now = time.time()
        seconds = now - row["started_at"] if row else None
        self.update_run(run_id, status=status, finished_at=now, seconds=seconds, **fields)

    def fail_stale_runs(self) -> int:
        """Runs still 'running' whose process is gone (killed): recorded as failed."""
        stale = [r["id"] for r in self.db.execute("SELECT id, pid FROM runs WHERE status = 'running'")
                 if not pid_alive(r["pid"])]
        for run_id in stale:
            self.finish_run(run_id, "failed", reason="interrupted: the training process ended without finishing")
        return len(stale)

    def record_epoch(self, run_id: int, epoch: int, loss: float, accuracy: float, seconds: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, epoch, loss, accuracy, seconds, time.time()))

    def record_evals(self, run_id: int | None, model_version: str, split: str, metrics: dict[str, Any]) -> None:
        now = time.time()
        rows = [(run_id, model_version, split, name, float(value), now)
                for name, value in metrics.items() if isinstance(value, int | float) and not isinstance(value, bool)]
        self.db.executemany("INSERT INTO evals (run_id, model_version, split, metric, value, recorded_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", rows)

    # -- embedding jobs --------------------------------------------------------------------
    def start_embedding_job(self, **fields: Any) -> int:
        fields = self._known({"status": "running", **fields}, JOB_FIELDS)
        columns = ", ".join(["started_at", *fields])
        marks = ", ".join("?" * (len(fields) + 1))
        cursor = self.db.execute(f"INSERT INTO embedding_jobs ({columns}) VALUES ({marks})",
                                 (time.time(), *fields.values()))
        return cast(int, cursor.lastrowid)  # set by every INSERT

    def finish_embedding_job(self, job_id: int, status: str, chunks: int, **fields: Any) -> None:
        row = self.db.execute("SELECT started_at FROM embedding_jobs WHERE id = ?", (job_id,)).fetchone()
        now = time.time()
        seconds = now - row["started_at"] if row else 0.0
        rate = chunks / seconds if seconds > 0 else 0.0
        self._update("embedding_jobs", job_id, self._known(
            {"status": status, "finished_at": now, "chunks": chunks, "seconds": seconds,
             "embeddings_per_second": rate, **fields}, JOB_FIELDS))

    # -- reading ---------------------------------------------------------------------------
    def runs(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))]

    def run(self, run_id: int) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))]

    def evals(self, run_id: int | None = None, model_version: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM evals WHERE 1 = 1"
        params: list[Any] = []
        if run_id is not None:
            query, params = query + " AND run_id = ?", [*params, run_id]
        if model_version is not None:
            query, params = query + " AND model_version = ?", [*params, model_version]
        return [dict(r) for r in self.db.execute(query + " ORDER BY id", params)]

    def embedding_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM embedding_jobs ORDER BY id DESC LIMIT ?", (limit,))]
