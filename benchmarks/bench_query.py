"""Warm query latency through the Python API on a ~10k-chunk index (target p50 <= 20 ms).

Chunk rows come from real code (Erlang/OTP sources from Debian's erlang-src plus
examples/), chunked by codekin. Their vectors are random unit vectors written
straight to the table: search latency does not depend on vector values, and
embedding 10k chunks would take minutes on a 2-core CPU. Queries are embedded by
the real model, so `search` includes one real query encode. Also times the CLI
end to end (process start + model load + one search). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
QUERIES = ["retry with exponential backoff", "parse an integer from a binary", "sort a list of tuples by key",
           "supervisor restart strategy", "read a file line by line", "format a float with two decimals"]
SYMBOLS = ["gen_server:call/3", "lists", "KinShop.Inventory.Cache", "handle_call", "proplists:get_value/2",
           "sets:union"]


def build(root: Path, target_chunks: int) -> None:
    shutil.copytree(REPO / "examples", root, ignore=shutil.ignore_patterns(".codekin"))
    sources = sorted(Path("/usr/lib/erlang/lib").glob("*/src/*.erl"))
    if not sources:
        sys.exit("install Erlang/OTP sources first: apt-get install -y erlang-src")
    (root / "otp").mkdir()
    lines = 0
    for path in sources:  # ~ one chunk per 14 lines of Erlang
        shutil.copy(path, root / "otp" / path.name)
        lines += path.read_bytes().count(b"\n")
        if lines > target_chunks * 16:
            break
    from corpus import commit_all  # benchmarks/ is on sys.path when a script runs

    commit_all(root)


def p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


def main() -> None:
    sys.path.insert(0, str(REPO / "server"))
    from codekin.config import load_config
    from codekin.embedding import load_embedder
    from codekin.engine import Engine
    from codekin.index.store import IndexStore
    from codekin.indexer import Indexer

    root = Path(tempfile.mkdtemp(prefix="codekin-query-")) / "repo"
    build(root, 10_000)
    config = load_config(root)
    embedder = load_embedder(config.model)
    indexer = Indexer(root, config, embedder=embedder)
    store = IndexStore(root)
    indexer._embed_missing = lambda summary, model, dense: dense  # vectors are written below, not embedded
    indexer.run()
    hashes = sorted(store.chunk_hashes())
    vectors = np.random.default_rng(0).standard_normal((len(hashes), embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.add_vectors(embedder.key, hashes, vectors)
    store.write_state(active_key=embedder.key, model=embedder.name)

    engine = Engine(root, config, embedder=embedder)
    started = time.perf_counter()
    index = engine.index()
    load_seconds = time.perf_counter() - started
    timings: dict[str, list[float]] = {"search_hybrid": [], "search_dense": [], "search_lexical": [],
                                       "search_symbol": [], "search_files": [], "similar": []}
    rows = np.random.default_rng(1).choice(len(index), 60, replace=False)
    for _ in range(3):
        for query in QUERIES:
            for mode in ("hybrid", "dense", "lexical"):
                t = time.perf_counter()
                engine.search(query, mode=mode)
                timings[f"search_{mode}"].append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.search_files(query)  # the file ranking: the chunk ranking plus files' summaries
            timings["search_files"].append(time.perf_counter() - t)
        for symbol in SYMBOLS:
            t = time.perf_counter()
            engine.search(symbol)
            timings["search_symbol"].append(time.perf_counter() - t)
    for row in rows:
        t = time.perf_counter()
        engine.similar(index.paths[row], int(index.starts[row]))
        timings["similar"].append(time.perf_counter() - t)
    cli_started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "codekin.cli", "search", QUERIES[0], "--repo", str(root)],
                   check=True, capture_output=True)
    cli_seconds = time.perf_counter() - cli_started
    out = {"benchmark": "query", "chunks": len(index), "snapshot_load_ms": round(load_seconds * 1000, 1),
           **{f"{k}_p50_ms": p(v, 50) for k, v in timings.items()},
           **{f"{k}_p95_ms": p(v, 95) for k, v in timings.items()},
           "cli_search_end_to_end_s": round(cli_seconds, 2), "target_p50_ms": 20,
           "median_of": statistics.median([len(v) for v in timings.values()])}
    shutil.rmtree(root.parent, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
