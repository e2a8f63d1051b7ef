"""Which model embeds for a repository: the registry's active version, or the configured one.

Two questions, two answers:
- a writer (the indexer, a re-embed) embeds with the model the registry makes active
  (`serving_model`): a promoted fine-tuned version, else the configured primary;
- a reader (queries) must embed with the model that wrote the active vectors table
  (`indexed_model`), which differs from the registry's choice between a promotion and
  the end of its re-embed.

A model path is honoured only from the user's config or from this repository's own
registry under `.codekin/models/` (a repository cannot make codekin load an arbitrary
model through its state files).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin import git
from codekin.config import ModelConfig
from codekin.errors import RegistryError
from codekin.models.registry import BASE, ModelRegistry
from codekin.state import MODELS_DIR, STATE_DIR, state_path

if TYPE_CHECKING:
    from codekin.embedding import Embedder

log = logging.getLogger(__name__)


def models_dir(root: Path) -> Path:
    return state_path(Path(root).resolve(), MODELS_DIR)


def serving_model(root: Path, model: ModelConfig) -> ModelConfig:
    """`model` with the active fine-tuned version as primary and the configured primary as fallback.

    The weights are checked against the manifest's sha256 first (hashed only when a file's
    size or mtime changed since it last matched); a damaged version is not served."""
    registry = ModelRegistry(root)
    try:
        ref = registry.active_ref()
        if ref == BASE:
            return model
        path = registry.model_path(ref)
    except RegistryError as exc:
        log.warning("codekin: the model registry of %s is unusable, the configured model is used: %s",
                    root, exc)
        return model
    return dataclasses.replace(model, primary=str(path), fallback=model.primary)


def version_ref(root: Path, model_name: str | None) -> str:
    """'v3' / 'v3/epoch-1' for a model directory inside this repository's registry, else 'base'."""
    if not model_name:
        return BASE
    try:
        rel = Path(model_name).resolve().relative_to(models_dir(root))
    except ValueError:
        return BASE
    parts = rel.parts  # v3/checkpoints/epoch-2
    if len(parts) != 3 or parts[1] != "checkpoints":
        return BASE
    try:
        version = ModelRegistry(root).get(parts[0])
    except RegistryError:
        return f"{parts[0]}/{parts[2]}"
    return version.id if parts[2] == version.final_checkpoint else f"{parts[0]}/{parts[2]}"


def answering_and_active(root: Path, state: dict[str, Any]) -> tuple[str, str]:
    """(the version whose vectors answer queries, the version the registry makes active), as
    refs ('base' for the configured model). They differ after a promote or rollback until
    `codekin reembed` (or the next `codekin index`) embeds the index with the active one."""
    try:
        active = ModelRegistry(root).active_ref()
    except RegistryError:
        active = BASE
    return version_ref(root, state.get("model")), active


def model_note(root: Path, state: dict[str, Any]) -> str:
    """One line for status and doctor: which model answers, and what to run when it is not the
    active one; "" when they agree."""
    answering, active = answering_and_active(root, state)
    if answering == active:
        return ""
    return (f"queries use {answering}'s vectors, but {active} is the active model: run `codekin reembed` "
            f"to embed the index with {active}")


def indexed_model(root: Path, model: ModelConfig, state: dict[str, Any]) -> ModelConfig:
    """The model that wrote the active vectors table (named in state.json), for queries.

    Only the configured models and this repository's own registry are honoured; anything
    else in state.json falls back to the registry's choice."""
    name = state.get("model")
    if not name:
        return serving_model(root, model)
    if name in (model.primary, model.fallback):
        return dataclasses.replace(model, primary=name, fallback=model.primary)
    shipped = git.tracks(root, f"{STATE_DIR}/{MODELS_DIR}")  # a repository cannot choose the model
    if not shipped and version_ref(root, name) != BASE and Path(name).is_dir():
        return dataclasses.replace(model, primary=name, fallback=model.primary)
    log.warning("state.json names model %r, which is neither configured nor in the registry; ignoring it", name)
    return serving_model(root, model)


def load_verified(root: Path, model: ModelConfig) -> Embedder:
    """`load_embedder`, except that a primary from this repository's registry whose files do
    not match the manifest's sha256 is never loaded: the fallback serves, with the reason kept
    as for a model that does not load (the learning loop then re-embeds with it)."""
    from codekin.embedding import load_embedder

    ref = version_ref(root, model.primary)
    try:
        if ref != BASE:
            ModelRegistry(root).model_path(ref)
    except RegistryError as exc:
        if model.fallback == model.primary:
            raise
        log.warning("codekin: %s; using %s", exc, model.fallback)
        embedder = load_embedder(dataclasses.replace(model, primary=model.fallback))
        embedder.fallback_reason = f"cannot load model {model.primary}: {exc.message}"
        return embedder
    return load_embedder(model)


class ServingEmbedder:
    """An Embedder whose target can be swapped: what the sync threads hold in the server.

    The indexer reads `key` and calls `encode` while it holds the index lock, and the
    target is only swapped while the hot reload holds that same lock, so one indexer run
    never sees two models."""

    def __init__(self, target: Embedder) -> None:
        self._target = target
        self._swap = threading.Lock()

    @property
    def target(self) -> Embedder:
        return self._target

    def swap(self, target: Embedder) -> Embedder:
        with self._swap:
            previous, self._target = self._target, target
        return previous

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)
