"""Training arguments: one defaulted dataclass shared by the CLI, the pipeline and the scheduler."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from codekin.config import DEVICES, RECIPES, SIGNAL_KINDS, TRIPLET_LOSSES, TrainingConfig
from codekin.errors import ConfigError

LOSSES = TRIPLET_LOSSES
_DEFAULTS = TrainingConfig()  # the recipe's defaults live in config.py ([training]), once
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "fp8")
SWITCHES = ("auto", "on", "off")
COMPILE_MODES = ("parts", "layers")  # see codekin.embedding.torch_encode.compile_layers


@dataclass
class TrainingArguments:
    epochs: int = _DEFAULTS.epochs
    learning_rate: float = _DEFAULTS.learning_rate
    batch_size: int = _DEFAULTS.batch_size
    recipe: str = _DEFAULTS.recipe  # signals (training/trainer/recipe.py) | triplets (the seed's, with `loss`)
    signals: list[str] = dataclasses.field(default_factory=lambda: list(_DEFAULTS.signals))  # the signals recipe's
    loss: str = _DEFAULTS.loss  # the triplets recipe: triplet (with margin) | mnrl (in-batch + hard negatives)
    margin: float = 0.3  # triplet margin on cosine distance (1 - cos)
    mnrl_scale: float = 20.0  # inverse temperature of MultipleNegativesRankingLoss
    batch_by_file: bool = _DEFAULTS.batch_by_file  # the signals recipe: each batch's rows from few files
    max_steps: int = _DEFAULTS.max_steps  # steps of the whole run, all epochs; 0 = auto (see Trainer._step_budget)
    warmup_ratio: float = 0.1  # share of the steps with a linear learning-rate warmup
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 13
    device: str = "auto"  # auto | cuda | mps | cpu
    precision: str = "auto"  # auto: fp8 for big models on fp8 GPUs (training/trainer/fp8.py), else bf16 on CUDA
    #                          (fp16 on old GPUs) and on CPUs with native bf16
    gradient_checkpointing: str = "auto"  # auto: on when the step would not fit the GPU
    max_seq_length: int = 256  # what the trained model embeds (saved with it)
    train_seq_length: int = 0  # tokens a training text keeps; 0 = auto: 128 on a CPU, max_seq_length on a GPU
    eval_batch_size: int = 64
    bucket_size: int = 32  # batches sorted by length together (less padding), then shuffled
    compile: str = "auto"  # torch.compile inside each transformer block: auto = on CUDA
    compile_mode: str = "layers"  # layers: whole blocks | parts: MLP + norms of each block
    save_optimizer_state: bool = True  # needed for an exact resume; dropped when a run completes

    def validate(self) -> TrainingArguments:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}", "pass --epochs 1 or more")
        if self.batch_size < 2:
            raise ConfigError(f"batch size must be >= 2, got {self.batch_size}", "pass --batch-size 16")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning rate must be between 0 and 1, got {self.learning_rate}",
                              "typical fine-tuning rates are 1e-5 to 5e-5")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        unknown = [kind for kind in self.signals if kind not in SIGNAL_KINDS]
        if unknown or not self.signals:
            raise ConfigError(f"signals must be some of {', '.join(SIGNAL_KINDS)}, got {self.signals!r}")
        if self.margin < 0 or self.margin > 2:
            raise ConfigError(f"margin must be between 0 and 2 (a cosine distance), got {self.margin}",
                              "0.3 is the default")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.gradient_checkpointing not in SWITCHES:
            raise ConfigError(f"gradient_checkpointing must be one of {', '.join(SWITCHES)}, "
                              f"got {self.gradient_checkpointing!r}")
        if self.compile not in SWITCHES:
            raise ConfigError(f"compile must be one of {', '.join(SWITCHES)}, got {self.compile!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        if self.max_steps < 0:
            raise ConfigError(f"max_steps must be 0 (auto) or more, got {self.max_steps}")
        if self.train_seq_length and self.train_seq_length < 8:
            raise ConfigError(f"train_seq_length must be 0 (auto) or >= 8, got {self.train_seq_length}")
        if self.max_seq_length < 8 or self.eval_batch_size < 1 or self.bucket_size < 1:
            raise ConfigError("max_seq_length must be >= 8, eval_batch_size and bucket_size >= 1")
        return self

    def replace(self, **changes: Any) -> TrainingArguments:
        """A copy with the given fields changed; None values keep the current ones."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, training: TrainingConfig) -> TrainingArguments:
        """The run's arguments as the [training] section sets them."""
        return cls(epochs=training.epochs, learning_rate=training.learning_rate, batch_size=training.batch_size,
                   recipe=training.recipe, signals=list(training.signals), loss=training.loss,
                   batch_by_file=training.batch_by_file, max_steps=training.max_steps,
                   seed=training.seed).validate()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingArguments:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()
