"""Embedding models: loading (primary, then fallback), device choice, batched encode."""

from codekin.embedding.device import choose_device
from codekin.embedding.model import Embedder, load_embedder, model_key, resolve_model_path

__all__ = ["Embedder", "choose_device", "load_embedder", "model_key", "resolve_model_path"]
