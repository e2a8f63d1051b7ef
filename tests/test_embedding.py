"""Embedding backends: int8 (OpenVINO) vs torch fp32 vectors, fallback, keys, device choice."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from codekin.chunking import chunk_text
from codekin.config import IndexConfig, ModelConfig
from codekin.embedding import (
    choose_device,
    expected_key,
    load_embedder,
    model_key,
    quantize,
    resolve_backend,
    resolve_model_path,
)
from codekin.embedding.int8_record import Int8Record, read_record, record_path, write_record
from codekin.embedding.probe import PROBE_TEXTS
from codekin.embedding.quantize import (
    ExportError,
    calibration_texts,
    export_dir,
    int8_weights,
    prune_exports,
)
from codekin.embedding.tokenizer import TokenizerSpec
from codekin.errors import ConfigError, ModelLoadError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example_snippets(limit: int = 50) -> list[str]:
    """Real code chunks (Elixir, Erlang, C++) from examples/, as the indexer embeds them."""
    texts: list[str] = []
    for path in sorted(EXAMPLES.rglob("*")):
        if path.suffix not in (".ex", ".exs", ".erl", ".cpp", ".hpp", ".c") or not path.is_file():
            continue
        rel = path.relative_to(EXAMPLES).as_posix()
        texts += [c.embed_text for c in chunk_text(rel, path.read_text(encoding="utf-8"), IndexConfig())]
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


# -- keys, backend names, devices (no model) ---------------------------------------------------
def test_torch_key_is_unchanged_and_int8_key_is_its_own_vector_space():
    torch_key = model_key("default", 256)
    assert torch_key == model_key("default", 256, "torch")
    assert torch_key.startswith("minilm-l6-v2_")
    int8_key = model_key("default", 256, "openvino-int8")
    assert int8_key.startswith("minilm-l6-v2-int8_")
    assert int8_key != torch_key
    assert model_key("default", 128, "openvino-int8") != int8_key


def test_each_int8_recipe_has_its_own_key_and_export(monkeypatch):
    """Static and dynamic int8 vectors, and those of an older export recipe, never share a
    table: the recipe version is part of the key, and of the export folder."""
    static, dynamic = model_key("default", 256, "openvino-int8"), model_key("default", 256, "openvino-int8-dynamic")
    assert dynamic.startswith("minilm-l6-v2-int8dyn_") and static.startswith("minilm-l6-v2-int8_")
    assert len({static, dynamic, model_key("default", 256)}) == 3
    assert static != "minilm-l6-v2-int8_8f381255"  # recipe 1 (dynamic activations only) wrote there
    path = resolve_model_path("default")
    exports = (export_dir(path), export_dir(path, "dynamic"))
    assert exports[0] != exports[1]
    monkeypatch.setattr(quantize, "RECIPE", quantize.RECIPE + 1)
    assert model_key("default", 256, "openvino-int8") != static
    assert model_key("default", 256, "openvino-int8-dynamic") != dynamic
    assert model_key("default", 256) == model_key("default", 256, "torch")  # torch has no recipe
    assert export_dir(path) not in exports
    with pytest.raises(ValueError, match="int8 activations must be one of"):
        export_dir(path, "per-tensor")


def test_calibration_texts_are_fixed_code_chunks_and_the_probe():
    texts = calibration_texts()
    # frozen: a changed file must come with a new RECIPE (a new vector key) and a new hash here
    digest = hashlib.sha256(quantize.CALIBRATION_FILE.read_bytes()).hexdigest()[:16]
    assert digest == quantize.CALIBRATION_SHA256, "calibration.jsonl changed: bump RECIPE and CALIBRATION_SHA256"
    assert len(texts) == quantize.CALIBRATION_TEXTS + len(PROBE_TEXTS)
    assert texts[-len(PROBE_TEXTS):] == list(PROBE_TEXTS)
    headers = {t.split()[0] for t in texts[:-len(PROBE_TEXTS)]}
    assert {"elixir", "erlang"} <= headers and headers & {"cpp", "c"}, headers
    assert quantize.static_available()  # nncf is a dependency and examples/ is beside server/


def test_exports_of_older_recipes_and_deleted_models_are_pruned(tmp_path: Path):
    models = tmp_path / "models"
    for name, manifest in {"old": {"recipe": quantize.RECIPE - 1, "source": str(tmp_path)},
                           "gone": {"recipe": quantize.RECIPE, "source": str(tmp_path / "deleted")},
                           "live": {"recipe": quantize.RECIPE, "source": str(tmp_path)}}.items():
        (models / name).mkdir(parents=True)
        (models / name / "manifest.json").write_text(json.dumps(manifest))
    assert sorted(p.name for p in prune_exports(models)) == ["gone", "old"]
    assert [p.name for p in models.iterdir()] == ["live"]


def test_auto_backend_is_int8_on_cpu_and_torch_on_gpus():
    assert resolve_backend("auto", "cpu") == "openvino-int8"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("auto", "mps") == "torch"
    assert resolve_backend("torch", "cpu") == "torch"
    assert resolve_backend("openvino-int8", "cuda") == "openvino-int8"
    assert resolve_backend("openvino-int8-dynamic", "cpu") == "openvino-int8-dynamic"


def test_auto_backend_takes_dynamic_int8_where_static_cannot_be_built(monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)  # what an uninstalled package looks like
    assert not quantize.static_available()
    assert resolve_backend("auto", "cpu") == "openvino-int8-dynamic"
    assert expected_key(ModelConfig(device="cpu")) == model_key("default", 256, "openvino-int8-dynamic")


def test_unknown_backend_is_a_config_error_with_a_hint():
    with pytest.raises(ConfigError) as err:
        resolve_backend("tensorrt", "cpu")
    assert "model.backend must be one of auto, torch, openvino-int8" in err.value.message
    assert "model.backend = 'auto'" in err.value.hint
    with pytest.raises(ConfigError):
        load_embedder(ModelConfig(device="cpu", backend="tensorrt"))


def test_expected_key_follows_the_configured_backend():
    assert expected_key(ModelConfig(device="cpu", backend="torch")) == model_key("default", 256)
    assert expected_key(ModelConfig(device="cpu")) == model_key("default", 256, "openvino-int8")
    assert expected_key(ModelConfig(device="cuda")) == model_key("default", 256)


def test_device_choice_on_this_machine():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert choose_device("auto") == expected
    assert choose_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError) as err:
            choose_device("cuda")
        assert "no CUDA GPU" in err.value.message and "--device cpu" in err.value.hint


def test_int8_weights_stores_int8_and_keeps_the_product(tmp_path: Path):
    """One MatMul graph through the quantizer, run by OpenVINO: int8 weights, same result."""
    import onnx
    import openvino as ov
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 48)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 48])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fp32.onnx")
    assert int8_weights(tmp_path / "fp32.onnx", tmp_path / "int8.onnx") == 1
    stored = {i.name: numpy_helper.to_array(i) for i in onnx.load(tmp_path / "int8.onnx").graph.initializer}
    assert stored["w_int8"].dtype == np.int8 and stored["w_scale"].shape == (48,)
    x = rng.normal(size=(5, 64)).astype(np.float32)
    compiled = ov.Core().compile_model(str(tmp_path / "int8.onnx"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    y = compiled.create_infer_request().infer({"x": x})[0]
    exact = x @ weight
    assert np.abs(y - exact).max() < 0.02 * np.abs(exact).max()


def test_graph_without_weights_cannot_be_quantized(tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "relu.onnx")
    with pytest.raises(ExportError, match="nothing to quantize"):
        int8_weights(tmp_path / "relu.onnx", tmp_path / "out.onnx")


def test_nncf_is_imported_with_its_telemetry_stubbed_out():
    """Building a static export imports nncf, which would send usage events through
    openvino_telemetry: codekin blocks that module first, so nncf keeps its no-op stub."""
    script = ("import multiprocessing, sys; from codekin.embedding.quantize import _import_nncf; "
              "nncf, _ = _import_nncf(); from nncf.telemetry.wrapper import NNCFTelemetry, telemetry; "
              "print(sys.modules.get('openvino_telemetry'), isinstance(telemetry, NNCFTelemetry), "
              "len(multiprocessing.active_children()))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["None", "False", "0"], out.stderr  # the stub, not the real sender


def test_cpu_device_is_chosen_without_importing_torch():
    script = ("import sys; from codekin.embedding import choose_device; "
              "print(choose_device('cpu'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["cpu", "False"]


SPEC = TokenizerSpec(256, "right", "right", 0, 0, "[PAD]", ("input_ids", "attention_mask"))


def test_serving_record_round_trip_and_staleness(tmp_path: Path):
    """A record is read back as written, and ignored once a tokenizer/config file of the model changes."""
    model_dir, export = tmp_path / "model", tmp_path / "export"
    model_dir.mkdir()
    export.mkdir()
    (model_dir / "tokenizer_config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"weights are fingerprinted by the export folder")
    record = Int8Record(SPEC, "mean", 384, 0.9991)
    write_record(export, str(model_dir), 256, record, '{"engine": 1}')
    assert read_record(export, str(model_dir), 256) == record
    assert read_record(export, str(model_dir), 128) is None  # another model.max_tokens
    assert json.loads(record_path(export, 256).read_text())["model_files"] == [
        ["tokenizer_config.json", 2, (model_dir / "tokenizer_config.json").stat().st_mtime_ns]]
    (model_dir / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    assert read_record(export, str(model_dir), 256) is None
    write_record(export, str(model_dir), 256, record, '{"engine": 1}')
    record_path(export, 256).write_text("{not json")
    assert read_record(export, str(model_dir), 256) is None


# -- the real model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private export cache: the int8 model is built once for this module, never in ~."""
    cache = tmp_path_factory.mktemp("codekin-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEKIN_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="module")
def int8_embedder(export_cache: Path):
    return load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))


