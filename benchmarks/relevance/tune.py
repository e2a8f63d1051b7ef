"""Fit the ranking weights of [search] on the tune half of the relevance benchmark.

Reads the work trees and indexes run.py built for --label (run it first), opens one
Engine per repository, embeds each query once, then walks the weights one at a time over
a small grid (coordinate ascent, two passes), scoring the default hybrid search — and
the file ranking — on the tune half only; the held half is never looked at. The objective
is the mean over query kinds (symbol, semantic, architecture, code, doc->code) of chunk
and file NDCG@10 (MRR@10 for doc->code), plus file-ranking NDCG@10 for the written
non-code queries. Prints progress to stderr and one JSON line with the best weights.

Usage: python benchmarks/relevance/tune.py --label main-61c8038 [--only a,b] [--passes 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import prepare  # noqa: E402
import run  # noqa: E402
import scoring  # noqa: E402

GRID = {  # around the fitted defaults in config.py (the first pass walked wider grids)
    "lexical_weight": [1.5, 2.0, 2.5, 3.0],
    "concept_lexical_weight": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0],
    "name_weight": [0.5, 1.0, 1.5, 2.0, 3.0],
    "passage_name_weight": [1.5, 3.0, 5.0, 8.0, 12.0],
    "symbol_lexical_weight": [3.0, 5.0, 8.0, 12.0],
    "definition_weight": [1.0, 2.0, 3.0, 5.0],
    "question_definition_weight": [0.3, 0.6, 1.0, 1.5],
    "code_lexical_weight": [1.5, 2.5, 4.0, 6.0],
    "prior_test": [0.4, 0.55, 0.7],
    "prior_other": [0.85, 1.0],
    "declaration_share": [0.4, 0.6, 0.8, 1.0],
    "spread": [0.8, 0.9, 0.95, 1.0],
    "concept_spread": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.95],
    "file_evidence_weight": [0.0, 0.3, 0.5, 0.8, 1.2, 1.6, 2.0],
    "file_chunk_decay": [0.5, 0.7, 0.85],
    "file_summary_weight": [0.25, 0.5, 1.0],
    "file_dense_weight": [0.25, 0.5, 1.0],
    "module_text_weight": [0.0, 0.5, 1.0, 2.0],
    "module_callback_weight": [0.0, 0.5, 1.0, 2.0, 3.0],
}
KINDS = ("symbol", "semantic", "architecture", "code", "doc2code")


class Repo:
    """One repository's engine and tune-half queries, query embeddings cached."""

    def __init__(self, entry: dict, label: str, embedder, ck: dict) -> None:
        self.entry = entry
        self.root = prepare.cache_root() / "work" / label / entry["name"]
        if not (self.root / ".codekin" / "state.json").is_file():
            raise SystemExit(f"no index at {self.root}: run `python benchmarks/relevance/run.py --label {label}` first")
        files = prepare.included_files(entry)
        lines_of = {}
        for rel in files:
            text = run.read_source(self.root / rel)
            if text is not None:
                lines_of[rel] = run.line_count(text)
        queries, _ = run.load_queries(entry, lines_of, set())
        docs = [run.doc_query(entry, f) for f in run.doc_functions(entry, files, queries)]
        self.queries = [q for q in [*queries, *docs] if scoring.half_of(q["id"]) == "tune"]
        self.engine = ck["Engine"](self.root, ck["load_config"](self.root), embedder=embedder)
        self.base = self.engine.config.search
        cache: dict[tuple[str, str | None], object] = {}
        embed = self.engine._embed

        def cached(text: str, key: str | None = None):
            if (text, key) not in cache:
                cache[(text, key)] = embed(text, key)
            return cache[(text, key)]

        self.engine._embed = cached

    def rows(self, settings: dict) -> list[dict]:
        self.engine.config.search = dataclasses.replace(self.base, **settings)
        out = []
        for query in self.queries:
            kind = "doc2code" if query.get("doc2code") else query["kind"]
            targets = scoring.targets_of(query)
            module = query.get("level") == "module"
            hits = run.Runner.engine_query(_QUIET, self.engine, query, self.root, "hybrid")
            row = {"kind": kind, "lang": self.entry["language"], **scoring.score_chunks([h[:3] for h in hits],
                                                                                          targets, module)}
            if kind not in ("code", "doc2code"):
                files = run.Runner.engine_query(_QUIET, self.engine, query, self.root, "files")
                row["files"] = scoring.score_files([h[0] for h in files], targets)["fndcg"]
            out.append(row)
        return out


