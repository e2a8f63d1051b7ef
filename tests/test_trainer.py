"""Trainer, evaluation, promotion gate, pipeline and lock: a tiny random-init BERT for mechanics,
the real MiniLM for one quality check."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from codekin.cli import main as cli_main
from codekin.config import load_config
from codekin.errors import TrainingRunningError
from codekin.metrics import MetricsStore
from codekin.models.checkpoints import verify_checkpoint
from codekin.models.registry import ModelRegistry, active_model_path
from codekin.training.child import start_training
from codekin.training.evaluation.evaluate import (
    CodeSearchEvaluator,
    TripletEvaluator,
    promotion_gate,
    retrieval_metrics,
)
from codekin.training.pipeline import PipelineOptions, TrainLock, run_pipeline
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.results import format_lr
from codekin.training.trainer.trainer import Trainer
from tests.tiny_model import build_tiny_model

FAMILIES = {
    "genserver": ["use GenServer", "def handle_call(request, from, state)", "def handle_cast(msg, state)",
                  "{:reply, reply, state}", "GenServer.start_link(__MODULE__, opts)"],
    "supervisor": ["use Supervisor", "Supervisor.init(children, strategy: :one_for_one)",
                   "max_restarts: 3", "def child_spec(opts)", "restart: :transient"],
    "nif": ["static ERL_NIF_TERM", "enif_make_tuple2(env, atom_ok, result)", "ErlNifFunc nif_funcs[]",
            "enif_get_int(env, argv[0], &value)", "ERL_NIF_INIT(Elixir.Native, nif_funcs"],
    "ecto": ["use Ecto.Schema", "schema \"orders\" do", "field :total, :decimal", "def changeset(order, attrs)",
             "validate_required([:total])"],
}


def snippet(family: str, rng: random.Random) -> str:
    lines = rng.sample(FAMILIES[family], 3)
    name = "".join(rng.choice("abcdefghijklmnop") for _ in range(6))
    return f"defmodule Kin.{name.title()} do\n  " + "\n  ".join(lines) + f"\n  # {name}\nend"


def make_triplets(count: int, seed: int, split: str = "train", swap: bool = False) -> list[dict]:
    rng = random.Random(seed)
    names = list(FAMILIES)
    out = []
    for i in range(count):
        family = rng.choice(names)
        other = rng.choice([n for n in names if n != family])
        anchor, positive, negative = snippet(family, rng), snippet(family, rng), snippet(other, rng)
        if swap:
            positive, negative = negative, positive
        out.append({"anchor": anchor, "positive": positive, "negative": negative, "split": split,
                    "positive_kind": "doc" if i % 3 == 0 else "behaviour"})
    return out


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


# Two shared cores: OpenMP spinning on both makes a tiny model much slower.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def tiny_args(**changes) -> TrainingArguments:
    return TrainingArguments(learning_rate=2e-3, batch_size=16, epochs=3, device="cpu", max_seq_length=96,
                             warmup_ratio=0.0, recipe="triplets").replace(**changes)  # signals: test_training_recipe


def test_format_lr_and_argument_errors():
    assert format_lr(1e-5) == "1.0e-5" and format_lr(2.5e-4) == "2.5e-4"
    with pytest.raises(Exception, match="loss must be one of"):
        TrainingArguments(loss="hinge").validate()
    with pytest.raises(Exception, match="batch size must be >= 2"):
        TrainingArguments(batch_size=1).validate()
    with pytest.raises(Exception, match=r"max_steps must be 0 \(auto\) or more, got -1"):
        TrainingArguments(max_steps=-1).validate()


def test_loss_decreases_and_checkpoints_every_epoch(tiny_model_dir: Path, tmp_path: Path):
    lines: list[str] = []
    trainer = Trainer(str(tiny_model_dir), device="cpu", args=tiny_args(), out=lines.append, show_progress=False)
    result = trainer.train(make_triplets(160, 1), checkpoint_dir=tmp_path / "ck", run="v1", parent="base")
    losses = [e.loss for e in result.epochs]
    assert len(losses) == 3 and losses[-1] < losses[0] * 0.8, losses
    assert result.epochs[-1].accuracy >= result.epochs[0].accuracy
    assert lines[0].startswith(f"Fine-tuning {tiny_model_dir} on 160 triplets\n")
    header = "\n".join(lines)
    assert "  Epochs: 3\n  Batch size: 16\n  Learning rate: 2.0e-3\n  Device: cpu" in header
    epoch_lines = [line for line in lines if line.startswith("Epoch ")]
    assert epoch_lines[0].startswith("Epoch 1/3: loss=") and ", accuracy=" in epoch_lines[0]
    assert lines[-1] == "Fine-tuning complete"
    for epoch in (1, 2, 3):
        assert verify_checkpoint(tmp_path / "ck" / f"epoch-{epoch}") == ""
    manifest = json.loads((tmp_path / "ck" / "epoch-3" / "manifest.json").read_text())
    assert manifest["triplets"] == 160 and manifest["epoch"] == 3 and "model.safetensors" in manifest["files"]


def test_mnrl_loss_trains(tiny_model_dir: Path):
    trainer = Trainer(str(tiny_model_dir), device="cpu", args=tiny_args(loss="mnrl", epochs=2), out=lambda s: None,
                      show_progress=False)
    result = trainer.train(make_triplets(96, 2))
    assert result.epochs[-1].loss < result.epochs[0].loss


def test_corrupted_checkpoint_is_removed_and_retrained(tiny_model_dir: Path, tmp_path: Path):
    triplets = make_triplets(64, 3)
    args = tiny_args(epochs=2)
    Trainer(str(tiny_model_dir), "cpu", args, out=lambda s: None, show_progress=False).train(
        triplets, checkpoint_dir=tmp_path / "ck", run="v2", parent="v1")
    weights = tmp_path / "ck" / "epoch-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64] + b"\0" * 64)
    lines: list[str] = []
    result = Trainer(str(tiny_model_dir), "cpu", args, out=lines.append, show_progress=False).train(
        triplets, checkpoint_dir=tmp_path / "ck", run="v2", parent="v1")
    assert "checkpoint corrupted: removed, retraining from v2/epoch-1" in lines
    assert any("model.safetensors does not match its sha256" in line for line in lines)
    assert "Resuming from v2/epoch-1" in lines
    assert [e.epoch for e in result.epochs] == [2]
    assert verify_checkpoint(tmp_path / "ck" / "epoch-2") == ""


def test_unloadable_checkpoint_falls_back_to_parent(tiny_model_dir: Path, tmp_path: Path):
    from codekin.models.checkpoints import rewrite_manifest

    triplets = make_triplets(32, 4)
    args = tiny_args(epochs=1)
    Trainer(str(tiny_model_dir), "cpu", args, out=lambda s: None, show_progress=False).train(
        triplets, checkpoint_dir=tmp_path / "ck", run="v3", parent="v2")
    (tmp_path / "ck" / "epoch-1" / "modules.json").write_text("[{broken", encoding="utf-8")
    rewrite_manifest(tmp_path / "ck" / "epoch-1", {})  # hashes match: only loading can tell
    lines: list[str] = []
    result = Trainer(str(tiny_model_dir), "cpu", args, out=lines.append, show_progress=False).train(
        triplets, checkpoint_dir=tmp_path / "ck", run="v3", parent="v2")
    assert "checkpoint corrupted: removed, retraining from v2" in lines
    assert [e.epoch for e in result.epochs] == [1]


def test_evaluators_and_retrieval_metrics(tiny_model_dir: Path):
    queries = np.eye(3, dtype=np.float32)
    corpus = np.array([[0, 1, 0], [1, 0, 0], [0.9, 0.1, 0]], dtype=np.float32)
    mrr, recall = retrieval_metrics(queries[:2], corpus, [{2}, {0}], [set(), set()], k=2)
    assert mrr == pytest.approx((1 / 2 + 1) / 2) and recall == 1.0
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    eval_triplets = make_triplets(30, 5, split="eval")
    metrics = CodeSearchEvaluator(eval_triplets, corpus=["extra snippet"])(model)
    assert 0 <= metrics["triplet_accuracy"] <= 1 and 0 <= metrics["mrr@10"] <= 1
    assert metrics["doc_to_code_queries"] == 10 and metrics["same_pattern_queries"] == 20 and metrics["dim"] == 32
    assert TripletEvaluator(eval_triplets)(model)["triplet_accuracy"] == pytest.approx(metrics["triplet_accuracy"])


def test_promotion_gate_rules():
    active = {"triplet_accuracy": 0.80, "mrr@10": 0.50, "dim": 384}
    assert promotion_gate(active, {"triplet_accuracy": 0.85, "mrr@10": 0.56, "dim": 384}).promote
    worse = promotion_gate(active, {"triplet_accuracy": 0.85, "mrr@10": 0.45, "dim": 384})
    assert not worse.promote and "does not beat" in worse.reason
    small = promotion_gate(active, {"triplet_accuracy": 0.85, "mrr@10": 0.505, "dim": 384}, min_improvement=0.01)
    assert not small.promote
    dropped = promotion_gate(active, {"triplet_accuracy": 0.79, "mrr@10": 0.70, "dim": 384})
    assert not dropped.promote and "triplet accuracy fell" in dropped.reason
    resized = {"triplet_accuracy": 0.9, "mrr@10": 0.7, "dim": 768}
    assert "--allow-dim-change" in promotion_gate(active, resized).reason
    assert promotion_gate(active, resized, allow_dim_change=True).promote
    assert not promotion_gate(active, {"triplet_accuracy": math.nan, "mrr@10": math.nan, "dim": 384}).promote


def _options(tmp_path: Path, model: Path, train: list[dict], held_out: list[dict], **changes) -> PipelineOptions:
    path = write_jsonl(tmp_path / f"triplets-{time.monotonic_ns()}.jsonl", train + held_out)
    return PipelineOptions(args=tiny_args(**changes), triplets_file=str(path),
                           config_overrides={"model": {"primary": str(model), "fallback": str(model)}})


def _config(root: Path, model: Path):
    return load_config(root, {"model": {"primary": str(model), "fallback": str(model), "device": "cpu"}})


@pytest.mark.slow
def test_pipeline_promotes_a_better_model_and_rejects_a_worse_one(tiny_model_dir: Path, repo_factory, tmp_path, capsys):
    root = repo_factory({"README.md": "x\n"})
    held_out = make_triplets(40, 11, split="eval")
    lines: list[str] = []
    good = run_pipeline(root, _config(root, tiny_model_dir),
                        _options(tmp_path, tiny_model_dir, make_triplets(160, 12), held_out), lines.append)
    assert good.promoted and good.version == "v1" and good.active == "v1", good.reason
    assert good.candidate_metrics["mrr@10"] > good.active_metrics["mrr@10"]
    assert any(line.startswith("Held-out evaluation") for line in lines)
    assert active_model_path(root) == str(root / ".codekin/models/v1/checkpoints/epoch-3")
    assert not (root / ".codekin/models/v1/checkpoints/epoch-3/trainer_state.pt").exists()

    bad = run_pipeline(root, _config(root, tiny_model_dir),
                       _options(tmp_path, tiny_model_dir, make_triplets(160, 13, swap=True), held_out, epochs=2),
                       lines.append)
    assert not bad.promoted and bad.status == "rejected" and bad.parent == "v1"
    assert ModelRegistry(root).active_ref() == "v1"
    assert ModelRegistry(root).get("v2").manifest["reason"] == bad.reason
    with MetricsStore(root) as metrics:
        runs = metrics.runs()
        assert [(r["new_version"], r["status"], r["promoted"]) for r in runs] == [
            ("v2", "completed", 0), ("v1", "completed", 1)]
        assert len(metrics.epochs(runs[1]["id"])) == 3
        versions = {e["model_version"] for e in metrics.evals(runs[0]["id"])}
        assert versions == {"v1", "v2"}

    assert cli_main(["models", "list", "--repo", str(root)]) == 0
    listing = capsys.readouterr().out
    assert "* v1" in listing and "v2/epoch-1" in listing and "rejected: " in listing
    assert cli_main(["models", "rollback", "--repo", str(root)]) == 0
    assert "Rolled back from v1 to base" in capsys.readouterr().out
    assert active_model_path(root) is None
    assert cli_main(["models", "promote", "v2/epoch-1", "--repo", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"previous": "base", "active": "v2/epoch-1"}


def test_failed_run_is_recorded_as_failed(tiny_model_dir: Path, repo_factory, tmp_path):
    root = repo_factory({"README.md": "x\n"})
    options = _options(tmp_path, tiny_model_dir, make_triplets(8, 1), [], learning_rate=0.5)
    options.args.margin = 0.3
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"anchor": "a", "positive": "b"}])
    options.triplets_file = str(bad)
    with pytest.raises(Exception, match="not a triplet"):
        run_pipeline(root, _config(root, tiny_model_dir), options, lambda s: None)
    with MetricsStore(root) as metrics:
        (run,) = metrics.runs()
        assert run["status"] == "failed" and "not a triplet" in run["reason"]


def test_second_training_is_refused_while_one_runs(tiny_model_dir: Path, repo_factory, tmp_path, capsys):
    root = repo_factory({"README.md": "x\n"})
    options = _options(tmp_path, tiny_model_dir, make_triplets(8, 1), [])
    with TrainLock(root):
        with pytest.raises(TrainingRunningError, match=rf"training already running \(pid {os.getpid()} since "):
            run_pipeline(root, _config(root, tiny_model_dir), options, lambda s: None)
        code = cli_main(["train", "--repo", str(root), "--triplets", options.triplets_file, "--device", "cpu"])
        assert code == TrainingRunningError.exit_code
        assert f"training already running (pid {os.getpid()} since" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(tiny_model_dir: Path, repo_factory, tmp_path):
    root = repo_factory({"README.md": "x\n"})
    options = _options(tmp_path, tiny_model_dir, make_triplets(320, 21), make_triplets(20, 22, "eval"), epochs=3)
    log = (tmp_path / "child.log").open("w")
    child = start_training(root, options, tmp_path / "result.json", stdout=log, stderr=log)
    first = root / ".codekin/models/v1/checkpoints/epoch-1"
    deadline = time.monotonic() + 240
    while not first.is_dir() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.is_dir(), (tmp_path / "child.log").read_text()
    child.send_signal(signal.SIGKILL)  # mid-epoch 2
    child.wait()
    assert ModelRegistry(root).get("v1").status == "training"

    lines: list[str] = []
    result = run_pipeline(root, _config(root, tiny_model_dir), options, lines.append)
    assert "Resuming interrupted run v1 (parent base)" in lines
    resumed = next(line for line in lines if line.startswith("Resuming from v1/epoch-"))
    done = int(resumed.rsplit("-", 1)[1])
    assert [e["epoch"] for e in result.train["epochs"]] == list(range(done + 1, 4))
    assert result.version == "v1" and ModelRegistry(root).get("v1").final_checkpoint == "epoch-3"
    with MetricsStore(root) as metrics:
        statuses = [(r["new_version"], r["status"]) for r in metrics.runs()]
        assert statuses == [("v1", "completed"), ("v1", "failed")]
        assert "interrupted" in metrics.runs()[1]["reason"]


@pytest.mark.slow
@pytest.mark.storm
def test_minilm_fine_tune_raises_held_out_accuracy(examples_repo: Path, minilm):
    """The real default model on examples/: a short CPU fine-tune must beat the base on held-out files."""
    from codekin.training.data import generate_training_data
    from codekin.training.evaluation.evaluate import CodeSearchEvaluator

    config = load_config(examples_repo, {"model": {"device": "cpu"}})
    # 128 triplets: with 64 (and ~20 held-out triplets) accuracy moved by one triplet either way
    data = generate_training_data(examples_repo, config, count=128, seed=13, embedder=None, out=lambda s: None)
    assert len(data.train) == 128 and len(data.eval) >= 20
    evaluator = CodeSearchEvaluator(data.eval, data.corpus, batch_size=32)
    before = evaluator(minilm.model)
    trainer = Trainer("default", device="cpu", args=TrainingArguments(epochs=1, batch_size=16, learning_rate=1e-4,
                                                                      max_seq_length=128, seed=13),
                      out=lambda s: None, show_progress=False)
    trainer.train(data.train)
    after = evaluator(trainer.model)
    assert after["triplet_accuracy"] > before["triplet_accuracy"], (before, after)
    assert after["mrr@10"] > before["mrr@10"], (before, after)  # what the promotion gate decides on
