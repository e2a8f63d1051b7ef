"""A cold search tokenizes its query in plain Python (embedding/wordpiece.py) instead of loading
the `tokenizers` engine: the ids must be the engine's, to the last one, or it must step aside."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest

from codekin.embedding.tokenizer import TextTokenizer, TokenizerSpec
from codekin.embedding.wordpiece import WordPiece

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def engine_json() -> str:
    pytest.importorskip("tokenizers")
    from codekin.embedding import resolve_model_path

    return (Path(resolve_model_path("default")) / "tokenizer.json").read_text(encoding="utf-8")


def _spec(max_length: int) -> TokenizerSpec:
    return TokenizerSpec(max_length, "right", "right", 0, 0, "[PAD]",
                         ("input_ids", "attention_mask", "token_type_ids"))


def _texts() -> list[str]:
    """Queries, code from examples/ (whole and cut), and random printable ASCII."""
    rng = random.Random(7)
    texts = ["parse the request headers", "Shop.Cart.add/3", "handle_call({:get, key}, _from, state)",
             "retry with exponential backoff", "how does the acceptor pool start connections?",
             "ZSTD_compressBlock", "  leading\tand\ntrailing\r\n ", "", "a" * 150, "x" + "é" * 3,
             "what does [MASK] mean", "[cls] token", "don't stop-the-world; re-try!!", "\x7fdel", "tab\x0bvt"]
    for path in sorted(EXAMPLES.rglob("*")):
        if path.is_file() and path.suffix in {".ex", ".exs", ".erl", ".cpp", ".h", ".c"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            texts += [text[:300], text[:1900], " ".join(text.split()[:20])]
    alphabet = string.printable.replace("\x0b", "").replace("\x0c", "") + "  __--..::"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400))) for _ in range(300)]
    texts += [" ".join(rng.choice(["handle", "call", "get_state", "HTTPServer", "zstd", "qwxz", "ing"])
                       for _ in range(rng.randint(1, 90))) for _ in range(100)]
    return texts


@pytest.mark.parametrize("max_length", [128, 256, 16])
def test_plain_python_ids_are_the_engines_or_it_steps_aside(engine_json, max_length):
    lazy = TextTokenizer(engine_json, _spec(max_length), lazy=True)
    eager = TextTokenizer(engine_json, _spec(max_length))
    assert lazy._wordpiece is not None  # noqa: SLF001 - the default model's tokenizer is a BERT one
    handled, texts = 0, _texts()
    for text in texts:
        ours, theirs = lazy([text]), eager([text])
        assert all(np.array_equal(ours[name], theirs[name]) for name in theirs), repr(text[:80])
        handled += lazy._wordpiece.ids(text, max_length) is not None  # noqa: SLF001
    assert handled > 0.8 * len(texts)  # most took the plain path
    assert lazy._engine is not None  # the texts it left (non-ASCII, special tokens) loaded the engine


def test_it_steps_aside_for_what_it_does_not_know(engine_json):
    piece = WordPiece.from_engine_json(engine_json)
    assert piece is not None
    for text in ("naïve", "a\x00b", "[SEP] here", "x" * 2001, "tab\x0cff"):
        assert piece.ids(text, 128) is None
    assert WordPiece.from_engine_json('{"model": {"type": "BPE"}}') is None
    assert WordPiece.from_engine_json("not json") is None
    many = TextTokenizer(engine_json, _spec(128), lazy=True)(["one", "two words"])  # a batch: the engine
    assert many["input_ids"].shape == (2, 4)
