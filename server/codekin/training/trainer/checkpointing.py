"""The epoch checkpoints of a training run: find them, resume from the newest good one
(removing corrupted ones), save one atomically with the optimizer's state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from codekin.errors import ModelLoadError
from codekin.models.checkpoints import (
    read_manifest,
    remove_stale_temporaries,
    remove_tree,
    verify_checkpoint,
    write_checkpoint,
)
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.model import load_model, quiet_transformers
from codekin.training.trainer.results import EpochResult

TRAINER_STATE = "trainer_state.pt"
CHECKPOINT_PREFIX = "epoch-"


class EpochCheckpoints:
    """The checkpoint steps of `Trainer` (a distributed launch overrides `_resume` and `_save`)."""

    args: TrainingArguments
    device: str
    model: Any
    out: Callable[[str], None]

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
