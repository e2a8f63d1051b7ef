"""Negatives: hard ones (close to the anchor under the active model, yet not a positive and
not the same symbol) mixed with random ones from other patterns.

With an embedder, candidates are shortlisted lexically (BM25 over identifier terms) and
ranked by the model's cosine similarity; vectors already in the repository's index (same
model, same content hash) are reused, and at most `budget` texts are embedded fresh, so a
large repository costs a bounded number of model calls. When every candidate already has
an index vector the whole family is searched densely. Without an embedder the lexical
ranking alone picks the hard negatives (reported as mining "lexical").
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from codekin.embedding import Embedder
from codekin.index.lexical import Bm25, terms
from codekin.training.mining.snippets import Snippet

SHORTLISTS = (8, 6, 4, 3, 2, 1)  # lexical candidates per anchor, shrunk to fit the budget
LEXICAL_DEPTH = 40
DENSE_DEPTH = 50
RANDOM_TRIES = 60


@dataclass(frozen=True)
class Request:
    anchor: Snippet
    positive: Snippet
    family: str  # the family the negative comes from
    hard: bool


@dataclass
class Mined:
    negative: Snippet
    kind: str  # hard | random
    mining: str  # model | lexical | random


@dataclass
class MiningStats:
    model: int = 0
    lexical: int = 0
    random: int = 0
    relaxed: int = 0  # requests where no candidate outside the anchor's patterns existed
    embedded: int = 0  # texts embedded fresh
    embed_seconds: float = 0.0
    index_vectors: int = 0  # vectors reused from the index
    dense: bool = False  # whole-family dense search (every candidate had an index vector)
    notes: list[str] = field(default_factory=list)


class NegativeMiner:
    def __init__(self, pool: Sequence[Snippet], keys: dict[tuple, frozenset[tuple]],
                 embedder: Embedder | None = None, index_vectors: dict[str, np.ndarray] | None = None,
                 budget: int = 1500, seed: int = 13) -> None:
        self.keys = keys
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = dict(index_vectors or {})
        self.budget = budget
        self.rng = random.Random(seed)
        self.pools: dict[str, list[Snippet]] = {}
        for s in sorted(pool, key=lambda s: s.key):
            self.pools.setdefault(s.family, []).append(s)
        self._bm25: dict[str, Bm25] = {}
        self.stats = MiningStats(index_vectors=len(self.vectors))

    # -- validity ------------------------------------------------------------------------
    def _valid(self, c: Snippet, r: Request, strict: bool = True) -> bool:
        if c.key in (r.anchor.key, r.positive.key):
            return False
        if c.base_symbol in (r.anchor.base_symbol, r.positive.base_symbol):
            return False
        if c.text.strip() in (r.anchor.text.strip(), r.positive.text.strip()):
            return False
        if not strict:
            return True
        related = self.keys.get(r.anchor.key, frozenset()) | self.keys.get(r.positive.key, frozenset())
        return not (self.keys.get(c.key, frozenset()) & related)

    # -- lexical ---------------------------------------------------------------------------
    def _lexical(self, family: str) -> Bm25:
        if family not in self._bm25:
            self._bm25[family] = Bm25([terms(f"{s.symbol}\n{s.text}") for s in self.pools[family]])
        return self._bm25[family]

    def _shortlist(self, r: Request, depth: int) -> list[int]:
        """Indices into the family pool of the best lexical candidates that are valid."""
        pool = self.pools[r.family]
        scores = self._lexical(r.family).scores(terms(r.anchor.text))
        top = np.argsort(-scores, kind="stable")[:LEXICAL_DEPTH * 4]
        out = [int(i) for i in top if scores[i] > 0 and self._valid(pool[i], r)]
        return out[:depth]

    # -- random ----------------------------------------------------------------------------
    def _random(self, r: Request) -> Snippet | None:
        pool = self.pools.get(r.family, [])
        for _ in range(RANDOM_TRIES):
            candidate = pool[self.rng.randrange(len(pool))]
            if self._valid(candidate, r):
                return candidate
        return None

    def _fallback(self, r: Request) -> Snippet | None:
        """Any valid candidate, first respecting patterns, then only symbol and text."""
        pool = self.pools.get(r.family, [])
        start = self.rng.randrange(len(pool)) if pool else 0
        for strict in (True, False):
            for offset in range(len(pool)):
                candidate = pool[(start + offset) % len(pool)]
                if self._valid(candidate, r, strict):
                    self.stats.relaxed += not strict
                    return candidate
        return None

    # -- model -----------------------------------------------------------------------------
    def _embed(self, snippets: list[Snippet]) -> None:
        missing: dict[str, str] = {}
        for s in snippets:
            h = s.content_hash
            if h not in self.vectors:
                missing.setdefault(h, s.model_text)
        if missing and self.embedder is not None:
            started = time.perf_counter()
            vectors = self.embedder.encode(list(missing.values()))
            self.stats.embed_seconds += time.perf_counter() - started
            self.vectors.update(zip(missing, vectors, strict=True))
            self.stats.embedded += len(missing)

    def _dense_ready(self, family: str) -> bool:
        pool = self.pools[family]
        return bool(pool) and all(s.content_hash in self.vectors for s in pool)

    def _model_hard(self, hard: list[tuple[int, Request]]) -> dict[int, Snippet]:
        """Negatives chosen by cosine similarity for as many hard requests as the budget allows."""
        chosen: dict[int, Snippet] = {}
        families = {r.family for _, r in hard}
        dense = {f for f in families if self._dense_ready(f)}
        self.stats.dense = bool(dense) and dense == families
        shortlists = {i: ([] if r.family in dense else self._shortlist(r, SHORTLISTS[0])) for i, r in hard}
        plan: list[tuple[int, Request]] = []
        for depth in SHORTLISTS:
            plan = list(hard)
            needed: set[str] = set()
            for n, (i, r) in enumerate(hard):
                wanted = {r.anchor.content_hash} | {self.pools[r.family][j].content_hash
                                                     for j in shortlists[i][:depth]}
                wanted -= self.vectors.keys()
                if len(needed | wanted) > self.budget:
                    plan = hard[:n]
                    break
                needed |= wanted
            if len(plan) == len(hard):
                break
        if len(plan) < len(hard):
            self.stats.notes.append(f"embedding budget ({self.budget} texts) covers {len(plan)} of "
                                    f"{len(hard)} hard negatives; the rest were mined lexically")
        self._embed([r.anchor for _, r in plan] + [self.pools[r.family][j] for i, r in plan
                                                    for j in shortlists[i][:depth]])
        matrices = {f: np.stack([self.vectors[s.content_hash] for s in self.pools[f]]) for f in dense}
        for i, r in plan:
            anchor = self.vectors.get(r.anchor.content_hash)
            if anchor is None:
                continue
            pool = self.pools[r.family]
            if r.family in dense:
                sims = matrices[r.family] @ anchor
                candidates = [int(j) for j in np.argsort(-sims, kind="stable")[:DENSE_DEPTH * 4]
                              if self._valid(pool[int(j)], r)][:DENSE_DEPTH]
            else:
                candidates = [j for j in shortlists[i][:depth] if pool[j].content_hash in self.vectors]
                sims = {j: float(self.vectors[pool[j].content_hash] @ anchor) for j in candidates}
                candidates.sort(key=lambda j: -sims[j])
            if candidates:
                chosen[i] = pool[candidates[0]]
        return chosen

    # -- public ----------------------------------------------------------------------------
    def mine(self, requests: list[Request]) -> list[Mined | None]:
        """One negative per request (None only when the family has no usable snippet)."""
        hard = [(i, r) for i, r in enumerate(requests) if r.hard and self.pools.get(r.family)]
        by_model = self._model_hard(hard) if self.embedder is not None else {}
        out: list[Mined | None] = []
        for i, r in enumerate(requests):
            if not self.pools.get(r.family):
                out.append(None)
                continue
            if r.hard:
                if i in by_model:
                    self.stats.model += 1
                    out.append(Mined(by_model[i], "hard", "model"))
                    continue
                shortlist = self._shortlist(r, 1)
                if shortlist:
                    self.stats.lexical += 1
                    out.append(Mined(self.pools[r.family][shortlist[0]], "hard", "lexical"))
                    continue
            negative = self._random(r) or self._fallback(r)
            if negative is None:
                out.append(None)
                continue
            self.stats.random += 1
            out.append(Mined(negative, "random", "random"))
        return out
