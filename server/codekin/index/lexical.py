"""Identifier-aware terms and an in-memory BM25 over them.

Code identifiers are split (snake_case, CamelCase, Module.Path) and kept whole, so
`handle_call`, `HandleCall` and "handle call" all meet. Kept in memory as a sparse
matrix: a query is a few column sums, well under a millisecond for 10k chunks.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
from scipy import sparse

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[?!]?|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def terms(text: str) -> list[str]:
    out: list[str] = []
    for match in _IDENT.finditer(text):
        word = match.group().rstrip("?!")
        if len(word) < 2:
            continue
        lower = word.lower()
        out.append(lower)
        parts = [p.lower() for piece in word.split("_") for p in _CAMEL.findall(piece)]
        if len(parts) > 1:
            out.extend(p for p in parts if len(p) > 1)
    return out


class Bm25:
    def __init__(self, documents: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.vocabulary: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(documents), dtype=np.float32)
        for row, doc in enumerate(documents):
            lengths[row] = len(doc)
            for term, count in Counter(doc).items():
                col = self.vocabulary.setdefault(term, len(self.vocabulary))
                rows.append(row)
                cols.append(col)
                tfs.append(count)
        n = max(len(documents), 1)
        tf = np.asarray(tfs, dtype=np.float32)
        row_idx = np.asarray(rows, dtype=np.int64)
        col_idx = np.asarray(cols, dtype=np.int64)
        df = np.bincount(col_idx, minlength=len(self.vocabulary)).astype(np.float32)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if len(documents) else 1.0
        norm = k1 * (1 - b + b * lengths[row_idx] / max(avg, 1e-6))
        weights = idf[col_idx] * tf * (k1 + 1) / (tf + norm)
        self.matrix = sparse.csc_matrix(
            (weights, (row_idx, col_idx)), shape=(len(documents), len(self.vocabulary))
        )

    def scores(self, query_terms: list[str]) -> np.ndarray:
        counts = Counter(t for t in query_terms if t in self.vocabulary)
        if not counts:
            return np.zeros(self.matrix.shape[0], dtype=np.float32)
        cols = [self.vocabulary[t] for t in counts]
        weights = np.asarray([math.sqrt(c) for c in counts.values()], dtype=np.float32)
        return np.asarray(self.matrix[:, cols] @ weights).ravel()
