"""Damaged or foreign state under `.codekin/` never crashes a command or chooses the model
(issue 19, items 5, 6, 7 and 9). Each fault is made on disk in a real git repository and
the real `codekin` command is run: it exits with a message naming the file and the command
that fixes it (never a traceback), and that command then works.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.indexer import Indexer
from codekin.metrics import MetricsStore
from codekin.models.checkpoints import write_checkpoint
from codekin.models.registry import BASE, ModelRegistry
from codekin.models.serving import serving_model
from tests.conftest import git, make_repo

pytestmark = pytest.mark.reliability


def codekin(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codekin.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def clean_error(done: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "codekin: error:" in done.stderr, done.stderr
    for name in names:
        assert name in done.stderr, (name, done.stderr)


def add_version(registry: ModelRegistry) -> str:
    version = registry.create("default", BASE, triplets=10)
    write_checkpoint(version.checkpoints_dir / "epoch-1", lambda tmp: (tmp / "model.safetensors").write_bytes(
        bytes(range(256)) * 64), {"epoch": 1})
    registry.seal(version, "epoch-1", status="trained")
    return version.id


@pytest.fixture
def promoted(tmp_path: Path) -> Path:
    """A repository whose registry (made here, on this machine) has v1 active."""
    root = make_repo(tmp_path / "repo", {"lib/a.ex": "defmodule A do\n  def a, do: 1\nend\n"})
    registry = ModelRegistry(root)
    registry.promote(add_version(registry))
    return root


def test_promote_base_is_accepted(promoted: Path):
    done = codekin(promoted, "models", "promote", "base", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"previous": "v1", "active": BASE}
    assert ModelRegistry(promoted).active_ref() == BASE


@pytest.mark.parametrize("content", [b"\xff\xfe{\"ref\": \"v1\"}", b"[]"], ids=["not-utf8", "a-list"])
def test_damaged_active_pointer_names_the_file_and_rollback_base_repairs_it(promoted: Path, content: bytes):
    (promoted / ".codekin/models/active.json").write_bytes(content)
    clean_error(codekin(promoted, "models", "list"), 9, "active.json is damaged", "codekin models rollback base")
    assert codekin(promoted, "models", "rollback", "base").returncode == 0
    listed = codekin(promoted, "models", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["active"] == BASE


@pytest.mark.parametrize(("which", "content"), [("version", b'{"version": "v1", "sta'), ("checkpoint", b"\xff\x00\xfe")],
                         ids=["version-truncated", "checkpoint-not-utf8"])
def test_damaged_manifest_names_the_file(promoted: Path, which: str, content: bytes):
    codekin(promoted, "models", "rollback", "base")
    manifest = promoted / ".codekin/models/v1" / ("manifest.json" if which == "version"
                                                  else "checkpoints/epoch-1/manifest.json")
    manifest.write_bytes(content)
    clean_error(codekin(promoted, "models", "promote", "v1"), 9, str(manifest.relative_to(promoted)),
                "codekin models rollback")
    listed = codekin(promoted, "models", "list")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr


def test_truncated_weights_are_never_served(promoted: Path, caplog: pytest.LogCaptureFixture):
    config = load_config(promoted).model
    weights = promoted / ".codekin/models/v1/checkpoints/epoch-1/model.safetensors"
    assert serving_model(promoted, config).primary == str(weights.parent)  # verified, and the check recorded
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    with caplog.at_level(logging.WARNING):
        served = serving_model(promoted, config)
    assert served.primary == config.primary  # the configured model, not the damaged weights
    assert "model.safetensors does not match its sha256" in caplog.text and "codekin models rollback" in caplog.text
    clean_error(codekin(promoted, "models", "promote", "v1"), 9, "does not match its sha256")


def test_registry_tracked_by_git_never_chooses_the_model(promoted: Path, caplog: pytest.LogCaptureFixture):
    """A repository that commits .codekin/models/ (weights and all) cannot make codekin embed with them."""
    git(promoted, "add", "-f", ".codekin/models")
    git(promoted, "commit", "-q", "-m", "ship a model")
    with caplog.at_level(logging.WARNING):
        assert serving_model(promoted, load_config(promoted).model).primary == load_config(promoted).model.primary
    assert "git tracks files under .codekin/models" in caplog.text
    listed = codekin(promoted, "models", "list", "--json")
    assert json.loads(listed.stdout)["active"] == BASE and "git tracks" in listed.stderr


@pytest.mark.parametrize("machine", ["f" * 32, None], ids=["another-machine", "no-machine"])
def test_registry_from_another_machine_never_chooses_the_model(promoted: Path, machine: str | None):
    """The same files, untracked (a copied tree or tarball), written on another machine or by an
    older tool: ignored with a warning until a version is promoted here."""
    pointer_path = promoted / ".codekin/models/active.json"
    pointer = json.loads(pointer_path.read_text(encoding="utf-8"))
    assert pointer.pop("machine")  # this machine's, as written by the promotion here
    pointer_path.write_text(json.dumps({**pointer, **({"machine": machine} if machine else {})}), encoding="utf-8")
    listed = codekin(promoted, "models", "list", "--json")
    assert json.loads(listed.stdout)["active"] == BASE and "not written on this machine" in listed.stderr
    assert codekin(promoted, "models", "promote", "v1").returncode == 0
    mine = codekin(promoted, "models", "list", "--json")
    assert json.loads(mine.stdout)["active"] == "v1" and "not written" not in mine.stderr


def test_damaged_metrics_db_is_moved_aside(promoted: Path):
    metrics = promoted / ".codekin/metrics.db"
    metrics.write_bytes(b"SQLite format 3\x00" + os.urandom(3000))
    done = codekin(promoted, "dashboard", "--out", str(promoted / "d.html"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "metrics.db was damaged" in done.stderr and "started a new one" in done.stderr
    assert list(metrics.parent.glob("metrics.db.damaged-*"))
    again = codekin(promoted, "dashboard", "--out", str(promoted / "d.html"))
    assert again.returncode == 0 and "damaged" not in again.stderr, again.stderr


def test_metrics_db_of_an_unsupported_format_is_moved_aside(promoted: Path):
    """A scribbled schema-format field makes SQLite say "unsupported file format" (an
    OperationalError, found by benchmarks/reliability_state.py): damage too, not a lock."""
    with MetricsStore(promoted) as metrics:
        metrics.start_run(base_version="base")
    path = promoted / ".codekin/metrics.db"
    data = bytearray(path.read_bytes())
    data[44:48] = (9).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    done = codekin(promoted, "dashboard", "--out", str(promoted / "d.html"))
    assert done.returncode == 0 and "unsupported file format" in done.stderr and "moved it" in done.stderr, done.stderr


def test_metrics_text_that_is_not_utf8_is_read(promoted: Path):
    """Scribbled bytes that pass SQLite's quick_check but land in a text column (found by
    benchmarks/reliability_state.py): read with replacement characters, not a traceback."""
    with MetricsStore(promoted) as metrics:
        metrics.start_run(base_version="base", reason="fine")
    db = sqlite3.connect(promoted / ".codekin/metrics.db")
    db.execute("UPDATE runs SET reason = CAST(X'41a0ff42' AS TEXT)")
    db.commit()
    db.close()
    done = codekin(promoted, "dashboard", "--out", str(promoted / "d.html"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_damaged_state_json_is_named_and_repaired_by_index(tmp_path: Path, minilm):
    root = make_repo(tmp_path / "repo", {"lib/a.ex": "defmodule A do\n  def add(a, b), do: a + b\nend\n"})
    Indexer(root, load_config(root), embedder=minilm).run()
    state = root / ".codekin/state.json"
    state.write_bytes(b'{"active_key": "\xff\xfe"}')
    clean_error(codekin(root, "status"), 6, "state.json is damaged: not UTF-8", "codekin index")
    state.write_bytes(b'{"history": {}}')  # an object, but not a state: no active_key
    clean_error(codekin(root, "status"), 6, "state.json is damaged: its active_key", "codekin index")
    state.write_bytes(b"[]")
    clean_error(codekin(root, "status"), 6, "state.json is damaged: a JSON list", "codekin index")
    repaired = codekin(root, "index")
    assert repaired.returncode == 0 and "Traceback" not in repaired.stderr, repaired.stderr
    assert "moved it to state.json.damaged-" in repaired.stderr and "0 new embeddings" in repaired.stdout
    status = codekin(root, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["indexed"], status.stderr


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_a_killed_registry_write_are_cleaned(promoted: Path):
    """A rollback SIGKILLed mid-write leaves `.active.json.<pid>.tmp`: the next rollback/promote
    removes it, `models prune` removes every such file; a live writer's file is left alone."""
    models = promoted / ".codekin/models"
    killed = models / f".active.json.{dead_pid()}.tmp"
    killed.write_text('{"ref": "v1", "hi', encoding="utf-8")
    live = models / f".active.json.{os.getppid()}.tmp"  # a process that is alive: not ours to remove
    live.write_text("{}", encoding="utf-8")
    assert codekin(promoted, "models", "rollback", "base").returncode == 0
    assert not killed.exists() and live.exists()
    live.unlink()
    leftovers = [models / f".verified.json.{dead_pid()}.tmp", models / f"v1/.manifest.json.{dead_pid()}.tmp"]
    for path in leftovers:
        path.write_text("{", encoding="utf-8")
    done = codekin(promoted, "models", "prune", "--keep", "5")
    assert done.returncode == 0, done.stderr
    assert not any(path.exists() for path in leftovers)
    assert sorted(p.name for p in models.iterdir()) == ["active.json", "v1", "verified.json"]


