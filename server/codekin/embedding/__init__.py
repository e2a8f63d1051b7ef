"""Embedding models: loading (primary, then fallback), device choice, batched encode."""

from codekin.embedding.device import choose_device
from codekin.embedding.model import (
    BACKENDS,
    Embedder,
    expected_key,
    load_embedder,
    model_key,
    resolve_backend,
    resolve_model_path,
)

__all__ = [
    "BACKENDS", "Embedder", "choose_device", "expected_key", "load_embedder", "model_key", "resolve_backend",
    "resolve_model_path",
]
