"""One writer at a time: an flock on .codekin/index.lock shared by every codekin process."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from codekin.errors import IndexLockedError


class IndexLock:
    """Exclusive lock; waits up to `wait` seconds, then says who holds it."""

    def __init__(self, state_dir: Path, wait: float = 0.0, name: str = "index.lock") -> None:
        self.path = state_dir / name
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> IndexLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                    os.close(fd)
                    raise IndexLockedError(
                        f"the index is locked by {holder}",
                        "wait for that codekin command to finish (or pass --wait SECONDS)",
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
