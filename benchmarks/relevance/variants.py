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
- name_vectors: a vector of each callable's own name as words (`split_payload_in_chunks` ->
  "split payload in chunks"), mixed with the chunk's cosine or taking the larger;
- own_adapter: the nightly's query adapter (training/adapter.py), fitted on each BEAM/C/C++
  repository's own doc and comment pairs (what `codekin train --adapter` fits, before its gate);
- shipped_adapter: one adapter fitted on the pairs of other repositories (--pairs-from DIR:
  git repositories none of the benchmark's, with their history: finch, ex_doc, rebar3, cowlib,
  zlib, yaml-cpp, httpx, urfave/cli, fastify, hyper), either their doc and comment pairs (the
  nightly's miner: BEAM and C/C++ only) or each focused commit's subject -> the 1-3 functions
  it changed (every language: the closest thing to a developer's question in a repository);
- translation: each question word's code terms (those most over-represented in the code of the
  chunks whose comments hold the word, top 3) added to BM25 at a small weight (questions only);
- query_prefix: the question embedded in the chunks' header form ("<language> function: ..."),
  alone or averaged with the plain question's vector;
- dense_ceiling: an oracle, not a candidate: each question's vector moved `mix` of the way to
  the mean vector of its answer's chunks; how much a better dense side could lift this search.

Usage: python benchmarks/relevance/variants.py --label main-27a87cb [--only VARIANT,...]
       [--pairs-from DIR] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import prepare  # noqa: E402
import run  # noqa: E402
import scoring  # noqa: E402
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


_CODE_FILE = re.compile(r"\.(ex|exs|erl|hrl|c|h|cc|cpp|hpp|py|go|js|mjs|ts|rs)$")
_NOT_CODE = re.compile(r"(^|/)(test|tests|spec|examples?|bench|vendor|deps)/|_test\.|test_")
_ROUTINE = re.compile(r"^(bump|release|version|merge|revert|update (changelog|deps|dependencies|readme)|v?\d+\.\d+|"
                      r"chore|docs?:|ci:|style:|lint|format|fix typo|typo)", re.I)


def commit_pairs(root: Path, chunk_text, read_blobs, max_commits: int = 4000, keep: int = 1200) -> tuple[list[str], list[str]]:
    """(subject, embed text) of each function a focused commit (1-3 code files, 1-3 functions,
    a subject of 4-20 words that is not routine) changed, in its new version. `read_blobs` is
    the history miner's (training/mining/history.py): one `git cat-file --batch` for all."""
    commits: list[tuple[str, list[tuple[str, str, str]]]] = []
    log = subprocess.run(["git", "-C", str(root), "log", f"-n{max_commits}", "--no-merges", "--no-renames", "--raw",
                          "--no-abbrev", "--format=commit %s"], capture_output=True, check=False).stdout
    for line in log.decode("utf-8", "replace").split("\n"):
        if line.startswith("commit "):
            commits.append((line[7:].strip(), []))
        elif line.startswith(":") and "\t" in line and commits:
            meta, path = line.split("\t", 1)
            fields = meta.split()
            if fields[4] == "M" and _CODE_FILE.search(path) and not _NOT_CODE.search(path):
                commits[-1][1].append((path, fields[2], fields[3]))
    commits = [c for c in commits if 4 <= len(c[0].split()) <= 20 and not _ROUTINE.match(c[0]) and 1 <= len(c[1]) <= 3]
    random.Random(13).shuffle(commits)
    commits = commits[:keep]
    blobs = read_blobs(root, sorted({sha for _, files in commits for _, old, new in files for sha in (old, new)}))
    queries, codes = [], []
    for subject, files in commits:
        changed = []
        for path, old, new in files:
            if old in blobs and new in blobs and len(blobs[new]) <= 300_000:
                before = {c.symbol: c.text for c in chunk_text(path, blobs[old])}
                changed += [c for c in chunk_text(path, blobs[new]) if c.kind in ("function", "method", "macro")
                            and c.symbol in before and before[c.symbol] != c.text]
        if 1 <= len(changed) <= 3:
            queries += [subject.rstrip(".")] * len(changed)
            codes += [c.embed_text for c in changed]
    return queries, codes


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
    from codekin.chunking import chunk_text
    from codekin.chunking.chunk import header_line
    from codekin.config import load_config
    from codekin.embedding import load_embedder
    from codekin.engine import Engine
    from codekin.index.lexical import Bm25, Postings, query_terms, terms
    from codekin.models.adapters import adapted
    from codekin.training.adapter import adapter_pairs, train_adapter
    from codekin.training.mining.history import _read_blobs as read_blobs

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
    if family("translation"):
        from codekin.index.lexical import STOPWORDS, stem
        from codekin.index.query import CONCEPT, QUESTION

        def associations(idx) -> tuple[dict, Counter, Counter, int]:
            together: dict[str, Counter] = defaultdict(Counter)
            words_df, terms_df, documented = Counter(), Counter(), 0
            for text in idx.texts:
                doc = doc_text(text)
                code = "\n".join(line for line in text.split("\n") if not _COMMENT.match(line))
                words = {stem(w) for w in terms(doc) if w not in STOPWORDS}
                code_terms = {stem(t) for t in terms(code)}
                if words and code_terms:
                    documented += 1
                    words_df.update(words)
                    terms_df.update(code_terms)
                    for word in words:
                        together[word].update(code_terms)
            return together, words_df, terms_df, documented

        tables = {id(idx): associations(idx) for idx in indexes.values()}
        weight = {"beta": 0.0}

        def expansion(idx, base):
            together, words_df, terms_df, documented = tables[id(idx)]

            def extra(q, s):
                words = list(dict.fromkeys(query_terms(q)))
                added: Counter = Counter()
                for word in (w for w in words if words_df[w] >= 3):
                    lift = [(c / words_df[word] * math.log(1 + c / words_df[word] / (terms_df[t] / documented)), t)
                            for t, c in together[word].items() if c >= 2 and t not in words]
                    for score, term in sorted(lift, reverse=True)[:3]:
                        added[term] += score
                known = [t for t in added if t in base.vocabulary]
                if not known or not weight["beta"]:
                    return s
                weights = np.array([added[t] for t in known], dtype=np.float32)
                return s + weight["beta"] * base.matrix.dot([base.vocabulary[t] for t in known], weights)
            return extra

        lexical(expansion)

        def questions_only(self, vector, query, mode, keep, weights, beta=0.0):
            weight["beta"] = beta if query.kind in (QUESTION, CONCEPT) else 0.0
            return original_scores(self, vector, query, mode, keep, weights)
        for beta in (0.05, 0.1, 0.15, 0.2):
            search_module.SearchIndex.scores = lambda *a, b=beta: questions_only(*a, beta=b)
            evaluate("translation", {"beta": beta, "top": 3})
        search_module.SearchIndex.scores = original_scores
        lexical(lambda idx, base: None)
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
    if family("name_vectors"):
        from codekin.index.lexical import NAMED_KINDS, name_terms

        for idx in indexes.values():
            words = [name_terms(sym, kind) for sym, kind in zip(idx.symbols, idx.kinds, strict=True)]
            phrases = [" ".join(w[1:] if len(w) > 1 else w) for w in words]  # terms(): the whole name, then its parts
            unique = sorted(set(phrases))
            vectors = embedder.encode(unique)
            at = {p: i for i, p in enumerate(unique)}
            idx.name_vectors = vectors[[at[p] for p in phrases]]
            idx.named = np.array([bool(p) and k in NAMED_KINDS for p, k in zip(phrases, idx.kinds, strict=True)])
        for how, weight in (("mix", 0.15), ("mix", 0.3), ("max", 0.0)):
            def cosine(self, vector, how=how, w=weight):
                own = original_cosine(self, vector)
                name = np.where(self.named, self.name_vectors @ vector, own)
                return np.maximum(own, name) if how == "max" else (1 - w) * own + w * name
            search_module.SearchIndex._cosine = cosine
            evaluate("name_vectors", {"combine": how, "weight": weight})
        search_module.SearchIndex._cosine = original_cosine
    original_vector = engine_module.Engine._query_vector
    adapters: dict[str, object] = {}

    def moved(self, parsed, key):
        vector = original_vector(self, parsed, key)
        adapter = adapters.get(str(self.root)) or adapters.get("*")
        return adapter.apply(vector[None, :])[0] if adapter is not None and adapted(parsed.kind) else vector
    engine_module.Engine._query_vector = moved
    if family("query_prefix"):
        main_language = {str(r.root): Counter(indexes[id(r)].languages).most_common(1)[0][0] for r in repos}
        for form in ("{language} function: {q}", "function: {q}"):
            for average in (False, True):
                def prefixed(self, parsed, key, form=form, average=average):
                    vector = original_vector(self, parsed, key)
                    if not adapted(parsed.kind):
                        return vector
                    other = self._embed(form.format(language=main_language[str(self.root)], q=parsed.text), key)
                    other = other + vector if average else other
                    return (other / np.linalg.norm(other)).astype(np.float32)
                engine_module.Engine._query_vector = prefixed
                evaluate("query_prefix", {"form": form, "average": average})
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
        roots = sorted(p for p in args.pairs_from.iterdir() if (p / ".git").exists())
        for pairs in ("doc", "commit"):
            queries, codes = [], []
            for root in roots:
                q, c = adapter_pairs(root, load_config(root), 13) if pairs == "doc" else commit_pairs(root, chunk_text, read_blobs)
                queries, codes = queries + q, codes + c
            query_vectors, code_vectors = embedder.encode(queries), embedder.encode(codes)
            for rank, epochs in ((32, 10), (32, 30), (64, 30)):
                adapters["*"] = train_adapter(query_vectors, code_vectors, rank=rank, epochs=epochs)
                evaluate("shipped_adapter", {"pairs": pairs, "rank": rank, "epochs": epochs, "count": len(queries),
                                             "from": [p.name for p in roots]})
            adapters.clear()
    if family("dense_ceiling"):
        answers: dict[str, np.ndarray] = {}
        for r in repos:
            idx = indexes[id(r)]
            for q in r.queries:
                rows = [i for t in scoring.targets_of(q) if t.gain == scoring.GAIN_RELEVANT
                        for i in idx.by_path.get(t.path, []) if t.matches((t.path, idx.starts[i], idx.ends[i]))]
                if rows and q["kind"] != "code" and not q.get("doc2code"):
                    mean = idx.vectors[rows].mean(0)
                    answers[q["query"]] = mean / np.linalg.norm(mean)
        for mix in (0.1, 0.2, 0.3, 0.5):
            def toward(self, parsed, key, mix=mix):
                vector = original_vector(self, parsed, key)
                answer = answers.get(parsed.text)
                if answer is None or not adapted(parsed.kind):
                    return vector
                blend = (1 - mix) * vector + mix * answer
                return (blend / np.linalg.norm(blend)).astype(np.float32)
            engine_module.Engine._query_vector = toward
            evaluate("dense_ceiling", {"mix": mix, "oracle": True})
    engine_module.Engine._query_vector = original_vector
    return 0


if __name__ == "__main__":
    sys.exit(main())
