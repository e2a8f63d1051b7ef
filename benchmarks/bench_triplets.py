"""Benchmark: 1,000 triplets with hard negatives from a ~150k-line BEAM + C repository.

The corpus is built into a temporary git repository: examples/ at the root (lib/, src/,
c_src/, packages/), Erlang/OTP modules from Debian's erlang-src under src/otp/<app>/ and
OTP's C sources (a sixth of the lines) under c_src/otp/, so the default training globs
find them. The model is loaded before the clock starts (the nightly job has it loaded);
the timed part is PolyglotTripletGenerator(...).generate(count) from a cold start: scan,
chunk, split, mine positives, mine hard negatives with the model (no index vectors).

    python benchmarks/bench_triplets.py [--lines 150000] [--count 1000] [--lexical]

Prints one JSON line. Target: <= 60 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
ERLANG_LIB = Path(os.environ.get("CODEKIN_ERLANG_LIB", "/usr/lib/erlang/lib"))
MAX_FILE_LINES = 3000
C_SHARE = 1 / 6


def ensure_erlang_src() -> None:
    if any(ERLANG_LIB.glob("*/src/*.erl")):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit("Erlang/OTP sources missing: sudo apt-get install -y erlang-src")
    subprocess.run(["apt-get", "install", "-y", "-qq", "erlang-src"], check=True, stdout=subprocess.DEVNULL)


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def build_corpus(dest: Path, lines: int) -> dict:
    """Copy the sources into `dest` and commit them; returns file and line counts."""
    total = 0
    files = 0
    for path in sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and ".codekin" not in p.parts):
        target = dest / path.relative_to(EXAMPLES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        total += _lines(path)
        files += 1
    c_budget, c_total = int(lines * C_SHARE), 0
    for path in sorted(p for p in ERLANG_LIB.rglob("*") if p.suffix in (".c", ".h") and p.is_file()):
        count = _lines(path)
        if count > MAX_FILE_LINES or c_total + count > c_budget:
            continue
        target = dest / "c_src" / "otp" / path.relative_to(ERLANG_LIB)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        c_total += count
        files += 1
    total += c_total
    apps: dict[str, list[Path]] = {}
    for path in sorted(ERLANG_LIB.glob("*/src/*.erl")):
        apps.setdefault(path.relative_to(ERLANG_LIB).parts[0].split("-")[0], []).append(path)
    queues = [list(v) for _, v in sorted(apps.items())]
    while total < lines and any(queues):  # round-robin over OTP applications
        for queue in queues:
            if not queue or total >= lines:
                continue
            path = queue.pop(0)
            count = _lines(path)
            if count > MAX_FILE_LINES:
                continue
            app = path.relative_to(ERLANG_LIB).parts[0].split("-")[0]
            target = dest / "src" / "otp" / app / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            total += count
            files += 1
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "corpus"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, env=env)
    return {"files": files, "lines": total, "c_lines": c_total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=150_000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--lexical", action="store_true", help="no model: lexical hard negatives")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    ensure_erlang_src()

    import torch

    from codekin.config import load_config
    from codekin.training.analysis import analyze_triplets
    from codekin.training.triplets import PolyglotTripletGenerator

    with tempfile.TemporaryDirectory(prefix="codekin-bench-triplets-") as tmp:
        root = Path(tmp) / "corpus"
        corpus = build_corpus(root, args.lines)
        config = load_config(root, {"model": {"device": args.device}})
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
        "corpus_files": corpus["files"], "corpus_lines": corpus["lines"], "corpus_c_lines": corpus["c_lines"],
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
