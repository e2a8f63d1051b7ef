"""Learning that shows in search: base vs candidate through the user's hybrid search, per repository.

For each repository (a private clone, git history kept): one training run of the real
pipeline (generate -> train -> evaluate through search -> gate), then a deliberately harmed
candidate (the same triplets with their positives shuffled) that the gate must reject, then
a query-side adapter (training/adapter.py) trained on the train split's doc -> code pairs
and scored on the same held-out queries. One JSON line per repository: MRR@10 per query
kind (doc_to_code, symbol, code_to_code, commit) for base, candidate, harmed and adapter,
the gate's decisions and wall times.

    PYTHONPATH=server python benchmarks/bench_learning.py --repo mint --repo req \
        [--count 1000 --epochs 3 --lr 1e-5] [--out benchmarks/results/learning.jsonl]

--repo is a name under --sources (default ~/.cache/codekin-relevance/src) or a path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = Path.home() / ".cache" / "codekin-relevance" / "src"
KINDS = ("doc_to_code", "symbol", "code_to_code", "commit")


def clone(source: Path, dest: Path, depth: int) -> Path:
    if (source / ".git").exists():
        subprocess.run(["git", "clone", "-q", "--no-local", f"--depth={depth}", f"file://{source}", str(dest)],
                       check=True)
        return dest
    sys.path.insert(0, str(REPO / "benchmarks"))
    import shutil

    from corpus import commit_all
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".codekin", ".git"))
    commit_all(dest, "bench")
    return dest


def kinds(metrics: dict) -> dict:
    out = {k: round(metrics[f"search_{k}_mrr@10"], 4) for k in KINDS if f"search_{k}_mrr@10" in metrics}
    out["mean"] = round(metrics.get("search_mrr@10", float("nan")), 4)
    return out


def harmed_triplets(version_dir: Path, dest: Path, seed: int) -> Path:
    """The run's training triplets with their positives shuffled among the anchors."""
    lines = [json.loads(line) for line in (version_dir / "triplets.jsonl").read_text().splitlines() if line]
    train = [t for t in lines if t.get("split") == "train"]
    positives = [t["positive"] for t in train]
    random.Random(seed).shuffle(positives)
    for t, p in zip(train, positives, strict=True):
        t["positive"] = p
    dest.write_text("".join(json.dumps(t) + "\n" for t in train))  # no eval split: the search gate decides
    return dest


def run_once(root: Path, config, args: argparse.Namespace, triplets: str = "") -> tuple[object, float]:
    from codekin.training.pipeline import PipelineOptions, run_pipeline
    from codekin.training.trainer.args import TrainingArguments

    training = TrainingArguments(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                                 device=args.device, loss=args.loss)
    options = PipelineOptions(args=training, count=args.count, triplets_file=triplets, resume=False,
                              min_improvement=args.min_improvement)
    started = time.perf_counter()
    result = run_pipeline(root, config, options, out=lambda s: print(s, file=sys.stderr), lock=False)
    return result, time.perf_counter() - started


def adapter_run(root: Path, config, args: argparse.Namespace) -> dict:
    """Train a query-side adapter on the train split's doc pairs; score it like the pipeline does."""
    from sentence_transformers import SentenceTransformer

    from codekin.embedding import resolve_model_path
    from codekin.training.adapter import query_encoder, train_adapter
    from codekin.training.judging.judge import held_out_files
    from codekin.training.judging.queries import build_eval_set, doc_query
    from codekin.training.judging.search import SearchEvaluator, SearchGate, model_encoder
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    started = time.perf_counter()
    model = SentenceTransformer(resolve_model_path(config.model.primary), device=args.device)
    encode = model_encoder(model)
    generator = PolyglotTripletGenerator(root, config, seed=13)
    pairs = [p for p in generator.pairs("train")[0] if p.kind == "doc"]
    if len(pairs) < 8:
        return {"adapter_pairs": len(pairs), "adapter_note": "too few doc pairs to train an adapter"}
    queries = encode([doc_query(p.anchor.text) for p in pairs])  # as the held-out doc queries are asked
    documents = encode([p.positive.model_text for p in pairs])
    adapter = train_adapter(queries, documents)
    train_s = time.perf_counter() - started
    eval_set = build_eval_set(root, held_out_files(root, config, 13), config, 13, config.training.history_commits,
                              distractors=held_out_files(root, config, 13, "train"))
    with SearchEvaluator(eval_set, config.search) as evaluator:
        base = evaluator(encode, "base")
        candidate = evaluator(encode, "adapter", encode_queries=query_encoder(encode, adapter), reuse="base")
    decision = SearchGate(min_improvement=args.min_improvement)(base, candidate)
    return {"adapter_pairs": len(pairs), "adapter": kinds(candidate), "adapter_base": kinds(base),
            "adapter_promoted": decision.promote, "adapter_reason": decision.reason,
            "adapter_train_s": round(train_s, 1), "adapter_total_s": round(time.perf_counter() - started, 1)}


def bench(name: str, args: argparse.Namespace) -> dict:
    from codekin.config import load_config
    from codekin.models.registry import BASE, ModelRegistry

    source = Path(name) if Path(name).exists() else args.sources / name
    with tempfile.TemporaryDirectory(prefix="codekin-learning-") as tmp:
        root = clone(source, Path(tmp) / "repo", args.depth)
        config = load_config(root, {"model": {"device": args.device}})
        row: dict = {"bench": "learning", "repo": source.name, "count": args.count, "epochs": args.epochs,
                     "lr": args.lr, "loss": args.loss, "device": args.device, "threads": _threads(args.device)}
        if not args.skip_full:
            result, seconds = run_once(root, config, args)
            row.update({"base": kinds(result.active_metrics), "candidate": kinds(result.candidate_metrics),
                        "queries": {k: int(result.active_metrics.get(f"search_{k}_queries", 0)) for k in KINDS},
                        "promoted": result.promoted, "reason": result.reason, "wall_s": round(seconds, 1)})
            ModelRegistry(root).activate(BASE)
            harmed = harmed_triplets(root / ".codekin" / "models" / result.version, Path(tmp) / "harmed.jsonl", 7)
            bad, bad_seconds = run_once(root, config, args, str(harmed))
            row.update({"harmed": kinds(bad.candidate_metrics), "harmed_rejected": not bad.promoted,
                        "harmed_reason": bad.reason, "harmed_wall_s": round(bad_seconds, 1)})
        if not args.skip_adapter:
            row.update(adapter_run(root, config, args))
        row["load_avg_1m"] = round(os.getloadavg()[0], 1)  # the 2-core machine is shared: wall times vary
        return row


def _threads(device: str) -> int:
    import torch

    return torch.get_num_threads() if device == "cpu" else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", required=True)
    parser.add_argument("--sources", type=Path, default=SOURCES)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--loss", default="triplet")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--depth", type=int, default=100, help="commits of history cloned (commit queries)")
    parser.add_argument("--min-improvement", type=float, default=0.01)
    parser.add_argument("--skip-full", action="store_true", help="only the adapter")
    parser.add_argument("--skip-adapter", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in args.repo:
        row = bench(name, args)
        line = json.dumps(row)
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