@pytest.fixture(scope="module")
def torch_embedder():
    return load_embedder(ModelConfig(device="cpu", backend="torch"))


@pytest.mark.slow
def test_int8_vectors_match_torch_fp32_on_code(int8_embedder, torch_embedder):
    snippets = example_snippets(50)
    assert len(snippets) >= 40
    assert int8_embedder.backend == "openvino-int8", int8_embedder.backend_note
    assert torch_embedder.backend == "torch"
    fast = int8_embedder.encode(snippets)
    reference = torch_embedder.encode(snippets)
    assert fast.shape == reference.shape == (len(snippets), 384)
    assert fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    cosine = (fast * reference).sum(axis=1)
    assert cosine.mean() >= 0.99, cosine.mean()
    assert cosine.min() >= 0.97, cosine.min()
    # Retrieval agrees: each snippet's nearest other snippet is mostly the same in both spaces
    # (44/50 here; the rest are near-ties among similar snippets).
    same = [(fast @ fast[i]).argsort()[-2] == (reference @ reference[i]).argsort()[-2] for i in range(len(fast))]
    assert sum(same) >= 0.8 * len(same)


@pytest.mark.slow
def test_int8_export_is_cached_once_per_model(int8_embedder, export_cache: Path):
    target = export_dir(resolve_model_path("default"))
    assert target.parent == export_cache / "models"
    manifest = target / "manifest.json"
    assert manifest.is_file() and (target / "model.xml").is_file() and (target / "model.bin").is_file()
    details = json.loads(manifest.read_text())
    assert details["activations"] == "static" and details["recipe"] == quantize.RECIPE
    assert details["calibration_texts"] == quantize.CALIBRATION_TEXTS + len(PROBE_TEXTS)
    before = manifest.stat().st_mtime_ns
    again = load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))
    assert again.backend == "openvino-int8"
    assert manifest.stat().st_mtime_ns == before
    assert again.key == int8_embedder.key == expected_key(ModelConfig(device="cpu"))
    assert again.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_missing_openvino_falls_back_to_torch_with_the_reason(monkeypatch, caplog, export_cache):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an uninstalled package looks like
    with caplog.at_level(logging.WARNING, logger="codekin.embedding.model"):
        embedder = load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))
    assert embedder.backend == "torch"
    assert embedder.runner is None
    assert embedder.key == model_key("default", 256)
    assert "openvino-int8 unavailable" in embedder.backend_note
    assert "pip install openvino" in embedder.backend_note
    assert any("using torch" in r.getMessage() for r in caplog.records)
    vectors = embedder.encode(["def f(x), do: x"])
    assert vectors.shape == (1, 384)


