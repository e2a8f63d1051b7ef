"""Ray Data vs the single process, back to back in one run: cold indexing and re-embedding.

index:   Indexer(copy).run()                 vs  RayIndexer(copy, workers=N).run()
reembed: reembed(copy) (local, this process)  vs  reembed(copy, ray=RayOptions(workers=N))

The corpus (benchmarks/corpus.py: Erlang/OTP + C sources) is indexed cold in a fresh copy
per run. For re-embedding, an indexed copy per run is re-embedded with the same weights and
model.max_tokens one lower: another vector space, so every chunk is embedded again at the
cost of a promoted model of the same size (tests/test_distributed.py runs the registry path). chunks/s is over the whole call: model loading (in this process, or on each actor),
scan, chunking, embedding and writes, so both sides pay the same costs. The local Ray
instance is started once before the first Ray run and its start time reported apart, as a
cluster would already be up; the single-process baseline runs first and again last (the
machine is shared: compare the ratios to the baseline around them, not the seconds).

    python benchmarks/bench_ray.py [--lines 6000] [--workers 1,2] [--backend auto] [--what index,reembed]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(name, value)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build_corpus, corpus_stats, fresh_copy  # noqa: E402


def _rate(chunks: int, seconds: float, **extra: object) -> dict:
    return {"seconds": round(seconds, 2), "chunks": chunks,
            "chunks_per_s": round(chunks / seconds, 1) if seconds else 0.0, **extra}


def bench_index(corpus: Path, work: Path, overrides: dict, workers: list[int]) -> dict:
    from codekin.config import load_config
    from codekin.distributed.ray_embed import RayIndexer, RayOptions
    from codekin.indexer import Indexer

    def single(tag: str) -> dict:
        copy = fresh_copy(corpus, work / f"index-{tag}")
        started = time.perf_counter()
        summary = Indexer(copy, load_config(copy, overrides)).run()
        return _rate(summary.chunks, time.perf_counter() - started, model=summary.model, device=summary.device)

    before = single("single-before")
    runs = []
    for n in workers:
        copy = fresh_copy(corpus, work / f"index-ray-{n}")
        indexer = RayIndexer(copy, load_config(copy, overrides), RayOptions(workers=n))
        started = time.perf_counter()
        summary = indexer.run()
        runs.append(_rate(summary.chunks, time.perf_counter() - started, workers=indexer.stats["workers"],
                          chunk_seconds=round(indexer.stats["chunk_seconds"], 2)))
    return _compare(before, single("single-after"), runs)


def bench_reembed(corpus: Path, work: Path, overrides: dict, workers: list[int]) -> dict:
    from codekin.config import load_config
    from codekin.distributed.ray_embed import RayOptions
    from codekin.indexer import Indexer
    from codekin.jobs.reembed import reembed

    indexed = fresh_copy(corpus, work / "reembed-indexed")
    Indexer(indexed, load_config(indexed, overrides)).run()
    max_tokens = load_config(indexed, overrides).model.max_tokens - 1  # same weights, a new vector space
    model = {**overrides["model"], "max_tokens": max_tokens}

    def job(tag: str, ray: RayOptions | None) -> dict:
        copy = work / f"reembed-{tag}"
        shutil.copytree(indexed, copy, symlinks=True)
        started = time.perf_counter()
        summary = reembed(copy, load_config(copy, {"model": model}), ray=ray)
        return _rate(summary.embedded, time.perf_counter() - started, key=summary.key, device=summary.device,
                     backend=summary.backend, embed_chunks_per_s=round(summary.embeddings_per_second, 1))

    before = job("single-before", None)
    runs = [{**job(f"ray-{n}", RayOptions(workers=n)), "workers": n} for n in workers]
    return _compare(before, job("single-after", None), runs)


def _compare(before: dict, after: dict, runs: list[dict]) -> dict:
    baseline = statistics.mean([before["chunks_per_s"], after["chunks_per_s"]])
    for run in runs:
        run["ratio_vs_single"] = round(run["chunks_per_s"] / baseline, 2) if baseline else 0.0
    return {"single_before": before, "single_after": after, "ray": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=6000, help="corpus size in lines (default 6000)")
    parser.add_argument("--workers", default="1,2", help="embedding actor counts to try (default 1,2)")
    parser.add_argument("--backend", default="auto", help="model.backend for both paths (default auto)")
    parser.add_argument("--what", default="index,reembed", help="index, reembed or both (default)")
    options = parser.parse_args()
    workers = [int(w) for w in options.workers.split(",") if w.strip()]
    overrides = {"model": {"backend": options.backend, "device": "cpu"}}

    from codekin.distributed.ray_embed import RayOptions, RaySession

    corpus = build_corpus(options.lines)
    result: dict = {"benchmark": "ray", "cpus": os.cpu_count(), "corpus": corpus_stats(corpus),
                    "backend": options.backend}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "xdg")  # no user config: the default model
        session = RaySession(RayOptions(num_cpus=os.cpu_count() or 1))
        session.ray()  # the local instance, started once outside the timed runs; the runs join it
        try:
            for what in options.what.split(","):
                bench = {"index": bench_index, "reembed": bench_reembed}[what.strip()]
                result[what.strip()] = bench(corpus, Path(tmp), overrides, workers)
        finally:
            result["ray_init_seconds"] = round(session.init_seconds, 2)
            session.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
