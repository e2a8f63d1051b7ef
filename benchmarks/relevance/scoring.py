"""Relevance metrics over one ranked list, and their means over groups of queries.

Pure functions over plain values (no codekin import), so tests can check them on
hand-made rankings. A hit is `(path, start_line, end_line)`; a target is a `Target`.

- Chunk-level NDCG@10: a target counts once, at the first of the top 10 hits whose path
  matches and whose lines overlap its span (a target without a span: any hit in its file);
  one hit credits one target (the highest-gain unmatched one it overlaps), so a 40-line
  window holding two small answers is not paid twice and NDCG stays <= 1. The ideal DCG
  is that of the targets' gains sorted (relevant 2, secondary 1).
- File-level NDCG@10: hits deduplicated into files in order; a file's gain is the best
  gain of the targets in it; ideal from those file gains sorted.
- MRR@10: 1/rank of the first of the top 10 hits that matches a relevant target.
- Precision@5 (module-level code queries): relevant files among the first 5 distinct
  files, over min(5, number of relevant files), so a query with 3 sibling modules can
  reach 1.0.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

GAIN_RELEVANT = 2
GAIN_SECONDARY = 1
K = 10

Hit = tuple[str, int, int]  # path, start_line, end_line (1-based, inclusive)


@dataclass(frozen=True)
class Target:
    path: str
    start: int | None = None
    end: int | None = None
    gain: int = GAIN_RELEVANT

    def matches(self, hit: Hit) -> bool:
        path, start, end = hit
        if path != self.path:
            return False
        if self.start is None or self.end is None:
            return True
        return start <= self.end and self.start <= end


def targets_of(query: dict) -> list[Target]:
    """The query's relevant (gain 2) and secondary (gain 1) targets; a target listed twice
    keeps its best gain."""
    best: dict[tuple, int] = {}
    for key, gain in (("relevant", GAIN_RELEVANT), ("secondary", GAIN_SECONDARY)):
        for t in query.get(key) or []:
            ident = (t["path"], t.get("start"), t.get("end"))
            best[ident] = max(best.get(ident, 0), gain)
    return [Target(path, start, end, gain) for (path, start, end), gain in best.items()]


def half_of(query_id: str) -> str:
    """`tune` when sha1(id) is even, `held` when odd: decided by the id alone."""
    return "tune" if int(hashlib.sha1(query_id.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "held"


def _dcg(gains_at_ranks: Iterable[tuple[int, float]]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in gains_at_ranks)


def _ideal(gains: Iterable[float], k: int) -> float:
    return _dcg(enumerate(sorted(gains, reverse=True)[:k], 1))


def chunk_ndcg(hits: Sequence[Hit], targets: Sequence[Target], k: int = K) -> float:
    ideal = _ideal([t.gain for t in targets], k)
    if ideal == 0:
        return 0.0
    matched: set[int] = set()
    credited: list[tuple[int, float]] = []
    for rank, hit in enumerate(hits[:k], 1):
        best = None
        for i, target in enumerate(targets):
            if i not in matched and target.matches(hit) and (best is None or target.gain > targets[best].gain):
                best = i
        if best is not None:
            matched.add(best)
            credited.append((rank, targets[best].gain))
    return _dcg(credited) / ideal


def files_of(hits: Iterable[Hit | str]) -> list[str]:
    """Paths in order of first appearance (hits or bare paths)."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit if isinstance(hit, str) else hit[0], None)
    return list(seen)


def file_gains(targets: Sequence[Target]) -> dict[str, int]:
    gains: dict[str, int] = {}
    for t in targets:
        gains[t.path] = max(gains.get(t.path, 0), t.gain)
    return gains


def file_ndcg(files: Sequence[str], targets: Sequence[Target], k: int = K) -> float:
    gains = file_gains(targets)
    ideal = _ideal(gains.values(), k)
    if ideal == 0:
        return 0.0
    return _dcg((rank, gains.get(path, 0)) for rank, path in enumerate(files[:k], 1)) / ideal


