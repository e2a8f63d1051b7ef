"""Which training recipe lifts doc->code through the user's hybrid search.

Fine-tunes run on the lent GPU (`device`) with the product's own Trainer and batch building
(training/trainer/recipe.py, carried as DIR/server/codekin: it needs torch and
sentence-transformers only); scoring runs here (LanceDB, tree-sitter):

    # here: the seed triplets, the signal pairs (training/mining/signals.py) and the
    # held-out search set of each repository
    PYTHONPATH=server python benchmarks/bench_learning_signals.py prepare DIR req hackney phoenix_live_view mint
    # (a mixed BEAM + C/C++ workspace: make DIR/repos/ranch_re2 a git repository holding ranch/ and re2/
    # side by side first, then name ranch_re2)
    # there (DIR carried with server/codekin and an fp16 copy of the default model in MODEL, default DIR/minilm16):
    python3 bench_learning_signals.py train DIR [RECIPE ...]   # vectors to $OUT/<repo>.npz, JSON lines
    # here: base and each recipe through hybrid search, and the gate
    PYTHONPATH=server python benchmarks/bench_learning_signals.py score DIR VECTORS GPU_LOG [--out FILE]
    # (the 150k-line corpus of the CPU nightly: DIR/repos/c150 = bench_instant.build_corpus(DIR/repos/c150,
    # 150000), then prepare ... c150)
    # here, from an indexed copy of REPO: its chunks' embed texts, DIR/<REPO>_chunks.json.gz
    PYTHONPATH=server python benchmarks/bench_learning_signals.py chunks DIR REPO INDEXED_ROOT
    # there: the GPU phases of a nightly with a Qodo-size model (training, re-embedding every chunk)
    python3 bench_learning_signals.py gpu-nightly DIR REPO
    # here: the most a better dense side could lift doc->code through the same search
    PYTHONPATH=server python benchmarks/bench_learning_signals.py ceiling DIR VECTORS REPO ...

`DEVICE=cpu` runs the same Trainer on the CPU; `REPOS=a,b` limits the repositories;
`VECTORS=int8` sends the vectors back as int8 rows (half the bytes, for many recipes; scoring
normalizes each row again); `PART=x` names the file <repo>x.npz (one repository's recipes
split over processes: merge the files before scoring). A recipe
(RECIPES) is a name and what it changes of DEFAULT: TrainingArguments fields (recipe
`signals`, the product default: in-batch negatives over the pairs of the kinds named, plus
the seed triplets' (anchor, positive) with `seed`; or `triplets`, the seed's triplet loss),
`doc_copies` (the doc pairs repeated, each copy in another batch) and `pairs` (which stored
pair set: `pairs`, written by prepare with today's miners, or an older one kept beside it).
`harmed` recipes shuffle the code side of the pairs: the gate must reject them.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import sys
from pathlib import Path

DEFAULT = {"recipe": "signals", "signals": "doc+comment+renamed+seed", "learning_rate": 2e-5, "epochs": 3,
           "batch_size": 32, "doc_copies": 1, "pairs": "pairs"}
RECIPES = {  # name: what it changes of DEFAULT
    "triplet": {"recipe": "triplets", "signals": "seed", "learning_rate": 1e-5, "batch_size": 16},
    "doc_ren_seed": {},  # the product default
    "doc_ren_seed_5e5_5ep": {"learning_rate": 5e-5, "epochs": 5},
    "doc3_ren_seed_5e5": {"learning_rate": 5e-5, "doc_copies": 3},
    "harmed": {"signals": "doc+comment+renamed"},
    # session 9: the doc pairs of every kind the held-out queries ask for (`pairs`) against
    # session 8's function-only ones (`pairs_s8`), module docs, same-file batches, rates, epochs
    "s8_pairs": {"pairs": "pairs_s8"},
    "seed14": {"seed": 14},  # run-to-run spread: the same recipe with other batches
    "moduledoc": {"signals": "doc+moduledoc+comment+renamed+seed"},
    "by_file": {"batch_by_file": True},
    "lr5e5": {"learning_rate": 5e-5},
    "lr1e4": {"learning_rate": 1e-4},
    "ep8": {"epochs": 8},
    "lr5e5_ep6_file_md": {"learning_rate": 5e-5, "epochs": 6, "batch_by_file": True,
                          "signals": "doc+moduledoc+comment+renamed+seed"},
    "b64_lr5e5_ep5": {"batch_size": 64, "learning_rate": 5e-5, "epochs": 5},
    "b16": {"batch_size": 16},
    "scale50": {"mnrl_scale": 50.0},
    "file_lr5e5_ep5": {"batch_by_file": True, "learning_rate": 5e-5, "epochs": 5},
    "doc2_file_lr5e5_ep5": {"doc_copies": 2, "batch_by_file": True, "learning_rate": 5e-5, "epochs": 5},
    "noseed_lr5e5_ep5": {"signals": "doc+comment+renamed", "learning_rate": 5e-5, "epochs": 5},
    "lr3e5_ep5": {"learning_rate": 3e-5, "epochs": 5},
    "file_lr1e4_ep5": {"batch_by_file": True, "learning_rate": 1e-4, "epochs": 5},
    # session 12: a CPU's step budget (training.max_steps; every doc batch first, the rest sampled)
    "cpu96": {"max_steps": 96},
    "cpu96_1ep": {"max_steps": 96, "epochs": 1},
    "cpu96_1ep_5e5": {"max_steps": 96, "epochs": 1, "learning_rate": 5e-5},
    "cpu96_5e5": {"max_steps": 96, "learning_rate": 5e-5},
    "cpu48_1ep_5e5": {"max_steps": 48, "epochs": 1, "learning_rate": 5e-5},
    "cpu192_5e5": {"max_steps": 192, "learning_rate": 5e-5},
    "cpu96_seed14": {"max_steps": 96, "seed": 14},
    "file_seed14": {"batch_by_file": True, "seed": 14},
    "cpu96_file": {"max_steps": 96, "batch_by_file": True},
    "cpu96_file_seed14": {"max_steps": 96, "batch_by_file": True, "seed": 14},
    "cpu96_file_md": {"max_steps": 96, "batch_by_file": True, "signals": "doc+moduledoc+comment+renamed+seed"},
}


def recipe(name: str) -> dict:
    """The recipe's whole setting: DEFAULT with its changes."""
    return {**DEFAULT, **RECIPES[name]}


