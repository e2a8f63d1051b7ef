"""A query-side adapter: a low-rank map on top of the frozen model, applied to text queries only.

`q' = normalize(q + (q U) V)` with U (d x r) and V (r x d), V starting at zero (the identity).
It is trained with the multiple-negatives ranking loss (in-batch negatives) on (doc or
comment text, code) pairs of the training split (mining/signals.py), embedded once with the
served model, so a run costs one pass of the model over the pairs plus seconds of matrix
work; the documents' vectors never change, so promoting an adapter needs no re-embedding
(models/adapters.py serves it). Symbol and code queries (the `similar` path) keep the frozen
model's vector: the adapter cannot move them.

`run_adapter` is the adapter-only training run (`codekin train --adapter`): pairs ->
adapter -> both through the user's hybrid search on the held-out files -> the same gate as a
full fine-tune -> promoted or kept for inspection, every metric in metrics.db.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codekin.config import Config
from codekin.errors import TrainingError
from codekin.index.query import parse
from codekin.models.adapters import AdapterStore, QueryAdapter, adapted

Encode = Callable[[list[str]], np.ndarray]
Out = Callable[[str], None]
MIN_PAIRS = 8
__all__ = ["AdapterRun", "QueryAdapter", "adapted", "query_encoder", "run_adapter", "train_adapter"]


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


@dataclass
class AdapterRun:
    version: str
    status: str  # promoted | rejected
    reason: str
    applies_to: str  # the vectors table key it moves queries for
    pairs: int
    active_metrics: dict[str, float] = field(default_factory=dict)
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: int = 0  # its run in metrics.db

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "promoted": self.promoted, "kind": "adapter"}


def adapter_pairs(root: Path, config: Config, seed: int) -> tuple[list[str], list[str]]:
    """(query texts, code texts) of the training split's doc and comment pairs."""
    from codekin.training.mining.signals import text_pairs
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    generator = PolyglotTripletGenerator(root, config, eval_fraction=config.training.eval_fraction, seed=seed)
    pairs = [p for p in text_pairs(generator.snippets("train"), seed=seed) if p.kind in ("doc", "comment")]
    return [p.query for p in pairs], [p.code for p in pairs]


def run_adapter(root: Path, config: Config, embedder: Any, min_improvement: float = 0.01, seed: int = 13,
                out: Out = print) -> AdapterRun:
    """Fit an adapter on `embedder` (the model that wrote the index), judge it through search,
    promote it if the gate passes; the index is not touched either way."""
    from codekin.metrics import MetricsStore
    from codekin.training.judging.judge import held_out_files, search_table
    from codekin.training.judging.queries import build_eval_set
    from codekin.training.judging.search import SearchEvaluator, SearchGate, model_encoder
    from codekin.training.pipeline import phase

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    phase(out, "triplets")
    queries, codes = adapter_pairs(root, config, seed)
    if len(queries) < MIN_PAIRS:
        raise TrainingError(f"only {len(queries)} documented or commented functions in the training files "
                            f"(an adapter needs {MIN_PAIRS})",
                            "add docs to functions, or run a full fine-tune: `codekin train`")
    out(f"Adapter pairs: {len(queries)} (doc and comment text -> its function) from the training split")
    phase(out, "training")
    encode = model_encoder(embedder.model, embedder.batch_size)  # the encoder every gate scores with (search.py)
    adapter = train_adapter(encode(queries), encode(codes), seed=seed)
    seconds["train"] = round(time.perf_counter() - started, 1)
    phase(out, "evaluation")
    held_out = held_out_files(root, config, seed)
    eval_set = build_eval_set(root, held_out, config, seed, config.training.history_commits,
                              distractors=held_out_files(root, config, seed, "train"))
    with SearchEvaluator(eval_set, config.search) as evaluator:
        active = evaluator(encode, "active")
        candidate = evaluator(encode, "adapter", encode_queries=query_encoder(encode, adapter), reuse="active")
    decision = SearchGate(min_improvement=min_improvement)(active, candidate)
    out(search_table(("active", "adapter"), active, candidate))
    store = AdapterStore(root)
    version = store.save(adapter, embedder.key, {"active": active, "candidate": candidate}, decision.reason)
    if decision.promote:
        store.promote(version, decision.reason)
        out(f"Promoted adapter {version} (queries move at once; no re-embedding): {decision.reason}")
    else:
        out(f"Rejected adapter {version} (kept for inspection): {decision.reason}")
    seconds["total"] = round(time.perf_counter() - started, 1)
    with MetricsStore(root) as metrics:
        run_id = metrics.start_run(base_version=embedder.key, base_model=embedder.name, device=embedder.device,
                                   loss="adapter", new_version=version, triplets=len(queries))
        metrics.record_evals(run_id, embedder.key, "eval", active)
        metrics.record_evals(run_id, version, "eval", candidate)
        metrics.finish_run(run_id, "completed", promoted=int(decision.promote), reason=decision.reason)
    return AdapterRun(version, "promoted" if decision.promote else "rejected", decision.reason, embedder.key,
                      len(queries), active, candidate, seconds, run_id)


def adapter_training(root: Path, config: Config, min_improvement: float = 0.01, seed: int = 13,
                     out: Out = print) -> AdapterRun:
    """`codekin train --adapter`: one training at a time (the train lock), on the model that
    answers queries (the one that wrote the index's active table)."""
    from codekin.engine import Engine
    from codekin.training.pipeline import TrainLock

    with TrainLock(root):
        return run_adapter(root, config, Engine(root, config).embedder, min_improvement, seed, out)
