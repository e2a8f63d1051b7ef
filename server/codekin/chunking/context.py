"""What a module is for, in one short phrase: the context line a function chunk carries.

A function stripped of its neighbours loses the module-level meaning a reader gets from
the `@moduledoc` or the comment at the top of the file. The first sentence of that text
(licence boilerplate skipped, at most MAX_WORDS words) goes into the chunk's header, so
the model and the lexical index see "what this module is" next to every function in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WORDS = 16  # the header stays short: it is embedded with every chunk of the module

_MODULEDOC = re.compile(r'@moduledoc\s+(?:~[sS])?(?:"""\n(?P<block>.*?)"""|"(?P<line>(?:[^"\\\n]|\\.)*)")', re.S)
_LICENCE = re.compile(r"copyright|licen[cs]e|all rights reserved|spdx-|warrant|applicable law|permission to use|"
                      r"hereby granted|as is\b|merchantability|redistribution|free to use|\bliab|damages|negligence|disclaim", re.I)
# Lines about who wrote a file and when, not what it is for.
_CREDIT = re.compile(r"^@(author|copyright|version|since)\b|\(c\)|<[^<>\s]+@[^<>\s]+>", re.I)
# `//!`, `///` and `/*!` are doc comments; `#` starts a comment unless it is a preprocessor line, a
# shebang or a Rust attribute (`#![...]`).
_COMMENT = re.compile(r"^\s*(%+|//+!?|/\*+!?|\*+(?!/)|#+(?![!\[]|(?:include|define|undef|ifn?def|if|elif|else|endif|pragma|"
                      r"import|error|warning|line)\b))\s?")
_NOT_PROSE = re.compile(r"^!|-\*-")  # an escript's `%%!` flags line, an editor's `-*- erlang -*-` mode line
_RULE = re.compile(r"^[-=*#%/\s]*$")
_TAG = re.compile(r"^@(doc|author|copyright|version|since|file|brief)\b\s*")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)`'\"][.!?])\s")


def first_sentence(text: str, max_words: int = MAX_WORDS) -> str:
    """The first sentence of a doc text, whitespace collapsed, at most `max_words` words."""
    flat = " ".join(text.split())
    if not flat:
        return ""
    sentence = _SENTENCE_END.split(flat, maxsplit=1)[0]
    words = sentence.split()
    return " ".join(words[:max_words])


@dataclass(frozen=True)
class ModuleDoc:
    """A module's doc and the 0-based rows of the text it was read from."""

    text: str = ""
    rows: tuple[int, ...] = ()


def elixir_moduledoc(head_text: str) -> ModuleDoc:
    """The `@moduledoc` of an Elixir module head (the first one of a file; empty when missing
    or `false`)."""
    match = _MODULEDOC.search(head_text)
    if match is None:
        return ModuleDoc()
    first, last = head_text.count("\n", 0, match.start()), head_text.count("\n", 0, match.end())
    return ModuleDoc(match["block"] if match["block"] is not None else match["line"] or "",
                     tuple(range(first, last + 1)))


def leading_comment(text: str, max_lines: int = 80) -> str:
    """The first comment paragraph near the top of a file that is not licence boilerplate
    (Erlang `%%%`/`%% @doc`, C/C++ `//` and `/* */`)."""
    return leading_comment_doc(text, max_lines).text


def leading_comment_doc(text: str, max_lines: int = 80) -> ModuleDoc:
    """leading_comment, with the rows it was read from."""
    paragraphs: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for row, line in enumerate(text.split("\n")[:max_lines]):
        match = _COMMENT.match(line)
        if match is None:
            if current:
                paragraphs.append(current)
                current = []
            if line.strip() and not line.lstrip().startswith(("-", "#")):
                break  # code: the file's own comment, if any, is above
            continue
        body = _comment_body(line, match)
        if _RULE.match(body) or _NOT_PROSE.search(body):
            if current:
                paragraphs.append(current)
                current = []
            continue
        current.append((row, body))
    if current:
        paragraphs.append(current)
    for paragraph in paragraphs:
        # credit lines (author, copyright holder) are dropped; a paragraph at least half licence is
        # boilerplate, the rest of it too ("... under the Apache 2 license. / See the NOTICE ...")
        lines = [line for _, line in paragraph if not _CREDIT.search(line)]
        kept = [line for line in lines if not _LICENCE.search(line)]
        joined = " ".join(kept)
        if 2 * len(kept) > len(lines) and len(re.findall(r"[A-Za-z]{2,}", joined)) >= 3:
            return ModuleDoc(joined, tuple(row for row, _ in paragraph))
    return ModuleDoc()


def _comment_body(line: str, match: re.Match[str]) -> str:
    """The text of a comment line: markers (also nested ones, `%%% %% x`) and @doc-like tags off."""
    body = line[match.end():].strip().removesuffix("*/").strip()
    while (inner := _COMMENT.match(body)) is not None and inner.end() > 0:
        body = body[inner.end():].strip()
    return body if _CREDIT.match(body) else _TAG.sub("", body)


SECTION_WORDS = 10  # a section heading is a title, not a paragraph


def section_headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first row, row after it, heading) of every comment block with words, such as
    `%% exs64 PRNG: Xorshift64*` or `# Client API` above a group of functions. The heading is the
    block's first line with words (rules and tags skipped); licence blocks are left out."""
    out: list[tuple[int, int, str]] = []
    row = 0
    while row < len(lines):
        if _COMMENT.match(lines[row]) is None:
            row += 1
            continue
        start = row
        while row < len(lines) and _COMMENT.match(lines[row]) is not None:
            row += 1
        bodies = [_comment_body(line, match) for line in lines[start:row] if (match := _COMMENT.match(line))]
        if _LICENCE.search(" ".join(bodies)):
            continue
        heading = next((b for b in bodies if not _RULE.match(b) and not _CREDIT.search(b)
                        and re.search(r"[A-Za-z]{2,}", b)), "")
        if heading:
            out.append((start, row, " ".join(heading.split()[:SECTION_WORDS])))
    return out


def chunk_context(summary: str, section: str, excerpt: str) -> str:
    """A chunk's context: its module summary, its section heading in parentheses (unless one
    holds the other: the file's own comment heads no section), then what it delegates to
    (delegation.py) after "via:", a query stop word, so the label never matches a search."""
    text = summary
    if section and not (summary and (section in summary or summary in section)):
        text = f"{text} ({section})" if text else section
    if excerpt:
        text = f"{text} via: {excerpt}" if text else f"via: {excerpt}"
    return text
