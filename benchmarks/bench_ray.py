"""Cold indexing on Ray Data vs the single-process Indexer, back to back in one run.

single: Indexer(copy).run()                       (chunking + embedding in this process)
ray:    RayIndexer(copy, workers=N).run()         (chunk tasks + N embedding actors), for each N

Both index a fresh copy of the same corpus (benchmarks/corpus.py) with the same model
config. chunks/s is over the whole run (scan, chunk, embed, write); embed chunks/s over
the embedding step alone. The local Ray instance is started once before the first Ray
run and its start time is reported apart (`ray_init_seconds`), as a cluster would already
be up. The machine is shared: compare the ratios, not the seconds.

Usage: python benchmarks/bench_ray.py [--lines 6000] [--workers 1,2] [--backend auto] [--model default]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from corpus import build_corpus, corpus_stats, fresh_copy  # noqa: E402


def _rates(summary, seconds: float) -> dict:
    return {"seconds": round(seconds, 2), "chunks": summary.chunks, "new_embeddings": summary.new_embeddings,
            "chunks_per_s": round(summary.chunks / seconds, 1) if seconds else 0.0,
            "embed_chunks_per_s": round(summary.embeddings_per_second, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=6000, help="corpus size in lines (default 6000)")
    parser.add_argument("--workers", default="1,2", help="embedding actor counts to try (default 1,2)")
    parser.add_argument("--backend", default="auto", help="model.backend for both paths (default auto)")
    parser.add_argument("--model", default="default", help="model.primary for both paths")
    options = parser.parse_args()

    from codekin.config import load_config
    from codekin.distributed.ray_embed import RayIndexer, RayOptions, RaySession
    from codekin.indexer import Indexer

    overrides = {"model": {"backend": options.backend, "primary": options.model, "fallback": options.model}}
    corpus = build_corpus(options.lines)
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        copy = fresh_copy(corpus, Path(tmp) / "single")
        started = time.perf_counter()
        summary = Indexer(copy, load_config(copy, overrides)).run()
        single = _rates(summary, time.perf_counter() - started)
        single.update(model=summary.model, device=summary.device)

        session = RaySession(RayOptions(num_cpus=os.cpu_count() or 1))
        session.ray()  # start the local instance once, outside the timed runs
        ray_runs = []
        try:
            for workers in [int(w) for w in options.workers.split(",") if w.strip()]:
                copy = fresh_copy(corpus, Path(tmp) / f"ray-{workers}")
                indexer = RayIndexer(copy, load_config(copy, overrides), RayOptions(workers=workers))
                started = time.perf_counter()
                summary = indexer.run()
                run = _rates(summary, time.perf_counter() - started)
                run.update(workers=indexer.stats["workers"], chunk_seconds=round(indexer.stats["chunk_seconds"], 2),
                           ratio_vs_single=round(run["chunks_per_s"] / single["chunks_per_s"], 2)
                           if single["chunks_per_s"] else 0.0)
                ray_runs.append(run)
        finally:
            init_seconds = session.init_seconds
            session.close()
    print(json.dumps({"benchmark": "ray_index", "cpus": os.cpu_count(), "corpus": corpus_stats(corpus),
                      "backend": options.backend, "single": single, "ray": ray_runs,
                      "ray_init_seconds": round(init_seconds, 2)}))


if __name__ == "__main__":
    main()
