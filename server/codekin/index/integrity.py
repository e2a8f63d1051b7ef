"""What codekin wrote into its LanceDB index is what it reads back, or it says so.

- `record(store)`, after every committed index write: `.codekin/index.sums.json` lists each
  file LanceDB wrote under `index.lance/` (data, deletion and index files, version
  manifests: all written once, never changed) with its size, mtime and sha256. Only new
  files are read; a recorded file keeps its first entry, so a later record never blesses
  damage.
- `verify(store, deep=False)`, when a table is opened for a query or an index run, and in
  `codekin doctor` with `deep`: stat calls only, unless something changed: a recorded file
  of another size is damaged; one with another mtime (every one with `deep`) is hashed
  again and compared. A recorded file that is gone is fine only when its table still reads
  without it (a later compaction removed it).
- `guard(store)`: LanceDB's own errors about damaged files (truncated, scribbled or deleted
  data files, truncated manifests) become `IndexDamagedError` (exit 6) with the fix.
- `discard(store)`: moves the damaged index away, so the next full pass rebuilds it from
  the source files; `clean_leftovers(store)` removes what a killed writer left behind.

Files written after the last record (by a run that was killed, or one that is running)
are not checked until the next record: a check never blames a writer at work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.atomic import remove_stale_json_temporaries, write_json_atomic
from codekin.errors import IndexDamagedError, disk_full
from codekin.locks import lock_holder
from codekin.state import LANCE_DIR, REEMBED_LOCK, SUMS_FILE

if TYPE_CHECKING:
    from codekin.index.store import IndexStore

DISCARDED = ".del-index.lance-"  # a damaged index on its way out (a killed discard leaves it)
REWRITTEN = {"latest_version_hint.json", "_latest.manifest"}  # LanceDB rewrites these in place
CORE_TABLES = ("files", "chunks")
FIX = "run `codekin index --rebuild` to rebuild it from the source files"
# LanceDB errors that say nothing about the files: writers in each other's way, the file system
# refusing. Rebuilding would not help, so they are raised as they are.
NOT_DAMAGE = ("onflict", "ontention", "Permission denied", "Read-only file system", "Too many open files")
_Sums = dict[str, list]  # relative path -> [size, mtime_ns, sha256]


def damaged(detail: str) -> IndexDamagedError:
    return IndexDamagedError(f"the index in .codekin/{LANCE_DIR} is damaged: {detail}", FIX)


def lance_damage(exc: BaseException) -> bool:
    """True for LanceDB's report of a file it cannot read (not a full disk, a commit conflict
    or a refusal of the file system)."""
    text = str(exc)
    return (isinstance(exc, (OSError, RuntimeError, ValueError)) and not disk_full(exc)
            and (text.startswith("lance error") or "LanceError" in text)
            and not any(mark in text for mark in NOT_DAMAGE))


def as_damage(exc: BaseException) -> IndexDamagedError | None:
    """The index-damaged error for a LanceDB failure, else None."""
    if not lance_damage(exc):
        return None
    first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return damaged(first.split(", /")[0].removeprefix("lance error: "))  # without the Rust source path


@contextmanager
def guard() -> Iterator[None]:
    """Turn LanceDB's errors about damaged files into IndexDamagedError."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:
        error = as_damage(exc)
        if error is None:
            raise
        raise error from exc


# -- checksums ------------------------------------------------------------------------------------
def _base(store: IndexStore) -> Path:
    return store.state_dir / LANCE_DIR


def _sums_path(store: IndexStore) -> Path:
    return store.state_dir / SUMS_FILE


def _temporary(name: str) -> bool:
    return ".tmp" in name


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _written(store: IndexStore) -> Iterator[tuple[str, os.stat_result]]:
    """Every file LanceDB wrote once and never changes, with its stat."""
    return _written_under(_base(store))


def _written_under(base: Path) -> Iterator[tuple[str, os.stat_result]]:
    for directory, _, names in os.walk(base):
        for name in names:
            if name in REWRITTEN or _temporary(name):
                continue
            full = Path(directory, name)
            try:
                st = full.stat()
            except FileNotFoundError:  # removed by a compaction meanwhile
                continue
            yield full.relative_to(base).as_posix(), st


def load_sums(store: IndexStore) -> _Sums:
    """The last record ({} when there is none, or it cannot be read: nothing is then checked)."""
    return _load_sums_file(_sums_path(store))


def _load_sums_file(path: Path) -> _Sums:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, list) and len(v) == 3} if isinstance(files, dict) else {}


