"""generate -> train -> evaluate -> promote or reject, one run at a time.

`run_in_child(root, options)` is what the CLI and the server call: it starts
`python -m codekin.training.pipeline` at low priority (os.nice) so the language server
stays responsive, streams its lines and returns its PipelineResult. One training at a
time: `.codekin/train.lock` (flock) is shared by every process; a second start fails
with "training already running (pid N since T)".
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codekin.config import STATE_DIR, Config, load_config
from codekin.errors import DISK_FULL_EXIT, CodekinError, disk_full
from codekin.index.lock import FileLock, lock_holder
from codekin.models.checkpoints import rewrite_manifest
from codekin.models.registry import BASE, ModelRegistry, ModelVersion
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.checkpointing import TRAINER_STATE
from codekin.training.trainer.results import TrainingError, triplet_texts
from codekin.training.trainer.trainer import Trainer

LOCK_FILE = "train.lock"
DISK_FULL_FREE_BYTES = 1 << 20  # below this, a failed write is taken for a full disk
CHILD_NICE = 10
Out = Callable[[str], None]


class TrainingRunningError(CodekinError):
    exit_code = 10


def training_running_error(holder: dict[str, Any]) -> CodekinError:
    return TrainingRunningError(
        f"training already running (pid {holder.get('pid', '?')} since {holder.get('since', '?')})",
        "wait for it to finish (`codekin models list` shows the result), or stop that process",
    )


class TrainLock(FileLock):
    """Exclusive flock on .codekin/train.lock holding {"pid", "since"} of the holder."""

    def __init__(self, root: Path) -> None:
        super().__init__(Path(root) / STATE_DIR / LOCK_FILE, training_running_error)


def training_holder(root: Path) -> dict[str, Any] | None:
    """{"pid", "since"} of the running training, or None (for status displays)."""
    return lock_holder(Path(root) / STATE_DIR / LOCK_FILE)


# -- options, data, result ----------------------------------------------------------------
@dataclass
class PipelineOptions:
    args: TrainingArguments = field(default_factory=TrainingArguments)
    count: int = 1000
    triplets_file: str = ""  # JSONL of triplets (split: train/eval) instead of generating
    min_improvement: float = 0.01  # the MRR@10 gain the candidate needs over the active model
    allow_dim_change: bool = False
    resume: bool = True
    config_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> PipelineOptions:
        self.args.validate()
        if self.count < 1:
            raise TrainingError(f"--count must be >= 1, got {self.count}", "1000 is the default")
        if not 0 <= self.min_improvement < 1:
            raise TrainingError(f"--min-improvement must be in [0, 1), got {self.min_improvement}")
        if self.triplets_file and not Path(self.triplets_file).is_file():
            raise TrainingError(f"no triplets file {self.triplets_file}",
                                "write one with `codekin triplets generate --out FILE`")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "args": self.args.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineOptions:
        return cls(**{**data, "args": TrainingArguments.from_dict(data.get("args", {}))})


@dataclass
class TrainingData:
    train: list[Any]
    eval: list[Any]
    corpus: list[str] = field(default_factory=list)  # extra held-out snippets for retrieval


def _as_dict(item: Any) -> dict[str, Any]:
    if hasattr(item, "to_dict"):
        return item.to_dict()
    if isinstance(item, dict):
        return item
    anchor, positive, negative = triplet_texts(item)
    return {"anchor": anchor, "positive": positive, "negative": negative}


def read_triplets_file(path: Path) -> TrainingData:
    """Triplet dicts (split "train" or "eval"); {"corpus": text} lines add held-out snippets."""
    data = TrainingData([], [])
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if "corpus" in item:
                data.corpus.append(str(item["corpus"]))
                continue
            triplet_texts(item)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"{path}:{number}: not a triplet ({exc.__class__.__name__}: {exc})",
                                "each line needs anchor, positive and negative (and split: train|eval)") from exc
        (data.eval if item.get("split") == "eval" else data.train).append(item)
    return data


def training_data_text(data: TrainingData) -> str:
    lines = [json.dumps({**_as_dict(t), "split": "train"}) for t in data.train]
    lines += [json.dumps({**_as_dict(t), "split": "eval"}) for t in data.eval]
    lines += [json.dumps({"corpus": text}) for text in data.corpus]
    return "\n".join(lines) + "\n"


def generate_training_data(root: Path, config: Config, count: int, seed: int, embedder: Any,
                           out: Out = print) -> TrainingData:
    """Triplets from the repository's own code (PolyglotTripletGenerator), split by file."""
    from codekin.training.mining.triplets import NotEnoughSnippetsError, PolyglotTripletGenerator

    cfg = config.training
    generator = PolyglotTripletGenerator(root, config, embedder=embedder, eval_fraction=cfg.eval_fraction, seed=seed)
    train = generator.generate(count, cfg.beam_ratio, cfg.cross_language_ratio, seed, split="train")
    warnings = list(generator.report.warnings)
    eval_count = max(20, round(count * cfg.eval_fraction / max(1e-9, 1 - cfg.eval_fraction)))
    try:
        held_out = generator.generate(eval_count, cfg.beam_ratio, cfg.cross_language_ratio, seed, split="eval")
    except NotEnoughSnippetsError:  # a small held-out split rarely has C/C++ pairs for the ratios
        held_out = generator.generate(eval_count, 1.0, 0.0, seed, split="eval")
        warnings.append("the held-out split cannot meet the language ratios: evaluating on BEAM-only triplets")
    warnings += generator.report.warnings
    corpus = [s.model_text for s in generator.snippets("eval")]
    for warning in warnings:
        out(f"  warning: {warning}")
    out(f"Generated {len(train)} training and {len(held_out)} held-out triplets "
        f"({len(generator.split_paths()['eval'])} held-out files, {len(corpus)} held-out snippets)")
    return TrainingData(list(train), list(held_out), corpus)


