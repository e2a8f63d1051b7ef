"""doc -> code queries for Elixir and Erlang: find documented functions, blank their docs.

A documented function is an Elixir `def`/`defmacro`/`defdelegate`/`defguard` right after
an `@doc` string (other attributes such as `@spec` may sit between), or an Erlang function
whose first clause (or its `-spec`) sits right under a `%%` comment block or a `-doc`
attribute, and whose doc no other function's doc nearly repeats. Its doc lines become empty lines in the work copy, so every line number (and
every written query's span) stays valid; the doc's prose is the query and the function's
span (first head line to the last line of its last clause) the answer.

Text only (no codekin import): the same functions are picked whatever code is measured.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_QUERIES = 30
MIN_WORDS = 4  # a doc needs this many words ([A-Za-z]{2,}) of prose to be a query
TWIN_JACCARD = 0.6  # a doc sharing this much of its words with another function's doc is ambiguous
TEST_DIRS = frozenset({"test", "tests", "spec", "__tests__", "testing", "fixtures", "support"})


@dataclass(frozen=True)
class DocFunction:
    path: str
    name: str
    start: int  # the function's first line (1-based)
    end: int  # its last line
    doc_lines: tuple[int, ...]  # 1-based lines that hold the doc
    doc: str  # the query text

    @property
    def id(self) -> str:
        return f"doc:{self.path}:{self.name}:{self.start}"


def language_of(path: str) -> str | None:
    suffix = PurePosixPath(path).suffix
    return {".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".hrl": "erlang"}.get(suffix)


def is_test_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    name = parts[-1]
    return bool(TEST_DIRS & set(parts[:-1])) or name.endswith(("_test.exs", "_SUITE.erl", "_tests.erl"))


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z]{2,}", text))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# -- Elixir ------------------------------------------------------------------------------------
_EX_DOC = re.compile(r"^(?P<indent>\s*)@doc\s+(?P<rest>.*)$")
_EX_HEREDOC = re.compile(r"^~[sS]?(?P<delim>\"\"\"|''')\s*$|^(?P<plain>\"\"\"|''')\s*$")
_EX_ONELINE = re.compile(r'^~?[sS]?"(?P<text>(?:[^"\\]|\\.)+)"\s*$')
_EX_DEF = re.compile(r"^(?P<indent>\s*)(?P<kw>def|defmacro|defdelegate|defguard)\s+(?P<name>[a-z_][A-Za-z0-9_]*[?!]?)")
_EX_CONTINUE = ("rescue", "catch", "after", "else")


def elixir_functions(path: str, text: str) -> list[DocFunction]:
    lines = text.split("\n")
    out: list[DocFunction] = []
    i = 0
    while i < len(lines):
        match = _EX_DOC.match(lines[i])
        if not match:
            i += 1
            continue
        indent, rest = len(match["indent"]), match["rest"].strip()
        heredoc = _EX_HEREDOC.match(rest)
        if heredoc:
            delim = heredoc["delim"] or heredoc["plain"]
            close = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(delim)), None)
            if close is None:
                break
            doc_range, doc = (i, close), " ".join(" ".join(lines[i + 1:close]).split())
        else:
            one = _EX_ONELINE.match(rest)
            if not one:  # @doc false, @doc since: ..., @doc type: ...
                i += 1
                continue
            doc_range, doc = (i, i), " ".join(one["text"].replace('\\"', '"').split())
        k = doc_range[1] + 1
        while k < len(lines) and (not lines[k].strip() or lines[k].lstrip().startswith("@")
                                  or _indent(lines[k]) > indent):
            k += 1  # other attributes (@spec, @impl, @doc since: ...) and their continuation lines
        head = _EX_DEF.match(lines[k]) if k < len(lines) else None
        if head and len(head["indent"]) == indent and _is_prose(doc):
            end = _elixir_end(lines, k, head["kw"], head["name"])
            out.append(DocFunction(path, head["name"], k + 1, end + 1,
                                   tuple(range(doc_range[0] + 1, doc_range[1] + 2)), doc))
        i = doc_range[1] + 1
    return out


def _elixir_clause_end(lines: list[str], k: int) -> int:
    indent, last = _indent(lines[k]), k
    for m in range(k + 1, len(lines)):
        line = lines[m]
        if not line.strip():
            continue
        if _indent(line) > indent:
            last = m
            continue
        word = line.strip().split(" ", 1)[0]
        if _indent(line) == indent and word == "end":
            return m
        if _indent(line) == indent and word in _EX_CONTINUE:
            last = m
            continue
        break
    return last


def _elixir_end(lines: list[str], k: int, keyword: str, name: str) -> int:
    """The last line of the function's last consecutive clause (0-based)."""
    end = _elixir_clause_end(lines, k)
    indent = _indent(lines[k])
    while True:
        m = end + 1
        while m < len(lines) and not lines[m].strip():
            m += 1
        head = _EX_DEF.match(lines[m]) if m < len(lines) else None
        if not (head and head["kw"] == keyword and head["name"] == name and len(head["indent"]) == indent):
            return end
        end = _elixir_clause_end(lines, m)


