"""Progress reporting as a context manager, so "end" always happens.

The CLI uses a tqdm bar on stderr (without a terminal: a plain line every few seconds);
the language server plugs in `$/progress`. `Heartbeat` tells about one long step that has
no count (the one-time int8 export).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Protocol


def line_every() -> float:
    """Seconds between progress lines when stderr is not a terminal (CODEKIN_PROGRESS_EVERY_S)."""
    try:
        return max(0.0, float(os.environ.get("CODEKIN_PROGRESS_EVERY_S", "5")))
    except ValueError:
        return 5.0


def say(message: str) -> None:
    """One line for the person waiting (stderr: stdout stays for results and --json)."""
    print(message, file=sys.stderr, flush=True)


class Progress(Protocol):
    def __enter__(self) -> Progress: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None: ...
    def advance(self, n: int) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, title: str, total: int) -> Progress: ...


class NullProgress:
    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, n: int) -> None:
        return None

    def note(self, message: str) -> None:
        return None


def no_progress(title: str, total: int) -> Progress:
    return NullProgress()


class BarProgress:
    """A tqdm bar in a terminal; elsewhere (logs, CI, an editor's output pane) a line every
    few seconds, so a long step never looks hung."""

    def __init__(self, title: str, total: int, unit: str = "chunk") -> None:
        self.title, self.total, self.done = title, total, 0
        self.started = self.last = time.monotonic()
        self.lines = not sys.stderr.isatty()
        self.bar = None
        if not self.lines:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=title, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    def __enter__(self) -> BarProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.done and time.monotonic() - self.started >= line_every():
            say(f"{self.title}: {self.done}/{self.total} in {time.monotonic() - self.started:.0f} s")

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= line_every():
            self.last = now
            rate = self.done / max(now - self.started, 1e-6)
            left = f", about {(self.total - self.done) / rate:.0f} s left" if rate > 0 else ""
            speed = f"{1 / rate:.1f} s each" if 0 < rate < 1 else f"{rate:.1f}/s"  # a CPU training step: ~9 s
            say(f"{self.title}: {self.done}/{self.total} ({100 * self.done // max(self.total, 1)}%), "
                f"{speed}{left}")

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(message)
        else:
            say(f"{self.title}: {message}")


class Heartbeat:
    """A long step without a count: says it started, says every few seconds that it is still
    running, and says how long it took (or that it failed)."""

    def __init__(self, title: str, every: float | None = None) -> None:
        self.title = title
        self.every = line_every() if every is None else every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        say(f"{self.title} ...")
        if self.every > 0:
            self._thread = threading.Thread(target=self._beat, name="codekin-heartbeat", daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            say(f"{self.title}: still working ({time.monotonic() - self.started:.0f} s)")

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        outcome = "failed" if exc_type is not None else "done"
        say(f"{self.title}: {outcome} in {time.monotonic() - self.started:.1f} s")
