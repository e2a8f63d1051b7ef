"""What each chunk defines, as an exact field: the chunk that defines a queried symbol
ranks first.

Keys come from the chunk's symbol, in every spelling a user types: `Req.Request`,
`Request`, `request.ex` for the module; `put_header`, `put_header/3`,
`Request.put_header`, `Req.Request.put_header/3` for a function;
`re2::RE2::FullMatch`, `RE2::FullMatch`, `FullMatch` for a method; `ranch:start_listener/5`
for an Erlang function. Matching ignores case and the separator (`.`, `::`, `:`, `#`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np

from codekin.parts import base_symbol

# Chunk kinds that define something (windows and gap blocks do not).
DEFINING_KINDS = frozenset({"module", "attributes", "class", "function", "method", "macro", "guard",
                            "delegate", "template", "type", "struct", "interface", "trait", "protocol"})
HEAD_KINDS = frozenset({"module", "attributes", "class"})
# Chunk kinds that are stretches of lines, not named units: line windows and gap blocks.
FILLER_KINDS = frozenset({"window", "block"})
_PART = re.compile(r" \(part (\d+)/\d+\)$")
_ARITY = re.compile(r"/(\d+)$")
_SEPARATORS = re.compile(r"::|[.:#]|->")
_QUALIFIED = re.compile(r"^[A-Za-z_][\w!?]*(?:(?:::|[.:#]|->)[A-Za-z_~][\w!?]*)*(?:/\d+)?(?:\(\))?$")

# How strongly a key form identifies its chunk: the whole qualified name, then shorter forms.
EXACT, PARTIAL, FILE, IMPL, SHORTENED = 1.0, 0.85, 0.7, 0.75, 0.9
# Tie-breaks between chunks that answer to the same key: the name spelled in the query's
# case (`Group` the class, not `group` the function; `Req.Request`, not `Req.request/2`),
# a C struct under its tag (`LZ4F_cctx` -> `LZ4F_cctx_t`, `LZ4_stream_t` -> `LZ4_stream_u`),
# and a type over a function of the same name (a C++ constructor), in a file named after it.
CASELESS, TAG, CALLABLE, ELSEWHERE = 0.9, 0.95, 0.97, 0.97
# Several definitions of one name (`Mutex` in tokio's sync/, loom/ and mocks): the one the
# user means is the largest, public and documented one; the others count (lines / the
# largest's lines) ^ SMALLER. Tune half: the largest was the answer in 14 of 15 such queries.
SMALLER = 0.05
CALLABLE_KINDS = frozenset({"function", "method", "delegate", "guard"})
TYPE_KINDS = frozenset({"class", "struct", "type"})
_C_TAG = re.compile(r"_(?:s|t|u|e|st|tag|struct)$", re.I)


def _segments(symbol: str) -> tuple[list[str], str]:
    """(lowercased name segments, arity or '') of a symbol or a typed query."""
    symbol = symbol.strip().removesuffix("()")
    arity = ""
    match = _ARITY.search(symbol)
    if match:
        arity, symbol = match.group(1), symbol[:match.start()]
    return [s.lower() for s in _SEPARATORS.split(symbol) if s], arity


def definition_keys(symbol: str, kind: str, language: str = "") -> list[tuple[str, float]]:
    """(key, strength) pairs a chunk answers to; none for windows, blocks and later parts."""
    if kind not in DEFINING_KINDS:
        return []
    part = _PART.search(symbol)
    if part and part.group(1) != "1":
        return []
    name, _, implemented = base_symbol(symbol).partition(" ")
    segments, arity = _segments(name)
    if not segments or segments[-1] == "<anonymous>":
        return []
    # `Mutex (Debug)`, a trait implemented for Mutex, answers to `Mutex` after the struct itself.
    scale = IMPL if implemented.startswith("(") else 1.0
    if kind in CALLABLE_KINDS:
        scale *= CALLABLE
    keys = {".".join(segments): EXACT * scale}
    for n in range(1, len(segments)):
        keys.setdefault(".".join(segments[-n:]), PARTIAL * scale)
    if arity:
        for key in list(keys):
            keys.setdefault(f"{key}/{arity}", keys[key])
    if language in ("c", "cpp") and kind in TYPE_KINDS and _C_TAG.search(segments[-1]):
        tag = _C_TAG.sub("", segments[-1])
        for alias in (tag, f"{tag}_t"):
            keys.setdefault(alias, TAG * scale)
    return list(keys.items())


def last_name(symbol: str) -> str:
    """The name a symbol ends with, in its own case: `Req.Request.put_header/3` -> `put_header`."""
    name = base_symbol(symbol).partition(" ")[0].removesuffix("()")
    name = _ARITY.sub("", name)
    parts = [s for s in _SEPARATORS.split(name) if s]
    return parts[-1] if parts else ""


def query_keys(query: str) -> list[str]:
    """The key a symbol-like query (or one word of a question) asks for, with and without arity."""
    word = query.strip()
    if not _QUALIFIED.match(word):
        return []
    segments, arity = _segments(word)
    if not segments:
        return []
    key = ".".join(segments)
    return [f"{key}/{arity}", key] if arity else [key]


def looks_like_symbol(word: str) -> bool:
    return bool(_QUALIFIED.match(word.strip()))


# Names declared inside a chunk's text that no chunk of their own defines: Erlang types,
# records and macros, Elixir types, callbacks and structs, C macros and typedefs.
_DECLARED = {
    "erlang": re.compile(r"^-(?:type|opaque|record|define|callback)\s*\(?\s*([A-Za-z_]\w*)", re.M),
    "elixir": re.compile(r"^\s*@(?:type|typep|opaque|callback|macrocallback)\s+([a-z_]\w*[?!]?)", re.M),
    "c": re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)|^\s*typedef\b[^;{]*?\b([A-Za-z_]\w*)\s*;", re.M),
}
_DECLARED["cpp"] = _DECLARED["c"]


def declared_names(language: str, text: str) -> list[str]:
    pattern = _DECLARED.get(language)
    if pattern is None:
        return []
    return [name.lower() for match in pattern.finditer(text) for name in match.groups() if name]


class Definitions:
    """key -> rows that define it, built once per index snapshot."""

    def __init__(self, symbols: list[str], kinds: list[str], paths: list[str],
                 languages: list[str] | None = None, texts: list[str] | None = None) -> None:
        self.rows: dict[str, list[tuple[int, float]]] = {}
        languages = languages or [""] * len(symbols)
        heads_seen: set[tuple[str, str]] = set()
        self._names = [last_name(symbol) for symbol in symbols]
        for row, (symbol, kind) in enumerate(zip(symbols, kinds, strict=True)):
            if kind in HEAD_KINDS:  # a second attribute block of a module is not the module
                head = (paths[row], base_symbol(symbol))
                if head in heads_seen:
                    continue
                heads_seen.add(head)
            named = _file_stem(paths[row]).removesuffix("-inl") == _C_TAG.sub("", self._names[row].lower())
            for key, strength in definition_keys(symbol, kind, languages[row]):
                self.rows.setdefault(key, []).append((row, strength if named else strength * ELSEWHERE))
        declared: dict[str, list[tuple[int, float]]] = {}
        for row, (language, text) in enumerate(zip(languages if texts else [], texts or [], strict=True)):
            if kinds[row] not in ("function", "method"):
                for name in declared_names(language, text):
                    declared.setdefault(name, []).append((row, PARTIAL))
        for name, rows in declared.items():
            self.rows.setdefault(name, rows)  # a chunk of its own defines it better
        if texts is not None:
            self._prefer_largest(symbols, paths, texts)
        # A file answers to its name (`changeset.ex`, `Changeset`) by its head, else its first chunk.
        self._file_heads: dict[str, list[int]] = {}
        first: dict[str, int] = {}
        headed: set[str] = set()
        for row, (path, kind) in enumerate(zip(paths, kinds, strict=True)):
            first.setdefault(path, row)
            part = _PART.search(symbols[row])
            if kind in HEAD_KINDS and (part is None or part.group(1) == "1") and path not in headed:
                headed.add(path)
                self._file_heads.setdefault(_file_stem(path), []).append(row)
        for path, row in first.items():
            heads = self._file_heads.setdefault(_file_stem(path), [])
            if not any(paths[r] == path for r in heads):
                heads.append(row)
        self.size = len(symbols)

    def _prefer_largest(self, symbols: list[str], paths: list[str], texts: list[str]) -> None:
        """Scale down the smaller definitions of a name shared by several (see SMALLER); a
        definition's size is the lines of all its parts."""
        lines: dict[tuple[str, str], int] = {}
        for path, symbol, text in zip(paths, symbols, texts, strict=True):
            unit = (path, base_symbol(symbol))
            lines[unit] = lines.get(unit, 0) + text.count("\n") + 1
        for key, rows in self.rows.items():
            if len(rows) < 2:
                continue
            sizes = [lines[(paths[r], base_symbol(symbols[r]))] for r, _ in rows]
            largest = max(sizes)
            self.rows[key] = [(r, strength * (size / largest) ** SMALLER)
                              for (r, strength), size in zip(rows, sizes, strict=True)]

    def scores(self, words: list[str]) -> np.ndarray:
        """Per row, the strength of its best definition match with any of the words."""
        out = np.zeros(self.size, dtype=np.float32)
        for word in words:
            typed = last_name(word)
            for key, scale in self._known(query_keys(word)):
                for row, strength in self.rows.get(key, []):
                    name = self._names[row]
                    cased = CASELESS if name != typed and name.lower() == typed.lower() else 1.0
                    out[row] = max(out[row], strength * scale * cased)
            for row in self._file_heads.get(_stem(word), []):
                out[row] = max(out[row], FILE)
        return out

    def _known(self, keys: list[str]) -> list[tuple[str, float]]:
        """The keys the index holds; a qualified key it lacks falls back to its shorter forms
        (`cobra.Command` -> `command`, `tokio::sync::Mutex` -> `sync.mutex`, `mutex`): symbols
        rarely carry their package or crate."""
        found = []
        for key in keys:
            name, slash, arity = key.partition("/")
            segments = name.split(".")
            for n in range(len(segments), 0, -1):
                shorter = ".".join(segments[-n:]) + slash + arity
                if shorter in self.rows:
                    found.append((shorter, 1.0 if n == len(segments) else SHORTENED))
                    break
        return found

    def defines(self, words: list[str]) -> bool:
        return any(key in self.rows for word in words for key in query_keys(word))


_EXTENSIONS = frozenset("ex exs erl hrl c h cc cpp cxx hpp hh py go js mjs ts tsx jsx rs rb java kt".split())


def _file_stem(path: str) -> str:
    return PurePosixPath(path).name.lower().split(".")[0]


def _stem(word: str) -> str:
    """The file name a word may name: `lib/ecto/changeset.ex`, `changeset.ex`, `Changeset` and
    `Ecto.Changeset` -> `changeset`."""
    word = word.strip().lower()
    name = PurePosixPath(word).name
    if "." in name and name.rsplit(".", 1)[1] in _EXTENSIONS:
        return name.split(".")[0]
    segments, _ = _segments(word)
    return segments[-1] if segments else ""
