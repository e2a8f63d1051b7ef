"""Retraining on demand or on schedule: the training pipeline in a low-priority child process.

The faces call the LearningLoop they hold (`LearningLoop.retrain(RetrainOptions(...))`);
this module holds what one run needs: its options, the child process and its progress.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekin.config import Config
from codekin.errors import CodekinError
from codekin.progress import ProgressFactory, no_progress
from codekin.state import RUNS_DIR, state_path

log = logging.getLogger(__name__)

Out = Callable[[str], None]


@dataclass
class RetrainOptions:
    """What one run may change (from the `codekin.retrain` command); None keeps the default."""

    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    force: bool = True  # on demand trains even without a new commit; the nightly run passes False

    def describe(self) -> str:
        given = {k: v for k, v in (("epochs", self.epochs), ("learning rate", self.learning_rate),
                                   ("batch size", self.batch_size)) if v is not None}
        return ", ".join(f"{k} {v}" for k, v in given.items()) or "default settings"


def pipeline_options(config: Config, options: RetrainOptions) -> Any:
    """PipelineOptions for one run: the [schedule] section plus the run's own settings."""
    from codekin.training.pipeline import PipelineOptions
    from codekin.training.trainer.args import TrainingArguments

    args = TrainingArguments.from_config(config.training).replace(
        epochs=options.epochs, learning_rate=options.learning_rate, batch_size=options.batch_size,
        device=config.model.device)
    model = config.model
    overrides = {"model": {"primary": model.primary, "fallback": model.fallback, "device": model.device,
                           "backend": model.backend, "max_tokens": model.max_tokens}}
    return PipelineOptions(args=args, count=config.schedule.triplets, triplets_file=config.schedule.triplets_file,
                           min_improvement=config.schedule.min_improvement, config_overrides=overrides,
                           mode=config.training.mode).validate()


def run_training(root: Path, config: Config, options: RetrainOptions, progress: ProgressFactory = no_progress,
                 out: Out = log.info) -> Any:
    """Run the pipeline in a child (nice 10) and wait; its lines go to `out`, epochs to `progress`.

    Returns the PipelineResult; the child's errors come back as CodekinErrors (a second
    training anywhere: TrainingRunningError)."""
    from codekin.training.child import read_child_result, start_training
    from codekin.training.pipeline import training_holder, training_running_error

    pipeline = pipeline_options(config, options)
    holder = training_holder(root)
    if holder is not None:
        raise training_running_error(holder)
    runs = state_path(root, RUNS_DIR)
    runs.mkdir(parents=True, exist_ok=True)
    result_path = runs / f"result-{os.getpid()}-{time.monotonic_ns()}.json"
    epochs = pipeline.args.epochs
    child = start_training(root, pipeline, result_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True, errors="replace")
    # Steps: the triplets, each epoch, the evaluation; each phase and the verdict are noted.
    with progress(f"codekin: retraining ({options.describe()})", retrain_steps(pipeline.mode, epochs)) as bar:
        note = getattr(bar, "note", None) or (lambda message: None)
        note("starting")
        for line in child.stdout or ():  # the child's human output; stdout of the server is the LSP channel
            line = line.rstrip()
            if line:
                out(line)
            step = progress_step(line, epochs)
            if step is not None:
                bar.advance(step[0])
                note(step[1])
        code = child.wait()
    return read_child_result(result_path, code)


def retrain_steps(mode: str, epochs: int) -> int:
    """The steps progress_step counts in a run of training.mode `mode`: the fine-tune's
    training phase, epochs and verdict; the adapter's training phase and verdict."""
    return {"finetune": epochs + 2, "adapter": 2}.get(mode, epochs + 4)


def progress_step(line: str, epochs: int) -> tuple[int, str] | None:
    """(steps done, what to show) for a line of the training child, None for other lines:
    the triplets are done when training starts, then each epoch, then the verdict."""
    if line.startswith("Phase: "):
        name = line[len("Phase: "):]
        return (1, f"training ({epochs} epochs)") if name == "training" else (0, name)
    if line.startswith(("Promoted ", "Rejected ")) or line.startswith("Epoch ") and f"/{epochs}:" in line:
        return 1, line
    if line.startswith("Training epoch "):  # the trainer's progress within an epoch
        return 0, line
    return None


def serve_active_model(root: Path, config: Config, progress: ProgressFactory = no_progress,
                       reembed_now: bool = True) -> dict[str, Any]:
    """After `codekin train`: re-embed the index with the registry's active model when the
    index answers from another one, so search uses the promoted model (as the nightly job
    does). {"vectors": the version whose vectors answer queries, "reembed": summary or None,
    "message": one line for the summary}."""
    from codekin.index.store import IndexStore
    from codekin.jobs.reembed import reembed
    from codekin.models.registry import ModelRegistry
    from codekin.models.serving import version_ref

    store = IndexStore(root)
    active = ModelRegistry(root).active_ref()
    if not store.exists():
        return {"vectors": None, "reembed": None,
                "message": f"No index yet: `codekin index` builds it with {active}"}
    served = version_ref(root, store.state().get("model"))
    if served == active:
        return {"vectors": served, "reembed": None, "message": f"Search answers from {served}'s vectors"}
    if not reembed_now:
        return {"vectors": served, "reembed": None, "message": f"Search still answers from {served}'s vectors; "
                f"run `codekin reembed` to use {active} (a running `codekin serve` does it by itself)"}
    try:
        summary = reembed(root, config, progress=progress)
    except CodekinError as exc:
        return {"vectors": served, "reembed": None, "message": f"Search still answers from {served}'s vectors: "
                f"re-embedding with {active} did not finish ({exc.message}); run `codekin reembed`"}
    return {"vectors": summary.version, "reembed": summary.to_dict(),
            "message": f"Search now answers from {summary.version}'s vectors. {summary.describe()}"}
