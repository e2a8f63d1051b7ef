"""metrics.db: runs, epochs, evaluations, embedding jobs; killed runs become failed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codekin.metrics import MetricsStore


def test_run_epochs_and_evals_round_trip(tmp_path: Path):
    with MetricsStore(tmp_path) as metrics:
        run = metrics.start_run(base_version="base", base_model="default", device="cpu", epochs=3,
                                learning_rate=1e-5, batch_size=16, loss="triplet")
        metrics.update_run(run, new_version="v1", triplets=1000)
        for epoch, loss in enumerate((0.3, 0.2, 0.1), 1):
            metrics.record_epoch(run, epoch, loss, 0.8 + epoch / 100, 12.5)
        metrics.record_evals(run, "v1", "eval", {"mrr@10": 0.61, "triplet_accuracy": 0.9, "dim": 384.0,
                                                 "note": "skipped", "flag": True})
        metrics.finish_run(run, "completed", promoted=1, reason="MRR@10 0.5 -> 0.61")
    with MetricsStore(tmp_path) as metrics:
        (row,) = metrics.runs()
        assert (row["status"], row["new_version"], row["promoted"], row["triplets"]) == ("completed", "v1", 1, 1000)
        assert row["finished_at"] >= row["started_at"] and row["seconds"] >= 0
        assert [e["loss"] for e in metrics.epochs(run)] == [0.3, 0.2, 0.1]
        assert {e["metric"]: e["value"] for e in metrics.evals(run)} == {
            "mrr@10": 0.61, "triplet_accuracy": 0.9, "dim": 384.0}
        assert metrics.evals(model_version="v0") == []
        with pytest.raises(ValueError, match="unknown metrics fields: colour"):
            metrics.update_run(run, colour="red")


def test_stale_running_run_is_marked_failed(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with MetricsStore(tmp_path) as metrics:
        live = metrics.start_run(base_version="base")
        killed = metrics.start_run(base_version="base")
        metrics.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(dead.stdout), killed))
        assert metrics.fail_stale_runs() == 1
        assert metrics.run(killed)["status"] == "failed" and "interrupted" in metrics.run(killed)["reason"]
        assert metrics.run(live)["status"] == "running"


def test_embedding_jobs(tmp_path: Path):
    with MetricsStore(tmp_path) as metrics:
        job = metrics.start_embedding_job(model_version="v2", model_key="minilm_abcd", device="cpu")
        metrics.finish_embedding_job(job, "completed", chunks=1200)
        (row,) = metrics.embedding_jobs()
        assert row["status"] == "completed" and row["chunks"] == 1200 and row["embeddings_per_second"] > 0
