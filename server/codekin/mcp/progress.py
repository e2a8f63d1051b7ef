"""codekin's progress reports (codekin.progress) as MCP progress notifications of one tool call.

A retrain reports several phases one after the other (training epochs, then the chunks a
promoted model re-embeds), each with its own total. MCP wants one number per call that only
grows, so each phase continues the count where the last one ended: its start counts one, each
unit one more, and `total` is where the current phase will end. The phase and its step are in
the message. Notifications go out through the event loop from the worker thread doing the work
(anyio.from_thread); a client that asked for no progress gets none (the SDK drops them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.from_thread

log = logging.getLogger(__name__)

REPORT_EVERY_S = 0.25  # re-embedding advances per batch; the client needs no more than this

Send = Callable[[float, float | None, str | None], Coroutine[Any, Any, None]]


class CallProgress:
    """A ProgressFactory bound to one tool call; use it from a thread anyio started."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = threading.Lock()
        self.count = 0  # units of every phase so far
        self.sent = 0  # the count last sent: a notification goes out only when it grew
        self.failed = False

    def __call__(self, title: str, total: int) -> Phase:
        return Phase(self, title, total)

    def report(self, total: float | None, message: str) -> None:
        with self._lock:
            if self.failed or self.count <= self.sent:
                return
            self.sent = self.count
            progress = self.count
        try:
            anyio.from_thread.run(self._send, float(progress), total, message)
        except Exception as exc:  # the call ended, or the client went away: the work goes on
            log.info("progress not sent (%s); sending no more for this call", exc)
            self.failed = True


class Phase:
    def __init__(self, call: CallProgress, title: str, total: int) -> None:
        self.call = call
        self.title = title.removeprefix("codekin: ")
        self.total = total
        self.done = 0
        self.end: float | None = None
        self._last = 0.0

    def __enter__(self) -> Phase:
        self.call.count += 1
        self.end = float(self.call.count + self.total) if self.total else None
        self.call.report(self.end, self.title)
        self._last = time.monotonic()
        return self

    def advance(self, n: int) -> None:
        self.done += n
        self.call.count += n
        now = time.monotonic()
        if now - self._last >= REPORT_EVERY_S or (self.total and self.done >= self.total):
            self._last = now
            self.call.report(self.end, f"{self.title}: {self.done}/{self.total}" if self.total else self.title)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            return
        self.call.report(self.end, f"{self.title}: {self.done}/{self.total}" if self.total else f"{self.title}: done")
