"""Which files belong to the index: git ls-files + untracked non-ignored, filtered by globs."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from codekin import git
from codekin.config import IndexConfig
from codekin.errors import WorkspaceError
from codekin.state import INDEX_STATE, LANCE_DIR, STATE_DIR

BINARY_SNIFF_BYTES = 8192
NOT_UTF8_NAME = "name is not UTF-8"


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative, POSIX separators
    size: int
    mtime_ns: int


@dataclass
class Scan:
    root: Path
    files: list[SourceFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    excluded: int = 0  # files left out by [index] include/exclude (vendored, generated, ...)


def find_root(start: Path) -> Path:
    """The git top-level containing `start`, or `start` itself outside git."""
    start = start.resolve()
    if not start.exists():
        raise WorkspaceError(f"{start} does not exist")
    directory = start if start.is_dir() else start.parent
    return git.toplevel(directory) or directory



def index_root(start: Path, named: bool = False) -> Path:
    """The root rule every command follows: the nearest directory at or above `start` that
    holds an index (`.codekin/state.json`, or the tables of a first index that was stopped); else a directory the user `named` (--repo DIR,
    `codekin status DIR`); else the git top-level of `start`, else its directory.
    (`codekin index DIR` indexes DIR as given, which makes DIR the root from then on.)"""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        state = candidate / STATE_DIR
        if (state / INDEX_STATE).is_file() or (state / LANCE_DIR).is_dir():  # or a first index, stopped
            return candidate
    return directory if named and start.is_dir() else find_root(directory)


_EXCLUDED: set[Path] = set()  # roots whose .codekin/ this process has seen git-ignored


def ensure_state_dir(root: Path) -> Path:
    """`root/.codekin/`, created if missing and listed in git's info/exclude unless git already
    ignores it (a .gitignore, core.excludesFile, or an earlier run): one `git add -A` must never
    commit the index or the models. Linked worktrees share their repository's info/exclude.
    Returns the state directory; outside git it is only created."""
    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    key = root.resolve()
    if key not in _EXCLUDED:
        _EXCLUDED.add(key)
        exclude_state_dir(root)
    return state


def exclude_state_dir(root: Path) -> str:
    """Add `.codekin/` to the repository's info/exclude when git does not ignore it yet.
    -> the exclude file written to, or "" (already ignored, or not a git repository)."""
    if git.returncode(root, "check-ignore", "-q", f"{STATE_DIR}/") != 1:  # 0: ignored; 128: no repository
        return ""
    where = git.text(root, "rev-parse", "--git-path", "info/exclude")
    if where is None:
        return ""
    exclude = (root / where).resolve()
    try:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        existing = exclude.read_bytes() if exclude.is_file() else b""
        separator = b"" if not existing or existing.endswith(b"\n") else b"\n"
        with exclude.open("ab") as handle:
            handle.write(separator + f"{STATE_DIR}/\n".encode())
    except OSError:
        return ""  # a read-only .git: the tracked-files warning of status/doctor still speaks up
    return str(exclude)


def tracked_state_files(root: Path) -> list[str]:
    """Files under `.codekin/` that git tracks (committed or staged): index and models in the
    repository's history, where they do not belong."""
    return git.ls_files(root, "--", STATE_DIR, timeout=30) or []


def tracked_warning(root: Path) -> str:
    """What status and doctor say when git tracks `.codekin/`, else ""."""
    tracked = tracked_state_files(root)
    if not tracked:
        return ""
    return (f"git tracks {len(tracked)} file(s) under {STATE_DIR}/ (the index and models belong to this "
            f"machine): run `git rm -r --cached {STATE_DIR}` and commit; codekin keeps {STATE_DIR}/ in "
            ".git/info/exclude")

def _git_paths(root: Path) -> list[str] | None:
    paths = git.ls_files(root, "--cached", "--others", "--exclude-standard")
    return None if paths is None else sorted(set(paths))


def _walk_paths(root: Path) -> list[str]:
    paths = []
    for directory, dirnames, filenames in os.walk(root):  # never follows symlinked dirs
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            paths.append(Path(directory, name).relative_to(root).as_posix())
    return sorted(paths)


def matches(path: str, patterns: list[str]) -> bool:
    """fnmatch where a leading `**/` also matches at the top level."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:]):
            return True
    return False


def utf8_name(rel: str) -> bool:
    """False for a name whose bytes are not UTF-8 (decoded with surrogateescape)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan(root: Path, config: IndexConfig) -> Scan:
    """List the candidate files under `root` with size and mtime; no file is read here."""
    result = Scan(root=root)
    paths = _git_paths(root)
    if paths is None:
        paths = _walk_paths(root)
    for rel in paths:
        if rel.startswith(f"{STATE_DIR}/") or rel.startswith(".git/"):
            continue
        if (config.include and not matches(rel, config.include)) or matches(rel, config.exclude):
            result.excluded += 1
            continue
        if not utf8_name(rel):  # the index stores names as UTF-8 text: it cannot hold this one
            result.skipped[rel] = NOT_UTF8_NAME
            continue
        full = root / rel
        try:
            st = full.lstat()
        except OSError:
            continue  # deleted but still in git's index: not a file any more
        if full.is_symlink():
            result.skipped[rel] = "symlink (not followed)"
        elif not full.is_file():
            continue  # submodule directories and other non-files
        elif st.st_size > config.max_file_bytes:
            result.skipped[rel] = f"too large ({st.st_size} bytes > {config.max_file_bytes})"
        else:
            result.files.append(SourceFile(rel, st.st_size, st.st_mtime_ns))
    return result


class UnreadableFile(Exception):
    """A file that cannot be indexed; the message is the reason shown to the user."""


def read_text(root: Path, rel: str) -> str:
    """Decode a file as UTF-8 text, or raise UnreadableFile with the reason."""
    try:
        data = (root / rel).read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"unreadable ({exc.strerror})") from exc
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise UnreadableFile("binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        raise UnreadableFile("empty")
    return text.replace("\r\n", "\n").replace("\r", "\n")
