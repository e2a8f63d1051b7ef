"""Model versions under `.codekin/models/`: manifests, the active pointer, promote/rollback/prune.

    .codekin/models/
      active.json               {"ref": "v3/epoch-3", "history": [...earlier refs], "updated_at": ...}
      v3/manifest.json          version, base_model, parent, status, created_at, triplets, metrics,
                                reason, dim, checkpoint (final), weights (sha256 of its files)
      v3/checkpoints/epoch-N/   a sentence-transformers model + its own hashed manifest
      v3/triplets.jsonl         the training data (a killed run resumes on the same triplets)

A ref is a version ("v3", its final checkpoint) or one epoch checkpoint ("v3/epoch-1").
"base" is the configured model itself (no fine-tuned version active).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekin.config import STATE_DIR
from codekin.errors import CodekinError
from codekin.models.checkpoints import (
    MANIFEST,
    file_hashes,
    read_manifest,
    remove_tree,
    verify_checkpoint,
    write_json_atomic,
)

BASE = "base"
ACTIVE_FILE = "active.json"
STATUSES = ("training", "trained", "promoted", "rejected", "failed", "interrupted")
_VERSION = re.compile(r"^v(\d+)$")
_REF = re.compile(r"^(v\d+)(?:/(epoch-\d+))?$")


class RegistryError(CodekinError):
    exit_code = 9


class ModelCorruptedError(RegistryError):
    pass


@dataclass
class ModelVersion:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def number(self) -> int:
        return int(self.id[1:])

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "failed"))

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoints(self) -> list[str]:
        """Epoch checkpoint names, oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        names = [p.name for p in self.checkpoints_dir.glob("epoch-*") if p.is_dir() and p.name[6:].isdigit()]
        return sorted(names, key=lambda n: int(n[6:]))

    @property
    def final_checkpoint(self) -> str:
        return str(self.manifest.get("checkpoint") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.id, "path": str(self.path), "checkpoints": self.checkpoints(), **self.manifest}


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / STATE_DIR / "models"

    # -- versions --------------------------------------------------------------------------
    def versions(self) -> list[ModelVersion]:
        found = []
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                if path.is_dir() and _VERSION.match(path.name) and (path / MANIFEST).is_file():
                    try:
                        found.append(ModelVersion(path.name, path, read_manifest(path)))
                    except (OSError, json.JSONDecodeError):
                        found.append(ModelVersion(path.name, path, {"status": "failed",
                                                                    "reason": "manifest unreadable"}))
        return sorted(found, key=lambda v: v.number)

    def get(self, version: str) -> ModelVersion:
        path = self.dir / version
        if not _VERSION.match(version) or not (path / MANIFEST).is_file():
            known = ", ".join(v.id for v in self.versions()) or "none yet"
            raise RegistryError(f"no model version {version!r}", f"known versions: {known} (see `codekin models list`)")
        return ModelVersion(version, path, read_manifest(path))

    def create(self, base_model: str, parent: str, **fields: Any) -> ModelVersion:
        self.dir.mkdir(parents=True, exist_ok=True)
        number = max((v.number for v in self.versions()), default=0) + 1
        while True:
            path = self.dir / f"v{number}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                number += 1
        manifest = {"version": path.name, "base_model": base_model, "parent": parent, "status": "training",
                    "created_at": time.time(), "triplets": 0, "metrics": {}, "reason": "", "checkpoint": "",
                    "weights": {}, **fields}
        write_json_atomic(path / MANIFEST, manifest)
        return ModelVersion(path.name, path, manifest)

    def update(self, version: ModelVersion, **fields: Any) -> ModelVersion:
        version.manifest.update(fields)
        write_json_atomic(version.path / MANIFEST, version.manifest)
        return version

    def seal(self, version: ModelVersion, checkpoint: str, **fields: Any) -> ModelVersion:
        """Record the final checkpoint and the sha256 of its files in the version manifest."""
        directory = version.checkpoints_dir / checkpoint
        weights = {f"checkpoints/{checkpoint}/{rel}": digest for rel, digest in file_hashes(directory).items()}
        return self.update(version, checkpoint=checkpoint, weights=weights, **fields)

    # -- refs ------------------------------------------------------------------------------
    def resolve(self, ref: str) -> tuple[ModelVersion, str]:
        """'v3' -> (v3, its final checkpoint); 'v3/epoch-1' -> (v3, 'epoch-1')."""
        match = _REF.match(ref.strip())
        if not match:
            raise RegistryError(f"cannot read model reference {ref!r}",
                                "use a version like v3, an epoch checkpoint like v3/epoch-1, or base")
        version = self.get(match[1])
        checkpoint = match[2] or version.final_checkpoint
        if not checkpoint:
            raise RegistryError(f"{version.id} has no finished checkpoint (status {version.status})",
                                f"pick one of its epoch checkpoints: {', '.join(version.checkpoints()) or 'none'}")
        if checkpoint not in version.checkpoints():
            raise RegistryError(f"{version.id} has no checkpoint {checkpoint}",
                                f"its checkpoints: {', '.join(version.checkpoints()) or 'none'}")
        return version, checkpoint

    def model_path(self, ref: str, verify: bool = True) -> Path:
        version, checkpoint = self.resolve(ref)
        path = version.checkpoints_dir / checkpoint
        if verify:
            problem = verify_checkpoint(path)
            if problem:
                raise ModelCorruptedError(f"model {version.id}/{checkpoint} is corrupted: {problem}",
                                          "roll back to another version with `codekin models rollback`")
        return path

    # -- the active pointer ----------------------------------------------------------------
    def _pointer(self) -> dict[str, Any]:
        path = self.dir / ACTIVE_FILE
        if not path.is_file():
            return {"ref": BASE, "history": []}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{path} is unreadable ({exc})",
                                "delete it to return to the base model, or `codekin models promote VERSION`") from exc

    def active_ref(self) -> str:
        return str(self._pointer().get("ref") or BASE)

    def active_version(self) -> ModelVersion | None:
        ref = self.active_ref()
        return None if ref == BASE else self.resolve(ref)[0]

    def _set_active(self, ref: str) -> str:
        pointer = self._pointer()
        previous = str(pointer.get("ref") or BASE)
        history = list(pointer.get("history", []))
        if previous != ref:
            history.append(previous)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / ACTIVE_FILE, {"ref": ref, "history": history[-50:], "updated_at": time.time()})
        return ref

    def activate(self, ref: str) -> str:
        """Make `ref` active after checking its hashes (ModelCorruptedError if they do not match)."""
        if ref == BASE:
            return self._set_active(BASE)
        version, checkpoint = self.resolve(ref)
        self.model_path(f"{version.id}/{checkpoint}")
        canonical = version.id if checkpoint == version.final_checkpoint else f"{version.id}/{checkpoint}"
        return self._set_active(canonical)

    def promote(self, ref: str, reason: str = "promoted by hand") -> str:
        version, _ = self.resolve(ref)
        active = self.activate(ref)
        if version.status != "promoted":
            self.update(version, status="promoted", reason=reason, promoted_at=time.time())
        return active

    def rollback(self, ref: str | None = None) -> str:
        """Back to `ref`, or (none given) to the model that was active before the current one."""
        current = self.active_ref()
        if ref is not None:
            return self.activate(ref)
        history = list(self._pointer().get("history", []))
        while history:
            candidate = history.pop()
            if candidate == current:
                continue
            try:
                target = self.activate(candidate) if candidate != BASE else self._set_active(BASE)
            except RegistryError:
                continue  # that version was pruned or is damaged: go further back
            pointer = self._pointer()
            pointer["history"] = history
            write_json_atomic(self.dir / ACTIVE_FILE, pointer)
            return target
        if current == BASE:
            raise RegistryError("nothing to roll back: the base model is active",
                                "`codekin models list` shows the versions you can promote")
        return self._set_active(BASE)

    def prune(self, keep: int) -> list[str]:
        """Remove all but the `keep` newest versions; never the active one or a run in progress."""
        if keep < 0:
            raise RegistryError(f"--keep must be >= 0, got {keep}")
        active = self.active_ref().split("/")[0]
        finished = [v for v in self.versions() if v.status != "training" and v.id != active]
        doomed = finished[:max(0, len(finished) - keep)]
        for version in doomed:
            remove_tree(version.path)
        for leftover in self.dir.glob(".*"):  # temporary dirs of interrupted writes
            if leftover.is_dir():
                remove_tree(leftover)
        return [v.id for v in doomed]


def active_model_path(root: Path, verify: bool = True) -> str | None:
    """The directory of the active fine-tuned model, or None when the configured base model is active.

    With `verify`, the files are checked against their sha256 first (ModelCorruptedError if not).
    """
    registry = ModelRegistry(root)
    ref = registry.active_ref()
    if ref == BASE:
        return None
    return str(registry.model_path(ref, verify=verify))
