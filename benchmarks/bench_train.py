"""CPU benchmark: fine-tune the default model on a repository's own triplets, then compare
base vs fine-tuned on the held-out files. Prints one JSON line.

Target (issue 7): 1,000 triplets x 1 epoch <= 5 min on 2 CPU cores. Quality: held-out
MRR@10 and triplet accuracy, base -> fine-tuned (the fine-tuned model must win).

    python benchmarks/bench_train.py [--root examples] [--count 1000] [--epochs 1]
    python benchmarks/bench_train.py --corpus-lines 20000   # Erlang/OTP sources + examples/
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
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    options = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from codekin.config import ModelConfig, load_config
    from codekin.embedding import load_embedder
    from codekin.training.args import TrainingArguments
    from codekin.training.evaluate import CodeSearchEvaluator
    from codekin.training.pipeline import generate_training_data
    from codekin.training.trainer import Trainer

    if options.threads:
        torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if options.corpus_lines:
            from corpus import (  # benchmarks/ is on sys.path
                TRAINING_GLOBS,
                build_corpus,
                fresh_copy,
            )

            name = f"otp+examples-{options.corpus_lines}-lines"
            root = fresh_copy(build_corpus(options.corpus_lines), Path(tmp) / "repo")
            config = load_config(root, {"model": {"device": "cpu"}, "training": TRAINING_GLOBS})
        else:
            name = options.root.name
            root = git_copy(options.root, Path(tmp) / "repo")
            config = load_config(root, {"model": {"device": "cpu"}})
        base = load_embedder(ModelConfig(device="cpu"))
        started = time.perf_counter()
        data = generate_training_data(root, config, options.count, 13, base, out=lambda s: print(s, file=sys.stderr))
        generate_s = time.perf_counter() - started
        evaluator = CodeSearchEvaluator(data.eval, data.corpus, batch_size=32)
        before = evaluator(base.model)
        args = TrainingArguments(epochs=options.epochs, learning_rate=options.lr, batch_size=16, device="cpu",
                                 max_seq_length=options.max_seq_length, precision=options.precision)
        trainer = Trainer("default", device="cpu", args=args, out=lambda s: print(s, file=sys.stderr),
                          show_progress=False)
        result = trainer.train(data.train)
        after = evaluator(trainer.model)
    train_s = sum(e.seconds for e in result.epochs)
    per_triplet_epoch = train_s / (len(data.train) * options.epochs)
    print(json.dumps({
        "bench": "cpu_train", "root": name, "precision": result.precision, "threads": torch.get_num_threads(),
        "triplets": len(data.train), "eval_triplets": len(data.eval), "epochs": options.epochs,
        "max_seq_length": options.max_seq_length, "train_seq_length": trainer._train_length(options.max_seq_length), "generate_s": round(generate_s, 1),
        "train_s": round(train_s, 1), "projected_1000x1_s": round(per_triplet_epoch * 1000, 1), "target_s": 300,
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "base": {k: round(before[k], 4) for k in ("triplet_accuracy", "mrr@10", "recall@10")},
        "fine_tuned": {k: round(after[k], 4) for k in ("triplet_accuracy", "mrr@10", "recall@10")},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
