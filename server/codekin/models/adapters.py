"""Query-side adapters: a promoted adapter moves text queries, the index's vectors stay.

An adapter (training/adapter.py trains one) is the low-rank map `q' = normalize(q + (q U) V)`
fitted on top of one model's vector space. It is stored under
`.codekin/models/adapters/<version>/` (adapter.npz + manifest.json: the vectors table key
it applies to, sha256, metrics, reason) and `.codekin/models/adapters/active.json` names the
promoted one. Queries apply it only while the index's active table is the one it was fitted
on (a later full fine-tune and re-embed makes it inert) and only to text queries: symbol and
code queries (`similar`) keep the model's own vector. Promoting one needs no re-embedding.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codekin.errors import CodekinError
from codekin.models.checkpoints import read_json_object, write_json_atomic
from codekin.state import ADAPTERS_DIR, MODELS_DIR, state_path

ACTIVE = "active.json"
WEIGHTS = "adapter.npz"
MANIFEST = "manifest.json"


@dataclass
class QueryAdapter:
    u: np.ndarray  # (dim, rank)
    v: np.ndarray  # (rank, dim)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        moved = vectors + (vectors @ self.u) @ self.v
        return (moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def save(self, path: Path) -> Path:
        with path.open("wb") as f:
            np.savez(f, u=self.u, v=self.v)
        return path

    @classmethod
    def load(cls, path: Path) -> QueryAdapter:
        with np.load(path) as data:
            return cls(data["u"].astype(np.float32), data["v"].astype(np.float32))


UNMOVED_KINDS = ("symbol", "code")  # index/query.py's SYMBOL and CODE (models does not import index)


def adapted(kind: str) -> bool:
    """Whether a query of this index/query.py kind is moved by the adapter (text questions only)."""
    return kind not in UNMOVED_KINDS


def _read(path: Path) -> dict[str, Any] | None:
    """A JSON object, or None when it is missing or damaged (then no adapter is served)."""
    try:
        return read_json_object(path)
    except (OSError, ValueError):
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class AdapterStore:
    """The adapters of one repository; `active(key)` is what queries use (cached by file stamp)."""

    def __init__(self, root: Path) -> None:
        self.dir = state_path(root, MODELS_DIR, ADAPTERS_DIR)
        self._lock = threading.Lock()
        self._cached: tuple[Any, tuple[str, QueryAdapter] | None] = (None, None)

    def save(self, adapter: QueryAdapter, key: str, metrics: dict[str, Any], reason: str) -> str:
        """A new (not yet promoted) adapter fitted on the vectors table `key`; returns its version."""
        version = time.strftime("adapter-%Y%m%d-%H%M%S", time.gmtime())
        path = self.dir / version
        suffix = 1
        while path.exists():
            suffix += 1
            path = self.dir / f"{version}-{suffix}"
        path.mkdir(parents=True)
        adapter.save(path / WEIGHTS)
        write_json_atomic(path / MANIFEST, {"version": path.name, "applies_to": key, "created_at": time.time(),
                                            "sha256": _sha256(path / WEIGHTS), "metrics": metrics,
                                            "reason": reason, "status": "rejected"})
        return path.name

    def manifest(self, version: str) -> dict[str, Any]:
        return _read(self.dir / version / MANIFEST) or {}

    def promote(self, version: str, reason: str) -> None:
        manifest = self.manifest(version)
        if not manifest:
            raise CodekinError(f"no adapter {version}", "`codekin models list` shows the adapters")
        write_json_atomic(self.dir / version / MANIFEST, {**manifest, "status": "promoted", "reason": reason})
        write_json_atomic(self.dir / ACTIVE, {"version": version, "applies_to": manifest["applies_to"],
                                              "updated_at": time.time()})

    def deactivate(self) -> None:
        (self.dir / ACTIVE).unlink(missing_ok=True)

    def active_version(self) -> dict[str, Any] | None:
        """{"version", "applies_to"} of the promoted adapter, or None."""
        return _read(self.dir / ACTIVE)

    def active(self, key: str) -> tuple[str, QueryAdapter] | None:
        """(version, adapter) promoted for the vectors table `key`; None when there is none, it
        was fitted on another table, or its weights do not match their recorded sha256."""
        pointer = self.dir / ACTIVE
        try:
            stamp: Any = (pointer.stat().st_mtime_ns, key)
        except OSError:
            return None
        with self._lock:
            if self._cached[0] == stamp:
                return self._cached[1]
        found = self._load(key)
        with self._lock:
            self._cached = (stamp, found)
        return found

    def _load(self, key: str) -> tuple[str, QueryAdapter] | None:
        pointer = self.active_version()
        if not pointer or pointer.get("applies_to") != key:
            return None
        version = str(pointer.get("version", ""))
        weights = self.dir / version / WEIGHTS
        if "/" in version or not weights.is_file() or _sha256(weights) != self.manifest(version).get("sha256"):
            return None
        return version, QueryAdapter.load(weights)


def served_adapter(root: Path, state: dict[str, Any]) -> str | None:
    """The version of the adapter that moves text queries on the index's active table
    (`state`: the index's state record), or None (for status displays)."""
    found = AdapterStore(root).active(str(state.get("active_key", ""))) if state else None
    return found[0] if found is not None else None