@dataclass
class PipelineResult:
    run_id: int
    version: str
    parent: str
    status: str  # promoted | rejected
    reason: str
    active: str  # the active ref after the run
    active_metrics: dict[str, float] = field(default_factory=dict)
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "promoted": self.promoted}


# -- the pipeline -------------------------------------------------------------------------
def _interrupted_version(registry: ModelRegistry, parent: str, options: PipelineOptions, out: Out,
                         data_text: str | None) -> ModelVersion | None:
    """The newest interrupted run of the same parent, settings and (if given) data; older ones fail."""
    stale = [v for v in registry.versions() if v.status == "training"]
    wanted = {k: v for k, v in options.args.to_dict().items() if k != "device"}
    resumable = None
    for version in reversed(stale):
        stored = version.path / "triplets.jsonl"
        same = (version.manifest.get("parent") == parent and stored.is_file()
                and {k: v for k, v in version.manifest.get("args", {}).items() if k != "device"} == wanted
                and (data_text is None or stored.read_text(encoding="utf-8") == data_text))
        if resumable is None and same and options.resume:
            resumable = version
        else:
            registry.update(version, status="failed", reason="interrupted and not resumed")
    if resumable is not None:
        out(f"Resuming interrupted run {resumable.id} (parent {parent})")
    return resumable


def run_pipeline(root: Path, config: Config, options: PipelineOptions, out: Out = print,
                 lock: bool = True, trainer_factory: Callable[..., Trainer] = Trainer) -> PipelineResult:
    """The whole loop in this process (the child calls this). Holds the train lock unless lock=False.

    `trainer_factory` builds the Trainer (codekin.distributed.torchrun passes a DDP one)."""
    options.validate()
    if lock:
        with TrainLock(root):
            return _run(root, config, options, out, trainer_factory)
    return _run(root, config, options, out, trainer_factory)


