"""Model directories written atomically and verified by hash.

A checkpoint is a sentence-transformers model directory plus `manifest.json`, which
lists the sha256 of every file in it. It is written into a temporary sibling, fsynced,
then renamed into place, so a crash leaves either the old state or the complete new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codekin.atomic import fsync_dir, write_json_atomic

MANIFEST = "manifest.json"
HASH_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file below `directory` except the manifest, by relative path."""
    hashes = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            hashes[path.relative_to(directory).as_posix()] = sha256_file(path)
    return hashes


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(directory)


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; ValueError when it is truncated, not UTF-8 or not an object."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__} where an object belongs")
    return data


def read_manifest(directory: Path) -> dict[str, Any]:
    return read_json_object(directory / MANIFEST)


def damage(exc: BaseException) -> str:
    """A short reason a state file cannot be read."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at byte {exc.pos})"
    return str(exc) if isinstance(exc, ValueError) else f"{exc.__class__.__name__}: {exc}"


def write_checkpoint(target: Path, fill: Callable[[Path], None], manifest: dict[str, Any]) -> dict[str, Any]:
    """Create `target` atomically: `fill(tmp)` writes the files, then hashes + manifest + rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        fill(tmp)
        full = {**manifest, "files": file_hashes(tmp), "written_at": time.time()}
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True), encoding="utf-8")
        _fsync_tree(tmp)
        if target.exists():
            trash = target.with_name(f".old-{target.name}-{os.getpid()}")
            os.rename(target, trash)
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return full


def rewrite_manifest(directory: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Update manifest fields and re-hash the files (after a file was dropped, say)."""
    manifest = {**read_manifest(directory), **changes, "files": file_hashes(directory)}
    write_json_atomic(directory / MANIFEST, manifest)
    return manifest


def verify_checkpoint(directory: Path) -> str:
    """'' when every file matches its manifest hash, else what is wrong."""
    if not directory.is_dir():
        return f"{directory} is missing"
    try:
        manifest = read_manifest(directory)
    except (OSError, ValueError) as exc:
        return f"{directory / MANIFEST} is damaged: {damage(exc)}"
    expected = manifest.get("files")
    if not isinstance(expected, dict) or not expected:
        return "manifest lists no files"
    for rel, digest in expected.items():
        path = directory / rel
        if not path.is_file():
            return f"{rel} is missing"
        if sha256_file(path) != digest:
            return f"{rel} does not match its sha256"
    return ""


def verify_checkpoint_cached(directory: Path, cache: Path) -> str:
    """`verify_checkpoint`, skipping the hashing when every file still has the size and mtime
    it had when it last matched (recorded in `cache`): served models are checked on every
    load without paying seconds of hashing each time; a truncated or rewritten file is hashed."""
    try:
        manifest = read_manifest(directory)
        seen = read_json_object(cache) if cache.is_file() else {}
    except (OSError, ValueError):
        return verify_checkpoint(directory)
    expected = manifest.get("files")
    if not isinstance(expected, dict):
        return verify_checkpoint(directory)
    stamps = {}
    for rel in expected:
        try:
            info = (directory / rel).stat()
        except OSError:
            return verify_checkpoint(directory)
        stamps[rel] = [info.st_size, info.st_mtime_ns, expected[rel]]
    key = directory.resolve().as_posix()
    if stamps and seen.get(key) == stamps:
        return ""
    problem = verify_checkpoint(directory)
    if not problem:
        try:
            write_json_atomic(cache, {**{k: v for k, v in seen.items() if Path(k).is_dir()}, key: stamps})
        except OSError:
            pass  # a read-only state dir: verified again next time
    return problem


def remove_stale_temporaries(directory: Path) -> list[str]:
    """Remove the `.tmp-*`, `.old-*` and `.del-*` directories that a killed writer left in
    `directory` (call it only while no other writer can be at work there)."""
    removed = []
    if directory.is_dir():
        for path in directory.iterdir():
            if path.is_dir() and path.name.startswith((".tmp-", ".old-", ".del-")):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    return removed


def remove_tree(directory: Path) -> None:
    """Remove a directory; rename first so a half-deleted one is never mistaken for valid."""
    if not directory.exists():
        return
    trash = directory.with_name(f".del-{directory.name}-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)
