"""Warm `search` latency through `codekin mcp` on a ~10k-chunk index (target p50 <= 50 ms).

The index is bench_query.py's: real Erlang/OTP + examples/ code chunked by codekin, with random
unit vectors written straight to the table (search latency does not depend on vector values;
embedding 10k chunks would take minutes on a 2-core CPU). The server is the real `codekin mcp`,
started over stdio by the MCP SDK's own client, and embeds each query with the real model, so a
search is one query encode plus the ranking plus the protocol. It measures:
- initialize: from spawning the server to the initialize response (cold start);
- ready: until `status` says the model is loaded;
- search p50/p95 per mode, end to end through the client (what an agent waits), and the same
  queries through Engine.search in this process (what the protocol and the face add);
- definition and similar (an indexed chunk: no encode) p50, and tools/list (the protocol alone);
- exit: closing the client until the server is gone.

Prints one JSON line (`--note` adds a note, e.g. the machine's load):
  python benchmarks/bench_mcp.py [--repeats 10] [--note TEXT] >> benchmarks/results/mcp.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "server"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from bench_query import QUERIES, SYMBOLS, build  # noqa: E402

MORE_QUERIES = ["supervisor that restarts a child process", "send a message and wait for a reply with a timeout",
                "encode an integer as bytes", "walk the syntax tree and collect variables", "open a TCP connection",
                "compile a pattern match into a decision tree"]
TARGET_P50_MS = 50


def indexed(root: Path) -> None:
    """bench_query's corpus, chunked by codekin, with random vectors of the default model's size."""
    from codekin.config import load_config
    from codekin.embedding import load_embedder
    from codekin.index.store import IndexStore
    from codekin.indexer import Indexer

    build(root, 10_000)
    config = load_config(root)
    embedder = load_embedder(config.model)
    indexer = Indexer(root, config, embedder=embedder)
    indexer._embed_missing = lambda summary, model, dense: dense  # type: ignore[method-assign]  # vectors below
    indexer.run()
    store = IndexStore(root)
    hashes = sorted(store.chunk_hashes())
    vectors = np.random.default_rng(0).standard_normal((len(hashes), embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.add_vectors(embedder.key, hashes, vectors)
    store.write_state(active_key=embedder.key, model=embedder.name)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


async def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    value = await call
    return (time.perf_counter() - started) * 1000, value


async def drive(root: Path, repeats: int) -> dict:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from codekin.config import load_config
    from codekin.engine import Engine

    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "server"), os.environ.get("PYTHONPATH")) if p)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "codekin.cli", "mcp", "--repo", str(root)],
                                   env=env)
    queries = QUERIES + MORE_QUERIES
    out: dict = {}
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        out["initialize_ms"] = round((time.perf_counter() - started) * 1000, 1)
        while True:
            status = (await session.call_tool("status", {})).structured_content
            if status["model"]["loaded"]:
                break
            await asyncio.sleep(0.1)
        out["ready_s"] = round(time.perf_counter() - started, 2)
        out.update(chunks=status["index"]["chunks"], files=status["index"]["files"],
                   device=status["model"]["device"], model=status["model"]["name"])

        for query in queries:  # warm-up: code paths, the runtime's input shapes, the CPU frequency
            await session.call_tool("search", {"query": query})
        searches: dict[str, list[float]] = {"hybrid": [], "dense": [], "lexical": [], "symbol": []}
        for _ in range(repeats):
            for query in queries:
                for mode in ("hybrid", "dense", "lexical"):
                    ms, answer = await timed(session.call_tool("search", {"query": query, "mode": mode}))
                    assert not answer.is_error and answer.structured_content["results"], answer
                    searches[mode].append(ms)
            for symbol in SYMBOLS:
                ms, _ = await timed(session.call_tool("search", {"query": symbol}))
                searches["symbol"].append(ms)
        definition = [(await timed(session.call_tool("definition", {"symbol": s})))[0] for s in SYMBOLS * repeats]

        engine = Engine(root, load_config(root))
        index = engine.index()
        rows = np.random.default_rng(1).choice(len(index), 60, replace=False)
        similar = []
        for row in rows:
            ms, answer = await timed(session.call_tool("similar", {"path": index.paths[row],
                                                                   "line": int(index.starts[row])}))
            assert not answer.is_error, answer.content[0].text
            similar.append(ms)
        status_ms = [(await timed(session.call_tool("status", {})))[0] for _ in range(5)]
        roundtrip = [(await timed(session.list_tools()))[0] for _ in range(50)]  # the protocol alone

        for query in queries:  # the same searches in this process: what the protocol and the face add
            engine.search(query)
        in_process = []
        for _ in range(repeats):
            for query in queries:
                t = time.perf_counter()
                engine.search(query)
                in_process.append((time.perf_counter() - t) * 1000)
        closing = time.perf_counter()
    out["exit_ms"] = round((time.perf_counter() - closing) * 1000, 1)
    for mode, values in searches.items():
        out[f"search_{mode}_p50_ms"] = pct(values, 50)
        out[f"search_{mode}_p95_ms"] = pct(values, 95)
    out.update(search_p50_ms=out["search_hybrid_p50_ms"], engine_search_p50_ms=pct(in_process, 50), definition_p50_ms=pct(definition, 50),
               similar_p50_ms=pct(similar, 50), status_p50_ms=pct(status_ms, 50),
               list_tools_p50_ms=pct(roundtrip, 50),
               searches=sum(len(v) for v in searches.values()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="rounds over the 12 queries per mode")
    parser.add_argument("--note", help="added to the JSON line as `note`")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="codekin-mcp-")) / "repo"
    try:
        indexed(root)
        result = {"benchmark": "mcp", **asyncio.run(drive(root, args.repeats))}
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
    result.update(target_search_p50_ms=TARGET_P50_MS, load_avg_1m=round(os.getloadavg()[0], 2),
                  cpus=os.cpu_count())
    if args.note:
        result["note"] = args.note
    print(json.dumps(result))


if __name__ == "__main__":
    main()