# -- Erlang ------------------------------------------------------------------------------------
_ERL_HEAD = re.compile(r"^(?P<name>[a-z][A-Za-z0-9_@]*|'[^']+')\s*\(")
_ERL_DOC_ATTR = re.compile(r'^-doc\s*(?P<rest>.*)$')
_RULE = re.compile(r"^[-=*#%\s]*$")
_NOT_PROSE = re.compile(r"^(->|Func:|Returns?:|Args:|Types?:|@see|@end|@private|@hidden|@equiv|@todo)")


def prose(comment_line: str) -> str:
    """The prose of one Erlang comment line (bench_quality._prose, plus edoc tags): '' for
    rules (%%-----), `Func: name/2` labels, `-> Result` notes and @see/@private tags."""
    line = re.sub(r"^%+\s*(@doc)?", "", comment_line).strip()
    if _RULE.match(line) or _NOT_PROSE.match(line):
        return ""
    return re.sub(r"^Purpose:\s*", "", line)


def erlang_code(line: str) -> str:
    """The line without its comment (a `%` outside strings, quoted atoms and $c chars)."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c == "$":
            i += 1  # a character literal: $% is not a comment
            if i < len(line) and line[i] == "\\":
                i += 1
        elif c in "\"'":
            quote = c
        elif c == "%":
            return line[:i]
        i += 1
    return line


def _ends_form(line: str) -> bool:
    code = erlang_code(line).rstrip()
    return code.endswith(".") and not code.endswith("..")


def erlang_functions(path: str, text: str) -> list[DocFunction]:
    lines = text.split("\n")
    docs = _erlang_doc_attributes(lines)  # head line -> (doc lines, doc) from -doc attributes
    out: list[DocFunction] = []
    for h, line in enumerate(lines):
        head = _ERL_HEAD.match(line)
        if not head or not _first_clause(lines, h):
            continue
        if h in docs:
            doc_lines, doc = docs[h]
        else:
            top = h - 1
            while top >= 0 and lines[top].strip() and not lines[top].startswith("%"):
                top -= 1  # a -spec (possibly multi-line) between the comment and the head
            if top < h - 1 and not lines[top + 1].startswith("-spec"):
                continue
            doc_lines, doc = _comment_block_above(lines, top)
        if not doc_lines or not _is_prose(doc):
            continue
        end = h
        while end < len(lines) - 1 and not _ends_form(lines[end]):
            end += 1
        out.append(DocFunction(path, head["name"], h + 1, end + 1, tuple(n + 1 for n in doc_lines), doc))
    return out


def _first_clause(lines: list[str], h: int) -> bool:
    """False when the head continues a function (the code line above ends with ';')."""
    for m in range(h - 1, -1, -1):
        code = erlang_code(lines[m]).strip()
        if code:
            return not code.endswith(";")
    return True


def _comment_block_above(lines: list[str], top: int) -> tuple[list[int], str]:
    """The block of comment lines that ends on line `top` (0-based), and its prose."""
    if top < 0 or not lines[top].startswith("%"):
        return [], ""
    first = top
    while first - 1 >= 0 and lines[first - 1].startswith("%"):
        first -= 1
    block = list(range(first, top + 1))
    return block, " ".join(p for p in (prose(lines[n]) for n in block) if p)


def _erlang_doc_attributes(lines: list[str]) -> dict[int, tuple[list[int], str]]:
    """`-doc "text".` / `-doc \"\"\" ... \"\"\".` forms followed (after an optional -spec) by a
    function head: head line -> (the form's lines, its text)."""
    out: dict[int, tuple[list[int], str]] = {}
    for first, line in enumerate(lines):
        attr = _ERL_DOC_ATTR.match(line)
        if not attr:
            continue
        rest = attr["rest"].strip().lstrip("(").strip()
        if rest.startswith('"""'):
            close = next((j for j in range(first + 1, len(lines)) if lines[j].strip().startswith('"""')), None)
            if close is None:
                continue
            last, body = close, " ".join(" ".join(lines[first + 1:close]).split())
        elif rest.startswith('"') and _ends_form(line):
            last, body = first, " ".join(re.sub(r'^"|"\s*\)?\s*\.\s*$', "", rest).split())
        else:
            continue  # -doc false, -doc #{...}, a -doc of another shape
        h = last + 1
        if h < len(lines) and lines[h].startswith("-spec"):
            while h < len(lines) and not _ends_form(lines[h]):
                h += 1
            h += 1
        if h < len(lines) and _ERL_HEAD.match(lines[h]):
            out[h] = (list(range(first, last + 1)), body)
    return out


def _is_prose(doc: str) -> bool:
    """Enough words, and not only a pointer to another function ("See `foo/2`.")."""
    return _words(doc) >= MIN_WORDS and not _SEE_ONLY.match(doc)


_SEE_ONLY = re.compile(r"^See (also )?`?[\w.:/!?]+`?\.?$")


# -- selection and stripping -------------------------------------------------------------------
def documented_functions(path: str, text: str) -> list[DocFunction]:
    language = language_of(path)
    if language is None or is_test_path(path):
        return []
    return elixir_functions(path, text) if language == "elixir" else erlang_functions(path, text)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z]{2,}", text))


