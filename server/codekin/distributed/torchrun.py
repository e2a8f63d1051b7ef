"""`codekin train --gpus N`: the training pipeline under torchrun, one process per device.

    codekin train --gpus N -> python -m torch.distributed.run --standalone --nproc-per-node N
                              -m codekin.distributed.torchrun ROOT OPTIONS RESULT
    rank 0: the whole pipeline (lock, triplets, registry, metrics, evaluation, promotion)
            with a DistributedTrainer; when training starts it sends the job to the others
    rank k: receives the job, trains its share of every batch, exits after the last epoch

Batches: `--batch-size` is per device; the effective batch is N times that. Each global
batch (the single-device Trainer's own shuffled, length-bucketed batch of the effective
size) is dealt round-robin to the N processes, and DDP averages the gradients, so with
the triplet loss a run on N devices takes the same steps as one device with the
effective batch (the learning rate is used as given, never rescaled; both are printed).
With `mnrl` the in-batch negatives come from each process's own share.

Checkpoints, resume, evaluation and promotion are the single-device ones: only rank 0
writes (a barrier follows), every rank resumes from the same checkpoint. When the
model does not fit one card (weights + grads + AdamW > 85 % of its memory) FSDP2 shards
it across the devices instead; rank 0 then gathers the full weights to save them, and
optimizer state is not kept (a resume restarts AdamW's moments at the saved epoch).
Backends: nccl on CUDA, gloo on the CPU (`--device cpu`, how the launch path is tested).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codekin.embedding.torch_encode import parameter_count
from codekin.errors import CodekinError, DistributedError
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.checkpointing import CHECKPOINT_PREFIX
from codekin.training.trainer.results import EpochResult, TrainResult, triplet_texts
from codekin.training.trainer.trainer import Trainer

STRATEGIES = ("auto", "ddp", "fsdp")
FIT_SHARE = 0.85  # of one card's memory the unsharded training state may take


def launch_command(processes: int, strategy: str = "auto") -> list[str]:
    """torchrun (as `python -m torch.distributed.run`, the same interpreter) + this module."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "codekin.distributed.torchrun", f"--strategy={strategy}"]


def check_launch(gpus: int, device: str, strategy: str) -> str:
    """The device the processes will use; DistributedError when N of them cannot run here."""
    if gpus < 1:
        raise DistributedError(f"--gpus must be >= 1, got {gpus}", "pass the number of GPUs to train on")
    if strategy not in STRATEGIES:
        raise DistributedError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if device == "cpu":
        return "cpu"  # N CPU processes on gloo: the launch path without GPUs
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device in ("auto", "cuda") and available >= gpus:
        return "cuda"
    if device == "mps":
        raise DistributedError("--gpus needs CUDA GPUs; mps trains on one device", "drop --gpus")
    raise DistributedError(f"--gpus {gpus} needs {gpus} CUDA GPUs, this machine has {available}",
                           f"pass --gpus {available}" if available else
                           "drop --gpus, or add --device cpu to run the launch path on CPU processes (gloo)")


def effective_arguments(args: TrainingArguments, processes: int) -> TrainingArguments:
    """Per-device batch -> the effective (global) batch the trainer's schedule is built on."""
    return args.replace(batch_size=args.batch_size * processes)


def needs_sharding(model: Any, total_bytes: int) -> bool:
    """True when fp32 weights + grads + AdamW state (16 B/param) would not fit one card."""
    params = parameter_count(model)
    return params * 16 > FIT_SHARE * total_bytes


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def _silent(line: str) -> None:
    return None