@pytest.mark.slow
def test_unwritable_cache_falls_back_to_torch(tmp_path: Path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("CODEKIN_CACHE_DIR", str(blocker))
    embedder = load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))
    assert embedder.backend == "torch"
    assert "unavailable" in embedder.backend_note


@pytest.mark.slow
def test_unsupported_pooling_is_refused_before_any_export(export_cache: Path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer

    from codekin.embedding.openvino_backend import load_openvino_int8

    path = resolve_model_path("default")
    model = SentenceTransformer(modules=[Transformer(path), Pooling(384, pooling_mode="max")], device="cpu")
    with pytest.raises(ExportError, match="pooling 'max' is not supported"):
        load_openvino_int8(model, path)


@pytest.mark.slow
def test_verified_export_loads_without_torch_and_gives_the_same_vectors(int8_embedder, export_cache: Path):
    """The torch-free load (tokenizers + OpenVINO + numpy) is the int8 path of before: same
    token ids as sentence-transformers on real chunks, same vectors, same key."""
    from codekin.embedding.tokenizer import st_tokenize

    assert int8_embedder.loaded_model is not None  # the first load built and verified the export
    target = export_dir(resolve_model_path("default"))
    assert (target / "serving-256.json").is_file() and (target / "tokenizer.json").is_file()
    light = load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))
    assert light.backend == "openvino-int8" and light.loaded_model is None
    assert light.key == int8_embedder.key and light.dim == 384
    snippets = example_snippets(100)
    st_model = int8_embedder.model
    reference_ids = st_tokenize(st_model, light.runner.input_names)(snippets)
    ids = light.runner.tokenize(snippets)
    assert all((ids[name] == reference_ids[name]).all() for name in reference_ids)
    before = int8_embedder.runner  # the same compiled model, tokenized by sentence-transformers
    old_path = type(before)(before.compiled, st_tokenize(st_model, before.input_names), before.input_names,
                            before.pooling, before.dim, before.max_length, before.pads).encode(snippets, 32)
    new_path = light.encode(snippets)
    cosine = (old_path * new_path).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    # The sentence-transformers model is still there for training and evaluation, loaded on demand.
    assert light.model.max_seq_length == 256 and light.loaded_model is light.model


