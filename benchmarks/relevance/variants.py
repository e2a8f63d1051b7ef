"""Ranking ideas tried on the tune half of the relevance benchmark, each against today's stack.

Each variant changes one thing of the default hybrid search in this process (a wrapper
around BM25, the dense scores or the query vector); nothing of it is in the product until
it wins here and the held half agrees. Reads the work trees and indexes run.py built for
--label (run it first); prints one JSON line per variant (chunk NDCG@10 of the written
queries, per kind, per language, file NDCG@10, doc->code MRR@10) and appends them to
results/relevance_tune.jsonl unless --no-record. The held half is never scored here.

Variants:
- doc_field: BM25 over each chunk's comments and docstrings added to the lexical channel;
- coverage: the share (idf-weighted) of the query's words a chunk holds, as a factor or a bonus;
- bm25: other k1 and b;
- prf: the query vector moved towards the mean of its first k hybrid hits (Rocchio);
- candidates: the dense scaling floor at another rank (search.CANDIDATES);
- head_vectors: a second vector per chunk (header and its first 6 lines), max or mix with the chunk's;
- own_adapter: the nightly's query adapter (training/adapter.py), fitted on each BEAM/C/C++
  repository's own doc and comment pairs (what `codekin train --adapter` fits, before its gate);
- shipped_adapter: one adapter fitted on the pairs of other repositories (--pairs-from DIR:
  git repositories none of the benchmark's, e.g. finch, ex_doc, rebar3, cowlib, zlib, yaml-cpp).

Usage: python benchmarks/relevance/variants.py --label main-27a87cb [--only VARIANT,...]
       [--pairs-from DIR] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import prepare  # noqa: E402
import run  # noqa: E402
import tune  # noqa: E402

RESULTS = run.REPO / "benchmarks" / "results" / "relevance_tune.jsonl"
ADAPTER_REPOS = ("gun", "hackney", "ranch", "mint", "req", "phoenix_live_view", "lz4", "zstd", "re2", "spdlog")
_COMMENT = re.compile(r"^\s*(///?|//!|/\*+|\*(?!/)|#+|%+|--)\s?(.*)$")
_DIRECTIVE = ("#include", "#define", "#if", "#endif", "#pragma", "#else", "#[", "#!")
_DOCSTRING = re.compile(r'@(?:module)?doc\s+~?[sS]?"""(.*?)"""|"""(.*?)"""|\'\'\'(.*?)\'\'\'|@doc\s+"([^"\n]*)"', re.S)


def doc_text(text: str) -> str:
    """A chunk's comments and docstrings, joined."""
    out = [next(g for g in m.groups() if g is not None) for m in _DOCSTRING.finditer(text)]
    for line in text.split("\n"):
        match = _COMMENT.match(line)
        if match and not line.lstrip().startswith(_DIRECTIVE):
            out.append(match.group(2))
    return " ".join(out)


class Lexical:
    """BM25 as the index has it, plus what a variant adds (`extra(query, scores)`)."""

    def __init__(self, base, extra=None) -> None:
        self.base, self.extra = base, extra

    def scores(self, query, name_weight=0.0):
        scores = self.base.scores(query, name_weight)
        return self.extra(query, scores) if self.extra else scores

    def __getattr__(self, name):
        return getattr(self.base, name)


