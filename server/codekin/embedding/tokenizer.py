"""Tokenization without torch: the model's own fast tokenizer, replayed with `tokenizers`.

sentence-transformers tokenizes with the HF fast tokenizer, whose engine is a
`tokenizers.Tokenizer`: `tokenizer(texts, padding=True, truncation="longest_first",
max_length=max_seq_length)`. `TextTokenizer` drives that same engine (serialized from the
loaded model, not re-read from the model folder, whose tokenizer.json may carry other
padding/truncation settings) with the same settings, so the token ids are identical;
`matches` checks that on sample texts before anything relies on it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.embedding.quantize import ExportError
from codekin.embedding.wordpiece import WordPiece

if TYPE_CHECKING:  # numpy is imported where arrays are made: the query model's thread (ahead.py)
    import numpy as np  # reaches OpenVINO's compile while the search imports numpy beside it

# Texts whose ids must agree between sentence-transformers and TextTokenizer (with the
# probe snippets): empty, whitespace, unicode, and one longer than any max_seq_length.
EDGE_TEXTS = ("", "   leading and trailing  ", "\t\n", "héllo wörld ünïcode 日本語 🙂",
              "defmodule A do\n  def f(x), do: x\nend\n" * 120)


@dataclass(frozen=True)
class TokenizerSpec:
    """How the model's tokenizer is called (what the HF wrapper sets on its engine)."""

    max_length: int
    truncation_side: str
    padding_side: str
    pad_id: int
    pad_type_id: int
    pad_token: str
    inputs: tuple[str, ...]

    def to_dict(self) -> dict:
        return {**asdict(self), "inputs": list(self.inputs)}

    @classmethod
    def from_dict(cls, data: dict) -> TokenizerSpec:
        return cls(int(data["max_length"]), str(data["truncation_side"]), str(data["padding_side"]),
                   int(data["pad_id"]), int(data["pad_type_id"]), str(data["pad_token"]), tuple(data["inputs"]))


def spec_of(st_model, inputs: Sequence[str]) -> TokenizerSpec:
    """The tokenizer call of a loaded sentence-transformers model; ExportError when it is not
    a plain fast tokenizer that `tokenizers` can replay."""
    hf = getattr(st_model, "tokenizer", None)
    if hf is None or getattr(hf, "backend_tokenizer", None) is None:
        raise ExportError(f"tokenizer {type(hf).__name__} has no fast (tokenizers) engine")
    if getattr(st_model[0], "do_lower_case", False):
        raise ExportError("the model lower-cases text before its tokenizer")
    if hf.pad_token is None or hf.pad_token_id is None:
        raise ExportError("the tokenizer has no padding token")
    return TokenizerSpec(int(st_model.max_seq_length), str(getattr(hf, "truncation_side", "right")),
                         str(getattr(hf, "padding_side", "right")), int(hf.pad_token_id),
                         int(getattr(hf, "pad_token_type_id", 0) or 0), str(hf.pad_token), tuple(inputs))


def engine_json(st_model) -> str:
    """The tokenizer engine of a loaded model, serialized (written next to the int8 export)."""
    return st_model.tokenizer.backend_tokenizer.to_str()


class TextTokenizer:
    """Texts -> padded int64 arrays named like the model's inputs, without torch.

    With `lazy`, the engine loads on first use, and one short ASCII text (a query) is tokenized
    by wordpiece.py when the engine is a BERT WordPiece one: a cold search needs no engine."""

    def __init__(self, engine_text: str, spec: TokenizerSpec, lazy: bool = False) -> None:
        self.engine_text = engine_text  # what the serving record saves
        self.spec = spec
        self.left_padded = spec.padding_side == "left"
        self._engine = None
        self._wordpiece: WordPiece | None = None
        if lazy and spec.truncation_side == "right":
            self._wordpiece = WordPiece.from_engine_json(engine_text)
        if self._wordpiece is None:
            self._engine = self._load()  # now: a tokenizer that does not load fails the model's load
        elif importlib.util.find_spec("tokenizers") is None:
            raise ExportError("the tokenizers package is missing (pip install tokenizers)")

    def _load(self):
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ExportError("the tokenizers package is missing (pip install tokenizers)") from exc
        try:
            engine = Tokenizer.from_str(self.engine_text)
        except Exception as exc:  # noqa: BLE001 - the Rust side raises plain Exception on bad JSON
            raise ExportError(f"the saved tokenizer does not load: {str(exc).splitlines()[0]}") from exc
        spec = self.spec
        engine.no_truncation()
        engine.no_padding()
        engine.enable_truncation(max_length=spec.max_length, strategy="longest_first",
                                 direction=spec.truncation_side)
        engine.enable_padding(direction=spec.padding_side, pad_id=spec.pad_id, pad_type_id=spec.pad_type_id,
                              pad_token=spec.pad_token)
        return engine

    @property
    def engine(self):
        if self._engine is None:
            self._engine = self._load()
        return self._engine

    @classmethod
    def from_file(cls, path: Path, spec: TokenizerSpec, lazy: bool = False) -> TextTokenizer:
        return cls(path.read_text(encoding="utf-8"), spec, lazy)

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        import numpy as np

        if self._wordpiece is not None and len(texts) == 1:
            ids = self._wordpiece.ids(texts[0], self.spec.max_length)
            if ids is not None:
                fields = {"input_ids": ids, "attention_mask": [1] * len(ids), "token_type_ids": [0] * len(ids)}
                return {name: np.array([fields[name]], dtype=np.int64) for name in self.spec.inputs}
        encodings = self.engine.encode_batch(list(texts), add_special_tokens=True)
        attributes = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        return {name: np.array([getattr(e, attributes[name]) for e in encodings], dtype=np.int64)
                for name in self.spec.inputs}


def st_tokenize(st_model, inputs: Sequence[str]):
    """sentence-transformers' own tokenization as int64 arrays (the reference)."""
    def tokenize(texts: Sequence[str]) -> dict[str, np.ndarray]:
        import numpy as np

        features = st_model.preprocess(list(texts))
        return {name: features[name].numpy().astype(np.int64, copy=False) for name in inputs}

    return tokenize


def matches(tokenizer: TextTokenizer, st_model, texts: Sequence[str]) -> bool:
    """Whether `tokenizer` gives exactly sentence-transformers' ids for `texts` (one batch)."""
    texts = [*texts, *EDGE_TEXTS]
    ours = tokenizer(texts)
    reference = st_tokenize(st_model, tokenizer.spec.inputs)(texts)
    return all(ours[name].shape == reference[name].shape and bool((ours[name] == reference[name]).all())
               for name in tokenizer.spec.inputs)