def _run(root: Path, config: Config, options: PipelineOptions, out: Out,
         trainer_factory: Callable[..., Trainer] = Trainer) -> PipelineResult:
    from codekin.config import ModelConfig
    from codekin.embedding import choose_device, load_embedder, resolve_model_path
    from codekin.metrics import MetricsStore
    from codekin.training.evaluation.evaluate import (
        CodeSearchEvaluator,
        comparison_table,
        promotion_gate,
    )

    started = time.perf_counter()
    registry = ModelRegistry(root)
    args = options.args
    device = choose_device(args.device if args.device != "auto" else config.model.device)
    parent = registry.active_ref()
    if parent == BASE:
        parent_path, base_model = resolve_model_path(config.model.primary), config.model.primary
    else:
        parent_path = str(registry.model_path(parent))
        base_model = registry.resolve(parent)[0].manifest.get("base_model", config.model.primary)
    with MetricsStore(root) as metrics:
        metrics.fail_stale_runs()
        run_id = metrics.start_run(base_version=parent, base_model=base_model, device=device,
                                   epochs=args.epochs, learning_rate=args.learning_rate,
                                   batch_size=args.batch_size, loss=args.loss)
        version: ModelVersion | None = None
        try:
            model_config = ModelConfig(primary=parent_path, fallback=parent_path, device=device,
                                       batch_size=args.eval_batch_size, max_tokens=args.max_seq_length,
                                       trust_remote_code=config.model.trust_remote_code)
            active = load_embedder(model_config)
            given = read_triplets_file(Path(options.triplets_file)) if options.triplets_file else None
            version = _interrupted_version(registry, parent, options, out,
                                           training_data_text(given) if given is not None else None)
            if version is not None:
                data = read_triplets_file(version.path / "triplets.jsonl")
            else:
                data = given or generate_training_data(root, config, options.count, args.seed, active, out)
                version = registry.create(base_model, parent, args=args.to_dict(), triplets=len(data.train),
                                          eval_triplets=len(data.eval), device=device)
                (version.path / "triplets.jsonl").write_text(training_data_text(data), encoding="utf-8")
            metrics.update_run(run_id, new_version=version.id, triplets=len(data.train))
            trainer = trainer_factory(parent_path, device=device, args=args, out=out, model_name=base_model
                              if parent == BASE else f"{base_model} ({parent})")
            trained = trainer.train(
                data.train, checkpoint_dir=version.checkpoints_dir, run=version.id, parent=parent,
                checkpoint_meta={"base_model": base_model},
                on_epoch=lambda e: metrics.record_epoch(run_id, e.epoch, e.loss, e.accuracy, e.seconds))
            evaluator = CodeSearchEvaluator(data.eval, data.corpus, batch_size=args.eval_batch_size)
            active_metrics = evaluator(active.model)
            candidate_metrics = evaluator(trainer.model)
            metrics.record_evals(run_id, parent, "eval", active_metrics)
            metrics.record_evals(run_id, version.id, "eval", candidate_metrics)
            decision = promotion_gate(active_metrics, candidate_metrics, min_improvement=options.min_improvement,
                                      allow_dim_change=options.allow_dim_change)
            size = evaluator.size
            out(f"Held-out evaluation ({size['triplets']} triplets, {size['queries']} queries, "
                f"{size['corpus']} snippets)")
            out(comparison_table(parent, active_metrics, version.id, candidate_metrics))
            _drop_trainer_state(version)
            registry.seal(version, Path(trained.checkpoint).name, status="trained", dim=int(candidate_metrics["dim"]),
                          metrics={"active": active_metrics, "candidate": candidate_metrics},
                          train=trained.to_dict())
            if decision.promote:
                registry.promote(version.id, decision.reason)
                out(f"Promoted {version.id}: {decision.reason}")
            else:
                registry.update(version, status="rejected", reason=decision.reason)
                out(f"Rejected {version.id} (kept for inspection): {decision.reason}")
            metrics.finish_run(run_id, "completed", promoted=int(decision.promote), reason=decision.reason)
            return PipelineResult(run_id, version.id, parent, "promoted" if decision.promote else "rejected",
                                  decision.reason, registry.active_ref(), active_metrics, candidate_metrics,
                                  trained.to_dict(), time.perf_counter() - started)
        except BaseException as exc:
            reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            if isinstance(exc, KeyboardInterrupt):
                reason = "interrupted (the next `codekin train` resumes it)"
            metrics.finish_run(run_id, "failed", reason=reason)
            if version is not None and not isinstance(exc, KeyboardInterrupt):
                registry.update(version, status="failed", reason=reason)
            raise


def _drop_trainer_state(version: ModelVersion) -> None:
    """Optimizer state only serves a resume; a finished run keeps the weights alone."""
    for name in version.checkpoints():
        path = version.checkpoints_dir / name
        if (path / TRAINER_STATE).is_file():
            (path / TRAINER_STATE).unlink()
            rewrite_manifest(path, {})