def summary(rows: list[dict]) -> dict:
    text = [r for r in rows if r["kind"] != "doc2code"]
    kinds, langs = defaultdict(list), defaultdict(list)
    for r in rows:
        kinds[r["kind"]].append(r["mrr"] if r["kind"] == "doc2code" else r["ndcg"])
    for r in text:
        langs[r["lang"]].append(r["ndcg"])
    files = [r["files"] for r in rows if "files" in r]
    mean = lambda v: round(sum(v) / len(v), 4) if v else None  # noqa: E731
    return {"chunk_ndcg": mean([r["ndcg"] for r in text]), "file_ndcg": mean(files),
            "kind": {k: mean(v) for k, v in sorted(kinds.items())}, "lang": {k: mean(v) for k, v in sorted(langs.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--only", help="comma-separated variant families")
    parser.add_argument("--pairs-from", type=Path, help="a folder of git repositories (shipped_adapter)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    run.import_codekin(run.REPO)
    import numpy as np

    import codekin.engine as engine_module
    import codekin.index.search as search_module
    from codekin.chunking.chunk import header_line
    from codekin.config import load_config
    from codekin.embedding import load_embedder
    from codekin.engine import Engine
    from codekin.index.lexical import Bm25, Postings, query_terms, terms
    from codekin.models.adapters import adapted
    from codekin.training.adapter import adapter_pairs, train_adapter

    embedder = load_embedder(load_config().model)
    repos = [tune.Repo(e, args.label, embedder, {"Engine": Engine, "load_config": load_config})
             for e in prepare.load_corpus(None)]
    indexes = {id(r): r.engine.index() for r in repos}
    bm25s = {k: idx.bm25 for k, idx in indexes.items()}
    wanted = set(args.only.split(",")) if args.only else None
    head = run.code_identity(run.REPO)

    def evaluate(name: str, setting: dict, subset: tuple[str, ...] | None = None) -> dict:
        started = time.perf_counter()
        rows = [row for r in repos if subset is None or r.entry["name"] in subset for row in r.rows({})]
        line = {"benchmark": "relevance-variant", "label": args.label, "code": head, "half": "tune",
                "variant": name, "setting": setting, "repos": list(subset) if subset else "all",
                **summary(rows), "seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps(line), flush=True)
        if not args.no_record:
            with RESULTS.open("a") as f:
                f.write(json.dumps(line) + "\n")
        return line

    def lexical(make):  # make(index, its BM25) -> extra(query, scores) or None
        for r in repos:
            indexes[id(r)].bm25 = Lexical(bm25s[id(r)], make(indexes[id(r)], bm25s[id(r)]))

    def family(name: str) -> bool:
        return wanted is None or name in wanted

    evaluate("baseline", {})
    if family("doc_field"):
        docs = {id(idx): Bm25([terms(doc_text(t)) for t in idx.texts], prose=True) for idx in indexes.values()}
        for weight in (0.25, 0.5, 1.0):
            lexical(lambda idx, base, w=weight: lambda q, s: s + w * docs[id(idx)].scores(q))
            evaluate("doc_field", {"weight": weight})
        lexical(lambda idx, base: None)
    if family("coverage"):
        def coverage(base, power=0.0, bonus=0.0):
            ones = Postings(base.matrix.indptr, base.matrix.rows, np.ones_like(base.matrix.values), base.matrix.documents)

            def extra(q, s):
                words = [t for t in dict.fromkeys(query_terms(q)) if t in base.vocabulary]
                if len(words) < 2:
                    return s
                cols = [base.vocabulary[t] for t in words]
                share = ones.dot(cols, base.idf[cols]) / base.idf[cols].sum()
                return s * share ** power + bonus * share * float(s.max() or 1.0)
            return extra
        for power, bonus in ((0.5, 0.0), (1.0, 0.0), (2.0, 0.0), (0.0, 0.2), (0.0, 0.5)):
            lexical(lambda idx, base, p=power, b=bonus: coverage(base, p, b))
            evaluate("coverage", {"power": power, "bonus": bonus})
        lexical(lambda idx, base: None)
    if family("bm25"):
        for k1, b in ((1.2, 0.5), (1.2, 0.9), (0.9, 0.75), (1.6, 0.75)):
            for r in repos:
                idx = indexes[id(r)]
                fresh = Bm25([t.split() for t in idx.terms], k1=k1, b=b, prose=True)
                fresh.names = bm25s[id(r)].names
                idx.bm25 = Lexical(fresh)
            evaluate("bm25", {"k1": k1, "b": b})
        lexical(lambda idx, base: None)
    original_scores, original_cosine = search_module.SearchIndex.scores, search_module.SearchIndex._cosine
    if family("prf"):
        for alpha, k in ((0.3, 1), (0.3, 3), (0.5, 3), (0.5, 5), (1.0, 3)):
            def scores(self, vector, query, mode, keep, weights, a=alpha, k=k):
                rank, shown = original_scores(self, vector, query, mode, keep, weights)
                if vector is None or mode != "hybrid" or query.kind == "symbol":
                    return rank, shown
                top = np.argsort(-np.where(np.isfinite(rank), rank, -1e9))[:k]
                moved = vector + a * self.vectors[top].mean(0)
                return original_scores(self, (moved / np.linalg.norm(moved)).astype(np.float32), query, mode, keep,
                                       weights)[0], shown
            search_module.SearchIndex.scores = scores
            evaluate("prf", {"alpha": alpha, "k": k})
        search_module.SearchIndex.scores = original_scores
    if family("candidates"):
        default = search_module.CANDIDATES
        for count in (50, 200, 400):
            search_module.CANDIDATES = count
            evaluate("candidates", {"candidates": count, "default": default})
        search_module.CANDIDATES = default
    if family("head_vectors"):
        for idx in indexes.values():
            idx.head = embedder.encode([header_line(lang, kind, sym, ctx) + "\n" + "\n".join(text.split("\n")[:6])
                                        for lang, kind, sym, ctx, text in zip(idx.languages, idx.kinds, idx.symbols,
                                                                              idx.contexts, idx.texts, strict=True)])
        for how, weight in (("max", 0.0), ("mix", 0.3), ("mix", 0.5)):
            def cosine(self, vector, how=how, w=weight):
                own, first = original_cosine(self, vector), self.head @ vector
                return np.maximum(own, first) if how == "max" else (1 - w) * own + w * first
            search_module.SearchIndex._cosine = cosine
            evaluate("head_vectors", {"combine": how, "weight": weight, "lines": 6})
        search_module.SearchIndex._cosine = original_cosine
    original_vector = engine_module.Engine._query_vector
    adapters: dict[str, object] = {}

    def moved(self, parsed, key):
        vector = original_vector(self, parsed, key)
        adapter = adapters.get(str(self.root)) or adapters.get("*")
        return adapter.apply(vector[None, :])[0] if adapter is not None and adapted(parsed.kind) else vector
    engine_module.Engine._query_vector = moved
    if family("own_adapter"):
        evaluate("own_adapter_baseline", {}, ADAPTER_REPOS)
        for r in repos:
            if r.entry["name"] in ADAPTER_REPOS:
                queries, codes = adapter_pairs(r.root, r.engine.config, 13)
                if len(queries) >= 8:
                    adapters[str(r.root)] = train_adapter(embedder.encode(queries), embedder.encode(codes))
        evaluate("own_adapter", {"rank": 32, "epochs": 30}, ADAPTER_REPOS)
        adapters.clear()
    if family("shipped_adapter") and args.pairs_from:
        queries, codes = [], []
        for root in sorted(p for p in args.pairs_from.iterdir() if (p / ".git").exists()):
            q, c = adapter_pairs(root, load_config(root), 13)
            queries, codes = queries + q, codes + c
        query_vectors, code_vectors = embedder.encode(queries), embedder.encode(codes)
        for rank, epochs in ((32, 10), (32, 30), (64, 30)):
            adapters["*"] = train_adapter(query_vectors, code_vectors, rank=rank, epochs=epochs)
            evaluate("shipped_adapter", {"rank": rank, "epochs": epochs, "pairs": len(queries),
                                         "from": sorted(p.name for p in args.pairs_from.iterdir())})
        adapters.clear()
    engine_module.Engine._query_vector = original_vector
    return 0


if __name__ == "__main__":
    sys.exit(main())
