"""What a training run takes and gives back: triplet texts and the key of their data, the
results of each epoch and of the run, and the error it raises."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from codekin.training.trainer.args import TrainingArguments


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


def data_key(texts: Iterable[tuple[str, ...]], args: TrainingArguments) -> str:
    """Identifies a run's data (triplets, or the signals recipe's pairs) and hyper-parameters:
    a checkpoint only resumes the same run."""
    digest = hashlib.sha256()
    for row in texts:
        for text in row:
            digest.update(text.encode("utf-8", "replace") + b"\0")
        digest.update(b"\1")
    keep = ("epochs", "learning_rate", "batch_size", "recipe", "signals", "loss", "margin", "mnrl_scale",
            "warmup_ratio", "weight_decay", "seed", "max_seq_length", "train_seq_length", "bucket_size")
    digest.update(json.dumps({k: getattr(args, k) for k in keep}, sort_keys=True).encode())
    return digest.hexdigest()[:16]
