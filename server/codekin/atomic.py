"""Files written whole or not at all: a temporary sibling, then one rename.

A reader sees the old file or the new one, never half of either; a write that fails (a full
disk, an interrupt) leaves no temporary behind, and `durable` writes survive a power cut.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codekin.processes import pid_alive


def temporary_of(path: Path) -> Path:
    """The temporary sibling a write of `path` by this process uses: `.<name>.<pid>.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None, durable: bool = False) -> None:
    """Replace `path` with `data` (text is UTF-8); `mode` sets the permission bits first."""
    tmp = temporary_of(path)
    try:
        with tmp.open("wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or an interrupt leaves no partial file behind
        raise
    if durable:
        fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2, sort_keys: bool = True,
                      durable: bool = True) -> None:
    """Write `path` whole or not at all; first remove what a killed earlier write of it left."""
    remove_stale_json_temporaries(path.parent, path.name)
    write_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys), durable=durable)


def remove_stale_json_temporaries(directory: Path, name: str = "*") -> list[str]:
    """Remove `.<name>.<pid>.tmp` files that a killed `write_atomic` left in `directory`
    (only those of processes that are gone: a live writer's file is its own)."""
    removed = []
    for path in directory.glob(f".{name}.*.tmp") if directory.is_dir() else []:
        pid = path.name[:-len(".tmp")].rsplit(".", 1)[-1]
        if path.is_file() and pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
