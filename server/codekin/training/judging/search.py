"""Score a model through the search users get, and the promotion gate over those scores.

The held-out corpus (queries.py) is written to a real LanceDB index in a scratch
directory, once per model as its own vectors table, and every query runs through
index/search.py's SearchIndex with the configured mode (hybrid by default) and the
ranking stack of its query kind: the same code path as `codekin search`. MRR@10 per query
kind. The gate (SearchGate) needs doc->code MRR@10 to gain the configured margin (the mean
over kinds, `search_mrr@10`, when doc->code queries are too few) and no kind to drop > 0.01.

Every model is scored with its torch encoder (`model_encoder`; fp32 on a CPU), the fine-tune's
candidate, the query adapter's and the active model alike. Scoring is deterministic (the same
numbers in any process, thread count or hash seed: tests/test_evaluation_determinism.py), but
the int8 encoder a CPU index uses moves some vectors enough to swap two answers, and with the
14-60 doc->code queries of a held-out split one swap moves MRR@10 by 0.01-0.07: more than the
gate's margin. Scoring the adapter with int8 and the fine-tune with torch made their gains
incomparable (mint, the base model: doc->code 0.314 with int8, 0.322 with torch).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codekin.config import SearchConfig
from codekin.index.query import parse
from codekin.index.ranking import weights_for
from codekin.index.search import SearchIndex
from codekin.index.store import IndexStore
from codekin.training.evaluation.evaluate import GateDecision
from codekin.training.judging.queries import QUERY_KINDS, EvalSet

K = 10
MIN_QUERIES = 5  # a kind with fewer queries is reported but neither decides nor blocks
MAX_DROP = 0.01  # no query kind may lose more MRR@10 than this
PRIMARY = f"search_mrr@{K}"  # the mean over kinds (reported; decides when doc->code queries are too few)
DOC_PRIMARY = f"search_doc_to_code_mrr@{K}"
Encode = Callable[[list[str]], np.ndarray]  # texts -> unit vectors


class SearchEvaluator:
    """`SearchEvaluator(eval_set, search_config)(encode, name)` -> metrics dict.

    One scratch index holds the corpus's chunks; each call adds the model's vectors as
    table `name` and searches it. `close()` removes the scratch directory."""

    primary_metric = PRIMARY
    greater_is_better = True

    def __init__(self, eval_set: EvalSet, search: SearchConfig, scratch: Path | None = None) -> None:
        self.eval_set = eval_set
        self.search = search
        self._dir = Path(tempfile.mkdtemp(prefix="codekin-eval-", dir=scratch))
        self.store = IndexStore(self._dir)
        self.store.state_dir.mkdir(parents=True, exist_ok=True)
        paths = sorted({c.path for c in eval_set.chunks})
        if eval_set.chunks:
            self.store.replace_files(paths, eval_set.chunks, [])

    def __enter__(self) -> SearchEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def size(self) -> dict[str, int]:
        return {"chunks": len(self.eval_set.chunks), **self.eval_set.counts()}

    def __call__(self, encode: Encode, name: str, encode_queries: Encode | None = None,
                 reuse: str = "") -> dict[str, float]:
        """Metrics of the model `encode`; `encode_queries` embeds the queries instead (a
        query-side adapter), `reuse` names an earlier call whose chunk vectors stay (the
        adapter leaves the documents' vectors as they are)."""
        chunks = self.eval_set.chunks
        if not chunks or not self.eval_set.queries:
            return {PRIMARY: math.nan}
        if not reuse:
            unique = {c.content_hash: c.embed_text for c in chunks}
            hashes = list(unique)
            self.store.add_vectors(name, hashes, encode([unique[h] for h in hashes]))
        index = SearchIndex(self.store, reuse or name)
        queries = self.eval_set.queries
        vectors = (encode_queries or encode)([q.text for q in queries])
        ranks: dict[str, list[float]] = {k: [] for k in QUERY_KINDS}
        for query, vector in zip(queries, vectors, strict=True):
            parsed = parse(query.text, query.search_kind)
            keep = index.mask()
            if query.exclude:
                keep[index.rows_of(query.exclude)] = False
            mode = self.search.mode if parsed.has_words else "dense"
            hits = index.search(vector, parsed, mode, K, -math.inf, keep, weights_for(self.search, parsed.kind))
            rank = next((n for n, h in enumerate(hits, 1) if query.answered_by(h.path, h.start_line, h.end_line)),
                        None)
            ranks[query.kind].append(1.0 / rank if rank else 0.0)
        return search_metrics(ranks, index.dim)


def search_metrics(ranks: dict[str, list[float]], dim: int) -> dict[str, float]:
    """Per kind `search_{kind}_mrr@10` and `_queries`; the primary metric averages the
    kinds with at least MIN_QUERIES queries."""
    out: dict[str, float] = {}
    counted = []
    for kind, values in ranks.items():
        out[f"search_{kind}_queries"] = float(len(values))
        if values:
            out[f"search_{kind}_mrr@{K}"] = float(np.mean(values))
            if len(values) >= MIN_QUERIES:
                counted.append(out[f"search_{kind}_mrr@{K}"])
    out[PRIMARY] = float(np.mean(counted)) if counted else math.nan
    out["dim"] = float(dim)
    return out


@dataclass
class SearchGate:
    min_improvement: float = 0.01
    max_drop: float = MAX_DROP
    allow_dim_change: bool = False

    def __call__(self, active: dict[str, float], candidate: dict[str, float]) -> GateDecision:
        """Promote only when the primary metric gains `min_improvement` and no query kind
        (with enough queries) loses more than `max_drop`."""
        a_dim, c_dim = int(active.get("dim", 0)), int(candidate.get("dim", 0))
        if a_dim != c_dim and not self.allow_dim_change:
            return GateDecision(False, f"output dimension {c_dim} differs from the active model's {a_dim}; "
                                       "pass --allow-dim-change to accept it (forces a full re-embed)")
        primary = decisive(active)
        a, c = active.get(primary, math.nan), candidate.get(primary, math.nan)
        if math.isnan(a) or math.isnan(c):
            return GateDecision(False, "the held-out search evaluation could not run (no held-out queries: "
                                       "too few files, docs or functions in the evaluation split)")
        drops = [f"{kind} {active[key]:.3f} -> {candidate[key]:.3f}" for kind in QUERY_KINDS
                 if (key := f"search_{kind}_mrr@{K}") in active and key in candidate
                 and active.get(f"search_{kind}_queries", 0) >= MIN_QUERIES
                 and active[key] - candidate[key] > self.max_drop]
        if drops:
            return GateDecision(False, f"search got worse for {', '.join(drops)} (MRR@{K}; at most "
                                       f"{self.max_drop:g} is allowed)")
        what = "doc->code search" if primary == DOC_PRIMARY else "search"
        if c - a < self.min_improvement:
            return GateDecision(False, f"{what} MRR@{K} {c:.3f} does not beat the active model's {a:.3f} "
                                       f"by the required {self.min_improvement:g}; {per_kind(active, candidate)}")
        return GateDecision(True, f"{what} MRR@{K} {a:.3f} -> {c:.3f} (+{c - a:.3f}); {per_kind(active, candidate)}")


def weigh_adapter(decision: GateDecision, active: dict[str, float], candidate: dict[str, float],
                  adapter: dict[str, dict[str, float]] | None) -> GateDecision:
    """A full fine-tune that passed the gate is still rejected when the served query-side
    adapter (its manifest's metrics, `adapter`) gained more on the decisive metric over the
    same active model: the adapter keeps the index's vectors and needs no re-embedding."""
    if not decision.promote or not adapter or "active" not in adapter or "candidate" not in adapter:
        return decision
    primary = decisive(active)
    full = candidate.get(primary, math.nan) - active.get(primary, math.nan)
    served = adapter["candidate"].get(primary, math.nan) - adapter["active"].get(primary, math.nan)
    if math.isnan(served) or math.isnan(full) or full > served:
        return decision
    return GateDecision(False, f"the served query adapter gains more ({primary} +{served:.3f}, no re-embedding) "
                               f"than this fine-tune (+{full:.3f}); {per_kind(active, candidate)}")


def decisive(metrics: dict[str, float]) -> str:
    """The metric that must improve: doc->code MRR@10 (what users type and training teaches)
    when there are enough such queries, else the mean over the query kinds."""
    return DOC_PRIMARY if metrics.get("search_doc_to_code_queries", 0) >= MIN_QUERIES else PRIMARY


def per_kind(active: dict[str, float], candidate: dict[str, float]) -> str:
    """"doc_to_code 0.41 -> 0.52, symbol 0.90 -> 0.90, ..." for the kinds measured."""
    parts = []
    for kind in QUERY_KINDS:
        key = f"search_{kind}_mrr@{K}"
        if key in active and key in candidate:
            parts.append(f"{kind} {active[key]:.3f} -> {candidate[key]:.3f} (n={int(active[f'search_{kind}_queries'])})")
    return ", ".join(parts)


def model_encoder(model: Any, batch_size: int = 64) -> Encode:
    """The encode function of a sentence-transformers model (unit vectors, no autograd)."""
    from codekin.embedding.torch_encode import encode_texts

    return lambda texts: encode_texts(model, texts, batch_size)
