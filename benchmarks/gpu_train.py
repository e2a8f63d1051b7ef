"""GPU benchmark: fine-tune and re-embed with a Qodo-size model (Qwen2 1.5B shape, random init).

Targets (issue 7, one H100): 1,000 triplets x 3 epochs at batch 16 in <= 45 s (plain
SentenceTransformerTrainer, TripletLoss, bf16: 86 s); re-embedding >= 600 chunks/s of
256-token chunks (plain `encode` in bf16 at batch 32: 333/s).

Runs with `PYTHONPATH=server python benchmarks/gpu_train.py --tokenizer DIR` where DIR holds
any Hugging Face tokenizer (the MiniLM one; ids stay < its vocabulary, the embedding
matrix keeps Qwen2's 151,936 rows). Prints one JSON line per measurement; --out appends them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("def defp handle_call handle_cast state reply noreply GenServer Supervisor init start_link opts "
         "case when do end fn -> |> Enum.map Map.get :ok :error tuple list atom binary receive after "
         "static ERL_NIF_TERM enif_make_tuple2 env argv int return if else for while struct class "
         "template typename const auto std::vector push_back size_t uint8_t memcpy").split()


def code_text(rng: random.Random, words: int = 260) -> str:
    return " ".join(rng.choice(WORDS) + (str(rng.randint(0, 99)) if rng.random() < 0.2 else "")
                    for _ in range(words))


def build_model(tokenizer_dir: str, directory: Path) -> str:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    config = Qwen2Config(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         intermediate_size=8960, vocab_size=151936, max_position_embeddings=32768,
                         rms_norm_eps=1e-6, rope_theta=1_000_000.0, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2Model(config).to(torch.bfloat16)
    model.save_pretrained(directory / "hf")
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory / "hf")
    del model
    torch.cuda.empty_cache()
    st = SentenceTransformer(modules=[Transformer(str(directory / "hf"), max_seq_length=256),
                                      Pooling(1536, "mean")], device="cpu")
    st.save(str(directory / "st"), create_model_card=False)
    return str(directory / "st")


def emit(record: dict, out: Path | None) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    if out is not None:
        with out.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def profile_steps(model_path: str, triplets: list[tuple[str, str, str]]) -> None:
    """Four training steps under the profiler: the top CUDA kernels, to stderr."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer

    args = TrainingArguments(epochs=1, batch_size=16, device="cuda", max_seq_length=256)
    trainer = Trainer(model_path, device="cuda", args=args, out=lambda s: None, show_progress=False)
    trainer.train(triplets[:32])  # warm-up
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.train(triplets[:64])
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=22), file=sys.stderr)
    del trainer
    torch.cuda.empty_cache()


def bench_train(model_path: str, triplets: list[tuple[str, str, str]], card: str, out: Path | None,
                epochs: int, compile_mode: str = "auto", precision: str = "auto") -> object:
    import torch

    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer

    args = TrainingArguments(epochs=epochs, batch_size=16, learning_rate=1e-5, device="cuda", max_seq_length=256,
                             compile=compile_mode, precision=precision)
    from codekin.embedding.torch_encode import compile_cache_dir

    cache = compile_cache_dir()
    warm_cache = cache.is_dir() and any(cache.iterdir())  # a later nightly run, not the first on this machine
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model_path, device="cuda", args=args, out=lambda s: print(s, file=sys.stderr),
                      show_progress=False, model_name="qwen2-1.5b-random")
    torch.cuda.synchronize()
    started = time.perf_counter()
    result = trainer.train(triplets)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    emit({"bench": "gpu_train", "card": card, "compile": compile_mode, "compile_cache_warm": warm_cache, "model": "qwen2-1.5b-random", "triplets": len(triplets),
          "epochs": epochs, "batch_size": 16, "seq_len": 256, "seconds": round(seconds, 2),
          "triplets_per_s": round(len(triplets) * epochs / seconds, 1), "precision": result.precision,
          "gradient_checkpointing": result.gradient_checkpointing,
          "epoch_seconds": [round(e.seconds, 2) for e in result.epochs],
          "final_loss": round(result.epochs[-1].loss, 4),
          "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1),
          "target_s": 45, "baseline_plain_st_trainer_s": 86}, out)
    model = trainer.model
    del trainer
    return model


def bench_encode(encode: object, texts: list[str], card: str, out: Path | None, variant: str, batch: int) -> None:
    """Throughput of encoding 256-token chunks (after a warm-up on two batches)."""
    import torch

    encode(texts[: batch * 2])  # warm-up: kernels compiled and chosen, allocator filled
    torch.cuda.synchronize()
    started = time.perf_counter()
    vectors = encode(texts)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    emit({"bench": "gpu_reembed", "card": card, "variant": variant, "model": "qwen2-1.5b-random",
          "chunks": len(texts), "seq_len": 256, "batch": batch, "seconds": round(seconds, 2),
          "chunks_per_s": round(len(texts) / seconds, 1), "dim": int(vectors.shape[1]),
          "target_chunks_per_s": 600, "baseline_plain_encode_bf16_b32": 333}, out)


def plain_encoder(model_path: str) -> object:
    """The baseline: sentence-transformers `encode` on bf16 weights at batch 32."""
    import torch

    from codekin.training.trainer.model import load_model

    model = load_model(model_path, "cuda", 256).to(torch.bfloat16)
    return lambda texts: model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                                      show_progress_bar=False)


def codekin_encoder(model_path: str, batch: int) -> object:
    """What `codekin index`/`reembed` use on a GPU: the Embedder with device cuda."""
    from codekin.config import ModelConfig
    from codekin.embedding import load_embedder

    embedder = load_embedder(ModelConfig(primary=model_path, device="cuda", backend="torch", batch_size=batch))
    return embedder.encode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--triplets", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=4096)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-encode", action="store_true")
    parser.add_argument("--precision", default="auto", help="training precision (auto: fp8 where the GPU and model size allow, see training/fp8.py)")
    parser.add_argument("--profile", action="store_true", help="print the top CUDA kernels of 4 steps first")
    options = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    card = torch.cuda.get_device_name(0)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model_path = build_model(options.tokenizer, Path(tmp))
        print(f"model built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        texts = [code_text(rng) for _ in range(options.chunks)]
        triplets = [(code_text(rng), code_text(rng), code_text(rng)) for _ in range(options.triplets)]
        if options.profile:
            profile_steps(model_path, triplets)
        if not options.skip_train:
            bench_train(model_path, triplets, card, options.out, options.epochs, precision=options.precision)
        if options.skip_encode:
            return 0
        torch.cuda.empty_cache()
        bench_encode(plain_encoder(model_path), texts, card, options.out, "plain_st_encode", 32)
        torch.cuda.empty_cache()
        bench_encode(codekin_encoder(model_path, 256), texts, card, options.out, "codekin_embedder", 256)
    return 0


if __name__ == "__main__":
    sys.exit(main())
