"""Fine-tune a sentence-transformers model: the signals recipe (recipe.py: in-batch negatives
over (query, code) pairs, the default) or the seed's (anchor, positive, negative) triplets.

A lean loop rather than SentenceTransformerTrainer (which needs `accelerate` and
`datasets` and runs three forward passes per batch): one forward pass over anchors,
positives and negatives together, length-bucketed batches, linear warmup/decay,
bf16/fp16 autocast on CUDA by default, gradient checkpointing when the step would not
fit the GPU, fused AdamW on CUDA. After every epoch an atomic checkpoint with sha256
hashes; a killed run resumes from its last good checkpoint, a corrupted one is removed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekin.embedding.torch_encode import (
    compile_layers,
    disable_kv_cache,
    parameter_count,
    to_device,
    transformer,
)
from codekin.errors import TrainingError
from codekin.training.pairs.batches import TextPair
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.checkpointing import (
    CHECKPOINT_PREFIX,
    EpochCheckpoints,
)
from codekin.training.trainer.fp8 import FP8_MIN_PARAMS, fp8_unavailable, from_fp8, to_fp8
from codekin.training.trainer.model import (
    cpu_bf16_pays,
    enable_gradient_checkpointing,
    load_model,
    needs_gradient_checkpointing,
)
from codekin.training.trainer.recipe import recipe_rows
from codekin.training.trainer.results import (
    EpochResult,
    TrainResult,
    data_key,
    format_lr,
    triplet_texts,
)

CPU_TRAIN_TOKENS = 128  # see Trainer._train_length
CPU_MAX_STEPS = 96  # see Trainer._step_budget


@dataclass
class _Loop:
    """What the epochs of one `Trainer.train` run share (built by `Trainer._prepare`)."""

    texts: list[tuple[str, ...]]  # (anchor, positive, negative) triplets, or (query, code) pairs
    model: Any
    wrapped: Any  # what forward/backward run through: the model, or its DDP/FSDP wrapper
    lengths: list[int]
    full_length: int
    train_length: int
    fp8: bool
    steps_per_epoch: int
    optimizer: Any
    scheduler: Any
    scaler: Any
    loss_fn: Any
    dtype: Any
    autocast_device: str
    tokenize: Any


class Trainer(EpochCheckpoints):
    """`Trainer(model, device="auto").train(triplets, epochs=3, learning_rate=1e-5, ...)`."""

    def __init__(self, model: Any, device: str = "auto", args: TrainingArguments | None = None,
                 out: Callable[[str], None] = print, show_progress: bool | None = None,
                 model_name: str = "") -> None:
        from codekin.embedding import choose_device

        self.args = (args or TrainingArguments()).replace(device=device if device != "auto" else None)
        self.device = choose_device(self.args.device)
        self._drop_partial = False  # set per run: compiled runs drop a short last batch
        self._fixed: list[list[int]] | None = None  # set per run: the signals recipe's batches
        self._kinds = ""  # set per run: the signals recipe's rows per kind, for the header
        self._budget = ""  # set per run: the step budget's line for the header, when it cuts
        if isinstance(model, str | Path):
            self.model_name = model_name or str(model)
            model = load_model(str(model), self.device, self.args.max_seq_length)
        else:
            self.model_name = model_name or type(model).__name__
        self.model = model
        self.out = out
        self.show_progress = show_progress  # None: a bar in a terminal, lines elsewhere; False: quiet

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
        """fp8 matrix products win only for big layers under torch.compile (see training/trainer/fp8.py)."""
        if self.args.compile == "off" or fp8_unavailable(self.device):
            return False
        return parameter_count(self.model) >= FP8_MIN_PARAMS

    def _train_length(self, full_length: int) -> int:
        """Tokens a training text keeps: on a CPU the first 128 (a step costs ~2.3x less; held-out
        MRR@10 after 1 epoch on OTP code 0.353 with 256, 0.361 with 128), all on a GPU."""
        if self.args.train_seq_length:
            return min(self.args.train_seq_length, full_length)
        return full_length if self.device == "cuda" else min(full_length, CPU_TRAIN_TOKENS)

    def _step_budget(self) -> int:
        """Steps the whole run may take (0: no limit). A CPU step of 32 rows takes 5-9 s on 2
        cores, so the default recipe on a 150k-line repository (5,545 pairs, 525 steps) would
        train about 80 minutes; with 96 steps the whole nightly there (the adapter, mining, the
        fine-tune, the gate) took 17 minutes, ~19 with a re-embed (results/learning.jsonl). A GPU
        trains everything (525 steps: under a minute)."""
        if self.args.max_steps:
            return self.args.max_steps
        return 0 if self.device == "cuda" else CPU_MAX_STEPS

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
        optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate,
                                      fused=True if self.device == "cuda" else None)
        warmup = max(1, int(steps * self.args.warmup_ratio)) if self.args.warmup_ratio > 0 else 0

        def schedule(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _batches(self, lengths: Sequence[int], epoch: int) -> list[list[int]]:
        """Shuffled, then sorted by length inside groups of `bucket_size` batches (less padding);
        the signals recipe's fixed batches in a shuffled order."""
        rng = random.Random(self.args.seed * 1000 + epoch)
        if self._fixed is not None:
            fixed = [list(batch) for batch in self._fixed]
            rng.shuffle(fixed)
            return fixed
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

    # -- the loop --------------------------------------------------------------------------
    def train(self, triplets: Sequence[Any], epochs: int | None = None, learning_rate: float | None = None,
              batch_size: int | None = None, margin: float | None = None, loss: str | None = None, *,
              pairs: Sequence[TextPair] = (), checkpoint_dir: Path | None = None, run: str = "candidate",
              parent: str = "base", checkpoint_meta: dict[str, Any] | None = None,
              on_epoch: Callable[[EpochResult], None] | None = None) -> TrainResult:
        """Train on `triplets` (the triplets recipe) or on `pairs` plus the triplets' (anchor,
        positive) rows (the signals recipe: which kinds is `args.signals`)."""
        self.args = self.args.replace(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                                      margin=margin, loss=loss)
        texts = self._rows(triplets, pairs)
        key = data_key(texts, self.args)
        started = time.perf_counter()
        done, state = (0, None)
        result = TrainResult(triplets=len(texts), device=self.device)
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            done, state = self._resume(checkpoint_dir, key, run, parent)
            result.resumed_from = f"{run}/{CHECKPOINT_PREFIX}{done}" if done else ""
        self._header(len(texts))
        loop = self._prepare(texts, result)
        self._restore(loop, state, done)
        meta = {"run": run, "parent": parent, "triplets": len(texts), **(checkpoint_meta or {})}
        loop.model.max_seq_length = loop.train_length  # tokenisation in the steps truncates here
        try:
            for epoch in range(done + 1, self.args.epochs + 1):
                epoch_result = self._epoch(loop, epoch)
                if checkpoint_dir is not None:
                    path = self._checkpoint(loop, checkpoint_dir, epoch_result, key, meta)
                    epoch_result.checkpoint = result.checkpoint = str(path)
                result.epochs.append(epoch_result)
                if on_epoch is not None:
                    on_epoch(epoch_result)
        finally:
            loop.model.max_seq_length = loop.full_length
            if loop.fp8:
                from_fp8(transformer(loop.model))  # evaluation and the saved model: plain bf16/fp32 layers
        loop.model.eval()
        if checkpoint_dir is not None and not result.checkpoint:
            last = self._checkpoints(checkpoint_dir)
            result.checkpoint = str(last[-1][1]) if last else ""
        result.seconds = time.perf_counter() - started
        self.out("Fine-tuning complete")
        return result

    def _rows(self, triplets: Sequence[Any], pairs: Sequence[TextPair]) -> list[tuple[str, ...]]:
        """The run's training rows; for the signals recipe also its fixed batches (self._fixed)."""
        self._fixed, self._kinds, self._budget = None, "", ""
        budget = self._step_budget()
        per_epoch = max(1, budget // self.args.epochs) if budget else 0  # batches an epoch may take
        if self.args.recipe == "triplets":
            texts: list[tuple[str, ...]] = [triplet_texts(t) for t in triplets]
            if not texts:
                raise TrainingError("no triplets to train on", "generate some with `codekin triplets generate`")
            if per_epoch and len(texts) > per_epoch * self.args.batch_size:
                texts = random.Random(f"at-most:{self.args.seed}").sample(texts, per_epoch * self.args.batch_size)
            return texts
        made = recipe_rows(pairs, triplets, self.args.signals, self.args.batch_size, self.args.seed,
                           self.args.batch_by_file)
        if not made.rows:
            raise TrainingError(f"no training pairs of the kinds {', '.join(self.args.signals)}",
                                "add `seed` to training.signals, or set training.recipe = \"triplets\"")
        if per_epoch and len(made.batches) > per_epoch:
            self._budget = (f"\n  Step budget: {per_epoch} of {len(made.batches)} batches an epoch, every doc "
                            f"batch first (training.max_steps = {budget}{'' if self.args.max_steps else ', auto'})")
            made = made.at_most(per_epoch, self.args.seed)
        self._fixed, self._kinds = made.batches, made.describe()
        return list(made.rows)

    def _prepare(self, texts: list[tuple[str, ...]], result: TrainResult) -> _Loop:
        """Model on its device in fp32 master weights, precision, checkpointing, compilation,
        optimizer and loss: everything the epochs share."""
        import torch

        from codekin.training.trainer.losses import build_loss

        args = self.args
        torch.manual_seed(args.seed)
        model = self.model.to(self.device)
        if any(p.dtype != torch.float32 for p in model.parameters()):
            model.float()  # fp32 master weights; bf16/fp16 only inside autocast
        disable_kv_cache(model)
        full_length = min(args.max_seq_length, model.max_seq_length or args.max_seq_length)
        result.precision = self._precision()
        result.gradient_checkpointing = self._use_checkpointing()
        if result.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        compiled = self.device == "cuda" and args.compile != "off"  # auto: on; ~5 s once, -30 % a step
        fp8 = result.precision == "fp8" and bool(to_fp8(transformer(model)))
        if compiled:
            compile_layers(model, args.compile_mode)
        wrapped = self._wrap_model(model)  # DDP/FSDP under `codekin train --gpus N`; the model itself otherwise
        lengths = [max(len(text) for text in row) for row in texts]
        # A compiled model would compile a second graph (~20 s) for a short last batch: drop it
        # (a different remainder every epoch, as the order is shuffled). The signals recipe's
        # batches are fixed and each holds rows no other batch has: none is dropped.
        self._drop_partial = compiled and len(texts) > args.batch_size and self._fixed is None
        steps_per_epoch = len(self._batches(lengths, 1))
        optimizer, scheduler = self._optimizer(steps_per_epoch * args.epochs)
        scaler = torch.amp.GradScaler("cuda") if result.precision == "fp16" else None
        # fp8: the linear layers' products run in float8, everything around them in bf16 autocast
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.bfloat16}.get(result.precision)
        return _Loop(texts, model, wrapped, lengths, full_length, self._train_length(full_length), fp8,
                     steps_per_epoch, optimizer, scheduler, scaler,
                     build_loss(args.loss, args.margin, args.mnrl_scale, args.recipe), dtype,
                     "cuda" if self.device == "cuda" else "cpu",
                     getattr(model, "preprocess", None) or model.tokenize)  # preprocess: sentence-transformers 6

    @staticmethod
    def _restore(loop: _Loop, state: dict[str, Any] | None, done: int) -> None:
        """Optimizer, schedule and scaler where the resumed checkpoint left them."""
        if state is not None:
            loop.optimizer.load_state_dict(state["optimizer"])
            loop.scheduler.load_state_dict(state["scheduler"])
            if loop.scaler is not None and state.get("scaler"):
                loop.scaler.load_state_dict(state["scaler"])
        elif done:  # a checkpoint saved without optimizer state: keep the schedule's position
            for _ in range(done * loop.steps_per_epoch):
                loop.scheduler.step()

    def _epoch(self, loop: _Loop, epoch: int) -> EpochResult:
        import torch

        from codekin.training.trainer.losses import in_batch_correct, triplet_correct

        torch.manual_seed(self.args.seed * 1000 + epoch)
        loop.wrapped.train()
        started = time.perf_counter()
        total_loss: Any = 0.0  # tensors once the first step adds to them
        correct: Any = 0.0
        seen = 0.0
        batches = self._batches(loop.lengths, epoch)
        with self._bar(len(batches), f"Training epoch {epoch}/{self.args.epochs}") as bar:
            for step, batch in enumerate(batches):
                anchor, positive, negative, value = self._forward(loop, batch)
                if (step + 1) % 25 == 0 or step + 1 == len(batches):  # a check syncs the GPU: not every step
                    self._check_finite(total_loss + value.detach(), epoch, step)
                self._backward(loop, value)
                with torch.no_grad():
                    correct += (in_batch_correct(anchor, positive) if negative is None
                                else triplet_correct(anchor, positive, negative)).sum()
                total_loss += value.detach() * len(batch)
                seen += len(batch)
                bar.advance(1)
        total_loss, correct, seen = self._epoch_totals(total_loss, correct, seen)
        result = EpochResult(epoch, float(total_loss) / seen, float(correct) / seen,
                             time.perf_counter() - started, len(batches))
        self.out(f"Epoch {epoch}/{self.args.epochs}: loss={result.loss:.3f}, accuracy={result.accuracy:.2f}")
        return result

    def _forward(self, loop: _Loop, batch: list[int]) -> tuple[Any, Any, Any, Any]:
        """(anchor, positive, negative embeddings or None for pairs, loss) of one batch: one
        pass over all its columns."""
        import torch

        texts = loop.texts
        columns = len(texts[batch[0]])
        features = loop.tokenize([texts[i][column] for column in range(columns) for i in batch])
        features = to_device(features, self.device)
        with torch.autocast(loop.autocast_device, dtype=loop.dtype or torch.float32, enabled=loop.dtype is not None):
            embeddings = loop.wrapped(features)["sentence_embedding"]
        parts = embeddings.float().split(len(batch))
        return parts[0], parts[1], parts[2] if columns == 3 else None, loop.loss_fn(*parts)

    def _backward(self, loop: _Loop, value: Any) -> None:
        import torch

        optimizer, scaler = loop.optimizer, loop.scaler
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(value).backward()
            scaler.unscale_(optimizer)
        else:
            value.backward()
        torch.nn.utils.clip_grad_norm_(loop.model.parameters(), self.args.max_grad_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        loop.scheduler.step()

    def _checkpoint(self, loop: _Loop, directory: Path, result: EpochResult, key: str,
                    meta: dict[str, Any]) -> Path:
        """Save the epoch's checkpoint, with the whole texts' length (for embedding whole chunks)."""
        state = {"optimizer": loop.optimizer.state_dict(), "scheduler": loop.scheduler.state_dict(),
                 "scaler": loop.scaler.state_dict() if loop.scaler is not None else {}} \
            if self.args.save_optimizer_state else None
        loop.model.eval()
        loop.model.max_seq_length = loop.full_length  # saved for embedding whole chunks
        path = self._save(directory, result.epoch, result, key, state, meta)
        loop.model.max_seq_length = loop.train_length
        return path

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
        what = f"{count} triplets"
        if a.recipe == "signals":
            loss, what = "ranking over pairs (in-batch negatives, both ways)", f"{count} pairs ({self._kinds})"
        self.out(f"Fine-tuning {self.model_name} on {what}\n  Epochs: {a.epochs}\n"
                 f"  Batch size: {a.batch_size}\n  Learning rate: {format_lr(a.learning_rate)}\n"
                 f"  Device: {self.device}\n  Loss: {loss}\n  Precision: {self._precision()}{self._budget}")

    def _bar(self, total: int, title: str) -> Any:
        """A bar in a terminal, a line every few seconds elsewhere (an epoch on a CPU takes
        minutes: a log must not look hung); nothing for callers that asked for quiet."""
        from codekin.progress import BarProgress, NullProgress

        return NullProgress() if self.show_progress is False else BarProgress(title, total, unit="batch")
