"""Fine-tune a sentence-transformers model on (anchor, positive, negative) triplets.

A lean loop rather than SentenceTransformerTrainer (which needs `accelerate` and
`datasets` and runs three forward passes per batch): one forward pass over anchors,
positives and negatives together, length-bucketed batches, linear warmup/decay,
bf16/fp16 autocast on CUDA by default, gradient checkpointing when the step would not
fit the GPU, fused AdamW on CUDA. After every epoch an atomic checkpoint with sha256
hashes; a killed run resumes from its last good checkpoint, a corrupted one is removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codekin.embedding.torch_encode import (
    compile_layers,
    disable_kv_cache,
    parameter_count,
    to_device,
    transformer,
    transformer_config,
)
from codekin.errors import CodekinError, ModelLoadError
from codekin.models.checkpoints import (
    read_manifest,
    remove_stale_temporaries,
    remove_tree,
    verify_checkpoint,
    write_checkpoint,
)
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.fp8 import FP8_MIN_PARAMS, fp8_unavailable, from_fp8, to_fp8

TRAINER_STATE = "trainer_state.pt"
CHECKPOINT_PREFIX = "epoch-"
CPU_TRAIN_TOKENS = 128  # see Trainer._train_length


class TrainingError(CodekinError):
    exit_code = 8


def triplet_texts(item: Any) -> tuple[str, str, str]:
    """(anchor, positive, negative) from a tuple, a dict or a Triplet object."""
    if isinstance(item, dict):
        return item["anchor"], item["positive"], item["negative"]
    if hasattr(item, "anchor"):
        return item.anchor, item.positive, item.negative
    anchor, positive, negative = item
    return anchor, positive, negative


def format_lr(value: float) -> str:
    """1e-05 -> '1.0e-5' (the way people write learning rates)."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@dataclass
class EpochResult:
    epoch: int
    loss: float
    accuracy: float
    seconds: float
    steps: int
    checkpoint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    triplets: int
    epochs: list[EpochResult] = field(default_factory=list)
    device: str = "cpu"
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    seconds: float = 0.0
    resumed_from: str = ""  # checkpoint label the run continued from
    checkpoint: str = ""  # directory of the last epoch's checkpoint

    @property
    def metrics(self) -> dict[str, float]:
        last = self.epochs[-1] if self.epochs else None
        return {"train_loss": last.loss if last else math.nan,
                "train_accuracy": last.accuracy if last else math.nan,
                "train_seconds": self.seconds}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **self.metrics}


