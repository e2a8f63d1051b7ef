"""`$/progress` as codekin's Progress context manager, usable from worker threads.

Every message goes through the event loop (`call_soon_threadsafe`), so a worker never
writes to stdout itself; "end" is always sent, also when the work fails. Clients that do
not announce `window.workDoneProgress` get nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

CREATE_TIMEOUT_S = 5.0
REPORT_EVERY_S = 0.25
_tokens = itertools.count(1)


class WorkDoneProgress:
    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop, title: str, total: int) -> None:
        self.server = server
        self.loop = loop
        self.title = title
        self.total = total
        self.done = 0
        self.token: str | None = None
        self._last_report = 0.0
        self.last_note: str | None = None

    def _supported(self) -> bool:
        window = self.server.client_capabilities.window
        return bool(window and window.work_done_progress)

    def __enter__(self) -> WorkDoneProgress:
        if not self._supported() or self.loop.is_closed():
            return self
        token = f"codekin-{next(_tokens)}"
        future = asyncio.run_coroutine_threadsafe(self.server.work_done_progress.create_async(token), self.loop)
        try:
            future.result(CREATE_TIMEOUT_S)
        except (FutureTimeout, JsonRpcException) as exc:
            log.info("client did not create progress %s: %s", token, exc)
            return self
        self.token = token
        begin = types.WorkDoneProgressBegin(title=self.title, percentage=0 if self.total else None)
        self._send(self.server.work_done_progress.begin, begin)
        return self

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.token is None or not self.total or now - self._last_report < REPORT_EVERY_S:
            return
        self._last_report = now
        report = types.WorkDoneProgressReport(message=f"{self.done}/{self.total}",
                                              percentage=min(100, self.done * 100 // self.total))
        self._send(self.server.work_done_progress.report, report)

    def note(self, message: str) -> None:
        """Say what the work is doing now (a phase, a result); sent at once, and the last one
        ends the progress."""
        self.last_note = message
        if self.token is None:
            return
        percentage = min(100, self.done * 100 // self.total) if self.total else None
        self._send(self.server.work_done_progress.report,
                   types.WorkDoneProgressReport(message=message, percentage=percentage))

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.token is None:
            return
        message = "failed" if exc_type is not None else self.last_note or (
            f"{self.done}/{self.total}" if self.total else "done")
        self._send(self.server.work_done_progress.end, types.WorkDoneProgressEnd(message=message))
        self.token = None

    def _send(self, method, value: object) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(method, self.token, value)


class ProgressReporter:
    """A ProgressFactory bound to one server and its event loop."""

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop

    def __call__(self, title: str, total: int) -> WorkDoneProgress:
        return WorkDoneProgress(self.server, self.loop, title, total)
