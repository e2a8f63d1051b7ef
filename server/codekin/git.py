"""The `git` subprocesses codekin runs, in one place: how git is called, how long it may
take, and what a missing git or a folder outside a repository comes back as."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run(root: Path | str, *args: str, data: bytes | None = None,
        timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    """`git -C root ARGS`; raises OSError when git cannot start, TimeoutExpired past `timeout`."""
    return subprocess.run(["git", "-C", str(root), *args], input=data, capture_output=True, check=False,
                          timeout=timeout)


def output(root: Path | str, *args: str, data: bytes | None = None, timeout: float = 30.0,
           ok: tuple[int, ...] = (0,)) -> bytes | None:
    """git's stdout, or None when git cannot run, times out or exits with a code not in `ok`."""
    try:
        out = run(root, *args, data=data, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode in ok else None


def returncode(root: Path | str, *args: str, timeout: float = 30.0) -> int | None:
    """git's exit code, None when it cannot run or times out."""
    try:
        return run(root, *args, timeout=timeout).returncode
    except (OSError, subprocess.TimeoutExpired):
        return None


def text(root: Path | str, *args: str, timeout: float = 30.0) -> str | None:
    """git's stdout as stripped text, None as for `output`."""
    out = output(root, *args, timeout=timeout)
    return None if out is None else out.decode("utf-8", "surrogateescape").strip()


def head(root: Path | str) -> str:
    """The commit checked out, "" outside a repository or before the first commit."""
    return text(root, "rev-parse", "HEAD") or ""


def commit_time(root: Path | str) -> float | None:
    """When the checked-out commit was made (seconds since the epoch), None without one."""
    found = text(root, "log", "-1", "--format=%ct")
    return float(found) if found else None


def toplevel(directory: Path) -> Path | None:
    """The work tree that holds `directory`, None outside a repository."""
    found = text(directory, "rev-parse", "--show-toplevel", timeout=10)
    return Path(found).resolve() if found else None


def ls_files(root: Path | str, *args: str, timeout: float = 60.0) -> list[str] | None:
    """`git ls-files -z ARGS` as paths; None outside a repository or when git cannot run."""
    out = output(root, "ls-files", "-z", *args, timeout=timeout)
    return None if out is None else [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def tracks(root: Path | str, rel: str) -> bool:
    """git tracks a file at or under `rel`."""
    return bool(ls_files(root, "--", rel, timeout=30))


def ignored(root: Path | str, paths: list[str]) -> set[str]:
    """Those of `paths` that .gitignore (and friends) ignore; none outside a repository."""
    if not paths:
        return set()
    out = output(root, "check-ignore", "-z", "--stdin", data=os.fsencode("\0".join(paths)) + b"\0", ok=(0, 1))
    return {os.fsdecode(p) for p in out.split(b"\0") if p} if out is not None else set()
