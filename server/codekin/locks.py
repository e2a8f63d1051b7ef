"""Exclusive flock files shared by every codekin process: one index writer, one training.

The lock file holds {"pid", "since", "command"} of its holder, so a refused caller can say
who holds it; the kernel drops the lock when the holder dies, even by SIGKILL. The named
locks build on FileLock: codekin.index.lock.IndexLock, codekin.training.pipeline.TrainLock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codekin.errors import CodekinError


def read_holder(fd: int) -> dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 400, 0).decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        return {}


def lock_holder(path: Path) -> dict[str, Any] | None:
    """{"pid", "since"} of whoever holds the lock at `path`, or None when it is free."""
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(fd) or {"pid": None, "since": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class FileLock:
    """Exclusive lock; waits up to `wait` seconds, then raises `refused(holder)`."""

    def __init__(self, path: Path, refused: Callable[[dict[str, Any]], CodekinError], wait: float = 0.0) -> None:
        self.path = path
        self.refused = refused
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_holder(fd)
                    os.close(fd)
                    raise self.refused(holder) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "command": _command()}).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _command() -> str:
    """What holds a lock, for the one refused: `codekin index`, `codekin serve`, ..."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    verb = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else ""
    program = "codekin" if program in ("codekin", "__main__.py") else program
    return f"{program} {verb}".strip()
