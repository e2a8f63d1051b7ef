"""GPU: time training steps and encoding of the Qodo-size model under several kernel variants.

One process, one model built once (benchmarks/gpu_train.py's random-init Qwen2 1.5B shape);
every variant starts from the saved weights. For training: seconds of the second epoch of
`--triplets` triplets (the first one holds compilation and warm-up), and the loss as a check
that the variants compute the same thing. For encoding: chunks/s of 256-token chunks.
Prints one JSON line per variant.
  PYTHONPATH=server python benchmarks/gpu_variants.py --tokenizer DIR [--variants eager,parts]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_train import build_model, code_text, emit  # noqa: E402


def train_variant(model_path: str, triplets: list, variant: str, out: Path | None) -> None:
    import torch

    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer

    args = TrainingArguments(epochs=2, batch_size=16, learning_rate=1e-5, device="cuda", max_seq_length=256,
                             compile="off" if variant == "eager" else "on",
                             compile_mode="parts" if variant == "eager" else variant)
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model_path, device="cuda", args=args, out=lambda s: None, show_progress=False)
    result = trainer.train(triplets)
    steps = result.epochs[-1].steps
    emit({"bench": "gpu_train_variant", "variant": variant, "card": torch.cuda.get_device_name(0),
          "steps": steps, "epoch1_s": round(result.epochs[0].seconds, 2),
          "epoch2_s": round(result.epochs[-1].seconds, 2),
          "ms_per_step": round(1000 * result.epochs[-1].seconds / steps, 1),
          "projected_1000x3_s": round(result.epochs[-1].seconds / len(triplets) * 3000, 1),
          "loss": [round(e.loss, 4) for e in result.epochs],
          "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1)}, out)
    del trainer, result
    torch.cuda.empty_cache()


def encode_variant(model_path: str, texts: list[str], variant: str, batch: int, out: Path | None) -> None:
    import torch

    from codekin.embedding.torch_encode import compile_layers, encode_texts
    from codekin.training.trainer.model import load_model

    model = load_model(model_path, "cuda", 256)
    model.to(torch.bfloat16).eval()
    if variant != "eager":
        compile_layers(model, variant)
    encode_texts(model, texts[: batch * 2], batch_size=batch)
    torch.cuda.synchronize()
    started = time.perf_counter()
    vectors = encode_texts(model, texts, batch_size=batch)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    emit({"bench": "gpu_encode_variant", "variant": variant, "batch": batch, "chunks": len(texts),
          "chunks_per_s": round(len(texts) / seconds, 1), "dim": int(vectors.shape[1])}, out)
    del model
    torch.cuda.empty_cache()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--triplets", type=int, default=320)
    parser.add_argument("--chunks", type=int, default=2048)
    parser.add_argument("--variants", default="eager,parts,layers")
    parser.add_argument("--encode-variants", default="eager,parts")
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    rng = random.Random(7)
    triplets = [(code_text(rng), code_text(rng), code_text(rng)) for _ in range(options.triplets)]
    texts = [code_text(rng) for _ in range(options.chunks)]
    with tempfile.TemporaryDirectory() as tmp:
        model_path = build_model(options.tokenizer, Path(tmp))
        for variant in filter(None, options.encode_variants.split(",")):
            encode_variant(model_path, texts, variant, 256, options.out)
        for variant in filter(None, options.variants.split(",")):
            train_variant(model_path, triplets, variant, options.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