def record(store: IndexStore) -> int:
    """Record the size, mtime and sha256 of every file written since the last record (call it
    after a committed write, under the index lock); the number of files hashed."""
    old = load_sums(store)
    files: _Sums = {}
    hashed = 0
    for rel, st in _written(store):
        prev = old.get(rel)
        if prev is not None:  # written once: what it was when first seen is what it must stay
            files[rel] = prev
            continue
        try:
            files[rel] = [st.st_size, st.st_mtime_ns, _sha256(_base(store) / rel)]
        except FileNotFoundError:
            continue
        hashed += 1
    path = _sums_path(store)
    write_json_atomic(path, {"format": 1, "files": files}, indent=None, sort_keys=False, durable=False)
    return hashed


def verify(store: IndexStore, deep: bool = False, active_key: str = "") -> list[str]:
    """What is damaged, one line per file or table ([] when nothing is, or nothing is recorded)."""
    base = _base(store)
    problems: list[str] = []
    gone: set[str] = set()  # table directories with a recorded file missing
    for rel, (size, mtime_ns, digest) in sorted(load_sums(store).items()):
        full = base / rel
        try:
            st = full.stat()
        except FileNotFoundError:
            gone.add(rel.split("/")[0])
            continue
        except OSError as exc:
            problems.append(f"{rel} cannot be read ({exc.strerror})")
            continue
        if st.st_size != size:
            problems.append(f"{rel} has {st.st_size} bytes, {size} were written")
        elif (deep or st.st_mtime_ns != mtime_ns) and _sha256(full) != digest:
            problems.append(f"{rel} changed since it was written (sha256 differs)")
    for table_dir in sorted(gone):
        problem = _probe(store, table_dir, active_key)
        if problem:
            problems.append(problem)
    return problems


def _probe(store: IndexStore, table_dir: str, active_key: str) -> str:
    """Whether a table with a recorded file gone still reads whole ("" when it does)."""
    name = table_dir.removesuffix(".lance")
    if not (_base(store) / table_dir).is_dir():
        needed = name in CORE_TABLES or (active_key and name == f"vectors_{active_key}")
        return f"the table {table_dir} is gone" if needed else ""
    try:
        store.db.open_table(name).to_arrow()
    except (OSError, RuntimeError, ValueError) as exc:
        error = as_damage(exc)
        if error is None:
            raise
        return f"{table_dir}: {error.message.split(': ', 1)[-1]}"
    return ""


def intact_as_recorded(state_dir: Path) -> bool:
    """True when every file under index.lance is recorded and has its recorded size and mtime
    (stat calls only, no LanceDB): a reader that answers from the state file alone may trust
    it. False when anything is unrecorded, changed or gone (open the tables to find out)."""
    sums = _load_sums_file(state_dir / SUMS_FILE)
    seen = 0
    for rel, st in _written_under(state_dir / LANCE_DIR):
        entry = sums.get(rel)
        if entry is None or (entry[0], entry[1]) != (st.st_size, st.st_mtime_ns):
            return False
        seen += 1
    return bool(sums) and seen == len(sums)


def check(store: IndexStore, active_key: str = "") -> None:
    """The cheap verification of `verify`; IndexDamagedError naming what is damaged."""
    problems = verify(store, active_key=active_key)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise damaged(problems[0] + more)


def prepare(store: IndexStore) -> None:
    """Before an index run writes, under the index lock: clean what a killed run left
    (LanceDB's temporary files only while no re-embed writes a table), then `check`."""
    clean_leftovers(store, writers_idle=lock_holder(store.state_dir / REEMBED_LOCK) is None)
    state = store.state() if store.exists() else {}
    check(store, state.get("active_key", ""))


# -- repair -----------------------------------------------------------------------------------------
def discard(store: IndexStore) -> None:
    """Move the (damaged) LanceDB index away and forget what the last full pass saw, so the
    next full pass re-chunks and re-embeds every file. Call it under the index lock."""
    base = _base(store)
    if base.exists():
        aside = store.state_dir / f"{DISCARDED}{os.getpid()}"
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(base, aside)  # atomic: readers see the old index or none
        shutil.rmtree(aside, ignore_errors=True)
    _sums_path(store).unlink(missing_ok=True)
    if store.exists():
        store.write_state(scan_digest="", chunking="")


def clean_leftovers(store: IndexStore, writers_idle: bool) -> list[str]:
    """Remove what a killed index run left: LanceDB's `.tmp*` files (only when no other
    writer can be at work: `writers_idle`), an index half way through `discard`, stale
    checksum records. Call it under the index lock; the paths removed."""
    removed = []
    for path in store.state_dir.glob(f"{DISCARDED}*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    for name in remove_stale_json_temporaries(store.state_dir, SUMS_FILE):
        removed.append(name)
    if writers_idle:
        for directory, dirnames, names in os.walk(_base(store)):
            for name in [*names, *dirnames]:
                if _temporary(name):
                    full = Path(directory, name)
                    if full.is_dir():
                        shutil.rmtree(full, ignore_errors=True)
                    else:
                        full.unlink(missing_ok=True)
                    removed.append(full.relative_to(store.state_dir).as_posix())
    return removed
