"""Positive pairs for the multiple-negatives ranking loss, and their batches.

A TextPair is (query text, code text, group, kind); `group` names the function both come
from, so `mnrl_batches` never puts two rows of one function, or two near-duplicate
functions, into one batch (each would be a false in-batch negative for the other). No
parser here: the trainer builds its batches on machines without tree-sitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from codekin.training.pairs.renaming import renamed


@dataclass(frozen=True)
class TextPair:
    query: str
    code: str
    group: str  # the function both sides come from (path:start)
    kind: str  # doc | comment | renamed | test (config.SIGNAL_KINDS)

    def to_dict(self) -> dict[str, str]:
        """One line of a run's training data (data.py): `signal` tells it from a triplet."""
        return {"signal": self.kind, "query": self.query, "code": self.code, "group": self.group}

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> TextPair:
        return cls(str(item["query"]), str(item["code"]), str(item.get("group", "")), str(item["signal"]))


def near_duplicate_key(code: str) -> str:
    """Two functions equal after renaming identifiers and dropping comments are near-duplicates."""
    return " ".join(renamed(code).split())


def file_of(pair: TextPair) -> str:
    """The file a pair's function is in (its group is path:start)."""
    return pair.group.rsplit(":", 1)[0]


def mnrl_batches(pairs: list[TextPair], batch_size: int, seed: int = 13,
                 by_file: bool = False) -> list[list[TextPair]]:
    """Shuffled batches of one kind each, with no two rows of one function or of two
    near-duplicate functions in a batch (a row left over waits for the next batch).

    `by_file` fills each batch from as few files as it can (files in a shuffled order), so
    the in-batch negatives are the neighbours a held-out query competes with in search."""
    rng = random.Random(f"mnrl:{seed}")
    duplicate = {p.group: near_duplicate_key(p.code.split("\n", 1)[-1]) for p in pairs}  # without the header
    batches: list[list[TextPair]] = []
    for kind in sorted({p.kind for p in pairs}):
        pending = [p for p in pairs if p.kind == kind]
        rng.shuffle(pending)
        if by_file:
            files = sorted({file_of(p) for p in pending})
            rng.shuffle(files)
            rank = {f: i for i, f in enumerate(files)}
            pending.sort(key=lambda p: rank[file_of(p)])  # stable: shuffled inside a file
        while len(pending) >= 2:
            batch: list[TextPair] = []
            seen: set[str] = set()
            rest = []
            for p in pending:
                keys = {p.group, duplicate[p.group]}
                if len(batch) < batch_size and not keys & seen:
                    batch.append(p)
                    seen |= keys
                else:
                    rest.append(p)
            if len(batch) < 2:
                break
            batches.append(batch)
            pending = rest
    rng.shuffle(batches)
    return batches