def prepare(out: Path, names: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_learning_gpu import prepare as prepare_seed

    from codekin.config import load_config
    from codekin.training.mining.signals import text_pairs
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    prepare_seed(out, [n for n in names if not (out / "data" / f"{n}.json.gz").exists()])
    for name in names:
        root = out / "repos" / name
        config = load_config(root, {"model": {"device": "cpu"}})
        generator = PolyglotTripletGenerator(root, config, seed=13)
        pairs = text_pairs(generator.snippets("train"))
        path = out / "data" / f"{name}.json.gz"
        payload = json.loads(gzip.decompress(path.read_bytes()))
        payload.pop("batches", None)
        payload["pairs"] = [p.to_dict() for p in pairs]
        path.write_bytes(gzip.compress(json.dumps(payload).encode()))
        print(name, "signal pairs", len(pairs), flush=True)


def recipe_data(data: dict, name: str, rng: random.Random) -> tuple[list, list]:
    """(triplets, pairs) the Trainer gets for recipe `name`: the doc pairs repeated, or every
    pair's code shuffled for a harmed recipe."""
    from codekin.training.pairs.batches import TextPair

    setting = recipe(name)
    pairs = [TextPair.from_dict(p) for p in data[setting["pairs"]]]
    pairs += [p for p in pairs if p.kind == "doc"] * (setting["doc_copies"] - 1)
    if name.startswith("harmed"):
        codes = [p.code for p in pairs]
        rng.shuffle(codes)
        pairs = [TextPair(p.query, code, p.group, p.kind) for p, code in zip(pairs, codes, strict=True)]
    return data["train"], pairs


def train_on_device(here: Path, recipes: list[str]) -> None:
    sys.path.insert(0, str(here / "server"))  # the product's trainer, carried
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer

    device = os.environ.get("DEVICE", "cuda")
    cuda = device == "cuda"
    model_dir = os.environ.get("MODEL", str(here / "minilm16"))

    def encode(model: SentenceTransformer, texts: list[str]) -> np.ndarray:
        found = model.encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
        if os.environ.get("VECTORS") == "int8":  # half the bytes back; scoring normalizes each row again
            return np.round(found / np.abs(found).max(axis=1, keepdims=True) * 127).astype(np.int8)
        return found.astype(np.float16)

    def fit(data: dict, name: str) -> tuple[SentenceTransformer, dict]:
        fields = {k: v for k, v in recipe(name).items() if k not in ("doc_copies", "pairs")}
        args = TrainingArguments(**{**fields, "signals": fields["signals"].split("+")}, device=device,
                                 compile="off", save_optimizer_state=False)
        triplets, pairs = recipe_data(data, name, random.Random(13))
        trainer = Trainer(model_dir, device, args, out=lambda line: None, show_progress=False)
        result = trainer.train(triplets, pairs=pairs)
        return trainer.model, {"train_s": round(result.seconds, 1), "rows": result.triplets,
                               "steps": sum(e.steps for e in result.epochs), "loss": round(result.epochs[-1].loss, 4),
                               "precision": result.precision}

    out_dir = Path(os.environ["OUT"])
    card = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads, shared)"
    only = os.environ.get("REPOS", "").split(",") if os.environ.get("REPOS") else None
    for path in sorted((here / "data").glob("*.json.gz")):
        repo = path.name[:-len(".json.gz")]
        if only and repo not in only:
            continue
        data = json.loads(gzip.decompress(path.read_bytes()))
        texts = data["corpus"] + data["queries"]
        base = SentenceTransformer(model_dir, device=device)
        base.float()
        base.max_seq_length = 256
        vectors, info = {"base": encode(base, texts)}, {}
        for name in recipes:  # saved after each recipe: a run cut off at its limit keeps the ones done
            model, info[name] = fit(data, name)
            vectors[name] = encode(model, texts)
            np.savez_compressed(out_dir / f"{repo}{os.environ.get('PART', '')}.npz", **vectors)
            print(json.dumps({"repo": repo, "card": card, "recipes": info}), flush=True)


