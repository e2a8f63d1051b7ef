"""Held-out evaluation and the promotion gate.

Evaluators follow sentence-transformers: calling one with a model returns a metrics
dict; `primary_metric` names the metric that decides and `greater_is_better` says which
way. Retrieval: each eval anchor is a query over a corpus of held-out snippets (the eval
positives and negatives plus any extra snippets of eval files); its positive is the
relevant document. Doc anchors give doc->code, the other positive kinds same-pattern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from codekin.embedding.torch_encode import encode_texts
from codekin.training.trainer.results import triplet_texts

DOC_TO_CODE = "doc_to_code"
SAME_PATTERN = "same_pattern"


def positive_kind(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("positive_kind") or "")
    return str(getattr(item, "positive_kind", "") or "")


def retrieval_category(kind: str) -> str:
    return DOC_TO_CODE if "doc" in kind.lower() else SAME_PATTERN


def triplet_accuracy(anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    if len(anchor) == 0:
        return math.nan
    return float(np.mean((anchor * positive).sum(1) > (anchor * negative).sum(1)))


def retrieval_metrics(queries: np.ndarray, corpus: np.ndarray, relevant: Sequence[set[int]],
                      exclude: Sequence[set[int]], k: int = 10) -> tuple[float, float]:
    """(MRR@k, Recall@k) of each query against the corpus; `exclude` drops e.g. the query itself."""
    if len(queries) == 0:
        return math.nan, math.nan
    scores = queries @ corpus.T
    mrr = recall = 0.0
    for row, (wanted, skip) in enumerate(zip(relevant, exclude, strict=True)):
        if skip:
            scores[row, list(skip)] = -np.inf
        top = np.argsort(-scores[row], kind="stable")[:k]
        hits = [rank for rank, doc in enumerate(top, 1) if doc in wanted]
        mrr += 1.0 / hits[0] if hits else 0.0
        recall += len(hits) / len(wanted)
    return mrr / len(queries), recall / len(queries)


class TripletEvaluator:
    """Share of triplets whose anchor is closer to the positive than to the negative."""

    primary_metric = "triplet_accuracy"
    greater_is_better = True

    def __init__(self, triplets: Sequence[Any], batch_size: int = 64) -> None:
        self.triplets = [triplet_texts(t) for t in triplets]
        self.batch_size = batch_size

    def __call__(self, model: Any) -> dict[str, float]:
        flat = [text for triple in self.triplets for text in triple]
        vectors = encode_texts(model, flat, self.batch_size)
        return {"triplet_accuracy": triplet_accuracy(vectors[0::3], vectors[1::3], vectors[2::3])}


class CodeSearchEvaluator:
    """Triplet accuracy plus MRR@k / Recall@k of doc->code and same-pattern retrieval."""

    greater_is_better = True

    def __init__(self, triplets: Sequence[Any], corpus: Sequence[str] = (), k: int = 10,
                 batch_size: int = 64) -> None:
        self.triplets = [triplet_texts(t) for t in triplets]
        self.kinds = [retrieval_category(positive_kind(t)) for t in triplets]
        self.k = k
        self.batch_size = batch_size
        self.primary_metric = f"mrr@{k}"
        texts: dict[str, int] = {}
        for text in [*(t for triple in self.triplets for t in triple[1:]), *corpus]:
            texts.setdefault(text, len(texts))
        self.corpus = list(texts)
        self._index = texts
        relevant: dict[str, set[int]] = {}
        for anchor, positive, _ in self.triplets:
            relevant.setdefault(anchor, set()).add(texts[positive])
        self.relevant = relevant

    @property
    def size(self) -> dict[str, int]:
        return {"triplets": len(self.triplets), "corpus": len(self.corpus), "queries": len(self.relevant)}

    def __call__(self, model: Any) -> dict[str, float]:
        anchors = list(dict.fromkeys(a for a, _, _ in self.triplets))
        vectors = encode_texts(model, self.corpus + anchors, self.batch_size)
        corpus, anchor_vectors = vectors[:len(self.corpus)], vectors[len(self.corpus):]
        anchor_row = {a: i for i, a in enumerate(anchors)}
        a = anchor_vectors[[anchor_row[t[0]] for t in self.triplets]] if self.triplets else corpus[:0]
        p = corpus[[self._index[t[1]] for t in self.triplets]] if self.triplets else corpus[:0]
        n = corpus[[self._index[t[2]] for t in self.triplets]] if self.triplets else corpus[:0]
        metrics: dict[str, float] = {"triplet_accuracy": triplet_accuracy(a, p, n)}
        category: dict[str, str] = {}
        for (anchor, _, _), kind in zip(self.triplets, self.kinds, strict=True):
            category.setdefault(anchor, kind)
        k = self.k
        for name in (DOC_TO_CODE, SAME_PATTERN, None):
            queries = [q for q in anchors if name is None or category[q] == name]
            rows = anchor_vectors[[anchor_row[q] for q in queries]] if queries else corpus[:0]
            exclude = [{self._index[q]} if q in self._index else set() for q in queries]
            mrr, recall = retrieval_metrics(rows, corpus, [self.relevant[q] for q in queries], exclude, k)
            prefix = f"{name}_" if name else ""
            metrics.update({f"{prefix}mrr@{k}": mrr, f"{prefix}recall@{k}": recall,
                            f"{prefix}queries": float(len(queries))})
        metrics["dim"] = float(corpus.shape[1])
        return metrics


@dataclass
class GateDecision:
    promote: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def promotion_gate(active: dict[str, float], candidate: dict[str, float], *, min_improvement: float = 0.01,
                   allow_dim_change: bool = False, primary: str = "mrr@10") -> GateDecision:
    """Promote only a candidate that beats the active model on `primary` by `min_improvement`,
    keeps triplet accuracy and (unless allowed) the output dimension."""
    a_dim, c_dim = int(active.get("dim", 0)), int(candidate.get("dim", 0))
    if a_dim != c_dim and not allow_dim_change:
        return GateDecision(False, f"output dimension {c_dim} differs from the active model's {a_dim}; "
                                   "pass --allow-dim-change to accept it (forces a full re-embed)")
    a_acc, c_acc = active.get("triplet_accuracy", math.nan), candidate.get("triplet_accuracy", math.nan)
    a_score, c_score = active.get(primary, math.nan), candidate.get(primary, math.nan)
    if any(math.isnan(x) for x in (a_acc, c_acc, a_score, c_score)):
        return GateDecision(False, "the held-out split is empty: nothing proves the candidate is better")
    if c_acc < a_acc:
        return GateDecision(False, f"triplet accuracy fell from {a_acc:.3f} to {c_acc:.3f}")
    if c_score - a_score < min_improvement:
        return GateDecision(False, f"{primary.upper()} {c_score:.3f} does not beat the active model's "
                                   f"{a_score:.3f} by the required {min_improvement:g}")
    return GateDecision(True, f"{primary.upper()} {a_score:.3f} -> {c_score:.3f} (+{c_score - a_score:.3f}), "
                              f"triplet accuracy {a_acc:.3f} -> {c_acc:.3f}")


COMPARED = ("triplet_accuracy", f"{DOC_TO_CODE}_mrr@10", f"{DOC_TO_CODE}_recall@10", f"{SAME_PATTERN}_mrr@10",
            f"{SAME_PATTERN}_recall@10", "mrr@10", "recall@10")


def comparison_table(active_name: str, active: dict[str, float], candidate_name: str,
                     candidate: dict[str, float]) -> str:
    """The side-by-side text the CLI prints."""
    width = max(len(active_name), len(candidate_name), 9) + 2
    lines = [f"  {'metric':<24}{active_name:>{width}}{candidate_name:>{width}}"]
    for name in COMPARED:
        a, c = active.get(name, math.nan), candidate.get(name, math.nan)
        if math.isnan(a) and math.isnan(c):
            continue
        lines.append(f"  {name:<24}{a:>{width}.3f}{c:>{width}.3f}")
    return "\n".join(lines)
