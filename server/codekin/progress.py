"""Progress reporting as a context manager, so "end" always happens.

The CLI uses a tqdm bar on stderr; the language server plugs in `$/progress`.
"""

from __future__ import annotations

import sys
from typing import Protocol


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
    def __init__(self, title: str, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=title, unit="chunk", file=sys.stderr, leave=False,
                        disable=not sys.stderr.isatty(), dynamic_ncols=True)

    def __enter__(self) -> BarProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def advance(self, n: int) -> None:
        self.bar.update(n)

    def note(self, message: str) -> None:
        self.bar.set_postfix_str(message)
