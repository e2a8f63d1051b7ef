"""int8 inference on the CPU with OpenVINO: the `openvino-int8` backend.

OpenVINO runs the transformer from the cached int8 export (see quantize.py: activations
calibrated once, `static`, or quantized per token at run time, `dynamic`); pooling is done here exactly as the model's
Pooling module does it (mean over the attention mask, or CLS), then L2-normalized.
Tokens come from the model's own fast tokenizer, replayed without torch (tokenizer.py).

Two ways in: `load_openvino_int8(st_model, path)` builds the export from a loaded
sentence-transformers model; `load_cached_int8(path, max_tokens)` opens an export that an
earlier load verified (int8_record.py) and needs neither torch nor sentence-transformers,
so a server on this backend stays ~0.4 GB lighter.

Only the OpenVINO runtime is used (Core.read_model/compile_model); its model converter,
which carries a telemetry hook, is never called.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.util
import logging
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.embedding.int8_record import TOKENIZER_FILE, read_record
from codekin.embedding.probe import PROBE_TEXTS
from codekin.embedding.quantize import ExportError, build_int8_export, export_dir, model_file
from codekin.embedding.tokenizer import TextTokenizer, engine_json, matches, spec_of, st_tokenize

if TYPE_CHECKING:  # numpy is imported where arrays are made: the query model's thread (ahead.py)
    import numpy as np  # reaches OpenVINO's compile while the search imports numpy beside it

log = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
POOLING_MODES = ("mean", "cls")
SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
TOKENS_PER_ITEM = 128  # token budget of a batch = batch_size * this (4,096 by default)
WIDTH_STEP = 16  # batch widths are padded up to a multiple of this (see OpenVinoEncoder.encode)
RUNTIME_CACHE = 64  # compiled kernels kept for that many input shapes (OpenVINO's default: 5,000)


def _threads() -> int:
    """Intra-op threads: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _limit_heap_growth() -> None:
    """Serve big buffers from mmap (returned on free) instead of the glibc heap.

    OpenVINO allocates activation buffers whose size follows each batch's shape; glibc's
    adaptive mmap threshold moves them onto the heap, where they fragment: indexing 1,500
    chunks grew the process from 0.7 to 1.7 GB. A fixed 1 MB threshold kept it near 1.05 GB
    at the same speed. No-op outside glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 1 << 20)
    mallopt(M_TRIM_THRESHOLD, 4 << 20)


def _pooling_mode(st_model) -> str:
    names = [type(module).__name__ for module in st_model]
    if not names or names[0] != "Transformer" or any(n not in SUPPORTED_MODULES for n in names):
        raise ExportError(f"modules {names} are not Transformer + Pooling (+ Normalize)")
    pooling = [m for m in st_model if type(m).__name__ == "Pooling"]
    if len(pooling) != 1:
        raise ExportError("the model has no single Pooling module")
    config = pooling[0].get_config_dict()
    mode = config.get("pooling_mode", "mean")
    if mode not in POOLING_MODES or config.get("include_prompt", True) is False:
        raise ExportError(f"pooling {mode!r} is not supported by the int8 backend (only mean, cls)")
    return mode


Tokenize = Callable[[Sequence[str]], dict[str, "np.ndarray"]]


class OpenVinoEncoder:
    """Encodes text batches through the int8 OpenVINO model; same vectors as the torch path
    up to quantization noise (mean cosine ~0.998 on code)."""

    def __init__(self, compiled, tokenize: Tokenize, input_names: list[str], pooling: str, dim: int,
                 max_length: int, pads: dict[str, int], left_padded: bool = False) -> None:
        self.dim = dim
        self.max_length = max_length
        self.pads = {"attention_mask": 0, **pads}  # the padding value of each input
        self.compiled = compiled  # the runtime's own CompiledModel (_runtime), not the Python wrapper's
        self.request = compiled.create_infer_request()
        self._tensor = _runtime().Tensor
        self._infer_lock = threading.Lock()  # one request: server queries and syncs take turns per batch
        self.tokenize = tokenize
        self.text_tokenizer = tokenize if isinstance(tokenize, TextTokenizer) else None  # torch-free
        self.input_names = input_names
        self.pooling = pooling
        self.left_padded = left_padded

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit vectors: tokenized once (the model's own preprocessing and truncation), then
        run in batches of similar token length, each cut to its longest member rounded up
        to a multiple of WIDTH_STEP.

        A batch holds at most `batch_size * TOKENS_PER_ITEM` tokens, so short chunks go
        many at a time and long ones few: activation memory stays flat (attention grows
        with the square of the length) and the batches stay large enough for VNNI.

        OpenVINO compiles kernels for every new input shape (~75 ms here) and keeps them:
        one-token-exact widths made every batch a new shape, and 200 queries of different
        lengths grew a server by 370 MB. With widths in steps of 16 there are at most 16
        widths up to 256 tokens; the extra positions are padding, masked out of attention
        and pooling, so the vectors do not change (beyond float rounding)."""
        import numpy as np

        arrays = self.tokenize(list(texts))
        lengths = arrays["attention_mask"].sum(axis=1)
        total = self._width(int(lengths.max()))
        arrays = {name: self._widen(name, arrays[name], total) for name in self.input_names}
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        budget = max(1, batch_size) * TOKENS_PER_ITEM
        first = 0
        while first < len(order):
            last = first + 1
            while last < len(order) and (last - first + 1) * self._width(int(lengths[order[last]])) <= budget:
                last += 1
            idx = order[first:last]
            width = self._width(int(lengths[idx].max()))
            cut = slice(-width, None) if self.left_padded else slice(0, width)
            out[idx] = self.encode_features({name: arrays[name][idx, cut] for name in self.input_names})
            first = last
        return out

    def _width(self, longest: int) -> int:
        """`longest` rounded up to a multiple of WIDTH_STEP, never past the model's max_length."""
        return max(longest, min(-(-longest // WIDTH_STEP) * WIDTH_STEP, self.max_length))

    def _widen(self, name: str, array: np.ndarray, width: int) -> np.ndarray:
        """`array` padded to `width` columns with its input's padding value."""
        import numpy as np

        extra = width - array.shape[1]
        if extra <= 0:
            return array
        padding = np.full((array.shape[0], extra), self.pads.get(name, 0), dtype=array.dtype)
        parts = (padding, array) if self.left_padded else (array, padding)
        return np.concatenate(parts, axis=1)

    def encode_features(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Unit vectors for one padded batch of token ids."""
        import numpy as np

        tensors = {name: self._tensor(np.ascontiguousarray(array)) for name, array in features.items()}
        with self._infer_lock:
            hidden = next(iter(self.request.infer(tensors, False, False).values()))  # a copy: the request's own
        if self.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            mask = features["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


COMPILED_CACHE = "compiled"  # OpenVINO's CACHE_DIR, inside the export
CONVERTER = "openvino.tools.ovc"  # the model converter, which `import openvino` loads unless told not to


def _openvino():
    # `import openvino` loads its model converter, which starts Google Analytics telemetry
    # in a forked process. codekin sends nothing anywhere: with `openvino_telemetry` made
    # unimportable the converter falls back to its built-in no-op stub.
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    # Nor is the converter itself ever called (exports go through ONNX): `import openvino`
    # skips it when it is unimportable (~0.1 s of a cold search); an explicit import still works.
    skip = CONVERTER not in sys.modules
    if skip:
        sys.modules[CONVERTER] = None  # type: ignore[assignment]
    try:
        import openvino as ov
    except ImportError as exc:
        raise ExportError("openvino is not installed (pip install openvino==2026.4.1)") from exc
    finally:
        if skip and sys.modules.get(CONVERTER, ...) is None:
            del sys.modules[CONVERTER]
    if not hasattr(ov, "_pyopenvino"):  # _runtime loaded the extension before the package
        ov._pyopenvino = sys.modules[RUNTIME]
    return ov


RUNTIME = "openvino._pyopenvino"


def _runtime():
    """OpenVINO's extension module (Core, CompiledModel, Tensor), loaded without running the
    package's __init__, which also builds the Python factories of every opset (~40 ms of a cold
    search, more on a busy machine) that inference never calls. The package stands in as an
    empty shell only while the extension loads; a later `import openvino` runs as usual and
    reuses the loaded extension."""
    if "openvino" in sys.modules and sys.modules["openvino"] is None:  # blocked: as if not installed
        raise ExportError("openvino is not installed (pip install openvino==2026.4.1)")
    if RUNTIME in sys.modules:
        return sys.modules[RUNTIME]
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError("openvino is not installed (pip install openvino==2026.4.1)")
    shell = types.ModuleType("openvino")
    shell.__spec__, shell.__path__ = spec, list(spec.submodule_search_locations)
    sys.modules["openvino"] = shell
    try:
        from openvino.package_utils import _add_openvino_libs_to_search_path

        _add_openvino_libs_to_search_path()  # Windows only: where the extension finds its DLLs
        runtime = importlib.import_module(RUNTIME)
    except ImportError as exc:
        raise ExportError(f"openvino does not load: {exc}") from exc
    finally:
        if sys.modules.get("openvino") is shell:
            del sys.modules["openvino"]
    return runtime


def _compile(onnx_file: Path, hidden: int, activations: str = "static"):
    runtime = _runtime()
    config = {
        "INFERENCE_NUM_THREADS": _threads(),
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",  # no silent bf16 on AMX machines: one vector space
        # dynamic: int8 activations, one scale per token; static: the export's own scales only
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(hidden) if activations == "dynamic" else "0",
        "CPU_RUNTIME_CACHE_CAPACITY": RUNTIME_CACHE,  # bounds the kernels kept per input shape
    }
    # OpenVINO keeps the compiled graph beside the export and maps it on the next load (a
    # cold search compiles in ~0.15 s instead of ~1 s); it goes with the export when pruned.
    cached = {**config, "CACHE_DIR": str(onnx_file.parent / COMPILED_CACHE)}
    _limit_heap_growth()
    try:
        try:
            return runtime.Core().compile_model(str(onnx_file), "CPU", cached)
        except RuntimeError as exc:  # e.g. a read-only cache folder: compile as before
            log.info("OpenVINO's compiled-model cache is not usable (%s); compiling without it",
                     str(exc).splitlines()[0])
            return runtime.Core().compile_model(str(onnx_file), "CPU", config)
    except RuntimeError as exc:
        raise ExportError(f"OpenVINO cannot compile {onnx_file}: {str(exc).splitlines()[0]}") from exc


def load_openvino_int8(st_model, model_path: str, activations: str = "static") -> OpenVinoEncoder:
    """Compile the cached int8 export of `st_model` (exporting it first); ExportError if impossible.

    Tokenizes with TextTokenizer when it gives the model's own ids on the probe texts (the
    encoder's `text_tokenizer`, which the serving record needs), else with the model itself."""
    _openvino()
    pooling = _pooling_mode(st_model)
    probe = st_model.preprocess(["x"])
    input_names = [name for name in MODEL_INPUTS if name in probe]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        raise ExportError(f"the tokenizer gives {sorted(probe)}, not input_ids + attention_mask")
    onnx_file = build_int8_export(model_path, st_model[0].auto_model, input_names, activations,
                                  st_tokenize(st_model, input_names))
    hidden = int(st_model.get_embedding_dimension() if hasattr(st_model, "get_embedding_dimension")
                 else st_model.get_sentence_embedding_dimension())
    compiled = _compile(onnx_file, hidden, activations)
    hf = st_model.tokenizer
    left = getattr(hf, "padding_side", "right") == "left"
    pads = {"input_ids": int(hf.pad_token_id or 0), "token_type_ids": int(getattr(hf, "pad_token_type_id", 0) or 0)}
    tokenizer: TextTokenizer | None = None
    try:
        tokenizer = TextTokenizer(engine_json(st_model), spec_of(st_model, input_names))
        if not matches(tokenizer, st_model, PROBE_TEXTS):
            log.info("the tokenizers replay of %s differs from sentence-transformers; keeping torch tokenization",
                     model_path)
            tokenizer = None
    except ExportError as exc:
        log.info("no torch-free tokenizer for %s: %s", model_path, exc)
    return OpenVinoEncoder(compiled, tokenizer or st_tokenize(st_model, input_names), input_names, pooling,
                           hidden, int(st_model.max_seq_length), pads, left)


def load_cached_int8(model_path: str, max_tokens: int,
                     activations: str = "static") -> tuple[OpenVinoEncoder, float] | None:
    """The verified int8 export of `model_path`, opened without torch, and its probe agreement;
    None when no load with torch has verified it yet (or the model folder changed since)."""
    target = export_dir(model_path, activations)
    onnx_file = model_file(target, activations)
    if not (target / "manifest.json").is_file() or not onnx_file.is_file():
        return None
    record = read_record(target, model_path, max_tokens)
    if record is None:
        return None
    compiled = _compile(onnx_file, record.dim, activations)  # first: it runs without the GIL, beside a loading index
    tokenizer = TextTokenizer.from_file(target / TOKENIZER_FILE, record.tokenizer, lazy=True)
    spec = record.tokenizer
    encoder = OpenVinoEncoder(compiled, tokenizer, list(spec.inputs), record.pooling, record.dim, spec.max_length,
                              {"input_ids": spec.pad_id, "token_type_ids": spec.pad_type_id}, tokenizer.left_padded)
    return encoder, record.agreement
