"""SIGKILL at random moments of `codekin index`, `codekin sync` and `codekin train`, then a
restart: nothing is lost, nothing is mixed, nothing is left behind (see harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import trial_count
from tests.reliability.harness import CrashBench

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def _report(trials) -> str:
    return "\n".join(f"{t.operation} #{t.number}: {t.problems} kill={t.kill}" for t in trials if not t.ok)


@pytest.mark.timeout(300)
def test_killed_index_restarts_to_a_fresh_index(crash_bench: CrashBench, crash_xdg: Path):
    trials = [crash_bench.index_trial() for _ in range(trial_count())]
    assert all(t.ok for t in trials), _report(trials)
    assert any(t.kill.killed for t in trials), "no kill landed while the indexer ran"


@pytest.mark.timeout(300)
def test_killed_sync_loses_no_queued_path(crash_bench: CrashBench, crash_xdg: Path):
    trials = [crash_bench.sync_trial() for _ in range(trial_count())]
    assert all(t.ok for t in trials), _report(trials)
    assert any(t.kill.killed for t in trials), "no kill landed while the sync ran"


@pytest.mark.timeout(300)
@pytest.mark.storm
@pytest.mark.parametrize("phase", ["epoch", "checkpoint"])
def test_killed_training_keeps_a_loadable_active_model(crash_bench: CrashBench, crash_xdg: Path, phase: str):
    trials = [crash_bench.train_trial(phase) for _ in range(trial_count())]
    assert all(t.ok for t in trials), _report(trials)
    if phase == "checkpoint":
        assert any(t.kill.triggered for t in trials), "no checkpoint write was caught in time"


@pytest.mark.timeout(120)
def test_checkpoint_temporaries_of_a_killed_run_are_removed_on_resume(crash_bench: CrashBench, tmp_path: Path):
    """Regression: a SIGKILL inside write_checkpoint left `.tmp-epoch-N-<pid>` behind for good."""
    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer
    from tests.reliability.harness import training_triplets

    checkpoints = tmp_path / "checkpoints"
    for name in (".tmp-epoch-1-99999", ".old-epoch-1-99998"):
        (checkpoints / name).mkdir(parents=True)
        (checkpoints / name / "model.safetensors").write_bytes(b"half written")
    args = TrainingArguments(epochs=1, batch_size=16, learning_rate=2e-3, device="cpu", max_seq_length=96)
    Trainer(str(crash_bench.model_dir), "cpu", args, out=lambda s: None, show_progress=False).train(
        training_triplets(32, 0, seed=1), checkpoint_dir=checkpoints, run="v1", parent="base")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-1"]


def test_result_files_of_killed_train_commands_are_removed(tmp_path: Path):
    """Regression: a `codekin train` killed after its child wrote the result, before it read it,
    left `.codekin/runs/result-<pid>-<ns>.json` behind for good."""
    import os
    import subprocess
    import sys

    from codekin.training.child import remove_orphan_results

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / f"result-{dead.stdout.strip()}-1.json").write_text("{}")
    (runs / f"result-{os.getpid()}-2.json").write_text("{}")  # a live command's: kept
    assert remove_orphan_results(runs) == [f"result-{dead.stdout.strip()}-1.json"]
    assert [p.name for p in runs.iterdir()] == [f"result-{os.getpid()}-2.json"]


@pytest.mark.timeout(300)
def test_killed_promotion_and_reembed_keep_one_vector_space(crash_bench: CrashBench, crash_xdg: Path):
    from tests.reliability.reembed_trials import reembed_trial

    trials = [reembed_trial(crash_bench) for _ in range(trial_count())]
    assert all(t.ok for t in trials), _report(trials)