def test_manifests_with_fields_of_the_wrong_type_are_listed_as_damaged(promoted: Path):
    """The right JSON shape, the wrong field types: each version is named as damaged with the
    fix, the others still listed, in `models list` and in the dashboard (never a traceback)."""
    registry = ModelRegistry(promoted)
    wrong = {"v2": {"metrics": []}, "v3": {"created_at": "yesterday"}, "v4": {"metrics": {"candidate": [0.5]}}}
    for version, fields in wrong.items():
        assert add_version(registry) == version
        path = promoted / f".codekin/models/{version}/manifest.json"
        path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **fields}), encoding="utf-8")
    listed = codekin(promoted, "models", "list", "--json")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    by_id = {v["version"]: v for v in json.loads(listed.stdout)["versions"]}
    assert by_id["v1"]["status"] == "promoted" and by_id["v1"]["active"]
    for version, why in [("v2", "'metrics' is a JSON list where an object belongs"),
                         ("v3", "'created_at' is a string where a number belongs"),
                         ("v4", "'metrics.candidate' is a JSON list where an object belongs")]:
        assert by_id[version]["status"] == "failed"
        assert f".codekin/models/{version}/manifest.json is damaged: its field {why}" in by_id[version]["reason"]
        assert f"deleting .codekin/models/{version} drops it" in by_id[version]["reason"]
    human = codekin(promoted, "models", "list")
    assert human.returncode == 0 and "failed: .codekin/models/v3/manifest.json is damaged" in human.stdout, human.stderr
    page = promoted / "d.html"
    done = codekin(promoted, "dashboard", "--out", str(page))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "v4/manifest.json is damaged: its field &#x27;metrics.candidate&#x27;" in page.read_text(encoding="utf-8")
