"""Retrieval quality: syntax chunks vs 40-line windows, for each search mode.

doc -> code: documented functions of a held-out set of files lose their docs; the
doc text is the query and the function is the answer (MRR@10).
code -> code: a copy of a function with its local names renamed must find the
original first (top-1 rate, MRR@10).

Corpus: examples/ plus Erlang/OTP stdlib sources when Debian's erlang-src is
installed (`apt-get install -y erlang-src`). Prints one JSON line.
Usage: python benchmarks/bench_quality.py [--otp-files 12] [--queries 60]
       [--no-delegation] [--no-sections]  (the chunk context of chunking/delegation.py, context.py off)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
OTP_STDLIB = Path("/usr/lib/erlang/lib").glob("stdlib-*/src")
MODES = ("dense", "lexical", "hybrid")


def build_corpus(dest: Path, otp_files: int) -> None:
    shutil.copytree(REPO / "examples", dest, ignore=shutil.ignore_patterns(".codekin"))
    sources = sorted(p for d in OTP_STDLIB for p in d.glob("*.erl"))
    picked = random.Random(7).sample(sources, min(otp_files, len(sources)))
    (dest / "otp").mkdir()
    for path in picked:
        shutil.copy(path, dest / "otp" / path.name)


def git_commit(root: Path) -> None:
    from corpus import commit_all  # benchmarks/ is on sys.path when a script runs

    commit_all(root)


_EX_DOC = re.compile(r'^\s*@doc\s+(?:"""\n(?P<block>.*?)\n\s*"""|"(?P<line>[^"\n]+)")\n', re.S | re.M)


def doc_of(chunk) -> tuple[str, str] | None:
    """(doc text, the chunk text without it) for a documented function chunk."""
    if chunk.kind != "function":
        return None
    if chunk.language == "elixir":
        match = _EX_DOC.search(chunk.text)
        if not match:
            return None
        doc = match["block"] or match["line"]
        return " ".join(doc.split()), chunk.text[:match.start()] + chunk.text[match.end():]
    if chunk.language == "erlang":
        lines = chunk.text.split("\n")
        comment = [_prose(line) for line in lines if line.startswith("%%")]
        doc = " ".join(line for line in comment if line)
        if len(re.findall(r"[A-Za-z]{2,}", doc)) < 4:
            return None
        return doc, "\n".join(line for line in lines if not line.startswith("%%"))
    return None


_RULE = re.compile(r"^[-=*#%\s]*$")
_NOT_PROSE = re.compile(r"^(->|Func:|Returns?:|Args:|Types?:)")


def _prose(comment_line: str) -> str:
    """The prose of one Erlang comment line: '' for rules (%%-----), `Func: name/2` labels
    (they restate the answer's name) and `-> Result` return-shape notes (types, not prose)."""
    line = re.sub(r"^%+\s*(@doc)?", "", comment_line).strip()
    if _RULE.match(line) or _NOT_PROSE.match(line):
        return ""
    return re.sub(r"^Purpose:\s*", "", line)


def rename_locals(text: str, language: str) -> str:
    """Rename local variables (Erlang: Capitalised; Elixir: the def head's arguments)."""
    if language == "erlang":
        names = sorted(set(re.findall(r"(?<![?#\w])([A-Z][A-Za-z0-9_]*)\b(?!\()", text)))
    else:
        head = re.search(r"def[p]?\s+\w+[?!]?\((.*?)\)\s*(?:when|do|,)", text, re.S)
        names = sorted(set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", head.group(1)))) if head else []
        names = [n for n in names if n not in {"when", "do", "end", "nil", "true", "false", "_"}]
    for i, name in enumerate(names):
        fresh = f"Var{i}x" if language == "erlang" else f"var{i}x"
        text = re.sub(rf"(?<![\w.:@]){re.escape(name)}\b", fresh, text)
    return text


def reciprocal_rank(hits, path: str, line: int) -> float:
    for rank, hit in enumerate(hits[:10], 1):
        if hit.path == path and hit.start_line <= line <= hit.end_line:
            return 1.0 / rank
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--otp-files", type=int, default=12)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--only", choices=["syntax", "windows"], help="evaluate one chunker only")
    parser.add_argument("--context-weight", type=float, help="override search.context_weight")
    parser.add_argument("--lexical-weight", type=float, help="override search.lexical_weight")
    parser.add_argument("--name-weight", type=float, help="override search.name_weight")
    parser.add_argument("--no-delegation", action="store_true", help="index.delegation_context = false")
    parser.add_argument("--no-sections", action="store_true", help="index.section_context = false")
    parser.add_argument("--explain", type=Path, help="write each doc query's rank and top hits here (JSON lines)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "server"))
    from codekin.chunking import chunk_text
    from codekin.config import load_config
    from codekin.embedding import load_embedder
    from codekin.engine import Engine
    from codekin.indexer import Indexer
    from codekin.workspace import read_text, scan

    work = Path(tempfile.mkdtemp(prefix="codekin-quality-"))
    base = work / "syntax"
    build_corpus(base, args.otp_files)
    config = load_config(base)
    # Hold out the docs of half the files: strip them, remember (doc, path, def line).
    doc_queries, copies = [], []
    files = [f.path for f in scan(base, config.index).files if f.path.endswith((".ex", ".erl"))]
    held_out = set(random.Random(3).sample(files, len(files) // 2))
    for rel in sorted(files):
        text = read_text(base, rel)
        new_text = text
        for chunk in chunk_text(rel, text, config.index):
            found = doc_of(chunk)
            if found is None:
                continue
            doc, code = found
            if rel in held_out:
                new_text = new_text.replace(chunk.text, code, 1)
                doc_queries.append((doc, rel, code))
            else:
                copies.append((rel, chunk.text, chunk.language))
        if new_text != text:
            (base / rel).write_text(new_text)
    git_commit(base)
    windows = work / "windows"
    shutil.copytree(base, windows)
    rng = random.Random(5)
    doc_queries = rng.sample(doc_queries, min(args.queries, len(doc_queries)))
    copies = rng.sample(copies, min(args.queries // 2, len(copies)))

    embedder = load_embedder(config.model)
    result: dict = {"benchmark": "quality", "doc_queries": len(doc_queries), "code_queries": len(copies),
                    "context_weight": load_config(base, {"search": {"context_weight": args.context_weight}})
                    .search.context_weight}
    for name, root, chunker in (("syntax", base, "syntax"), ("windows", windows, "windows")):
        if args.only and name != args.only:
            continue
        index = {"chunker": chunker, "delegation_context": not args.no_delegation,
                 "section_context": not args.no_sections}
        cfg = load_config(root, {"index": index,
                                 "search": {"context_weight": args.context_weight,
                                            "lexical_weight": args.lexical_weight,
                                            "name_weight": args.name_weight}})
        started = time.perf_counter()
        summary = Indexer(root, cfg, embedder=embedder).run()
        result[f"{name}_chunks"] = summary.chunks
        result[f"{name}_index_seconds"] = round(time.perf_counter() - started, 1)
        engine = Engine(root, cfg, embedder=embedder)
        for mode in MODES:
            rr, read = [], []
            for doc, rel, code in doc_queries:
                line = _def_line(read_text(root, rel), code)
                hits = engine.search(doc, limit=10, mode=mode)
                rr.append(reciprocal_rank(hits, rel, line))
                read += [h.end_line - h.start_line + 1 for h in hits]
                if args.explain:
                    with args.explain.open("a", encoding="utf-8") as out:
                        out.write(json.dumps({"chunker": name, "mode": mode, "query": doc, "path": rel, "line": line,
                                              "rr": rr[-1], "top": [f"{h.path}:{h.start_line}-{h.end_line} {h.symbol}"
                                                                    for h in hits[:3]]}) + "\n")
            result[f"doc2code_mrr10_{name}_{mode}"] = round(sum(rr) / max(len(rr), 1), 4)
            if mode == "hybrid":  # what a reader pays: lines per result shown
                result[f"doc2code_lines_per_hit_{name}"] = round(sum(read) / max(len(read), 1), 1)
            top1, rr = 0, []
            for i, (rel, text, language) in enumerate(copies):
                copy_path = root / "copies" / f"copy{i}{Path(rel).suffix}"
                copy_path.parent.mkdir(exist_ok=True)
                renamed = rename_locals(text, language)
                copy_path.write_text(renamed)
                line = _def_line(read_text(root, rel), text)
                _, hits = engine.similar(str(copy_path), 1, renamed.count("\n") + 1, text=renamed,
                                         limit=10, mode=mode)
                score = reciprocal_rank(hits, rel, line)
                rr.append(score)
                top1 += score == 1.0
            result[f"code2code_top1_{name}_{mode}"] = round(top1 / max(len(copies), 1), 4)
            result[f"code2code_mrr10_{name}_{mode}"] = round(sum(rr) / max(len(rr), 1), 4)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


def _def_line(file_text: str, code: str) -> int:
    """The 1-based line where the function's code starts in the file (its first code line)."""
    first = next(line for line in code.split("\n") if line.strip() and not line.strip().startswith(("%", "@")))
    start = file_text.find(first)
    return file_text.count("\n", 0, start) + 1


if __name__ == "__main__":
    main()