class DistributedTrainer(Trainer):
    """A Trainer that runs as one rank of a torchrun group (DDP or FSDP2)."""

    def __init__(self, model: Any, device: str = "auto", args: TrainingArguments | None = None,
                 out: Any = print, show_progress: bool | None = None, model_name: str = "",
                 strategy: str = "auto") -> None:
        dist = _dist()
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.source = str(model) if isinstance(model, str | Path) else ""
        self.strategy = strategy
        self.sharded = False
        self._plain: Any = None  # rank 0 under FSDP: an unsharded copy that saves the gathered weights
        super().__init__(model, device, args, out if self.rank == 0 else _silent,
                         show_progress if self.rank == 0 else False, model_name)

    # -- the job rank 0 hands to the others ------------------------------------------------------
    def train(self, triplets: Sequence[Any], epochs: int | None = None, learning_rate: float | None = None,
              batch_size: int | None = None, margin: float | None = None, loss: str | None = None, *,
              pairs: Sequence[Any] = (), checkpoint_dir: Path | None = None, run: str = "candidate",
              parent: str = "base", checkpoint_meta: dict[str, Any] | None = None,
              on_epoch: Any = None) -> TrainResult:
        from codekin.training.pairs.batches import TextPair

        texts = [triplet_texts(t) for t in triplets]
        pairs = [p if isinstance(p, TextPair) else TextPair.from_dict(p) for p in pairs]
        if self.rank == 0:
            job = {"model": self.source, "model_name": self.model_name, "device": self.device,
                   "args": self.args.to_dict(), "texts": texts, "strategy": self.strategy,
                   "pairs": [p.to_dict() for p in pairs],
                   "kwargs": {"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size,
                              "margin": margin, "loss": loss, "run": run, "parent": parent,
                              "checkpoint_meta": checkpoint_meta,
                              "checkpoint_dir": str(checkpoint_dir) if checkpoint_dir else None}}
            send_job(job)
        self.sharded = self._choose_sharding()
        if self.sharded:
            self.args = self.args.replace(save_optimizer_state=False)
        result = super().train(texts, epochs, learning_rate, batch_size, margin, loss, pairs=pairs,
                               checkpoint_dir=checkpoint_dir, run=run, parent=parent,
                               checkpoint_meta=checkpoint_meta, on_epoch=on_epoch)
        if self.sharded and self.rank == 0 and result.checkpoint:
            from codekin.training.trainer.model import load_model

            self.model = load_model(result.checkpoint, self.device, self.args.max_seq_length)  # for evaluation
        _dist().barrier()
        return result

    def _choose_sharding(self) -> bool:
        if self.strategy != "auto":
            return self.strategy == "fsdp"
        if self.device != "cuda":
            return False
        import torch

        return needs_sharding(self.model, torch.cuda.get_device_properties(torch.device("cuda")).total_memory)

    # -- Trainer hooks ---------------------------------------------------------------------------
    def _wrap_model(self, model: Any) -> Any:
        if self.sharded:
            return self._shard(model)
        import torch
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.cuda.current_device()] if self.device == "cuda" else None
        # find_unused_parameters: a BERT pooler runs but feeds no loss
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def _shard(self, model: Any) -> Any:
        from torch.distributed.fsdp import fully_shard

        if self.rank == 0:
            from codekin.training.trainer.model import load_model

            self._plain = load_model(self.source, "cpu", self.args.max_seq_length) if self.source else None
        from codekin.embedding.torch_encode import transformer_layers

        for layer in transformer_layers(model) or []:
            fully_shard(layer)
        fully_shard(model)
        return model

    def _batches(self, lengths: Sequence[int], epoch: int) -> list[list[int]]:
        """This rank's round-robin share of each global batch (never empty: DDP needs every rank)."""
        return [batch[self.rank::self.world] or batch[-1:] for batch in super()._batches(lengths, epoch)]

    def _epoch_totals(self, total_loss: Any, correct: Any, seen: float) -> tuple[Any, Any, float]:
        import torch

        totals = torch.tensor([float(total_loss), float(correct), float(seen)], dtype=torch.float64,
                              device=self.device if self.device == "cuda" else "cpu")
        _dist().all_reduce(totals)
        return float(totals[0]), float(totals[1]), float(totals[2])

    def _use_checkpointing(self) -> bool:
        per_device = self.args
        self.args = per_device.replace(batch_size=max(2, per_device.batch_size // self.world))
        try:
            return super()._use_checkpointing()  # the activation estimate is per device
        finally:
            self.args = per_device

    def _resume(self, directory: Path, key: str, run: str, parent: str) -> tuple[int, dict[str, Any] | None]:
        """Rank 0 checks (and removes bad) checkpoints first; then the others load the same one."""
        found: tuple[int, dict[str, Any] | None] = (0, None)
        if self.rank == 0:
            found = super()._resume(directory, key, run, parent)
        _dist().barrier()
        if self.rank != 0:
            found = super()._resume(directory, key, run, parent)
        return found

    def _save(self, directory: Path, epoch: int, result: EpochResult, key: str, state: dict[str, Any] | None,
              meta: dict[str, Any]) -> Path:
        meta = {**meta, "distributed": {"processes": self.world, "strategy": "fsdp" if self.sharded else "ddp",
                                        "per_device_batch": self.args.batch_size // self.world,
                                        "effective_batch": self.args.batch_size}}
        if self.sharded:
            self._save_sharded(directory, epoch, result, key, meta)
        elif self.rank == 0:
            super()._save(directory, epoch, result, key, state, meta)
        _dist().barrier()
        return directory / f"{CHECKPOINT_PREFIX}{epoch}"

    def _save_sharded(self, directory: Path, epoch: int, result: EpochResult, key: str, meta: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.rank != 0:
            return
        if self._plain is None:
            raise DistributedError("FSDP needs the model loaded from a path to save checkpoints")
        self._plain.load_state_dict(full)
        sharded, self.model = self.model, self._plain
        try:
            super()._save(directory, epoch, result, key, None, meta)
        finally:
            self.model = sharded

    def _header(self, count: int) -> None:
        super()._header(count)
        per_device = self.args.batch_size // self.world
        backend = _dist().get_backend()
        self.out(f"  Distributed: {'FSDP' if self.sharded else 'DDP'} over {self.world} processes ({backend})\n"
                 f"  Effective batch: {self.args.batch_size} ({per_device} per process x {self.world})\n"
                 f"  Effective learning rate: {self.args.learning_rate:g} (as given, not rescaled)")


def send_job(job: dict[str, Any] | None) -> None:
    """Rank 0 -> every rank: the training job, or None (nothing to train: stop)."""
    _dist().broadcast_object_list([job], src=0)


def receive_job() -> dict[str, Any] | None:
    box: list[Any] = [None]
    _dist().broadcast_object_list(box, src=0)
    return box[0]


def _follow(rank: int, world: int) -> int:
    """Ranks > 0: wait for the job, train its share, report one line on stderr."""
    job = receive_job()
    if job is None:
        return 0
    kwargs = dict(job["kwargs"])
    directory = kwargs.pop("checkpoint_dir")
    trainer = DistributedTrainer(job["model"], job["device"], TrainingArguments.from_dict(job["args"]),
                                 model_name=job["model_name"], strategy=job["strategy"])
    result = trainer.train(job["texts"], pairs=job.get("pairs", ()), checkpoint_dir=Path(directory) if directory
                           else None, **kwargs)
    steps = sum(e.steps for e in result.epochs)
    print(f"rank {rank}/{world}: trained {steps} steps on its share of {len(job['texts'])} triplets",
          file=sys.stderr, flush=True)
    return 0


def _lead(root: Path, options_json: str, result_path: Path, human_to_stderr: bool, strategy: str) -> int:
    """Rank 0: the pipeline of `python -m codekin.training.child`, with a DistributedTrainer."""
    from codekin.config import load_config
    from codekin.training.pipeline import PipelineOptions, run_pipeline

    sent: list[bool] = []

    def factory(*args: Any, **kwargs: Any) -> DistributedTrainer:
        sent.append(True)  # its train() sends the job
        kwargs["strategy"] = strategy
        return DistributedTrainer(*args, **kwargs)

    def out(line: str) -> None:
        print(line, file=sys.stderr if human_to_stderr else sys.stdout, flush=True)

    try:
        options = PipelineOptions.from_dict(json.loads(options_json))
        config = load_config(root, options.config_overrides)
        payload = run_pipeline(root, config, options, out, trainer_factory=factory).to_dict()
        code = 0
    except CodekinError as exc:
        payload = {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        code = exc.exit_code
    finally:
        if not sent:
            send_job(None)  # failed before training: release the other ranks
    result_path.write_text(json.dumps(payload), encoding="utf-8")
    return code


def main(argv: list[str]) -> int:
    """Entry point of each torchrun process: [--strategy=S] ROOT OPTIONS_JSON RESULT [--human-to-stderr]."""
    strategy = next((a.split("=", 1)[1] for a in argv if a.startswith("--strategy=")), "auto")
    positional = [a for a in argv if not a.startswith("--")]
    root, options_json, result_path = Path(positional[0]), positional[1], Path(positional[2])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    os.nice(10)  # as the single-process child: the language server stays responsive
    import torch

    device = json.loads(options_json).get("args", {}).get("device", "auto")
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    torch.set_num_threads(max(1, ((os.cpu_count() or 2) - 1) // world))
    dist = _dist()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    try:
        if rank == 0:
            return _lead(root, options_json, result_path, "--human-to-stderr" in argv, strategy)
        return _follow(rank, world)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
