"""Hybrid ranking: the weighted sum of scaled dense and BM25 scores (index/search.py _fuse)."""

from __future__ import annotations

import numpy as np

from codekin.index.search import CANDIDATES, _fuse


def test_without_lexical_evidence_hybrid_keeps_the_dense_order():
    dense = np.array([0.2, 0.9, 0.5, -np.inf], dtype=np.float32)
    fused = _fuse(dense, np.zeros(4, dtype=np.float32), lexical_weight=1.5)
    assert list(np.argsort(-fused)[:3]) == [1, 2, 0]
    assert fused[3] == -np.inf  # no vector (or not an ANN candidate): nothing to show, never ranked


def test_lexical_evidence_reorders_the_dense_candidates_by_its_weight():
    rng = np.random.default_rng(0)
    dense = rng.uniform(0.0, 0.3, 2 * CANDIDATES).astype(np.float32)
    dense[:3] = [0.80, 0.78, 0.40]  # the dense best, a close runner-up, one a little above the crowd
    lexical = np.zeros_like(dense)
    lexical[1], lexical[2] = 10.0, 8.0  # the two runners-up hold the query's words
    order = list(np.argsort(-_fuse(dense, lexical, lexical_weight=1.5))[:3])
    assert order == [1, 2, 0]
    assert list(np.argsort(-_fuse(dense, lexical, lexical_weight=0.2))[:3]) == [1, 0, 2]
    assert list(np.argsort(-_fuse(dense, lexical, lexical_weight=0.0))[:3]) == [0, 1, 2]  # dense alone


def test_fewer_chunks_than_candidates_and_an_empty_dense_side():
    fused = _fuse(np.array([0.1, 0.3], dtype=np.float32), np.array([0.0, 0.0], dtype=np.float32), 1.5)
    assert np.isfinite(fused).all() and fused[1] > fused[0]
    nothing = np.full(3, -np.inf, dtype=np.float32)
    assert np.isneginf(_fuse(nothing, np.ones(3, dtype=np.float32), 1.5)).all()