def chunk_texts(here: Path, repo: str, indexed: Path) -> None:
    """What gpu-nightly re-embeds: the text of every distinct chunk of an indexed copy of
    `repo`, as a re-embed embeds them (one per content hash)."""
    from codekin.index.store import IndexStore

    store = IndexStore(indexed)
    texts = list(store.chunk_texts(store.chunk_hashes()).values())
    (here / f"{repo}_chunks.json.gz").write_bytes(gzip.compress(json.dumps(texts).encode()))
    print(repo, "chunks", len(texts))


def gpu_nightly(here: Path, repo: str) -> None:
    """The GPU phases of a nightly run with a Qodo-size model (gpu_train.build_model: the
    Qwen2-1.5B shape, random init, the MiniLM tokenizer): the default recipe on the
    repository's pairs with the product's defaults (compile and precision auto, no step budget
    on a GPU), then every chunk (DIR/<repo>_chunks.json.gz, the index's embed texts)
    re-embedded by the Embedder. Mining and the gate's search need LanceDB, which the lent
    machine lacks: they are timed on the CPU. QODO_MODEL=DIR uses that model instead."""
    import tempfile
    import time

    import torch

    sys.path.insert(0, str(here / "server"))
    sys.path.insert(0, str(here))
    from gpu_train import build_model, codekin_encoder

    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer

    data = json.loads(gzip.decompress((here / "data" / f"{repo}.json.gz").read_bytes()))
    triplets, pairs = recipe_data(data, "doc_ren_seed", random.Random(13))
    chunks = json.loads(gzip.decompress((here / f"{repo}_chunks.json.gz").read_bytes()))
    device = os.environ.get("DEVICE", "cuda")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = os.environ.get("QODO_MODEL") or build_model(os.environ.get("MODEL", str(here / "minilm16")), Path(tmp))
        build_s = time.perf_counter() - started
        trainer = Trainer(path, device, TrainingArguments(device=device, save_optimizer_state=False),
                          out=lambda line: print(line, file=sys.stderr), show_progress=False)
        result = trainer.train(triplets, pairs=pairs)
        started = time.perf_counter()
        trainer.model.save(str(Path(tmp) / "trained"))
        save_s = time.perf_counter() - started
        del trainer
        if device == "cuda":
            torch.cuda.empty_cache()
        encode = codekin_encoder(str(Path(tmp) / "trained"), 256) if device == "cuda" else None
        started = time.perf_counter()
        if encode is not None:
            encode(chunks)
            torch.cuda.synchronize()
        embed_s = time.perf_counter() - started
    card = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(json.dumps({"bench": "nightly_gpu_phases", "repo": repo, "card": card, "model": "qwen2-1.5b-random",
                      "rows": result.triplets, "steps": sum(e.steps for e in result.epochs),
                      "precision": result.precision, "build_s": round(build_s, 1), "train_s": round(result.seconds, 1),
                      "epoch_s": [round(e.seconds, 1) for e in result.epochs], "save_s": round(save_s, 1),
                      "chunks": len(chunks), "reembed_s": round(embed_s, 1)}), flush=True)


def score(here: Path, vectors_dir: Path, log: Path, out: Path | None) -> None:
    done = {}  # a repository's last line names all its recipes
    for line in log.read_text().splitlines():
        if line.startswith('{"repo"'):
            info = json.loads(line)
            done[info["repo"]] = info
    for info in done.values():
        row = score_repo(here, vectors_dir, info)
        print(json.dumps(row), flush=True)
        if out:
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")


