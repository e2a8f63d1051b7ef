"""Cut documentation and specs out of a chunk's text, per language.

`cut(language, text)` finds the doc (`@doc`/`@moduledoc`, `-doc`/`-moduledoc`, `%%` or
`//`/`/* */` comments above the code) and the spec (`@spec`, `-spec`) and returns their
text and line ranges, plus the code without them: the positive must not contain the
anchor, or the pair teaches nothing.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from codekin.chunking.spec import spec_for

MIN_DOC_WORDS = 4
_HEREDOC = re.compile(r'^(?:~[sS])?("""|\'\'\')')
_LICENSE = re.compile(r"copyright|licen[cs]e|%CopyrightBegin%", re.IGNORECASE)
_SEPARATOR = re.compile(r"^[\s%/*=#\-_+~]*$")
_ERL_COMMENT = re.compile(r"^\s*%+\s?")
_C_COMMENT = re.compile(r"^\s*(?://+!?|/\*+!?|\*+/?)\s?")


@dataclass
class Cut:
    doc: str = ""
    doc_lines: tuple[int, int] | None = None  # 0-based inclusive, within the chunk
    spec: str = ""
    spec_lines: tuple[int, int] | None = None
    lines: list[str] | None = None

    def code(self, without_doc: bool = True, without_spec: bool = False) -> str:
        """The chunk's text without the doc and/or spec lines."""
        drop: set[int] = set()
        if without_doc and self.doc_lines:
            drop.update(range(self.doc_lines[0], self.doc_lines[1] + 1))
        if without_spec and self.spec_lines:
            drop.update(range(self.spec_lines[0], self.spec_lines[1] + 1))
        kept = [line for i, line in enumerate(self.lines or []) if i not in drop]
        return "\n".join(kept).strip("\n")


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z]{2,}", text))


def _clean_doc(text: str) -> str:
    text = textwrap.dedent(text).strip()
    if _words(text) < MIN_DOC_WORDS or _LICENSE.search(text):
        return ""
    return text


def _string_attribute(lines: list[str], i: int, prefix: str) -> tuple[str, int] | None:
    """The string of `@doc "..."`/`@doc \"\"\"...\"\"\"`/`-doc "...".` at line i: (text, last line)."""
    rest = lines[i].strip()[len(prefix):].strip().lstrip("(").strip()
    heredoc = _HEREDOC.match(rest)
    if heredoc:
        quote = heredoc.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j].strip().startswith(quote):
                return "\n".join(lines[i + 1:j]), j
        return None
    match = re.match(r'^(?:~[sS])?"((?:[^"\\]|\\.)*)"', rest)
    return (match.group(1).replace('\\"', '"'), i) if match else None


def _spec_end(lines: list[str], i: int, erlang: bool) -> int:
    """Last line of a spec starting at line i (Erlang: up to the closing `.`)."""
    if erlang:
        for j in range(i, len(lines)):
            if lines[j].rstrip().endswith("."):
                return j
        return i
    indent = len(lines[i]) - len(lines[i].lstrip())
    j = i
    while j + 1 < len(lines):
        nxt = lines[j + 1]
        stripped = nxt.strip()
        if not stripped or len(nxt) - len(nxt.lstrip()) <= indent or stripped.startswith(("@", "def")):
            break
        j += 1
    return j


def _cut_elixir(lines: list[str]) -> Cut:
    cut = Cut(lines=lines)
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        for prefix in ("@moduledoc", "@doc"):
            if stripped.startswith(prefix) and not cut.doc_lines and not stripped.startswith("@doc false"):
                found = _string_attribute(lines, i, prefix)
                if found:
                    cut.doc, cut.doc_lines = found[0], (i, found[1])
                    i = found[1]
                break
        if stripped.startswith("@spec ") and not cut.spec_lines:
            end = _spec_end(lines, i, erlang=False)
            cut.spec, cut.spec_lines = "\n".join(lines[i:end + 1]).strip(), (i, end)
            i = end
        i += 1
    return cut


def _leading_comment(lines: list[str], pattern: re.Pattern[str], starts: tuple[str, ...]) -> Cut:
    cut = Cut(lines=lines)
    end = -1
    in_block = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if in_block or stripped.startswith(starts):
            end = i
            if stripped.startswith("/*"):
                in_block = "*/" not in stripped
            elif in_block and "*/" in stripped:
                in_block = False
            continue
        break
    if end >= 0:
        body = [pattern.sub("", line).replace("*/", "") for line in lines[:end + 1]]
        body = [b for b in body if not _SEPARATOR.match(b)]
        body = [re.sub(r"^@doc\s+", "", b) for b in body]
        cut.doc, cut.doc_lines = "\n".join(body), (0, end)
    return cut


def _cut_erlang(lines: list[str]) -> Cut:
    cut = _leading_comment(lines, _ERL_COMMENT, ("%",))
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not cut.doc_lines and stripped.startswith(("-doc", "-moduledoc")):
            prefix = "-moduledoc" if stripped.startswith("-moduledoc") else "-doc"
            found = _string_attribute(lines, i, prefix)
            if found:
                end = found[1] + (1 if found[1] + 1 < len(lines) and lines[found[1] + 1].strip() in (").", ".") else 0)
                cut.doc, cut.doc_lines = found[0], (i, end)
        if stripped.startswith("-spec") and not cut.spec_lines:
            end = _spec_end(lines, i, erlang=True)
            cut.spec, cut.spec_lines = "\n".join(lines[i:end + 1]).strip(), (i, end)
    return cut


def _cut_c(lines: list[str]) -> Cut:
    return _leading_comment(lines, _C_COMMENT, ("//", "/*"))


# LanguageSpec.doc_cut -> how a chunk of that doc style is cut.
_CUTTERS: dict[str, Callable[[list[str]], Cut]] = {"elixir": _cut_elixir, "erlang": _cut_erlang, "c": _cut_c}


def cut(language: str, text: str) -> Cut:
    """Doc and spec of a chunk; `doc` is "" when there is none worth using."""
    lines = text.split("\n")
    cutter = _CUTTERS.get(spec_for(language).doc_cut)
    if cutter is None:
        return Cut(lines=lines)
    result = cutter(lines)
    result.doc = _clean_doc(result.doc) if result.doc else ""
    if not result.doc:
        result.doc_lines = None
    return result
