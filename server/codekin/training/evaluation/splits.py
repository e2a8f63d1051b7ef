"""A deterministic train/eval split by file (never by chunk).

Each path gets a hash score in [0, 1) from (seed, path) alone, and files scoring below
`eval_fraction` are held out. A file's side therefore never changes as the repository
grows, so a model trained last night on a file is never evaluated on it tonight. Small
groups (fewer than SMALL_GROUP files), where that coin flip is too noisy, hold out exactly
round(n * eval_fraction) files (at least one) with the lowest scores instead.
"""

from __future__ import annotations

import hashlib

from codekin.errors import ConfigError

SMALL_GROUP = 20


def file_score(path: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_file(paths: list[str], seed: int, eval_fraction: float = 0.2) -> tuple[set[str], set[str]]:
    """(train paths, eval paths): deterministic for a seed, independent of the order given."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ConfigError(f"eval_fraction must be in [0, 1), got {eval_fraction}",
                          "set training.eval_fraction to e.g. 0.2")
    unique = sorted(set(paths))
    scores = {p: file_score(p, seed) for p in unique}
    if eval_fraction == 0.0 or len(unique) < 2:
        return set(unique), set()
    if len(unique) < SMALL_GROUP:
        wanted = min(len(unique) - 1, max(1, round(len(unique) * eval_fraction)))
        held = set(sorted(unique, key=lambda p: (scores[p], p))[:wanted])
    else:
        held = {p for p in unique if scores[p] < eval_fraction}
    return set(unique) - held, held
