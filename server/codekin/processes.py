"""Whether a process still runs: the one check behind stale locks, leftover temporary files
and runs recorded as running by a process that is gone."""

from __future__ import annotations

import os


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
