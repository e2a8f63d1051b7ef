"""The rows and batches of the `signals` recipe, the default one (`triplets` is the seed's).

Measured through the user's hybrid search on six repositories (bench_learning_signals.py,
benchmarks/results/learning.jsonl): the symmetric multiple-negatives ranking loss over the
repository's own pairs -- a doc sentence -> its function, an in-function comment -> its
function, a renamed copy -> the original (mining/signals.py) -- plus the seed triplets'
(anchor, positive) pairs, each batch filled from few files (`batch_by_file`): trained by this
Trainer on an H100 with two seeds, the gate promoted 12 of 12 (doc->code +0.018 to +0.097,
mean +0.045; no kind down) and rejected shuffled pairs on every repository; the seed's
triplet loss alone was promoted on 1 of 6. lr 5e-5 to 1e-4 or more epochs lifted some
repositories (mint up to +0.34) and broke a kind on others, so the defaults stay 2e-5, 3
epochs, batch 32. On a CPU a step budget keeps every doc batch and a share of the rest
(RecipeRows.at_most): 96 steps, by file, promoted 12 of 12 at +0.038 mean; c150 (150k lines
of four projects side by side) rejected every recipe (doc->code -0.009 to -0.044).

The batches are fixed once per run and only their order changes by epoch: the pairs' (one
kind each, never two rows of one function or of near-duplicates: pairs/batches.py
mnrl_batches), then the seed triplets' (anchor, positive) rows, shuffled, in slices of
`batch_size` (their negatives are not used: the batch supplies negatives).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codekin.config import SIGNAL_KINDS
from codekin.training.pairs.batches import TextPair, mnrl_batches
from codekin.training.trainer.results import triplet_texts

SEED = "seed"  # the seed triplets as (anchor, positive) pairs (one of config.SIGNAL_KINDS)


@dataclass
class RecipeRows:
    rows: list[tuple[str, str]]  # (query, code)
    batches: list[list[int]]  # indices into rows; fixed for the run
    counts: dict[str, int]  # rows per signal kind
    batch_kinds: list[str]  # each batch's signal kind

    def describe(self) -> str:
        return ", ".join(f"{kind} {n}" for kind, n in self.counts.items())

    def at_most(self, count: int, seed: int) -> RecipeRows:
        """The first `count` batches in priority order: every doc batch (the signal the held-out
        doc->code queries ask for), then the other kinds' in a seeded shuffle, so each kind
        keeps about its share. A CPU run's step budget (Trainer._step_budget) cuts here."""
        if len(self.batches) <= count:
            return self
        order = list(range(len(self.batches)))
        random.Random(f"at-most:{seed}").shuffle(order)
        order.sort(key=lambda b: self.batch_kinds[b] != "doc")  # stable: the shuffle stays within each
        made = RecipeRows([], [], {}, [])
        counts: Counter[str] = Counter()
        for b in sorted(order[:count]):
            made.batches.append(list(range(len(made.rows), len(made.rows) + len(self.batches[b]))))
            made.rows.extend(self.rows[i] for i in self.batches[b])
            made.batch_kinds.append(self.batch_kinds[b])
            counts[self.batch_kinds[b]] += len(self.batches[b])
        made.counts = {kind: counts[kind] for kind in SIGNAL_KINDS if counts[kind]}
        return made


def recipe_rows(pairs: Sequence[TextPair], triplets: Sequence[Any], kinds: Sequence[str], batch_size: int,
                seed: int, by_file: bool = False) -> RecipeRows:
    """The run's (query, code) rows of the wanted `kinds` and their batches (see the module doc)."""
    wanted = set(kinds)
    rows: list[tuple[str, str]] = []
    batches: list[list[int]] = []
    batch_kinds: list[str] = []
    counts: Counter[str] = Counter()

    def add(batch: list[tuple[str, str]], kind: str) -> None:
        batches.append(list(range(len(rows), len(rows) + len(batch))))
        batch_kinds.append(kind)
        rows.extend(batch)
        counts[kind] += len(batch)

    for batch in mnrl_batches([p for p in pairs if p.kind in wanted], batch_size, seed, by_file):
        add([(p.query, p.code) for p in batch], batch[0].kind)
    if SEED in wanted:
        seeded = [triplet_texts(t)[:2] for t in triplets]
        random.Random(f"seed-rows:{seed}").shuffle(seeded)
        for start in range(0, len(seeded) - 1, batch_size):  # a last row alone would have no negative
            add(seeded[start:start + batch_size], SEED)
    return RecipeRows(rows, batches, {kind: counts[kind] for kind in SIGNAL_KINDS if counts[kind]}, batch_kinds)
