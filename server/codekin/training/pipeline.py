"""generate -> train -> evaluate -> promote or reject, one run at a time.

`run_in_child(root, options)` (child.py) is what the CLI and the server call: it starts
`python -m codekin.training.child` at low priority (os.nice) so the language server
stays responsive, streams its lines and returns its PipelineResult. One training at a
time: `.codekin/train.lock` (flock) is shared by every process; a second start fails
with "training already running (pid N since T)".
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.config import TRAINING_MODES, Config
from codekin.errors import CodekinError, TrainingError, TrainingRunningError
from codekin.locks import FileLock, lock_holder
from codekin.models.checkpoints import rewrite_manifest
from codekin.models.registry import BASE, ModelRegistry, ModelVersion
from codekin.state import TRAIN_LOCK, state_path
from codekin.training.data import (
    TrainingData,
    generate_training_data,
    read_triplets_file,
    training_data_text,
)
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.checkpointing import TRAINER_STATE
from codekin.training.trainer.trainer import Trainer

if TYPE_CHECKING:
    from codekin.metrics import MetricsStore
    from codekin.training.evaluation.evaluate import GateDecision

INTERRUPTED_REASON = "interrupted (the next `codekin train` resumes it)"
Out = Callable[[str], None]


def training_running_error(holder: dict[str, Any]) -> CodekinError:
    return TrainingRunningError(
        f"training already running (pid {holder.get('pid', '?')} since {holder.get('since', '?')})",
        "wait for it to finish (`codekin models list` shows the result), or stop that process",
    )


class TrainLock(FileLock):
    """Exclusive flock on .codekin/train.lock holding {"pid", "since"} of the holder."""

    def __init__(self, root: Path) -> None:
        super().__init__(state_path(root, TRAIN_LOCK), training_running_error)


def training_holder(root: Path) -> dict[str, Any] | None:
    """{"pid", "since"} of the running training, or None (for status displays)."""
    return lock_holder(state_path(root, TRAIN_LOCK))


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
    mode: str = "finetune"  # training.mode (the nightly, retrain): auto | adapter | finetune; see _run

    def validate(self) -> PipelineOptions:
        self.args.validate()
        if self.mode not in TRAINING_MODES:
            raise TrainingError(f"training mode must be one of {', '.join(TRAINING_MODES)}, got {self.mode!r}",
                                "set training.mode in .codekin/config.toml")
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
    kind: str = "finetune"  # finetune | adapter (training.mode = "adapter")
    adapter: dict[str, Any] = field(default_factory=dict)  # the query adapter fitted first (mode auto)

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    @property
    def outcome(self) -> str:
        """promoted when the fine-tune or the query adapter fitted in the same run now serves."""
        return "promoted" if self.promoted or self.adapter.get("promoted") else self.status

    def message(self) -> str:
        """The verdict in one line: the fine-tune's reason, after the adapter's when one was fitted."""
        if not self.adapter:
            return self.reason
        return (f"query adapter {self.adapter['version']} {self.adapter['status']}: {self.adapter['reason']}; "
                f"fine-tune {self.version} {self.status}: {self.reason}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "promoted": self.promoted}


# -- the pipeline -------------------------------------------------------------------------
def _interrupted_version(registry: ModelRegistry, parent: str, options: PipelineOptions, out: Out,
                         data_text: str | None) -> ModelVersion | None:
    """The newest interrupted run of the same parent, settings and (if given) data; older ones fail."""
    stale = [v for v in registry.versions() if v.status in ("training", "interrupted")]
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


@dataclass
class _Run:
    """What the steps of one pipeline run share."""

    root: Path
    config: Config
    options: PipelineOptions
    out: Out
    registry: ModelRegistry
    metrics: MetricsStore
    run_id: int
    device: str
    parent: str  # the active ref the candidate starts from
    parent_path: str
    base_model: str
    version: ModelVersion | None = None  # the candidate, once created or resumed


def _run(root: Path, config: Config, options: PipelineOptions, out: Out,
         trainer_factory: Callable[..., Trainer] = Trainer) -> PipelineResult:
    """training.mode: `adapter` fits only the query adapter on the served model; `finetune`
    only fine-tunes; `auto` fits the adapter first, then fine-tunes, and the fine-tune is
    promoted only if it passes the gate and gains more than the adapter (_weigh_adapter)."""
    from codekin.embedding import choose_device
    from codekin.metrics import MetricsStore

    started = time.perf_counter()
    if options.mode == "adapter":
        return _adapter_only(root, config, options, out, started)
    registry = ModelRegistry(root)
    args = options.args
    device = choose_device(args.device if args.device != "auto" else config.model.device)
    parent = registry.active_ref()
    parent_path, base_model = _parent_model(registry, parent, config)
    with MetricsStore(root) as metrics:
        metrics.fail_stale_runs()
        run_id = metrics.start_run(base_version=parent, base_model=base_model, device=device,
                                   epochs=args.epochs, learning_rate=args.learning_rate,
                                   batch_size=args.batch_size, loss=args.loss)
        run = _Run(root, config, options, out, registry, metrics, run_id, device, parent, parent_path, base_model)
        try:
            return _train_and_decide(run, trainer_factory, started)
        except BaseException as exc:
            _record_failure(run, exc)
            raise


def _parent_model(registry: ModelRegistry, parent: str, config: Config) -> tuple[str, str]:
    """(directory, base model name) of the model the candidate is trained from."""
    from codekin.embedding import resolve_model_path

    if parent == BASE:
        return resolve_model_path(config.model.primary), config.model.primary
    base_model = registry.resolve(parent)[0].manifest.get("base_model", config.model.primary)
    return str(registry.model_path(parent)), base_model


def _train_and_decide(run: _Run, trainer_factory: Callable[..., Trainer], started: float) -> PipelineResult:
    from codekin.config import ModelConfig
    from codekin.embedding import load_embedder

    args, parent, base_model, metrics = run.options.args, run.parent, run.base_model, run.metrics
    model_config = ModelConfig(primary=run.parent_path, fallback=run.parent_path, device=run.device,
                               batch_size=args.eval_batch_size, max_tokens=args.max_seq_length,
                               trust_remote_code=run.config.model.trust_remote_code)
    active = load_embedder(model_config)
    adapter = _fit_adapter(run) if run.options.mode == "auto" else {}
    version, data = _version_and_data(run, active)
    metrics.update_run(run.run_id, new_version=version.id, triplets=len(data.train))
    phase(run.out, "training")
    trainer = trainer_factory(run.parent_path, device=run.device, args=args, out=run.out, model_name=base_model
                              if parent == BASE else f"{base_model} ({parent})")
    trained = trainer.train(
        data.train, pairs=data.pairs, checkpoint_dir=version.checkpoints_dir, run=version.id, parent=parent,
        checkpoint_meta={"base_model": base_model},
        on_epoch=lambda e: metrics.record_epoch(run.run_id, e.epoch, e.loss, e.accuracy, e.seconds))
    active_metrics, candidate_metrics, decision = _evaluate(run, version, data, active.model, trainer.model)
    if run.options.mode == "auto":  # the served table's key: `active` loads the model from its path
        decision = _weigh_adapter(run, adapter.get("applies_to") or active.key, decision, active_metrics,
                                  candidate_metrics)
    _drop_trainer_state(version)
    run.registry.seal(version, Path(trained.checkpoint).name, status="trained",
                      dim=int(candidate_metrics.get("dim") or _dimension(trainer.model)),
                      metrics={"active": active_metrics, "candidate": candidate_metrics},
                      train=trained.to_dict())
    if decision.promote:
        run.registry.promote(version.id, decision.reason)
        run.out(f"Promoted {version.id}: {decision.reason}")
    else:
        run.registry.update(version, status="rejected", reason=decision.reason)
        run.out(f"Rejected {version.id} (kept for inspection): {decision.reason}")
    metrics.finish_run(run.run_id, "completed", promoted=int(decision.promote), reason=decision.reason)
    return PipelineResult(run.run_id, version.id, parent, "promoted" if decision.promote else "rejected",
                          decision.reason, run.registry.active_ref(), active_metrics, candidate_metrics,
                          trained.to_dict(), time.perf_counter() - started, adapter=adapter)


def _fit_adapter(run: _Run) -> dict[str, Any]:
    """Mode auto: the query adapter first (training/adapter.py) on the model that answers
    queries, under the key of its vectors table (the one it will move queries for), judged by
    the same gate; {} (and a note) when it cannot be fitted: the fine-tune still runs."""
    from codekin.engine import Engine
    from codekin.training.adapter import run_adapter

    try:
        fitted = run_adapter(run.root, run.config, Engine(run.root, run.config).embedder,
                             run.options.min_improvement, run.options.args.seed, run.out)
    except CodekinError as exc:
        run.out(f"  note: no query adapter this run: {exc.message}")
        return {}
    return fitted.to_dict()


def _adapter_only(root: Path, config: Config, options: PipelineOptions, out: Out, started: float) -> PipelineResult:
    """Mode adapter: the query adapter on the model that answers queries, nothing else."""
    from codekin.engine import Engine
    from codekin.training.adapter import run_adapter

    fitted = run_adapter(root, config, Engine(root, config).embedder, options.min_improvement, options.args.seed,
                         out)
    return PipelineResult(fitted.run_id, fitted.version, fitted.applies_to, fitted.status, fitted.reason,
                          ModelRegistry(root).active_ref(), fitted.active_metrics, fitted.candidate_metrics,
                          {"pairs": fitted.pairs, "seconds": fitted.seconds}, time.perf_counter() - started,
                          kind="adapter")


def _version_and_data(run: _Run, active: Any) -> tuple[ModelVersion, TrainingData]:
    """The interrupted candidate to resume with its stored triplets, else a new version with
    the given (--triplets) or generated ones."""
    options, args = run.options, run.options.args
    given = read_triplets_file(Path(options.triplets_file)) if options.triplets_file else None
    version = run.version = _interrupted_version(run.registry, run.parent, options, run.out,
                                                 training_data_text(given) if given is not None else None)
    if version is not None:
        return version, read_triplets_file(version.path / "triplets.jsonl")
    phase(run.out, "triplets")
    signals = args.signals if args.recipe == "signals" else ()
    data = given or generate_training_data(run.root, run.config, options.count, args.seed, active, run.out, signals)
    version = run.version = run.registry.create(run.base_model, run.parent, args=args.to_dict(),
                                                triplets=len(data.train), eval_triplets=len(data.eval),
                                                device=run.device)
    (version.path / "triplets.jsonl").write_text(training_data_text(data), encoding="utf-8")
    return version, data


def _evaluate(run: _Run, version: ModelVersion, data: TrainingData, active_model: Any,
              candidate_model: Any) -> tuple[dict[str, float], dict[str, float], GateDecision]:
    """Both models through the search users get on the held-out files, recorded and printed,
    and the promotion gate's verdict (evaluation/judge.py)."""
    from codekin.training.judging.judge import held_out_files, judge
    from codekin.training.judging.search import SearchGate

    options, seed = run.options, run.options.args.seed
    phase(run.out, "evaluation")
    held_out = data.held_out or held_out_files(run.root, run.config, seed)
    gate = SearchGate(min_improvement=options.min_improvement, allow_dim_change=options.allow_dim_change)
    judged = judge(run.root, run.config, held_out, seed, (active_model, candidate_model), (run.parent, version.id),
                   gate, data, options.args.eval_batch_size, run.out, prefer_triplets=bool(options.triplets_file))
    run.metrics.record_evals(run.run_id, run.parent, "eval", judged.active)
    run.metrics.record_evals(run.run_id, version.id, "eval", judged.candidate)
    return judged.active, judged.candidate, judged.decision


