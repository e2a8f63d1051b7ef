"""The ranking stack on top of the two channels: weights per query kind, path priors and
spread over files. The numbers live in config.py ([search]); this module applies them.

A chunk's ranking score is its fused channel score (each channel scaled to [0, 1] over its
candidates) plus `definition` x how exactly it defines a symbol the query names, times the
prior of its path's role; then the 2nd, 3rd ... chunk of one file (or of its twins)
counts `spread`, `spread`^2 ... of its score, so the first page covers more files.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from codekin.index.paths import ROLES
from codekin.index.query import CODE, CONCEPT, PASSAGE, SYMBOL


@dataclass(frozen=True)
class Weights:
    lexical: float  # BM25's weight in the hybrid sum (dense counts 1)
    name: float = 0.0  # a query word in a callable's own name adds this x its idf to BM25
    definition: float = 0.0  # added x the strength of a definition match (1 exact ... 0.7 file name)
    context: float = 0.0  # how much a chunk's module head counts in its score
    priors: dict[str, float] = field(default_factory=dict)  # path role -> multiplier (missing: 1)
    spread: float = 1.0  # the n-th chunk of one file (or twin group) counts spread^(n-1)
    files: float = 0.0  # a chunk gains this x its file's score over the best file's (files.py)
    declared: float = 1.0  # a declaration keeps this share of its score, passed to its definition

    def prior_vector(self) -> np.ndarray:
        return np.array([self.priors.get(role, 1.0) for role in ROLES], dtype=np.float32)


def weights_for(search, kind: str, tests: bool = False) -> Weights:
    """The weights of one query kind from a config.SearchConfig; `tests` lifts the test prior."""
    priors = {"test": search.prior_test, "example": search.prior_other, "bench": search.prior_other,
              "docs": search.prior_other, "vendor": search.prior_vendored, "generated": search.prior_vendored,
              "build": search.prior_vendored}
    if tests:
        priors["test"] = 1.0
    if kind == SYMBOL:
        return Weights(search.symbol_lexical_weight, 0.0, search.definition_weight, search.context_weight,
                       priors, search.spread, declared=search.declaration_share)
    if kind == CODE:
        return Weights(search.code_lexical_weight, 0.0, 0.0, 0.0, priors, search.spread)
    if kind == CONCEPT:
        return Weights(search.concept_lexical_weight, search.name_weight, search.question_definition_weight,
                       search.context_weight, priors, search.concept_spread, search.file_evidence_weight,
                       search.declaration_share)
    name = search.passage_name_weight if kind == PASSAGE else search.name_weight
    return Weights(search.lexical_weight, name, search.question_definition_weight,
                   search.context_weight, priors, search.spread, search.file_evidence_weight,
                   search.declaration_share)


def spread_scores(rank: np.ndarray, order: list[int], groups: np.ndarray, decay: float) -> list[float]:
    """The score each row of spread_order's `order` was placed by (non-increasing): its rank
    score times `decay` for each chunk of its group placed before it."""
    used: dict[int, int] = {}
    out = []
    for i in order:
        count = used.get(int(groups[i]), 0) if decay < 1.0 else 0
        out.append(float(rank[i]) * decay ** count)
        used[int(groups[i])] = count + 1
    return out


def spread_order(rank: np.ndarray, candidates: list[int], groups: np.ndarray, decay: float) -> list[int]:
    """`candidates` (best first) re-ordered so that each further chunk of a group counts
    `decay` times less: a lazy greedy over a heap, exact for a decay in (0, 1]."""
    if decay >= 1.0 or len(candidates) < 2:
        return candidates
    used: dict[int, int] = {}
    heap = [(-float(rank[i]), n, i, 0) for n, i in enumerate(candidates)]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        negative, n, i, seen = heapq.heappop(heap)
        count = used.get(int(groups[i]), 0)
        if count != seen:
            heapq.heappush(heap, (-float(rank[i]) * decay ** count, n, i, count))
            continue
        order.append(i)
        used[int(groups[i])] = count + 1
    return order