class _Quiet:
    errors = 0
    mode_seconds: dict = defaultdict(float)


_QUIET = _Quiet()


def objective(rows: list[dict]) -> tuple[float, dict]:
    by_kind = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    parts = {}
    for kind, group in by_kind.items():
        if kind == "doc2code":
            parts[kind] = sum(r["mrr"] for r in group) / len(group)
        else:
            parts[kind] = sum((r["ndcg"] + r["fndcg"]) / 2 for r in group) / len(group)
    files = [r["files"] for r in rows if "files" in r]
    parts["files"] = sum(files) / len(files) if files else 0.0
    return sum(parts.values()) / len(parts), {k: round(v, 4) for k, v in sorted(parts.items())}


def by_language(rows: list[dict]) -> dict:
    groups = defaultdict(list)
    for row in rows:
        groups[row["lang"]].append(row["ndcg"])
    return {lang: round(sum(v) / len(v), 4) for lang, v in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="run.py's label whose indexes to use")
    parser.add_argument("--code", type=Path, default=run.REPO, help="codekin checkout to tune (default: this tree)")
    parser.add_argument("--only", help="comma-separated repository names")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--params", help="comma-separated subset of the grid's weights")
    args = parser.parse_args(argv)
    run.import_codekin(args.code.expanduser().resolve())
    from codekin.config import SearchConfig, load_config
    from codekin.embedding import load_embedder
    from codekin.engine import Engine

    embedder = load_embedder(load_config().model)
    ck = {"Engine": Engine, "load_config": load_config}
    repos = [Repo(e, args.label, embedder, ck) for e in prepare.load_corpus(args.only.split(",") if args.only else None)]
    defaults = SearchConfig()
    best = {name: getattr(defaults, name) for name in GRID}
    grid = {k: v for k, v in GRID.items() if not args.params or k in args.params.split(",")}

    def evaluate(settings: dict) -> tuple[float, dict, list[dict]]:
        rows = [row for repo in repos for row in repo.rows(settings)]
        score, parts = objective(rows)
        return score, parts, rows

    started = time.perf_counter()
    start_score, start_parts, start_rows = evaluate(best)
    run.log(f"defaults: {start_score:.4f} {start_parts} ({sum(len(r.queries) for r in repos)} tune queries, "
            f"{time.perf_counter() - started:.1f} s)")
    score = start_score
    for number in range(args.passes):
        changed = False
        for name, values in grid.items():
            for value in values:
                if value == best[name]:
                    continue
                trial = {**best, name: value}
                trial_score, parts, _ = evaluate(trial)
                run.log(f"pass {number + 1} {name}={value}: {trial_score:.4f} {parts}")
                if trial_score > score + 1e-4:
                    score, best, changed = trial_score, trial, True
            run.log(f"pass {number + 1}: {name} = {best[name]} ({score:.4f})")
        if not changed:
            break
    final_score, final_parts, final_rows = evaluate(best)
    print(json.dumps({"benchmark": "relevance-tune", "label": args.label, "half": "tune",
                      "queries": len(final_rows), "start": {"objective": round(start_score, 4), **start_parts,
                                                            "lang_ndcg": by_language(start_rows)},
                      "best": {"objective": round(final_score, 4), **final_parts,
                               "lang_ndcg": by_language(final_rows)},
                      "weights": best, "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