def _weigh_adapter(run: _Run, key: str, decision: GateDecision, active: dict[str, float],
                   candidate: dict[str, float]) -> GateDecision:
    """The gate between a full fine-tune and the query adapter served on the same model
    (training/judging/search.py weigh_adapter); said in the output when it decides."""
    from codekin.models.adapters import AdapterStore
    from codekin.training.judging.search import weigh_adapter

    store = AdapterStore(run.root)
    pointer = store.active_version() or {}
    if pointer.get("applies_to") != key:
        return decision
    weighed = weigh_adapter(decision, active, candidate, store.manifest(str(pointer.get("version"))).get("metrics"))
    if weighed is not decision:
        run.out(f"  note: query adapter {pointer.get('version')} stays: {weighed.reason.split(';')[0]}")
    return weighed


def _dimension(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def phase(out: Out, name: str) -> None:
    """A line the retrain progress (jobs/retrain.py) turns into a step: triplets, training,
    evaluation, re-embed."""
    out(f"Phase: {name}")


def _record_failure(run: _Run, exc: BaseException) -> None:
    """A failed run in metrics.db, and its candidate marked failed; an interrupted one (Ctrl-C,
    or SIGTERM from a server shutting down) is marked interrupted and the next `codekin train`
    resumes it."""
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    interrupted = isinstance(exc, KeyboardInterrupt)
    if interrupted:
        reason = INTERRUPTED_REASON
    run.metrics.finish_run(run.run_id, "failed", reason=reason)
    if run.version is not None:
        run.registry.update(run.version, status="interrupted" if interrupted else "failed", reason=reason)


def _drop_trainer_state(version: ModelVersion) -> None:
    """Optimizer state only serves a resume; a finished run keeps the weights alone."""
    for name in version.checkpoints():
        path = version.checkpoints_dir / name
        if (path / TRAINER_STATE).is_file():
            (path / TRAINER_STATE).unlink()
            rewrite_manifest(path, {})