def quiet_transformers() -> None:
    """No weight loading/writing bars: the trainer prints its own lines."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_model(name_or_path: str, device: str, max_seq_length: int = 256) -> Any:
    """A SentenceTransformer from a path or the `default` name; ModelLoadError if it fails."""
    quiet_transformers()
    from sentence_transformers import SentenceTransformer

    from codekin.embedding import resolve_model_path

    try:
        model = SentenceTransformer(resolve_model_path(name_or_path), device=device)
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as exc:
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {exc}".splitlines()[0]) from exc
    model.max_seq_length = min(max_seq_length, model.max_seq_length or max_seq_length)
    return model


def data_key(texts: Iterable[tuple[str, str, str]], args: TrainingArguments) -> str:
    """Identifies a run's data and hyper-parameters: a checkpoint only resumes the same run."""
    digest = hashlib.sha256()
    for triple in texts:
        for text in triple:
            digest.update(text.encode("utf-8", "replace") + b"\0")
    keep = ("epochs", "learning_rate", "batch_size", "loss", "margin", "mnrl_scale", "warmup_ratio",
            "weight_decay", "seed", "max_seq_length", "train_seq_length", "bucket_size")
    digest.update(json.dumps({k: getattr(args, k) for k in keep}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def needs_gradient_checkpointing(model: Any, batch_size: int, seq_len: int, total_bytes: int) -> bool:
    """Estimate weights + grads + AdamW (16 B/param) + activations; true above 85 % of the GPU."""
    config = transformer_config(model)
    if config is None:
        return False
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    inter = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    params = parameter_count(model)
    activations = 3 * batch_size * seq_len * layers * (10 * hidden + 4 * inter) * 2
    return params * 16 + activations > 0.85 * total_bytes


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has native bf16 dot products (AVX512-BF16, AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bf16_pays(model: Any) -> bool:
    """bf16 autocast on a CPU with native bf16: ~1.4x a step for MiniLM on 2 Zen 4 cores;
    tiny models gain nothing and lose precision, so not below 10M parameters."""
    return cpu_has_native_bf16() and parameter_count(model) >= 10_000_000


def enable_gradient_checkpointing(model: Any) -> None:
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "gradient_checkpointing_enable", None)
    if enable is not None:
        enable(gradient_checkpointing_kwargs=kwargs)
    else:
        model[0].auto_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


class Trainer:
    """`Trainer(model, device="auto").train(triplets, epochs=3, learning_rate=1e-5, ...)`."""

    def __init__(self, model: Any, device: str = "auto", args: TrainingArguments | None = None,
                 out: Callable[[str], None] = print, show_progress: bool | None = None,
                 model_name: str = "") -> None:
        from codekin.embedding import choose_device

        self.args = (args or TrainingArguments()).replace(device=device if device != "auto" else None)
        self.device = choose_device(self.args.device)
        self._drop_partial = False  # set per run: compiled runs drop a short last batch
        if isinstance(model, str | Path):
            self.model_name = model_name or str(model)
            model = load_model(str(model), self.device, self.args.max_seq_length)
        else:
            self.model_name = model_name or type(model).__name__
        self.model = model
        self.out = out
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress

    # -- setup -----------------------------------------------------------------------------
    def _precision(self) -> str:
        import torch

        wanted = self.args.precision
        if wanted == "auto":
            if self.device == "cuda":
                if self._fp8_pays():
                    return "fp8"
                return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            return "bf16" if self.device == "cpu" and cpu_bf16_pays(self.model) else "fp32"
        if wanted == "fp16" and self.device != "cuda":
            raise TrainingError("fp16 training needs a CUDA GPU", "use --precision bf16 or fp32 on this device")
        if wanted == "fp8" and (reason := fp8_unavailable(self.device)):
            raise TrainingError(reason, "use --precision bf16 (or auto)")
        return wanted

    def _fp8_pays(self) -> bool:
        """fp8 matrix products win only for big layers under torch.compile (see training/fp8.py)."""
        if self.args.compile == "off" or fp8_unavailable(self.device):
            return False
        return parameter_count(self.model) >= FP8_MIN_PARAMS

    def _train_length(self, full_length: int) -> int:
        """Tokens a training text keeps: on a CPU the first 128 (a step costs ~2.3x less; held-out
        MRR@10 after 1 epoch on OTP code 0.353 with 256, 0.361 with 128), all on a GPU."""
        if self.args.train_seq_length:
            return min(self.args.train_seq_length, full_length)
        return full_length if self.device == "cuda" else min(full_length, CPU_TRAIN_TOKENS)

    def _use_checkpointing(self) -> bool:
        import torch

        if self.args.gradient_checkpointing != "auto":
            return self.args.gradient_checkpointing == "on"
        if self.device != "cuda":
            return False
        total = torch.cuda.get_device_properties(torch.device("cuda")).total_memory
        return needs_gradient_checkpointing(self.model, self.args.batch_size, self.args.max_seq_length, total)

    def _optimizer(self, steps: int) -> tuple[Any, Any]:
        import torch

        decay = [p for p in self.model.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.ndim < 2]
        groups = [{"params": decay, "weight_decay": self.args.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        extra = {"fused": True} if self.device == "cuda" else {}
        optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, **extra)
        warmup = max(1, int(steps * self.args.warmup_ratio)) if self.args.warmup_ratio > 0 else 0

        def schedule(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _batches(self, lengths: Sequence[int], epoch: int) -> list[list[int]]:
        """Shuffled, then sorted by length inside groups of `bucket_size` batches (less padding)."""
        rng = random.Random(self.args.seed * 1000 + epoch)
        order = list(range(len(lengths)))
        rng.shuffle(order)
        size = self.args.batch_size
        group = size * self.args.bucket_size
        batches = []
        for start in range(0, len(order), group):
            part = sorted(order[start:start + group], key=lambda i: lengths[i])
            batches += [part[j:j + size] for j in range(0, len(part), size)]
        if self._drop_partial:
            batches = [batch for batch in batches if len(batch) == size]
        rng.shuffle(batches)
        return batches

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoints(self, directory: Path) -> list[tuple[int, Path]]:
        found = []
        for path in directory.glob(f"{CHECKPOINT_PREFIX}*"):
            suffix = path.name[len(CHECKPOINT_PREFIX):]
            if path.is_dir() and suffix.isdigit():
                found.append((int(suffix), path))
        return sorted(found)

    def _resume(self, directory: Path, key: str, run: str, parent: str) -> tuple[int, dict[str, Any] | None]:
        """Load the newest good checkpoint of this run; remove corrupted ones. -> (epochs done, state)."""
        import torch

        remove_stale_temporaries(directory)  # a run killed while writing a checkpoint left them
        for epoch, path in reversed(self._checkpoints(directory)):
            problem = verify_checkpoint(path)
            if not problem and read_manifest(path).get("data_key") != key:
                self.out(f"Ignoring checkpoint {run}/{path.name}: it belongs to a run with other data or settings")
                remove_tree(path)
                continue
            model = state = None
            if not problem:
                try:
                    model = load_model(str(path), self.device, self.args.max_seq_length)
                    state_path = path / TRAINER_STATE
                    state = torch.load(state_path, map_location="cpu", weights_only=True) \
                        if state_path.is_file() else None
                except (ModelLoadError, RuntimeError, OSError, EOFError) as exc:
                    problem = f"load failure: {exc}".splitlines()[0]
            if problem:
                remove_tree(path)
                earlier = [p for e, p in self._checkpoints(directory) if e < epoch]
                source = f"{run}/{earlier[-1].name}" if earlier else parent
                self.out(f"checkpoint corrupted: removed, retraining from {source}")
                self.out(f"  ({run}/{path.name}: {problem})")
                continue
            self.model = model
            self.out(f"Resuming from {run}/{path.name}")
            return epoch, state
        return 0, None

    def _save(self, directory: Path, epoch: int, result: EpochResult, key: str, state: dict[str, Any] | None,
              meta: dict[str, Any]) -> Path:
        import torch

        def fill(tmp: Path) -> None:
            quiet_transformers()
            self.model.save(str(tmp), create_model_card=False)
            if state is not None:
                torch.save(state, tmp / TRAINER_STATE)

        target = directory / f"{CHECKPOINT_PREFIX}{epoch}"
        write_checkpoint(target, fill, {**meta, "data_key": key, "epoch": epoch, "epochs": self.args.epochs,
                                        "loss": result.loss, "accuracy": result.accuracy,
                                        "args": self.args.to_dict()})
        return target

    # -- the loop --------------------------------------------------------------------------
    def train(self, triplets: Sequence[Any], epochs: int | None = None, learning_rate: float | None = None,
              batch_size: int | None = None, margin: float | None = None, loss: str | None = None, *,
              checkpoint_dir: Path | None = None, run: str = "candidate", parent: str = "base",
              checkpoint_meta: dict[str, Any] | None = None,
              on_epoch: Callable[[EpochResult], None] | None = None) -> TrainResult:
        import torch

        from codekin.training.trainer.losses import build_loss, triplet_correct

        self.args = self.args.replace(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                                      margin=margin, loss=loss)
        args = self.args
        texts = [triplet_texts(t) for t in triplets]
        if not texts:
            raise TrainingError("no triplets to train on", "generate some with `codekin triplets generate`")
        key = data_key(texts, args)
        started = time.perf_counter()
        done, state = (0, None)
        result = TrainResult(triplets=len(texts), device=self.device)
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            done, state = self._resume(checkpoint_dir, key, run, parent)
            result.resumed_from = f"{run}/{CHECKPOINT_PREFIX}{done}" if done else ""
        self._header(len(texts))

        torch.manual_seed(args.seed)
        model = self.model.to(self.device)
        if any(p.dtype != torch.float32 for p in model.parameters()):
            model.float()  # fp32 master weights; bf16/fp16 only inside autocast
        disable_kv_cache(model)
        full_length = min(args.max_seq_length, model.max_seq_length or args.max_seq_length)
        train_length = self._train_length(full_length)
        result.precision = self._precision()
        result.gradient_checkpointing = self._use_checkpointing()
        if result.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        compiled = self.device == "cuda" and args.compile != "off"  # auto: on; ~5 s once, -30 % a step
        fp8 = result.precision == "fp8" and bool(to_fp8(transformer(model)))
        if compiled:
            compile_layers(model, args.compile_mode)
        wrapped = self._wrap_model(model)  # DDP/FSDP under `codekin train --gpus N`; the model itself otherwise
        lengths = [max(len(a), len(p), len(n)) for a, p, n in texts]
        # A compiled model would compile a second graph (~20 s) for a short last batch: drop it
        # (a different remainder every epoch, as the order is shuffled).
        self._drop_partial = compiled and len(texts) > args.batch_size
        steps_per_epoch = len(self._batches(lengths, 1))
        optimizer, scheduler = self._optimizer(steps_per_epoch * args.epochs)
        scaler = torch.amp.GradScaler("cuda") if result.precision == "fp16" else None
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
        elif done:  # a checkpoint saved without optimizer state: keep the schedule's position
            for _ in range(done * steps_per_epoch):
                scheduler.step()
        loss_fn = build_loss(args.loss, args.margin, args.mnrl_scale)
        # fp8: the linear layers' products run in float8, everything around them in bf16 autocast
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.bfloat16}.get(result.precision)
        autocast_device = "cuda" if self.device == "cuda" else "cpu"
        tokenize = getattr(model, "preprocess", None) or model.tokenize  # preprocess: sentence-transformers 6

        model.max_seq_length = train_length  # tokenisation in the steps truncates here
        try:
            for epoch in range(done + 1, args.epochs + 1):
                torch.manual_seed(args.seed * 1000 + epoch)
                wrapped.train()
                epoch_started = time.perf_counter()
                total_loss = correct = seen = 0.0
                batches = self._batches(lengths, epoch)
                bar = self._bar(len(batches), f"Epoch {epoch}/{args.epochs}")
                for step, batch in enumerate(batches):
                    a_texts = [texts[i][0] for i in batch]
                    features = tokenize(a_texts + [texts[i][1] for i in batch] + [texts[i][2] for i in batch])
                    features = to_device(features, self.device)
                    with torch.autocast(autocast_device, dtype=dtype or torch.float32, enabled=dtype is not None):
                        embeddings = wrapped(features)["sentence_embedding"]
                    anchor, positive, negative = embeddings.float().split(len(batch))
                    value = loss_fn(anchor, positive, negative)
                    if (step + 1) % 25 == 0 or step + 1 == len(batches):  # a check syncs the GPU: not every step
                        self._check_finite(total_loss + value.detach(), epoch, step)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(value).backward()
                        scaler.unscale_(optimizer)
                    else:
                        value.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    scheduler.step()
                    with torch.no_grad():
                        correct += triplet_correct(anchor, positive, negative).sum()
                    total_loss += value.detach() * len(batch)
                    seen += len(batch)
                    bar.update(1)
                bar.close()
                total_loss, correct, seen = self._epoch_totals(total_loss, correct, seen)
                epoch_result = EpochResult(epoch, float(total_loss) / seen, float(correct) / seen,
                                           time.perf_counter() - epoch_started, len(batches))
                self.out(f"Epoch {epoch}/{args.epochs}: loss={epoch_result.loss:.3f}, "
                         f"accuracy={epoch_result.accuracy:.2f}")
                if checkpoint_dir is not None:
                    trainer_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                     "scaler": scaler.state_dict() if scaler is not None else {}} \
                        if args.save_optimizer_state else None
                    model.eval()
                    model.max_seq_length = full_length  # saved for embedding whole chunks
                    path = self._save(checkpoint_dir, epoch, epoch_result, key, trainer_state,
                                      {"run": run, "parent": parent, "triplets": len(texts),
                                       **(checkpoint_meta or {})})
                    epoch_result.checkpoint = str(path)
                    result.checkpoint = str(path)
                    model.max_seq_length = train_length
                result.epochs.append(epoch_result)
                if on_epoch is not None:
                    on_epoch(epoch_result)
        finally:
            model.max_seq_length = full_length
            if fp8:
                from_fp8(transformer(model))  # evaluation and the saved model: plain bf16/fp32 layers
        model.eval()
        if checkpoint_dir is not None and not result.checkpoint:
            last = self._checkpoints(checkpoint_dir)
            result.checkpoint = str(last[-1][1]) if last else ""
        result.seconds = time.perf_counter() - started
        self.out("Fine-tuning complete")
        return result

    # -- hooks a distributed launch overrides (codekin.distributed.torchrun) -----------------
    def _wrap_model(self, model: Any) -> Any:
        """The module forward/backward run through (DDP or FSDP when distributed)."""
        return model

    def _epoch_totals(self, total_loss: Any, correct: Any, seen: float) -> tuple[Any, Any, float]:
        """Loss sum, correct triplets and triplets seen in the epoch (summed over processes)."""
        return total_loss, correct, seen

    @staticmethod
    def _check_finite(value: Any, epoch: int, step: int) -> None:
        import torch

        if not torch.isfinite(torch.as_tensor(value)):
            raise TrainingError(f"the loss became {float(value)} by epoch {epoch}, step {step + 1}",
                                "lower --lr, or train with --precision fp32")

    def _header(self, count: int) -> None:
        a = self.args
        loss = f"triplet (margin {a.margin:g})" if a.loss == "triplet" else "mnrl (in-batch + hard negatives)"
        self.out(f"Fine-tuning {self.model_name} on {count} triplets\n  Epochs: {a.epochs}\n"
                 f"  Batch size: {a.batch_size}\n  Learning rate: {format_lr(a.learning_rate)}\n"
                 f"  Device: {self.device}\n  Loss: {loss}\n  Precision: {self._precision()}")

    def _bar(self, total: int, title: str) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=title, unit="batch", file=sys.stderr, leave=False,
                    disable=not self.show_progress, dynamic_ncols=True)
