"""What the state file records about the index, for readers that must answer without opening
LanceDB or loading the model (`codekin status`, `codekin doctor`, the server's status).

Every commit of an index pass writes, beside `dense` (chunk counts, index/phases.py), a
`files` entry: how many file records the index holds, a stamp of their (path, size, mtime),
and the files it read and refused, with the reason. A scan of the working tree (stat calls
only) that gives the same stamp means no file changed since; any other stamp sends the
reader to the file records in LanceDB, as before.

The state file itself is read and checked here (IndexStore.state() calls `load_state`), so a
reader does not import the store (numpy, pyarrow, the chunkers) to read it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.errors import IndexFormatError, IndexMissingError
from codekin.models.checkpoints import damage, read_json_object
from codekin.state import INDEX_STATE, STATE_DIR

if TYPE_CHECKING:
    from codekin.config import IndexConfig
    from codekin.index.store import FileRecord

FORMAT = 1  # of state.json; IndexStore writes it


def load_state(state_path: Path) -> dict:
    """The state file, checked: IndexMissingError when there is none, IndexFormatError when it
    is damaged or newer than this codekin."""
    if not state_path.is_file():
        root = state_path.parent.parent
        raise IndexMissingError(f"no index in {root}", f"run `codekin index {root}` first")
    try:
        state = read_json_object(state_path)
        if not isinstance(state.get("active_key"), str) or not isinstance(state.get("format", 0), int):
            raise ValueError("its active_key or format is missing or has the wrong type")
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"index state {state_path} is damaged: {damage(exc)}",
                               "run `codekin index`: it repairs it") from exc
    if state.get("format", 0) > FORMAT:
        raise IndexFormatError(
            f"the index was written by a newer codekin (format {state['format']} > {FORMAT})",
            "upgrade codekin (pip install -U codekin), or delete .codekin/index.lance and re-index",
        )
    return state


def files_stamp(entries: Iterable[tuple[str, int, int]]) -> str:
    """One digest of (path, size, mtime_ns) triples, whatever their order."""
    digest = hashlib.sha256()
    for path, size, mtime_ns in sorted(entries):
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def files_entry(records: dict[str, FileRecord]) -> dict[str, Any]:
    """The state file's `files` entry for these file records."""
    return {"indexed": len(records),
            "stamp": files_stamp((r.path, r.size, r.mtime_ns) for r in records.values()),
            "refused": {path: r.skip_reason for path, r in sorted(records.items()) if r.skip_reason}}


def recorded_counts(state: dict) -> dict[str, Any] | None:
    """Chunk and file counts as the last commit recorded them; None when the state predates
    these entries (count them from the index instead)."""
    dense, files = state.get("dense"), state.get("files")
    if not isinstance(dense, dict) or not isinstance(files, dict):
        return None
    try:
        chunks, embedded = int(dense["chunks"]), int(dense["embedded_chunks"])
        return {"chunks": chunks, "embedded_chunks": embedded, "dense_complete": embedded >= chunks,
                "files": int(dense["files"]), "indexed_files": int(files["indexed"])}
    except (KeyError, TypeError, ValueError):
        return None


def trusted_counts(root: Path, state: dict) -> dict[str, Any] | None:
    """The recorded counts while every index file is as its checksums recorded (stat calls);
    None otherwise: the caller reads the tables, which reports damage as a query would."""
    from codekin.index.integrity import intact_as_recorded

    return recorded_counts(state) if intact_as_recorded(root / STATE_DIR) else None


def recorded_changes(root: Path, config: IndexConfig, state: dict) -> tuple[dict[str, int], dict[str, str]] | None:
    """(pending changes as counts, skipped files with reasons) from one scan of the working tree
    and the state file; None when files changed since the last commit (the file records tell
    which), or the state does not record them."""
    from codekin.workspace import scan

    files = state.get("files")
    if not isinstance(files, dict) or not isinstance(files.get("refused"), dict):
        return None
    found = scan(root, config)
    if files_stamp((f.path, f.size, f.mtime_ns) for f in found.files) != files.get("stamp"):
        return None
    skipped = {**found.skipped, **{str(p): str(r) for p, r in files["refused"].items()}}
    return {"changed": 0, "new": 0, "removed": 0}, dict(sorted(skipped.items()))


def index_status(root: Path, count: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict]:
    """(status's index fields, the state) from the state file; `count()` gives the counts
    when the state cannot vouch for them (it opens the index, and a damaged one raises
    IndexDamagedError, as a query would)."""
    from codekin.index.provenance import foreign_reason

    state_path = root / STATE_DIR / INDEX_STATE
    foreign = foreign_reason(root) if state_path.is_file() else ""
    if foreign:  # a repository's or a copy's index: as if there were none, and why
        return {"root": str(root), "indexed": False, "foreign": foreign}, {}
    state = load_state(state_path) if state_path.is_file() else {}
    out: dict[str, Any] = {"root": str(root), "indexed": bool(state)}
    if state:
        out.update({"model": state.get("model"), "active_table": f"vectors_{state.get('active_key')}",
                    **(trusted_counts(root, state) or count()), "updated_at": state.get("updated_at"),
                    "age_seconds": round(time.time() - state.get("updated_at", time.time()), 1),
                    "head": state.get("head", "")})
    return out, state