def mrr(hits: Sequence[Hit], targets: Sequence[Target], k: int = K) -> float:
    relevant = [t for t in targets if t.gain >= GAIN_RELEVANT]
    for rank, hit in enumerate(hits[:k], 1):
        if any(t.matches(hit) for t in relevant):
            return 1.0 / rank
    return 0.0


def file_mrr(files: Sequence[str], targets: Sequence[Target], k: int = K) -> float:
    relevant = {t.path for t in targets if t.gain >= GAIN_RELEVANT}
    for rank, path in enumerate(files[:k], 1):
        if path in relevant:
            return 1.0 / rank
    return 0.0


def precision_at_5(files: Sequence[str], targets: Sequence[Target]) -> float:
    relevant = {t.path for t in targets if t.gain >= GAIN_RELEVANT}
    if not relevant:
        return 0.0
    return len(relevant & set(files[:5])) / min(5, len(relevant))


def score_chunks(hits: Sequence[Hit], targets: Sequence[Target], module: bool = False) -> dict[str, float]:
    """Every metric of a chunk ranking (modes dense, lexical, hybrid, bm25-windows)."""
    files = files_of(hits)
    out = {"ndcg": chunk_ndcg(hits, targets), "fndcg": file_ndcg(files, targets), "mrr": mrr(hits, targets)}
    if module:
        out["p5"] = precision_at_5(files, targets)
    return out


def score_files(files: Sequence[str], targets: Sequence[Target], module: bool = False) -> dict[str, float]:
    """The file-level metrics of a file ranking (mode `files`)."""
    files = files_of(files)
    out = {"fndcg": file_ndcg(files, targets), "fmrr": file_mrr(files, targets)}
    if module:
        out["p5"] = precision_at_5(files, targets)
    return out


# -- aggregation --------------------------------------------------------------------------------
def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def means(rows: list[dict], mode: str, metrics: Sequence[str] = ("ndcg", "fndcg", "mrr", "fmrr")) -> dict:
    """{"n": queries scored in `mode`, metric: mean} over rows (rows lacking the mode are left out)."""
    scored = [r["scores"][mode] for r in rows if mode in r["scores"]]
    out: dict = {"n": len(scored)}
    for metric in metrics:
        values = [s[metric] for s in scored if s.get(metric) is not None]
        if values:
            out[metric] = _mean(values)
    return out


def aggregate(rows: list[dict], modes: Sequence[str], halves: Sequence[str]) -> dict:
    """mode -> half -> {all, kind: {...}, lang: {...}, p5_module, doc2code}.

    rows: {"half", "kind", "lang", "level", "doc2code": bool, "scores": {mode: {metric: value}}};
    half "all" takes both halves. doc2code rows count only under doc2code (MRR@10, by language).
    """
    out: dict = {}
    for mode in modes:
        per_half: dict = {}
        for half in halves:
            chosen = [r for r in rows if half == "all" or r["half"] == half]
            written = [r for r in chosen if not r.get("doc2code")]
            cell: dict = {"all": means(written, mode)}
            cell["kind"] = {kind: means([r for r in written if r["kind"] == kind], mode)
                            for kind in sorted({r["kind"] for r in written})}
            cell["lang"] = {lang: means([r for r in written if r["lang"] == lang], mode)
                            for lang in sorted({r["lang"] for r in written})}
            module = [r["scores"][mode]["p5"] for r in written
                      if r.get("level") == "module" and mode in r["scores"] and "p5" in r["scores"][mode]]
            if module:
                cell["p5_module"] = {"n": len(module), "p5": _mean(module)}
            docs = [r for r in chosen if r.get("doc2code") and "mrr" in r["scores"].get(mode, {})]
            if docs:
                d2c: dict = {"n": len(docs), "mrr": _mean([r["scores"][mode]["mrr"] for r in docs])}
                for lang in sorted({r["lang"] for r in docs}):
                    d2c[lang] = _mean([r["scores"][mode]["mrr"] for r in docs if r["lang"] == lang])
                cell["doc2code"] = d2c
            per_half[half] = cell
        out[mode] = per_half
    return out
