"""The durable change queue: records in, snapshots out, nothing lost under concurrency."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from codekin import githooks
from codekin.errors import QueueError
from codekin.queue import (
    RECORD_END,
    SPOOL_DIR,
    UNFINISHED_SECONDS,
    ChangeQueue,
    ChangeRecord,
    parse_record,
)
from tests.conftest import git, make_repo


def record(event: str, head: str, scan: str, paths: list[bytes]) -> bytes:
    body = head.encode() + b"\0" + b"".join(p + b"\0" for p in paths)
    return f"codekin-queue 2\n{event}\n{scan}\n\n".encode() + body + RECORD_END


def test_parse_record_keeps_odd_paths() -> None:
    data = record("post-commit", "abc", "0", [b"lib/a.ex", b"with\nnewline.ex", b"latin\xe9.ex"])
    parsed = parse_record(data)
    assert parsed == ChangeRecord("post-commit", "abc", False,
                                  ("lib/a.ex", "with\nnewline.ex", os.fsdecode(b"latin\xe9.ex")))
    assert parse_record(record("post-checkout", "abc", "1", [])).full_scan


@pytest.mark.parametrize("data", [b"", b"garbage", b"codekin-queue 1\nx\n0\n\nh\0a\0codekin-end\n",
                                  b"codekin-queue 2\npost-commit\n0\n\nh\0a\0",  # no end line
                                  b"codekin-queue 2\npost-commit\n0\ncodekin-end\n"])
def test_unreadable_record_asks_for_a_full_scan(data: bytes) -> None:
    parsed = parse_record(data)
    assert parsed.full_scan and parsed.event == "unreadable" and parsed.paths == ()


def test_add_take_complete_keeps_paths_queued_again(tmp_path: Path) -> None:
    with ChangeQueue(tmp_path) as queue:
        queue.add(["a.ex", "b.ex"], event="watch")
        batch = queue.take()
        assert batch.paths == ["a.ex", "b.ex"] and not batch.full_scan
        queue.add(["b.ex"], event="watch")  # saved again while the sync ran
        assert queue.complete(batch) == 1
        assert queue.take().paths == ["b.ex"]
        stats = queue.stats()
        assert (stats.pending, stats.full_scan, stats.last_event) == (1, False, "watch")


def test_full_scan_request_is_cleared_only_by_its_batch(tmp_path: Path) -> None:
    with ChangeQueue(tmp_path) as queue:
        queue.add([], event="post-checkout", full_scan=True)
        batch = queue.take()
        assert batch.full_scan and bool(batch)
        queue.add([], event="post-checkout", full_scan=True)  # asked again meanwhile
        queue.complete(batch)
        assert queue.take().full_scan
        queue.complete(queue.take())
        assert not queue.take()


def test_ingest_moves_records_and_survives_reopening(tmp_path: Path) -> None:
    spool = tmp_path / ".codekin" / SPOOL_DIR
    spool.mkdir(parents=True)
    (spool / "1.0.ev").write_bytes(record("post-commit", "h1", "0", [b"a.ex", b"b.ex"]))
    (spool / "2.0.ev").write_bytes(record("post-checkout", "h2", "0", [b"b.ex", b"c.ex"]))
    (spool / "3.0.ev").write_bytes(b"codekin-queue 2\npost-commit\n0\n\nh3\0")  # a hook still writing
    with ChangeQueue(tmp_path) as queue:
        assert queue.ingest() == 2
        assert queue.ingest() == 0
    assert sorted(p.name for p in spool.iterdir()) == ["3.0.ev"]
    with ChangeQueue(tmp_path) as queue:  # a new process sees the same queue
        assert queue.take().paths == ["a.ex", "b.ex", "c.ex"]
        assert queue.stats().last_head == "h2"


def test_unfinished_record_of_a_dead_hook_becomes_a_full_scan(tmp_path: Path) -> None:
    spool = tmp_path / ".codekin" / SPOOL_DIR
    spool.mkdir(parents=True)
    tmp = spool / "9.0.ev"
    tmp.write_bytes(b"codekin-queue 2\n")
    old = time.time() - UNFINISHED_SECONDS - 10
    os.utime(tmp, (old, old))
    with ChangeQueue(tmp_path) as queue:
        assert queue.ingest() == 1
        assert queue.take().full_scan and not tmp.exists()
        assert queue.stats().last_event == "interrupted-hook"


def test_concurrent_commits_are_never_lost(tmp_path: Path) -> None:
    """Real hooks publish records while another thread ingests in a loop."""
    root = make_repo(tmp_path / "repo", {"seed.ex": "seed\n"})
    githooks.install(root)
    names = [f"lib/f{i}.ex" for i in range(25)]
    done = threading.Event()
    ingested: list[int] = []

    def ingest_loop() -> None:
        with ChangeQueue(root) as queue:
            while not done.is_set():
                ingested.append(queue.ingest())
            ingested.append(queue.ingest())

    reader = threading.Thread(target=ingest_loop)
    reader.start()
    try:
        for name in names:
            (root / name).parent.mkdir(exist_ok=True)
            (root / name).write_text(f"{name}\n")
            git(root, "add", name)
            git(root, "commit", "-q", "-m", name)
    finally:
        done.set()
        reader.join()
    assert sum(ingested) == len(names)
    with ChangeQueue(root) as queue:
        assert queue.take().paths == sorted(names)


def test_damaged_database_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / ".codekin").mkdir()
    (tmp_path / ".codekin" / "queue.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(QueueError, match="unusable") as exc:
        ChangeQueue(tmp_path).take()
    assert "delete" in exc.value.hint and "codekin sync" in exc.value.hint


def test_sync_marker_reveals_a_sync_that_died(tmp_path: Path) -> None:
    with ChangeQueue(tmp_path) as queue:
        assert not queue.begin_sync()
        queue.complete(queue.take())
        assert not queue.begin_sync()  # started, then the process dies before complete()
    with ChangeQueue(tmp_path) as queue:
        assert queue.begin_sync()