# -- the child process --------------------------------------------------------------------
def start_training(root: Path, options: PipelineOptions, result_path: Path, human_to_stderr: bool = False,
                   launch: list[str] | None = None, **popen: Any) -> subprocess.Popen:
    """Start the pipeline in a low-priority child; it writes its result (or error) as JSON.

    `launch` replaces `python -m codekin.training.pipeline` (torchrun for `--gpus N`)."""
    command = (launch or [sys.executable, "-m", "codekin.training.pipeline"]) + [str(root), json.dumps(options.to_dict()),
               str(result_path)] + (["--human-to-stderr"] if human_to_stderr else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, env=env, **popen)


def remove_orphan_results(runs: Path) -> list[str]:
    """Delete result files whose `codekin train` was killed before it read them (the pid in
    the name is gone); without this they pile up in .codekin/runs/."""
    removed = []
    for path in runs.glob("result-*.json"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not _process_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def run_in_child(root: Path, options: PipelineOptions, human_to_stderr: bool = False,
                 launch: list[str] | None = None) -> PipelineResult:
    """Run the pipeline in a child process and wait; its errors come back as CodekinErrors."""
    options.validate()
    holder = training_holder(root)
    if holder is not None:
        raise training_running_error(holder)
    runs = Path(root) / STATE_DIR / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    remove_orphan_results(runs)
    result_path = runs / f"result-{os.getpid()}-{time.monotonic_ns()}.json"
    child = start_training(root, options, result_path, human_to_stderr, launch)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        child.wait()  # the child got the same Ctrl-C and records the interruption
        raise
    return read_child_result(result_path, code)


def read_child_result(result_path: Path, code: int) -> PipelineResult:
    """The PipelineResult a training child wrote (and remove the file), or its error re-raised."""
    if not result_path.is_file():
        if code == DISK_FULL_EXIT:  # the child could not even write its result
            raise disk_full_error("the training process could not write its result")
        raise TrainingError(f"the training process ended with exit code {code} and no result",
                            "run it again: it resumes from the last good checkpoint")
    payload = json.loads(result_path.read_text(encoding="utf-8"))
    result_path.unlink()
    if "error" in payload:
        error = CodekinError(payload["error"], payload.get("hint", ""))
        error.exit_code = int(payload.get("exit_code", 1))
        raise error
    return PipelineResult(**{k: v for k, v in payload.items() if k != "promoted"})


def _child_main(argv: list[str]) -> int:
    root, options_json, result_path = Path(argv[0]), argv[1], Path(argv[2])
    human_to_stderr = "--human-to-stderr" in argv[3:]
    os.nice(CHILD_NICE)
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the language server

    def out(line: str) -> None:
        print(line, file=sys.stderr if human_to_stderr else sys.stdout, flush=True)

    try:
        options = PipelineOptions.from_dict(json.loads(options_json))
        config = load_config(root, options.config_overrides)
        payload = run_pipeline(root, config, options, out).to_dict()
        code = 0
    except CodekinError as exc:
        payload = {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        code = exc.exit_code
    except Exception as exc:  # only a full disk is answered here; anything else keeps its traceback
        if not _disk_is_full(root, exc):
            raise
        error = disk_full_error(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        payload = {"error": error.message, "hint": error.hint, "exit_code": DISK_FULL_EXIT}
        code = DISK_FULL_EXIT
    try:
        result_path.write_text(json.dumps(payload), encoding="utf-8")
    except OSError:
        if code != DISK_FULL_EXIT:
            raise
        result_path.unlink(missing_ok=True)  # the parent reads the exit code instead
    return code


def disk_full_error(detail: str) -> CodekinError:
    error = CodekinError(f"the disk is full (no space left on device): {detail}",
                         "free some space and run `codekin train` again: it resumes from the last good checkpoint; "
                         "the active model is unchanged")
    error.exit_code = DISK_FULL_EXIT
    return error


def _disk_is_full(root: Path, exc: BaseException) -> bool:
    """ENOSPC (also wrapped by safetensors or SQLite), or any write error while the state
    directory's file system has (almost) no space left (SQLite then says "disk I/O error")."""
    if disk_full(exc) or "database or disk is full" in str(exc):
        return True
    try:
        stat = os.statvfs(Path(root) / STATE_DIR)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < DISK_FULL_FREE_BYTES


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
