"""History pairs: the same function before and after a commit, from `git log`.

Only the last `max_commits` commits are read (`git log --raw` gives the blob ids of each
modified file, `git cat-file --batch` reads them in one process), so the cost stays small
on long histories. Both versions are chunked with the index's chunker and matched by symbol.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from codekin import git
from codekin.chunking import chunk_text
from codekin.config import IndexConfig
from codekin.training.mining.positives import Pair, make_pair
from codekin.training.mining.snippets import Snippet, useful

MAX_BLOB_PAIRS = 400
MAX_BLOB_BYTES = 400_000


def _git(root: Path, *args: str, data: bytes | None = None) -> bytes | None:
    return git.output(root, "-c", "core.quotepath=off", *args, data=data, timeout=120)


def changed_blobs(root: Path, paths: set[str], max_commits: int) -> list[tuple[str, str, str, str]]:
    """(commit, path, old blob, new blob) for modified files among `paths`, newest first."""
    if max_commits <= 0:
        return []
    log = _git(root, "log", f"-n{max_commits}", "--no-merges", "--no-renames", "--raw", "--no-abbrev",
               "--format=commit %H")
    if log is None:
        return []
    changes: list[tuple[str, str, str, str]] = []
    commit = ""
    for line in log.decode("utf-8", "replace").split("\n"):
        if line.startswith("commit "):
            commit = line[7:].strip()
        elif line.startswith(":") and "\t" in line:
            meta, path = line.split("\t", 1)
            fields = meta.split()
            if len(fields) >= 5 and fields[4] == "M" and path in paths:
                changes.append((commit, path, fields[2], fields[3]))
        if len(changes) >= MAX_BLOB_PAIRS:
            break
    return changes


def _read_blobs(root: Path, shas: list[str]) -> dict[str, str]:
    out = _git(root, "cat-file", "--batch", data="".join(f"{s}\n" for s in shas).encode())
    blobs: dict[str, str] = {}
    if out is None:
        return blobs
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split()
        pos = end + 1
        if len(header) < 3 or header[1] != "blob":
            continue
        size = int(header[2])
        data = out[pos:pos + size]
        pos += size + 1
        if size <= MAX_BLOB_BYTES and b"\0" not in data[:8192]:
            blobs[header[0]] = data.decode("utf-8", "replace").replace("\r\n", "\n")
    return blobs


def _normalized(text: str) -> str:
    return " ".join(text.split())


def history_pairs(root: Path, family: dict[str, str], paths: set[str], config: IndexConfig,
                  max_commits: int) -> list[Pair]:
    """Before -> after pairs of every function changed in the last `max_commits` commits."""
    changes = changed_blobs(root, paths, max_commits)
    if not changes:
        return []
    blobs = _read_blobs(root, sorted({sha for c in changes for sha in c[2:]}))
    pairs: list[Pair] = []
    for commit, path, old_sha, new_sha in changes:
        if old_sha not in blobs or new_sha not in blobs:
            continue
        versions = []
        for sha, revision in ((old_sha, f"{commit[:12]}^"), (new_sha, commit[:12])):
            chunks = [c for c in chunk_text(path, blobs[sha], config) if useful(c)]
            by_symbol: dict[str, Snippet] = {}
            for chunk in chunks:
                by_symbol.setdefault(chunk.symbol, replace(Snippet.from_chunk(chunk, family[path]),
                                                           revision=revision))
            versions.append(by_symbol)
        before, after = versions
        for symbol in sorted(set(before) & set(after)):
            old, new = before[symbol], after[symbol]
            if _normalized(old.text) != _normalized(new.text):
                pair = make_pair(old, new, "history")
                pairs.extend([pair] if pair else [])
    return pairs
