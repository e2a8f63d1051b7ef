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

import hashlib
import logging
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekin import git
from codekin.atomic import remove_stale_json_temporaries, write_json_atomic
from codekin.config import user_config_path
from codekin.errors import ModelCorruptedError, RegistryError, RollbackRefused
from codekin.models.checkpoints import (
    MANIFEST,
    damage,
    file_hashes,
    read_json_object,
    remove_tree,
    verify_checkpoint_cached,
)
from codekin.models.manifests import read_version_manifest
from codekin.state import MODELS_DIR, STATE_DIR, state_path
from codekin.workspace import ensure_state_dir

BASE = "base"
ACTIVE_FILE = "active.json"
VERIFIED_FILE = "verified.json"  # size+mtime of checkpoint files whose sha256 last matched
STATUSES = ("training", "trained", "promoted", "rejected", "failed", "interrupted")
_VERSION = re.compile(r"^v(\d+)$")
_REF = re.compile(r"^(v\d+)(?:/(epoch-\d+))?$")


log = logging.getLogger(__name__)
_WARNED: set[tuple[str, str]] = set()


MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def machine_id() -> str:
    """This machine and user, as active.json records them, so that a registry that came with a
    clone or a copied tree is not taken for one made here: a hash of the system's machine-id
    and the user id, else of the host name, else a random id kept in the user's config directory."""
    for path in MACHINE_ID_FILES:
        try:
            system = path.read_text(encoding="ascii").strip()
        except (OSError, ValueError):
            continue
        if system:
            return hashlib.sha256(f"codekin|{system}|{os.getuid()}".encode()).hexdigest()[:32]
    host = socket.gethostname()  # a container without machine-id: its host name lasts as long as it
    if host and host != "localhost":
        return hashlib.sha256(f"codekin|host|{host}|{os.getuid()}".encode()).hexdigest()[:32]
    return _stored_machine_id()


