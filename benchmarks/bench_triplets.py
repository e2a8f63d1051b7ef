"""Benchmark: 1,000 triplets with hard negatives from a ~150k-line BEAM + C repository.

The corpus is benchmarks/corpus.py's (examples/ plus Erlang/OTP modules and C sources from
Debian's erlang-src, cached), mined with globs that cover its layout. The model is loaded before the clock starts (the nightly job has it loaded);
the timed part is PolyglotTripletGenerator(...).generate(count) from a cold start: scan,
chunk, split, mine positives, mine hard negatives with the model (no index vectors).

    python benchmarks/bench_triplets.py [--lines 150000] [--count 1000] [--lexical]

Prints one JSON line. Target: <= 60 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=150_000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--lexical", action="store_true", help="no model: lexical hard negatives")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch
    from corpus import TRAINING_GLOBS, build_corpus, corpus_stats, fresh_copy

    from codekin.config import load_config
    from codekin.training.mining.analysis import analyze_triplets
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    cached = build_corpus(args.lines)
    corpus = corpus_stats(cached)
    with tempfile.TemporaryDirectory(prefix="codekin-bench-triplets-") as tmp:
        root = fresh_copy(cached, Path(tmp) / "corpus")
        config = load_config(root, {"model": {"device": args.device}, "training": TRAINING_GLOBS})
        embedder, load_seconds = None, 0.0
        if not args.lexical:
            from codekin.embedding import load_embedder

            started = time.perf_counter()
            embedder = load_embedder(config.model)
            load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        generator = PolyglotTripletGenerator(root, config, embedder=embedder)
        triplets = generator.generate(count=args.count)
        seconds = time.perf_counter() - started
        report = generator.report
        stats = analyze_triplets(triplets, generator.split_paths()["eval"])
    print(json.dumps({
        "benchmark": "triplets", "count": args.count, "generated": len(triplets),
        "seconds": round(seconds, 2), "target_seconds": 60, "model_load_seconds": round(load_seconds, 2),
        "corpus_files": corpus["files"], "corpus_lines": corpus["lines"],
        "beam_snippets": report.beam_snippets, "cpp_snippets": report.cpp_snippets,
        "beam_ratio": stats["beam_ratio"], "cpp_ratio": stats["cpp_ratio"],
        "cross_language_ratio": stats["cross_language_ratio"],
        "cross_language_pair_ratio": stats["cross_language_pair_ratio"],
        "positive_kinds": stats["positive_kinds"], "hard_negative_mining": stats["hard_negative_mining"],
        "embedded": report.negatives.get("embedded", 0),
        "embed_seconds": report.negatives.get("embed_seconds", 0.0), "duplicates": stats["duplicates"],
        "near_duplicates": stats["near_duplicates"], "leakage": len(stats["leakage"]),
        "warnings": report.warnings, "device": args.device, "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
