"""GPU: fine-tuning speed-up of `codekin train --gpus N` (torchrun, DDP) over one GPU.

The same trainer classes `codekin train --gpus N` runs (DistributedTrainer: rank 0 hands
the job to the others, each global batch is dealt round-robin, DDP averages gradients),
on benchmarks/gpu_train.py's Qodo-size model (Qwen2-1.5B shape, random init), 256-token
texts, the same effective batch as one GPU (so the same steps). One JSON line per run.

    python benchmarks/gpu_ddp.py build --tokenizer DIR --out MODEL_DIR      # once
    python benchmarks/gpu_ddp.py train --model MODEL_DIR/st                  # one GPU
    torchrun --standalone --nproc-per-node 2 benchmarks/gpu_ddp.py train --model MODEL_DIR/st
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_train import build_model, code_text  # noqa: E402


def train(options: argparse.Namespace) -> None:
    import torch

    from codekin.training.trainer.args import TrainingArguments

    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    cuda = options.device == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    rng = random.Random(7)
    triplets = [(code_text(rng), code_text(rng), code_text(rng)) for _ in range(options.triplets)]
    args = TrainingArguments(epochs=options.epochs, batch_size=options.batch_size, learning_rate=1e-5,
                             device=options.device, max_seq_length=256, train_seq_length=256)
    if world == 1:
        from codekin.training.trainer.trainer import Trainer

        trainer = Trainer(options.model, device=options.device, args=args, out=lambda s: None, show_progress=False)
        report(options, trainer, triplets, world)
        return
    import torch.distributed as dist

    from codekin.distributed.torchrun import DistributedTrainer, _follow

    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        if rank == 0:
            trainer = DistributedTrainer(options.model, device=options.device, args=args, out=lambda s: None,
                                         show_progress=False)
            report(options, trainer, triplets, world)
        else:
            _follow(rank, world)
    finally:
        dist.destroy_process_group()


def report(options: argparse.Namespace, trainer: object, triplets: list, world: int) -> None:
    import torch

    cuda = options.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = trainer.train(triplets)  # type: ignore[attr-defined]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    print(json.dumps({
        "bench": "gpu_ddp", "gpus": world, "card": torch.cuda.get_device_name(0) if cuda else "cpu",
        "model": "qwen2-1.5b-random" if "tiny" not in options.model else options.model,
        "triplets": len(triplets), "epochs": options.epochs, "effective_batch": options.batch_size,
        "per_device_batch": options.batch_size // world, "seconds": round(seconds, 2),
        "epoch_seconds": [round(e.seconds, 2) for e in result.epochs],
        "steps_per_epoch": result.epochs[-1].steps, "final_loss": round(result.epochs[-1].loss, 4),
        "peak_gb_rank0": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else 0.0,
    }), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=["build", "train"])
    parser.add_argument("--tokenizer", help="build: any Hugging Face tokenizer directory")
    parser.add_argument("--out", type=Path, help="build: where the model goes")
    parser.add_argument("--model", help="train: the sentence-transformers directory")
    parser.add_argument("--triplets", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="effective batch (all GPUs together)")
    parser.add_argument("--device", default="cuda")
    options = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if options.stage == "build":
        options.out.mkdir(parents=True, exist_ok=True)
        print(build_model(options.tokenizer, options.out))
        return 0
    train(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