def kinds(metrics: dict) -> dict:
    """MRR@10 per query kind and overall, rounded, from a search evaluation's metrics."""
    from codekin.training.judging.queries import QUERY_KINDS

    found = {k: round(metrics[f"search_{k}_mrr@10"], 4) for k in QUERY_KINDS if f"search_{k}_mrr@10" in metrics}
    return {**found, "mean": round(metrics["search_mrr@10"], 4)}


def queries(metrics: dict) -> dict:
    """How many held-out queries of each kind a search evaluation asked."""
    from codekin.training.judging.queries import QUERY_KINDS

    return {k: int(metrics.get(f"search_{k}_queries", 0)) for k in QUERY_KINDS}


def scoring_inputs(here: Path, vectors_dir: Path, repo: str):
    """What scoring one repository reads here (also bench_learning_gpu.py's score): its held-out
    set, its texts in the order the device encoded them, the vectors the device sent back per
    model, and the repository's config."""
    import numpy as np

    from codekin.config import load_config

    eval_set = pickle.loads((here / f"{repo}.evalset.pkl").read_bytes())
    data = json.loads(gzip.decompress((here / "data" / f"{repo}.json.gz").read_bytes()))
    return (eval_set, data["corpus"] + data["queries"], np.load(vectors_dir / f"{repo}.npz"),
            load_config(here / "repos" / repo))


def stored_encoder(texts: list[str], vectors):
    """An encode function over vectors computed elsewhere: each text's row, normalized."""
    import numpy as np

    table = dict(zip(texts, vectors.astype(np.float32), strict=True))
    return lambda batch: np.stack([table[t] / np.linalg.norm(table[t]) for t in batch])


def score_repo(here: Path, vectors_dir: Path, info: dict) -> dict:
    from codekin.training.judging.search import SearchEvaluator, SearchGate

    repo = info["repo"]
    eval_set, texts, stored, config = scoring_inputs(here, vectors_dir, repo)
    gate = SearchGate(min_improvement=0.01)
    row: dict = {"bench": "learning_recipes", "repo": repo, "card": info["card"],
                 "trainer": "codekin Trainer (training/trainer/recipe.py batches), compile off",
                 "recipes": {r: RECIPES.get(r) for r in info["recipes"]}}

    with SearchEvaluator(eval_set, config.search) as evaluator:
        def run(name: str) -> dict:
            return evaluator(stored_encoder(texts, stored[name]), name)

        base = run("base")
        row["base"] = kinds(base)
        row["queries"] = queries(base)
        for name, meta in info["recipes"].items():
            found = run(name)
            row[name] = {**kinds(found), **meta, "promoted": gate(base, found).promote}
    return row


def ceiling(here: Path, vectors_dir: Path, repos: list[str]) -> None:
    """How far a better dense side can lift doc->code through hybrid search: each doc query's
    base vector moved towards its answer's vector by `mix` (1: the answer's own vector), the
    lexical side and ranking unchanged. A gain the search cannot show at mix 1 no training can."""
    import numpy as np

    from codekin.training.judging.search import SearchEvaluator

    for repo in repos:
        eval_set, texts, stored, config = scoring_inputs(here, vectors_dir, repo)
        base = stored["base"].astype(np.float32)
        row = {t: i for i, t in enumerate(texts)}
        answer = {(c.path, c.start_line, c.end_line): row[c.embed_text] for c in eval_set.chunks}
        found = {}
        with SearchEvaluator(eval_set, config.search) as evaluator:
            for mix in (0.0, 0.25, 0.5, 1.0):
                moved = base.copy()
                for q in eval_set.queries:
                    if q.kind == "doc_to_code":
                        i = row[q.text]
                        moved[i] = (1 - mix) * base[i] + mix * base[answer[q.targets[0]]]
                metrics = evaluator(stored_encoder(texts, moved), f"mix{mix}")
                found[mix] = round(metrics["search_doc_to_code_mrr@10"], 4)
        print(json.dumps({"bench": "doc_to_code_ceiling", "repo": repo, "doc_to_code_by_mix": found}), flush=True)


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "prepare":
        prepare(Path(rest[0]), rest[1:])
    elif command == "train":
        train_on_device(Path(rest[0]), rest[1:] or list(RECIPES))
    elif command == "chunks":
        chunk_texts(Path(rest[0]), rest[1], Path(rest[2]))
    elif command == "gpu-nightly":
        gpu_nightly(Path(rest[0]), rest[1])
    elif command == "ceiling":
        ceiling(Path(rest[0]), Path(rest[1]), rest[2:])
    else:
        target = Path(rest[rest.index("--out") + 1]) if "--out" in rest else None
        score(Path(rest[0]), Path(rest[1]), Path(rest[2]), target)
