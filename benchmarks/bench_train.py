"""CPU benchmark: fine-tune the default model on a repository's own triplets, then compare
base vs fine-tuned on the held-out files. Prints one JSON line.

Target (issue 7): 1,000 triplets x 1 epoch <= 5 min on 2 CPU cores. Quality: held-out
MRR@10 and triplet accuracy, base -> fine-tuned (the fine-tuned model must win).

    python benchmarks/bench_train.py [--root examples] [--count 1000] [--epochs 1]
    python benchmarks/bench_train.py --corpus-lines 20000   # Erlang/OTP sources + examples/

On a machine without the corpus (the lent GPU): generate here with `--save-data DIR`, carry
DIR and `--model DIR` there, run `--data DIR --device cuda --precision bf16|fp8`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git_copy(source: Path, dest: Path) -> Path:
    """A committed git copy (the generator reads git history and ls-files)."""
    from corpus import commit_all  # benchmarks/ is on sys.path when a script runs

    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".codekin", ".git"))
    commit_all(dest, "bench")
    return dest


def generate(options: argparse.Namespace, tmp: Path) -> tuple[str, object]:
    from codekin.config import ModelConfig, load_config
    from codekin.embedding import load_embedder
    from codekin.training.data import generate_training_data

    if options.corpus_lines:
        from corpus import TRAINING_GLOBS, build_corpus, fresh_copy  # benchmarks/ is on sys.path

        name = f"otp+examples-{options.corpus_lines}-lines"
        root = fresh_copy(build_corpus(options.corpus_lines), tmp / "repo")
        config = load_config(root, {"model": {"device": "cpu"}, "training": TRAINING_GLOBS})
    else:
        name = options.root.name
        root = git_copy(options.root, tmp / "repo")
        config = load_config(root, {"model": {"device": "cpu"}})
    base = load_embedder(ModelConfig(device="cpu"))
    return name, generate_training_data(root, config, options.count, 13, base,
                                        out=lambda s: print(s, file=sys.stderr))


def save_data(directory: Path, name: str, data: object) -> None:
    from codekin.training.mining.triplets import write_jsonl

    directory.mkdir(parents=True, exist_ok=True)
    write_jsonl(data.train, directory / "train.jsonl")
    write_jsonl(data.eval, directory / "eval.jsonl")
    (directory / "corpus.json").write_text(json.dumps({"name": name, "corpus": data.corpus}), encoding="utf-8")


def load_data(directory: Path) -> tuple[str, object]:
    """Plain dicts: the trainer and evaluator take them (and tree-sitter need not be installed)."""
    from codekin.training.data import TrainingData

    def read(name: str) -> list[dict]:
        lines = (directory / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    meta = json.loads((directory / "corpus.json").read_text(encoding="utf-8"))
    return meta["name"], TrainingData(read("train.jsonl"), read("eval.jsonl"), meta["corpus"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=REPO / "examples")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    parser.add_argument("--corpus-lines", type=int, default=0,
                        help="train on benchmarks/corpus.py's Erlang/OTP + examples corpus of this size instead of --root")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp8"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="default", help="model to fine-tune (a path on a machine without it)")
    parser.add_argument("--save-data", type=Path, help="only generate: write the train/eval triplets and corpus here")
    parser.add_argument("--data", type=Path, help="train on triplets a --save-data run wrote (no generation)")
    options = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from codekin.training.evaluation.evaluate import CodeSearchEvaluator
    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.model import load_model
    from codekin.training.trainer.trainer import Trainer

    if options.threads:
        torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if options.data:
            name, data = load_data(options.data)
        else:
            name, data = generate(options, Path(tmp))
        generate_s = time.perf_counter() - started
        if options.save_data:  # generate here, train where the GPU is
            save_data(options.save_data, name, data)
            print(f"saved {len(data.train)} train / {len(data.eval)} eval triplets to {options.save_data}",
                  file=sys.stderr)
            return 0
        base = load_model(options.model, options.device).float()  # a bf16 copy too: evaluate in fp32
        evaluator = CodeSearchEvaluator(data.eval, data.corpus, batch_size=32)
        before = evaluator(base)
        args = TrainingArguments(epochs=options.epochs, learning_rate=options.lr, batch_size=16,
                                 device=options.device, max_seq_length=options.max_seq_length,
                                 precision=options.precision)
        trainer = Trainer(base, device=options.device, args=args, out=lambda s: print(s, file=sys.stderr),
                          show_progress=False)
        result = trainer.train(data.train)
        after = evaluator(trainer.model)
    train_s = sum(e.seconds for e in result.epochs)
    per_triplet_epoch = train_s / (len(data.train) * options.epochs)
    print(json.dumps({
        "bench": "cpu_train" if options.device == "cpu" else f"{options.device}_train", "root": name, "precision": result.precision, "threads": torch.get_num_threads(),
        "triplets": len(data.train), "eval_triplets": len(data.eval), "epochs": options.epochs,
        "max_seq_length": options.max_seq_length, "train_seq_length": trainer._train_length(options.max_seq_length), "generate_s": round(generate_s, 1),
        "device": options.device, "model": options.model,
        "train_s": round(train_s, 1), "projected_1000x1_s": round(per_triplet_epoch * 1000, 1), "target_s": 300,
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "base": {k: round(before[k], 4) for k in ("triplet_accuracy", "mrr@10", "recall@10")},
        "fine_tuned": {k: round(after[k], 4) for k in ("triplet_accuracy", "mrr@10", "recall@10")},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
