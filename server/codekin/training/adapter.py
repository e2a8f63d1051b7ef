"""A query-side adapter: a low-rank map on top of the frozen model, applied to text queries only.

`q' = normalize(q + (q U) V)` with U (d x r) and V (r x d), V starting at zero (the identity).
It is trained with the multiple-negatives ranking loss (in-batch negatives) on (doc text,
code) pairs of the training split, embedded once with the frozen model, so a run costs one
pass of the model over the pairs plus seconds of matrix work; the documents' vectors never
change, so promoting an adapter needs no re-embedding. Symbol and code queries (the
`similar` path) keep the frozen model's vector: the adapter cannot move them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codekin.index.query import CODE, SYMBOL, parse

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class QueryAdapter:
    u: np.ndarray  # (dim, rank)
    v: np.ndarray  # (rank, dim)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        moved = vectors + (vectors @ self.u) @ self.v
        return (moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def save(self, path: Path) -> Path:
        np.savez(path, u=self.u, v=self.v)
        return path

    @classmethod
    def load(cls, path: Path) -> QueryAdapter:
        with np.load(path) as data:
            return cls(data["u"].astype(np.float32), data["v"].astype(np.float32))


def adapted(kind: str) -> bool:
    return kind not in (SYMBOL, CODE)


def query_encoder(encode: Encode, adapter: QueryAdapter) -> Encode:
    """Embed queries with the frozen model, then move the text ones (not symbols, not code)."""
    def run(texts: list[str]) -> np.ndarray:
        vectors = encode(texts)
        rows = [i for i, text in enumerate(texts) if adapted(parse(text).kind)]
        if rows:
            vectors[rows] = adapter.apply(vectors[rows])
        return vectors

    return run


def train_adapter(queries: np.ndarray, documents: np.ndarray, rank: int = 32, epochs: int = 30,
                  learning_rate: float = 2e-3, batch_size: int = 64, scale: float = 20.0,
                  decay: float = 1e-2, seed: int = 13) -> QueryAdapter:
    """Fit the adapter so each query's own document outranks the batch's other documents."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    d = torch.from_numpy(np.ascontiguousarray(documents, dtype=np.float32))
    dim = q.shape[1]
    u = (torch.randn(dim, rank, generator=generator) / dim ** 0.5).requires_grad_()
    v = torch.zeros(rank, dim, requires_grad=True)
    optimizer = torch.optim.AdamW([u, v], lr=learning_rate, weight_decay=decay)
    for _ in range(epochs):
        order = torch.randperm(len(q), generator=generator)
        for start in range(0, len(q) - 1, batch_size):
            rows = order[start:start + batch_size]
            if len(rows) < 2:
                continue
            moved = q[rows] + (q[rows] @ u) @ v
            moved = moved / moved.norm(dim=1, keepdim=True).clamp_min(1e-12)
            logits = scale * moved @ d[rows].T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return QueryAdapter(u.detach().numpy().copy(), v.detach().numpy().copy())
