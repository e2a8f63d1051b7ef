"""Hot reload on examples/ with the real default model: re-embed throughput and query latency.

The index of examples/ is built with the default model; a "promoted version" (a copy of the
same weights registered as v1: another vector-space key, so every chunk is re-embedded) is
then re-embedded with `codekin.jobs.reembed` while a thread keeps searching through the
Engine. Reports re-embed chunks/s and search latency idle (the baseline, same run) vs during
the re-embed, and the number of failed queries (must be 0). Prints one JSON line.

    python benchmarks/bench_reembed.py [--device cpu|cuda] [--backend auto|torch|openvino-int8|openvino-int8-dynamic]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
QUERIES = ["supervisor that restarts a crashed worker", "total price of the cart", "reserve stock in ets",
           "retry with exponential backoff", "nif that adds two integers"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-reembed-"))
    os.environ.setdefault("CODEKIN_CACHE_DIR", str(work / "cache"))  # int8 exports stay in tmp
    os.environ["XDG_CONFIG_HOME"] = str(work / "xdg")
    try:
        print(json.dumps(run(work, args.device, args.backend)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, device: str, backend: str) -> dict:
    from sentence_transformers import SentenceTransformer

    from codekin.config import load_config
    from codekin.embedding import resolve_model_path
    from codekin.engine import Engine
    from codekin.indexer import Indexer
    from codekin.jobs.reembed import load_active_model, reembed
    from codekin.models.checkpoints import write_checkpoint
    from codekin.models.registry import ModelRegistry

    root = work / "examples"
    shutil.copytree(REPO / "examples", root, ignore=shutil.ignore_patterns(".codekin"))
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(root), *command], check=True)
    config = load_config(root, {"model": {"device": device, "backend": backend}})
    Indexer(root, config).run()
    engine = Engine(root, config)
    engine.search(QUERIES[0])  # warm: model loaded, snapshot read

    registry = ModelRegistry(root)
    version = registry.create("default", "base")
    model = SentenceTransformer(resolve_model_path("default"), device="cpu")
    write_checkpoint(version.checkpoints_dir / "epoch-1", lambda tmp: model.save(str(tmp), create_model_card=False),
                     {"epoch": 1})
    registry.seal(version, "epoch-1", status="trained")
    registry.promote(version.id, "benchmark")
    loaded = time.perf_counter()
    new_model = load_active_model(root, config)
    load_seconds = time.perf_counter() - loaded

    def timed_queries(stop: threading.Event | None, count: int, out: list[float], failures: list[str]) -> None:
        i = 0
        while (stop is None and i < count) or (stop is not None and not stop.is_set()):
            started = time.perf_counter()
            try:
                engine.search(QUERIES[i % len(QUERIES)], limit=10)
            except Exception as exc:  # counted: the point is that none happens
                failures.append(repr(exc))
            out.append((time.perf_counter() - started) * 1000)
            i += 1

    idle: list[float] = []
    timed_queries(None, 40, idle, [])
    during: list[float] = []
    failures: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=timed_queries, args=(stop, 0, during, failures))
    thread.start()
    try:
        summary = reembed(root, config, new_model, before_switch=lambda e: engine.use_embedder(e, current=False),
                          after_switch=engine.use_embedder)
    finally:
        stop.set()
        thread.join()
    return {"benchmark": "reembed", "device": new_model.device, "backend": new_model.backend,
            "chunks": summary.embedded, "reembed_seconds": round(summary.seconds, 2),
            "embeddings_per_second": round(summary.embeddings_per_second, 1), "model_load_seconds": round(load_seconds, 2),
            "search_p50_ms_idle": round(statistics.median(idle), 1),
            "search_p50_ms_during": round(statistics.median(during), 1) if during else None,
            "search_max_ms_during": round(max(during), 1) if during else None,
            "queries_during": len(during), "failed_queries": len(failures), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0]}


if __name__ == "__main__":
    main()
