"""Which training signals and recipe lift doc->code through the user's hybrid search.

Fine-tunes run on the lent GPU (`device`), scoring runs here (LanceDB, tree-sitter), as in
bench_learning_gpu.py:

    # here: the seed triplets, the signal pairs (training/mining/signals.py) and the
    # held-out search set of each repository
    PYTHONPATH=server python benchmarks/bench_learning_signals.py prepare DIR req hackney phoenix_live_view mint
    # (a mixed BEAM + C/C++ workspace: make DIR/repos/ranch_re2 a git repository holding ranch/ and re2/
    # side by side first, then name ranch_re2)
    # there (DIR carried with an fp16 copy of the default model in DIR/minilm16):
    python3 bench_learning_signals.py train DIR [RECIPE ...]   # vectors to $OUT/<repo>.npz, JSON lines
    # here: base / each recipe / the adapter through hybrid search, and the gate
    PYTHONPATH=server python benchmarks/bench_learning_signals.py score DIR VECTORS GPU_LOG [--out FILE]

`DEVICE=cpu` runs the same loop on the CPU (128-token training texts, as codekin does there);
`REPOS=a,b` limits the repositories. A recipe (RECIPES) is `name: (loss, signals, lr, epochs,
batch)` with loss triplet (the seed's triplets) or mnrl (symmetric multiple-negatives ranking loss over signal pairs, batches from
signals.mnrl_batches: no same-function or near-duplicate rows together). `harmed` recipes
shuffle the code side of the pairs: the gate must reject them.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import sys
import time
from pathlib import Path

KINDS = ("doc_to_code", "symbol", "code_to_code", "commit")
RECIPES = {  # name: (loss, signals, lr, epochs, batch)
    "triplet": ("triplet", "seed", 1e-5, 3, 16),
    "doc": ("mnrl", "doc+comment", 2e-5, 3, 32),
    "doc_ren": ("mnrl", "doc+comment+renamed", 2e-5, 3, 32),
    "doc_ren_hi": ("mnrl", "doc+comment+renamed", 5e-5, 3, 32),
    "doc_ren_1ep": ("mnrl", "doc+comment+renamed", 5e-5, 1, 32),
    "doc_ren_seed": ("mnrl", "doc+comment+renamed+seed", 2e-5, 3, 32),
    "harmed": ("mnrl-harmed", "doc+comment+renamed", 2e-5, 3, 32),
}


def prepare(out: Path, names: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_learning_gpu import prepare as prepare_seed

    from codekin.config import load_config
    from codekin.training.mining.signals import mnrl_batches, text_pairs
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    prepare_seed(out, [n for n in names if not (out / "data" / f"{n}.json.gz").exists()])
    for name in names:
        root = out / "repos" / name
        config = load_config(root, {"model": {"device": "cpu"}})
        generator = PolyglotTripletGenerator(root, config, seed=13)
        pairs = text_pairs(generator.snippets("train"))
        batches = [[[p.query, p.code, p.kind] for p in batch] for batch in mnrl_batches(pairs, 32)]
        path = out / "data" / f"{name}.json.gz"
        payload = json.loads(gzip.decompress(path.read_bytes()))
        payload["batches"] = batches
        path.write_bytes(gzip.compress(json.dumps(payload).encode()))
        print(name, "signal pairs", len(pairs), "batches", len(batches), flush=True)


def _batches(data: dict, signals: str, size: int, harmed: bool, rng: random.Random) -> list[list[list[str]]]:
    kinds = set(signals.split("+"))
    batches = [[r[:2] for r in b if r[2] in kinds] for b in data["batches"]]
    batches = [b for b in batches if len(b) >= 2]
    if "seed" in kinds:
        seed = [t[:2] for t in data["train"]]
        rng.shuffle(seed)
        batches += [seed[i:i + size] for i in range(0, len(seed) - 1, size)]
    if harmed:
        codes = [r[1] for b in batches for r in b]
        rng.shuffle(codes)
        it = iter(codes)
        batches = [[[r[0], next(it)] for r in b] for b in batches]
    return batches


def train_on_device(here: Path, recipes: list[str]) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    device = os.environ.get("DEVICE", "cuda")  # DEVICE=cpu: the same loop on the CPU (128 tokens, as codekin there)
    cuda = device == "cuda"

    def load() -> SentenceTransformer:
        model = SentenceTransformer(str(here / "minilm16"), device=device)
        model.float()
        model.max_seq_length = 256
        return model

    def encode(model: SentenceTransformer, texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True).astype(np.float16)

    def embed(model, texts):
        feats = {k: v.to(device) if hasattr(v, "to") else v for k, v in model.tokenize(texts).items()}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            return torch.nn.functional.normalize(model(feats)["sentence_embedding"].float(), dim=-1)

    def fit(data: dict, recipe: str):
        loss_name, signals, lr, epochs, size = RECIPES[recipe]
        rng = random.Random(13)
        torch.manual_seed(13)
        model = load()
        model.max_seq_length = 256 if cuda else 128
        if loss_name == "triplet":
            rows = data["train"]
            batches = [rows[i:i + size] for i in range(0, len(rows), size)]
        else:
            batches = _batches(data, signals, size, loss_name.endswith("harmed"), rng)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        steps = max(1, epochs * len(batches))
        warm = max(1, int(0.1 * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        model.train()
        for _ in range(epochs):
            rng.shuffle(batches)
            for batch in batches:
                if loss_name == "triplet":
                    a, p, n = (embed(model, [t[c] for t in batch]) for c in range(3))
                    loss = torch.relu((a * n).sum(-1) - (a * p).sum(-1) + 0.3).mean()
                else:
                    q, d = embed(model, [r[0] for r in batch]), embed(model, [r[1] for r in batch])
                    logits = 20.0 * q @ d.T
                    labels = torch.arange(len(batch), device=device)
                    loss = (torch.nn.functional.cross_entropy(logits, labels)
                            + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
        model.eval()
        model.max_seq_length = 256
        return model, sum(len(b) for b in batches), steps

    out_dir = Path(os.environ["OUT"])
    card = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads, shared)"
    only = os.environ.get("REPOS", "").split(",") if os.environ.get("REPOS") else None
    for path in sorted((here / "data").glob("*.json.gz")):
        repo = path.name[:-len(".json.gz")]
        if only and repo not in only:
            continue
        data = json.loads(gzip.decompress(path.read_bytes()))
        texts = data["corpus"] + data["queries"]
        pair_texts = sorted({t for b in data["batches"] for r in b for t in r[:2]})
        base = load()
        vectors, info = {"base": encode(base, texts), "base_pairs": encode(base, pair_texts)}, {}
        for recipe in recipes:
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            model, rows, steps = fit(data, recipe)
            if cuda:
                torch.cuda.synchronize()
            info[recipe] = {"train_s": round(time.perf_counter() - started, 1), "rows": rows, "steps": steps}
            vectors[recipe] = encode(model, texts)
            if recipe == "doc_ren":
                vectors["doc_ren_pairs"] = encode(model, pair_texts)
        np.savez_compressed(out_dir / f"{repo}.npz", **vectors)
        print(json.dumps({"repo": repo, "card": card, "recipes": info}), flush=True)


def score(here: Path, vectors_dir: Path, log: Path, out: Path | None) -> None:
    for line in log.read_text().splitlines():
        if line.startswith('{"repo"'):
            row = score_repo(here, vectors_dir, json.loads(line))
            print(json.dumps(row), flush=True)
            if out:
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")


def _kinds(metrics: dict) -> dict:
    found = {k: round(metrics[f"search_{k}_mrr@10"], 4) for k in KINDS if f"search_{k}_mrr@10" in metrics}
    return {**found, "mean": round(metrics["search_mrr@10"], 4)}


def score_repo(here: Path, vectors_dir: Path, info: dict) -> dict:
    import numpy as np

    from codekin.config import load_config
    from codekin.training.adapter import query_encoder, train_adapter
    from codekin.training.judging.search import SearchEvaluator, SearchGate

    repo = info["repo"]
    eval_set = pickle.loads((here / f"{repo}.evalset.pkl").read_bytes())
    data = json.loads(gzip.decompress((here / "data" / f"{repo}.json.gz").read_bytes()))
    texts = data["corpus"] + data["queries"]
    pair_texts = sorted({t for b in data["batches"] for r in b for t in r[:2]})
    doc_rows = [r for b in data["batches"] for r in b if r[2] in ("doc", "comment")]
    stored = np.load(vectors_dir / f"{repo}.npz")
    config = load_config(here / "repos" / repo)
    gate = SearchGate(min_improvement=0.01)
    row: dict = {"bench": "learning_signals", "repo": repo, "card": info["card"], "recipes": RECIPES}

    def table(name: str, keys: list[str]) -> dict:
        return dict(zip(keys, stored[name].astype(np.float32), strict=True))

    with SearchEvaluator(eval_set, config.search) as evaluator:
        def run(name: str, vectors: dict, adapter=None, reuse: str = "") -> dict:
            encode = lambda ts: np.stack([vectors[t] / np.linalg.norm(vectors[t]) for t in ts])  # noqa: E731
            queries = query_encoder(encode, adapter) if adapter is not None else None
            return evaluator(encode, name, encode_queries=queries, reuse=reuse)

        base = run("base", table("base", texts))
        row["base"] = _kinds(base)
        row["queries"] = {k: int(base.get(f"search_{k}_queries", 0)) for k in KINDS}
        for recipe, meta in info["recipes"].items():
            found = run(recipe, table(recipe, texts))
            row[recipe] = {**_kinds(found), **meta, "promoted": gate(base, found).promote}
        for name, source in (("adapter", "base"), ("doc_ren+adapter", "doc_ren")):
            if f"{source}_pairs" not in stored.files or len(doc_rows) < 8:
                continue
            pairs = table(f"{source}_pairs", pair_texts)
            adapter = train_adapter(np.stack([pairs[r[0]] for r in doc_rows]), np.stack([pairs[r[1]] for r in doc_rows]))
            found = run(name, table(source, texts), adapter, reuse=source)
            row[name] = {**_kinds(found), "promoted": gate(base, found).promote, "pairs": len(doc_rows)}
    return row


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "prepare":
        prepare(Path(rest[0]), rest[1:])
    elif command == "train":
        train_on_device(Path(rest[0]), rest[1:] or list(RECIPES))
    else:
        target = Path(rest[rest.index("--out") + 1]) if "--out" in rest else None
        score(Path(rest[0]), Path(rest[1]), Path(rest[2]), target)