def _stored_machine_id() -> str:
    path = user_config_path().parent / "machine-id"
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        pass
    made = secrets.token_hex(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="ascii") as handle:
            handle.write(made + "\n")
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        pass  # a read-only home: nothing fine-tuned is trusted, the configured model serves
    return made


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
        self.dir = state_path(self.root, MODELS_DIR)

    # -- versions --------------------------------------------------------------------------
    def versions(self) -> list[ModelVersion]:
        found = []
        if self.dir.is_dir():
            for path in self.dir.iterdir():
                if path.is_dir() and _VERSION.match(path.name) and (path / MANIFEST).is_file():
                    try:
                        found.append(ModelVersion(path.name, path, read_version_manifest(path)))
                    except (OSError, ValueError) as exc:  # listed as failed, none of its fields used
                        found.append(ModelVersion(path.name, path, {"status": "failed", "reason": (
                            f"{STATE_DIR}/models/{path.name}/{MANIFEST} is damaged: {damage(exc)}; it is skipped "
                            f"(`codekin models prune` or deleting {STATE_DIR}/models/{path.name} drops it)")}))
        return sorted(found, key=lambda v: v.number)

    def get(self, version: str) -> ModelVersion:
        path = self.dir / version
        if not _VERSION.match(version) or not (path / MANIFEST).is_file():
            known = ", ".join(v.id for v in self.versions()) or "none yet"
            raise RegistryError(f"no model version {version!r}", f"known versions: {known} (see `codekin models list`)")
        try:
            return ModelVersion(version, path, read_version_manifest(path))
        except (OSError, ValueError) as exc:
            raise ModelCorruptedError(f"{path / MANIFEST} is damaged: {damage(exc)}",
                                      "roll back to another version with `codekin models rollback`, then "
                                      "`codekin models prune --keep N` removes it") from exc

    def create(self, base_model: str, parent: str, **fields: Any) -> ModelVersion:
        ensure_state_dir(self.root)
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
            problem = verify_checkpoint_cached(path, self.dir / VERIFIED_FILE)
            if problem:
                raise ModelCorruptedError(f"model {version.id}/{checkpoint} is corrupted: {problem}",
                                          "roll back to another version with `codekin models rollback`; "
                                          "`codekin index` then re-embeds with it")
        return path

    # -- the active pointer ----------------------------------------------------------------
    def _pointer(self, strict: bool = True) -> dict[str, Any]:
        """active.json; a damaged one raises (strict) or reads as the base model (when it is rewritten).
        One this machine did not write, or one in a registry git tracks, reads as the base model."""
        path = self.dir / ACTIVE_FILE
        if not path.is_file():
            return {"ref": BASE, "history": []}
        try:
            pointer = read_json_object(path)
            if not isinstance(pointer.get("ref", BASE), str) or not isinstance(pointer.get("history", []), list):
                raise ValueError("its ref or history has the wrong type")
            if pointer.get("ref", BASE) != BASE and (distrust := self._distrust(pointer)):
                if (str(path), distrust) not in _WARNED:  # once per process: the server polls the registry
                    _WARNED.add((str(path), distrust))
                    log.warning("codekin: ignoring %s: %s; the configured model is used", path, distrust)
                return {"ref": BASE, "history": []}
            return pointer
        except (OSError, ValueError) as exc:
            if not strict:
                return {"ref": BASE, "history": []}
            raise RegistryError(f"{path} is damaged: {damage(exc)}",
                                "`codekin models rollback base` rewrites it (the configured model), "
                                "or `codekin models promote VERSION`") from exc

    def _distrust(self, pointer: dict[str, Any]) -> str:
        if git.tracks(self.root, f"{STATE_DIR}/{MODELS_DIR}"):
            return (f"git tracks files under {STATE_DIR}/models (a repository cannot choose the model); "
                    f"`git rm -r --cached {STATE_DIR}` stops that")
        if pointer.get("machine") != machine_id():
            return ("it was not written on this machine (it came with the repository or a copy of it); "
                    "`codekin models promote VERSION` trusts a version you made here")
        return ""

    def active_ref(self, strict: bool = True) -> str:
        """The active ref; not `strict`: a damaged active.json reads as base (about to be rewritten)."""
        return str(self._pointer(strict).get("ref") or BASE)

    def active_version(self) -> ModelVersion | None:
        ref = self.active_ref()
        return None if ref == BASE else self.resolve(ref)[0]

    def _set_active(self, ref: str) -> str:
        pointer = self._pointer(strict=False)
        previous = str(pointer.get("ref") or BASE)
        history = list(pointer.get("history", []))
        if previous != ref:
            history.append(previous)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / ACTIVE_FILE, {"ref": ref, "history": history[-50:], "updated_at": time.time(),
                                                   "machine": machine_id()})
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
        if ref.strip() == BASE:
            return self.activate(BASE)
        version, _ = self.resolve(ref)
        active = self.activate(ref)
        if version.status != "promoted":
            self.update(version, status="promoted", reason=reason, promoted_at=time.time())
        return active

    def rollback(self, ref: str | None = None, force: bool = True) -> str:
        """Back to `ref`, or (none given) to the model that was active before the current one.
        Without `force`, a target that was rejected (or failed) or is newer than the active
        version is refused: that is a promotion, not a rollback. Rolling back to a named ref
        also repairs a damaged active.json."""
        if ref is not None:
            if not force:
                self._check_rollback(self.active_ref(strict=False), ref.strip())
            return self.activate(ref.strip())
        current = self.active_ref()
        history = list(self._pointer().get("history", []))
        while history:
            candidate = history.pop()
            if candidate == current:
                continue
            try:
                if not force:
                    self._check_rollback(current, candidate)
                target = self.activate(candidate) if candidate != BASE else self._set_active(BASE)
            except RollbackRefused:
                raise
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

    def _check_rollback(self, current: str, target: str) -> None:
        if target == BASE:
            return
        version, _ = self.resolve(target)
        why = ""
        if version.status in ("rejected", "failed"):
            reason = version.manifest.get("reason", "")
            why = f"{version.id} was {version.status}" + (f" ({reason})" if reason else "")
        else:
            try:
                number = 0 if current == BASE else self.resolve(current)[0].number
            except RegistryError:
                number = 0
            if version.number > number:
                why = f"{version.id} is newer than the active {current}"
        if why:
            raise RollbackRefused(f"not rolling back to {target}: {why}",
                                  f"add --force to use it anyway, or `codekin models promote {target}`")

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
        for directory in [self.dir, *(v.path for v in self.versions())]:  # and their temporary files
            remove_stale_json_temporaries(directory)
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
