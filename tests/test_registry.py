"""Model registry: versions, the active pointer, promote/rollback/prune, corruption detection.

Checkpoints here are plain files written through the same atomic, hashed writer the
trainer uses; no model is needed to test the bookkeeping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codekin.cli import main as cli_main
from codekin.errors import ModelCorruptedError, RegistryError
from codekin.models.checkpoints import verify_checkpoint, write_checkpoint, write_json_atomic
from codekin.models.registry import BASE, ModelRegistry, active_model_path


def add_version(registry: ModelRegistry, parent: str = BASE, epochs: int = 2, status: str = "trained") -> str:
    version = registry.create("default", parent, triplets=100)
    for epoch in range(1, epochs + 1):
        write_checkpoint(version.checkpoints_dir / f"epoch-{epoch}",
                         lambda tmp, e=epoch: (tmp / "model.safetensors").write_bytes(bytes([e]) * 64),
                         {"epoch": epoch})
    registry.seal(version, f"epoch-{epochs}", status=status,
                  metrics={"candidate": {"triplet_accuracy": 0.9, "mrr@10": 0.5, "recall@10": 0.8}})
    return version.id


def test_checkpoint_write_is_atomic_and_hashed(tmp_path: Path):
    target = tmp_path / "epoch-1"
    with pytest.raises(RuntimeError):
        write_checkpoint(target, lambda tmp: (_ for _ in ()).throw(RuntimeError("disk full")), {})
    assert not target.exists() and not list(tmp_path.iterdir())
    manifest = write_checkpoint(target, lambda tmp: (tmp / "w.bin").write_bytes(b"abc"), {"epoch": 1})
    assert set(manifest["files"]) == {"w.bin"} and verify_checkpoint(target) == ""
    (target / "w.bin").write_bytes(b"abd")
    assert verify_checkpoint(target) == "w.bin does not match its sha256"
    (target / "w.bin").unlink()
    assert verify_checkpoint(target) == "w.bin is missing"


def test_json_write_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "active.json"
    write_json_atomic(target, {"active": "v1"})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"active": object()})  # fails half way through the dump
    assert json.loads(target.read_text()) == {"active": "v1"} and [p.name for p in tmp_path.iterdir()] == [
        "active.json"]


def test_versions_promote_and_rollback_chain(tmp_path: Path):
    registry = ModelRegistry(tmp_path)
    assert registry.active_ref() == BASE and active_model_path(tmp_path) is None
    v1 = add_version(registry)
    v2 = add_version(registry, parent=v1)
    assert [v.id for v in registry.versions()] == ["v1", "v2"]
    assert registry.get("v2").manifest["parent"] == "v1"
    assert set(registry.get("v2").manifest["weights"]) == {"checkpoints/epoch-2/model.safetensors"}

    registry.promote(v1)
    registry.promote(v2)
    assert active_model_path(tmp_path) == str(tmp_path / ".codekin/models/v2/checkpoints/epoch-2")
    assert registry.get("v2").status == "promoted"
    assert registry.rollback() == "v1"
    assert registry.rollback() == BASE
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    assert registry.rollback("v2/epoch-1") == "v2/epoch-1"
    assert active_model_path(tmp_path).endswith("v2/checkpoints/epoch-1")


def test_bad_references_say_what_exists(tmp_path: Path):
    registry = ModelRegistry(tmp_path)
    add_version(registry)
    with pytest.raises(RegistryError, match="no model version 'v9'") as info:
        registry.promote("v9")
    assert "known versions: v1" in info.value.hint
    with pytest.raises(RegistryError, match="has no checkpoint epoch-7"):
        registry.promote("v1/epoch-7")
    with pytest.raises(RegistryError, match="cannot read model reference"):
        registry.promote("latest!")
    training = registry.create("default", BASE)
    with pytest.raises(RegistryError, match="no finished checkpoint"):
        registry.promote(training.id)


def test_corrupted_active_model_is_detected(tmp_path: Path):
    registry = ModelRegistry(tmp_path)
    registry.promote(add_version(registry))
    weights = tmp_path / ".codekin/models/v1/checkpoints/epoch-2/model.safetensors"
    weights.write_bytes(b"\0" * 64)
    with pytest.raises(ModelCorruptedError, match="model v1/epoch-2 is corrupted"):
        active_model_path(tmp_path)
    assert active_model_path(tmp_path, verify=False) is not None
    with pytest.raises(ModelCorruptedError):
        registry.promote("v1")
    assert registry.rollback("v1/epoch-1") == "v1/epoch-1"


def test_prune_keeps_newest_and_active(tmp_path: Path):
    registry = ModelRegistry(tmp_path)
    ids = [add_version(registry) for _ in range(4)]
    registry.promote(ids[0])
    running = registry.create("default", BASE)
    (registry.dir / ".tmp-epoch-1-123").mkdir()
    assert registry.prune(keep=1) == ["v2", "v3"]
    assert [v.id for v in registry.versions()] == ["v1", "v4", running.id]
    assert not (registry.dir / ".tmp-epoch-1-123").exists()
    with pytest.raises(RegistryError, match="--keep must be >= 0"):
        registry.prune(-1)


def test_models_cli(tmp_path: Path, capsys):
    registry = ModelRegistry(tmp_path)
    add_version(registry)
    add_version(registry, parent="v1", status="rejected")
    registry.update(registry.get("v2"), reason="MRR@10 0.400 does not beat the active model's 0.500")
    repo = ["--repo", str(tmp_path)]
    assert cli_main(["models", "promote", "v1", *repo]) == 0
    assert capsys.readouterr().out.strip() == "Promoted v1 (was base)."
    assert cli_main(["models", "list", *repo]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["version", "parent", "created", "triplets", "acc", "mrr@10", "recall@10", "status"]
    assert lines[1].split()[:2] == ["base", "-"]
    assert lines[2].startswith("* v1") and lines[2].rstrip().endswith("promoted")
    assert lines[3].startswith("  v1/epoch-1") and lines[3].rstrip().endswith("epoch checkpoint")
    assert "rejected: MRR@10 0.400 does not beat" in lines[4]
    assert cli_main(["models", "list", "--json", *repo]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["active"] == "v1" and [v["version"] for v in payload["versions"]] == ["v1", "v2"]
    assert cli_main(["models", "rollback", *repo]) == 0
    assert capsys.readouterr().out.startswith("Rolled back from v1 to base.")
    assert cli_main(["models", "prune", "--keep", "0", *repo]) == 0
    assert capsys.readouterr().out.strip() == "Removed 2 version(s): v1, v2"
    assert cli_main(["models", "promote", "v7", *repo]) == RegistryError.exit_code
    assert "no model version 'v7'" in capsys.readouterr().err
