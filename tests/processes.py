"""Linux /proc views of processes, for tests that check what a command leaves running."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(stat: Path) -> list[str]:
    """The fields after a process's `(name)` in /proc/PID/stat: state, ppid, pgrp, ..."""
    return stat.read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    try:
        return _stat_fields(Path(f"/proc/{pid}/stat"))[0] != "Z"
    except (OSError, IndexError):
        return False


def _live_with(field: int, value: int) -> list[int]:
    """Live (not zombie) processes whose stat field `field` (1: ppid, 2: pgrp) is `value`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat)
        except (OSError, IndexError):
            continue
        if int(fields[field]) == value and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def children_of(pid: int) -> list[int]:
    return _live_with(1, pid)


def group_members(pgid: int) -> list[int]:
    """Processes of a process group (a server started as a session leader, with its children)."""
    return _live_with(2, pgid)
