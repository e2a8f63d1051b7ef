"""Learning through search with the model work on the lent GPU (`device`), scored here.

The GPU machine has torch and sentence-transformers but not LanceDB or the tree-sitter
grammars, so the work is split in three:

    # here: triplets (lexical negatives) and the held-out search set of each repository
    PYTHONPATH=server python benchmarks/bench_learning_gpu.py prepare DIR mint req ranch hackney phoenix_live_view
    # there (DIR carried with an fp16 copy of the default model in DIR/minilm16):
    python3 DIR/bench_learning_gpu.py train DIR            # vectors to $OUT/<repo>.npz, one JSON line each
    # here: base / candidate / harmed through the user's hybrid search, and the gate
    PYTHONPATH=server python benchmarks/bench_learning_gpu.py score DIR VECTORS GPU_LOG

`train` is a plain loop with codekin's trainer defaults (triplet loss, margin 0.3 on cosine
distance, lr 1e-5, batch 16, 3 epochs, 10% warmup, weight decay 0.01, bf16 autocast, 256
tokens), once on the repository's triplets and once on the same triplets with shuffled
positives (the harmed candidate the gate must reject).
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import subprocess
import sys
import time
from pathlib import Path

SOURCES = Path.home() / ".cache" / "codekin-relevance" / "src"


def prepare(out: Path, names: list[str]) -> None:
    from codekin.config import load_config
    from codekin.training.data import generate_training_data
    from codekin.training.judging.judge import held_out_files
    from codekin.training.judging.queries import build_eval_set
    from codekin.training.trainer.results import triplet_texts

    (out / "data").mkdir(parents=True, exist_ok=True)
    for name in names:
        root = out / "repos" / name
        if not root.exists():
            subprocess.run(["git", "clone", "-q", "--no-local", "--depth=100", f"file://{SOURCES / name}", str(root)],
                           check=True)
        config = load_config(root, {"model": {"device": "cpu"}})
        data = generate_training_data(root, config, 1000, 13, None, out=lambda s: print(s, file=sys.stderr))
        train = [list(triplet_texts(t)) for t in data.train]
        positives = [t[1] for t in train]
        random.Random(7).shuffle(positives)
        harmed = [[a, p, n] for (a, _, n), p in zip(train, positives, strict=True)]
        eval_set = build_eval_set(root, held_out_files(root, config, 13), config, 13, config.training.history_commits,
                                  distractors=held_out_files(root, config, 13, "train"))
        corpus = sorted({c.embed_text for c in eval_set.chunks})
        queries = sorted({q.text for q in eval_set.queries})
        payload = {"train": train, "harmed": harmed, "corpus": corpus, "queries": queries}
        (out / "data" / f"{name}.json.gz").write_bytes(gzip.compress(json.dumps(payload).encode()))
        (out / f"{name}.evalset.pkl").write_bytes(pickle.dumps(eval_set))
        print(name, len(train), len(corpus), len(queries), eval_set.counts(), flush=True)


def train_on_device(here: Path) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    def load() -> SentenceTransformer:
        model = SentenceTransformer(str(here / "minilm16"), device="cuda")
        model.float()
        model.max_seq_length = 256
        return model

    def encode(model: SentenceTransformer, texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True).astype(np.float16)

    def fit(triplets: list[list[str]], epochs: int = 3, lr: float = 1e-5, bs: int = 16, margin: float = 0.3):
        model = load()
        torch.manual_seed(13)
        rng = random.Random(13)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        steps = epochs * ((len(triplets) + bs - 1) // bs)
        warm = max(1, int(0.1 * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        model.train()
        for _ in range(epochs):
            order = list(range(len(triplets)))
            rng.shuffle(order)
            for i in range(0, len(order), bs):
                batch = [triplets[j] for j in order[i:i + bs]]
                embs = []
                for col in range(3):
                    feats = {k: v.to("cuda") if hasattr(v, "to") else v for k, v in model.tokenize([t[col] for t in batch]).items()}
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        out = model(feats)["sentence_embedding"]
                    embs.append(torch.nn.functional.normalize(out.float(), dim=-1))
                a, p, n = embs
                loss = torch.relu((a * n).sum(-1) - (a * p).sum(-1) + margin).mean()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
        model.eval()
        return model

    out_dir = Path(os.environ["OUT"])
    card = torch.cuda.get_device_name(0)
    for path in sorted((here / "data").glob("*.json.gz")):
        repo = path.name[:-len(".json.gz")]
        data = json.loads(gzip.decompress(path.read_bytes()))
        texts = data["corpus"] + data["queries"]
        vectors, seconds = {"base": encode(load(), texts)}, {}
        for name in ("full", "harmed"):
            torch.cuda.synchronize()
            started = time.perf_counter()
            model = fit(data["train"] if name == "full" else data["harmed"])
            torch.cuda.synchronize()
            seconds[name] = round(time.perf_counter() - started, 1)
            vectors[name] = encode(model, texts)
        np.savez_compressed(out_dir / f"{repo}.npz", **vectors)
        print(json.dumps({"repo": repo, "card": card, "triplets": len(data["train"]), "train_s": seconds}), flush=True)


def score(here: Path, vectors_dir: Path, log: Path) -> None:
    from bench_learning_signals import (  # here only: it imports codekin
        kinds,
        queries,
        scoring_inputs,
        stored_encoder,
    )

    from codekin.training.judging.search import SearchEvaluator, SearchGate

    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        info = json.loads(line)
        repo = info["repo"]
        eval_set, texts, stored, config = scoring_inputs(here, vectors_dir, repo)
        found = {}
        with SearchEvaluator(eval_set, config.search) as evaluator:
            for name in ("base", "full", "harmed"):
                found[name] = evaluator(stored_encoder(texts, stored[name]), name)
        gate = SearchGate(min_improvement=0.01)
        full, harmed = gate(found["base"], found["full"]), gate(found["base"], found["harmed"])
        print(json.dumps({
            "bench": "learning_gpu", "repo": repo, "card": info["card"], "triplets": info["triplets"], "epochs": 3,
            "lr": 1e-5, "batch_size": 16, "negatives": "lexical", "train_s": info["train_s"],
            "corpus_chunks": len(eval_set.chunks),
            "queries": queries(found["base"]),
            "base": kinds(found["base"]), "candidate": kinds(found["full"]), "promoted": full.promote,
            "reason": full.reason, "harmed": kinds(found["harmed"]), "harmed_rejected": not harmed.promote,
            "harmed_reason": harmed.reason}), flush=True)


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "prepare":
        prepare(Path(rest[0]), rest[1:])
    elif command == "train":
        train_on_device(Path(rest[0]))
    else:
        score(Path(rest[0]), Path(rest[1]), Path(rest[2]))
