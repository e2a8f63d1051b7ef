"""A BERT WordPiece tokenizer in plain Python, for one short ASCII text: a cold search's query.

Loading the `tokenizers` engine (its import and its JSON) costs a cold search ~35 ms; the query
is a few words. For the tokenizers that BERT-style models ship (BertNormalizer lower-casing,
BertPreTokenizer, WordPiece, `[CLS] $A [SEP]`) and printable ASCII text, the rules are short
and give the engine's ids exactly (tests/test_wordpiece.py compares them on real code and
random text). Anything else (another tokenizer, non-ASCII text, a special token's name in the
text, a long text or many) is left to the engine.
"""

from __future__ import annotations

import json
import string

MAX_CHARS = 2000  # longer texts (pasted code) go to the engine: faster there, and rarely a query
_ALLOWED = frozenset(string.printable) - frozenset("\x0b\x0c")  # printable ASCII, space, \t \n \r
_PUNCTUATION = frozenset(string.punctuation)  # BERT splits each off as a word ("_" too)


class WordPiece:
    """Token ids of one text, as the engine gives them; None when the text is not one it handles."""

    def __init__(self, vocab: dict[str, int], unk: str, prefix: str, max_word: int, cls: str, sep: str,
                 specials: list[str]) -> None:
        self.vocab, self.unk, self.prefix, self.max_word = vocab, vocab[unk], prefix, max_word
        self.cls, self.sep = vocab[cls], vocab[sep]
        self.specials = specials  # added tokens: matched in the raw text by the engine, so left to it

    @classmethod
    def from_engine_json(cls, text: str) -> WordPiece | None:
        """The rules of a serialized `tokenizers` engine, when it is a BERT WordPiece one."""
        try:
            engine = json.loads(text)
            normalizer, pre, model, post = (engine.get(k) or {} for k in
                                            ("normalizer", "pre_tokenizer", "model", "post_processor"))
            bert = (normalizer.get("type") == "BertNormalizer" and normalizer.get("lowercase") is True
                    and normalizer.get("clean_text") is True and pre.get("type") == "BertPreTokenizer"
                    and model.get("type") == "WordPiece" and post.get("type") == "TemplateProcessing")
            single = post.get("single") or []
            if not bert or len(single) != 3 or "Sequence" not in single[1] \
                    or any(next(iter(part.values())).get("type_id") != 0 for part in single):
                return None
            first, last = (single[i].get("SpecialToken", {}).get("id") for i in (0, 2))
            specials = [t["content"] for t in engine.get("added_tokens") or []]
            return cls(model["vocab"], model["unk_token"], model["continuing_subword_prefix"],
                       int(model["max_input_chars_per_word"]), first, last, specials)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def ids(self, text: str, max_length: int) -> list[int] | None:
        """[CLS] pieces [SEP], the pieces cut to `max_length` in all; None: ask the engine."""
        lower = text.lower()
        if len(text) > MAX_CHARS or not _ALLOWED.issuperset(text) or any(s in text or s.lower() in lower
                                                                          for s in self.specials):
            return None
        pieces: list[int] = []
        for word in _words(lower):
            pieces.extend(self._pieces(word))
        return [self.cls, *pieces[:max(max_length - 2, 0)], self.sep]

    def _pieces(self, word: str) -> list[int]:
        """Greedy longest-match-first; a word with a part outside the vocabulary is one [UNK]."""
        if len(word) > self.max_word:
            return [self.unk]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    out.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return out


def _words(text: str) -> list[str]:
    """BertPreTokenizer on ASCII: split on whitespace, and each punctuation mark is a word."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if char in _PUNCTUATION:
                if current:
                    words.append(current)
                    current = ""
                words.append(char)
            else:
                current += char
        if current:
            words.append(current)
    return words