@pytest.mark.slow
def test_a_verified_export_is_served_without_importing_torch(int8_embedder, export_cache: Path):
    from codekin.embedding.device import accelerator_possible

    if accelerator_possible():
        pytest.skip("auto may pick a GPU (torch backend) on this machine")
    script = ("import sys; from codekin.config import ModelConfig; from codekin.embedding import load_embedder; "
              "e = load_embedder(ModelConfig(device='auto', backend='auto')); v = e.encode(['def f(x), do: x']); "
              "print(e.backend, e.key, v.shape[1], 'torch' in sys.modules, 'sentence_transformers' in sys.modules, "
              "'nncf' in sys.modules)")
    env = {**os.environ, "CODEKIN_CACHE_DIR": str(export_cache)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["openvino-int8", int8_embedder.key, "384", "False", "False", "False"], out.stderr


@pytest.mark.slow
def test_without_nncf_int8_falls_back_to_dynamic_activations(int8_embedder, tmp_path: Path, monkeypatch):
    """No nncf (and no static export built yet): the dynamic recipe, under its own key."""
    monkeypatch.setenv("CODEKIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "nncf", None)  # what an uninstalled package looks like
    embedder = load_embedder(ModelConfig(device="cpu", backend="openvino-int8"))
    assert embedder.backend == "openvino-int8-dynamic"
    assert embedder.key == model_key("default", 256, "openvino-int8-dynamic") != int8_embedder.key
    assert "openvino-int8 unavailable" in embedder.backend_note and "pip install nncf" in embedder.backend_note
    assert (export_dir(resolve_model_path("default"), "dynamic") / "model.onnx").is_file()
    snippets = example_snippets(30)
    cosine = (embedder.encode(snippets) * int8_embedder.encode(snippets)).sum(axis=1)
    assert cosine.min() >= 0.97, cosine.min()


@pytest.mark.slow
def test_int8_encodes_from_several_threads_at_once(int8_embedder):
    """The server embeds queries on several threads while a sync embeds files: one OpenVINO
    request, taken in turns, gives every caller its own vectors."""
    from concurrent.futures import ThreadPoolExecutor

    snippets = example_snippets(24)
    groups = [snippets[i::6] for i in range(6)]
    alone = [int8_embedder.encode(group) for group in groups]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(int8_embedder.encode, groups))
    for mine, reference in zip(together, alone, strict=True):
        assert mine.shape == reference.shape
        assert (mine * reference).sum(axis=1).min() >= 0.9999
