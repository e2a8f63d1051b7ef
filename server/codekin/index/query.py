"""What kind of query the user typed: a symbol, words that say what code does ("retry a
failed webhook with backoff"), a question about how the system works ("how does the router
dispatch to controllers"), a passage (a doc comment or a long description), or code.

Each kind weighs the channels differently (config.py [search]): a symbol is mostly exact
(definitions) and lexical, a question mostly dense, code mostly dense plus structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from codekin.index.definitions import looks_like_symbol
from codekin.index.lexical import terms

SYMBOL, QUESTION, CONCEPT, PASSAGE, CODE = "symbol", "question", "concept", "passage", "code"
KINDS = (SYMBOL, QUESTION, CONCEPT, PASSAGE, CODE)
PASSAGE_WORDS = 25  # longer than any question in the benchmark: a pasted doc or a description
MAX_QUERY_CHARS = 20_000  # a pasted file: its head says what it is; BM25 over 50 kB only adds noise

_CODE_MARKS = re.compile(r"[{};]|=>|->|::|\)\s*[{:]|^\s*(def|defp|defmodule|fn|func|function|class|import|"
                         r"#include|-module|pub|let|const|var|return)\b", re.M)
# Identifier shapes inside a question: snake_case, CamelCase with an inner capital,
# qualified names, name/arity.
_IDENTIFIER = re.compile(r"[A-Za-z_][\w!?]*(?:(?:::|[.:#])[A-Za-z_][\w!?]*)+(?:/\d+)?|[A-Za-z]\w*/\d+|"
                         r"[a-z]+_[\w]+|[A-Za-z][a-z0-9]+[A-Z]\w*|[A-Z]{2,}\w*")

_INTERROGATIVE = re.compile(r"(how|where|what|which|why|when|who)\b", re.I)
# A sentence of words: a doc comment pasted with its examples is still a question...
_PROSE = re.compile(r"^[A-Za-z][\w'`,-]*(?:\s+[\w'`(),.:;/-]+){2,}")
# ... unless a line of it starts a definition (code under a comment or a chunk's header line).
_DEFINITION_LINE = re.compile(r"^\s*(def|defp|defmodule|defmacro|fn|func|function|class|struct|impl|"
                              r"module|-module|pub|static|void|int|import|#include|#define)\b", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class Query:
    text: str
    kind: str
    terms: list[str]
    symbols: list[str] = field(default_factory=list)  # words that may name a definition

    @property
    def has_words(self) -> bool:
        return bool(self.terms)


def classify(text: str) -> str:
    stripped = text.strip()
    lines = [line for line in stripped.split("\n") if line.strip()]
    if len(lines) == 1 and " " not in stripped and looks_like_symbol(stripped):
        return SYMBOL
    marks = len(_CODE_MARKS.findall(stripped))
    if ((len(lines) >= 2 and marks >= 1) or marks >= 3 or len(lines) >= 4) and not _opens_with_prose(stripped):
        return CODE
    if len(stripped.split()) > PASSAGE_WORDS:
        return PASSAGE
    return CONCEPT if _INTERROGATIVE.match(stripped) else QUESTION


def _opens_with_prose(text: str) -> bool:
    """The text's first sentence is words without code marks ("Updates a request struct. ##
    Examples iex> ..."): relevance tune half, doc -> code MRR 0.414 -> 0.455."""
    first = _SENTENCE_END.split(text.split("\n", 1)[0].strip(), maxsplit=1)[0]
    return (first.endswith((".", "!", "?")) and bool(_PROSE.match(first)) and not _CODE_MARKS.search(first)
            and not _DEFINITION_LINE.search(text))


def parse(text: str, kind: str | None = None) -> Query:
    """The query as ranking sees it; `kind` overrides the guess (e.g. `similar` is code)."""
    text = text[:MAX_QUERY_CHARS]
    kind = kind or classify(text)
    if kind == SYMBOL:
        symbols = [text.strip()]
    elif kind in (QUESTION, CONCEPT, PASSAGE):
        symbols = [m.group() for m in _IDENTIFIER.finditer(text)]
    else:
        symbols = []
    return Query(text, kind, terms(text), symbols)
