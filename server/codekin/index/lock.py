"""The index writer's lock: one writer of the index files under `.codekin/` at a time
(a codekin.locks.FileLock; a refused caller is told who holds it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codekin.errors import CodekinError, IndexLockedError
from codekin.locks import FileLock
from codekin.state import INDEX_LOCK


def _index_locked(holder: dict[str, Any]) -> CodekinError:
    command = f" ({holder['command']})" if holder.get("command") else ""
    return IndexLockedError(
        f"the index is locked by pid {holder.get('pid', '?')}{command} since {holder.get('since', '?')}",
        "wait for that codekin command to finish (or pass --wait SECONDS)",
    )


class IndexLock(FileLock):
    """One index writer at a time: .codekin/index.lock (or another named lock there)."""

    def __init__(self, state_dir: Path, wait: float = 0.0, name: str = INDEX_LOCK) -> None:
        super().__init__(state_dir / name, _index_locked, wait)