def without_twins(candidates: list[DocFunction], documented: list[DocFunction],
                  threshold: float = TWIN_JACCARD) -> list[DocFunction]:
    """The candidates whose doc no other documented function nearly repeats (Jaccard of word
    sets >= threshold: `put!/2` and `patch!/2` in Req, the same callback doc in every
    transport module): the twin, doc intact, would rightly answer the query."""
    words = {(f.path, f.start): _word_set(f.doc) for f in documented}
    out = []
    for f in candidates:
        mine = words.get((f.path, f.start)) or _word_set(f.doc)
        if not any(key != (f.path, f.start) and len(mine & other) >= threshold * len(mine | other)
                   for key, other in words.items()):
            out.append(f)
    return out


def select(repo: str, candidates: list[DocFunction], limit: int = MAX_QUERIES) -> list[DocFunction]:
    """Up to `limit` functions, seeded by the repository's name; in file order."""
    ordered = sorted(candidates, key=lambda f: (f.path, f.start))
    picked = random.Random(f"doc2code:{repo}").sample(ordered, min(limit, len(ordered)))
    return sorted(picked, key=lambda f: (f.path, f.start))


def strip_docs(text: str, functions: list[DocFunction]) -> str:
    """`text` with every doc line of `functions` made empty (the line count is unchanged)."""
    lines = text.split("\n")
    for function in functions:
        for n in function.doc_lines:
            lines[n - 1] = ""
    return "\n".join(lines)
