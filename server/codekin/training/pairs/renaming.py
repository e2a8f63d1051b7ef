"""A function's renamed copy: identifiers renamed consistently, comment lines dropped.

Plain regular expressions (no parser), so the trainer's batching (pairs/batches.py) can use it
on a machine without tree-sitter.
"""

from __future__ import annotations

import re

IDENT = re.compile(r"(?<![\w.:@%?#$'])[A-Za-z_][A-Za-z0-9_]*(?![\w.])")
_KEYWORDS = frozenset("""
def defp defmacro defmacrop defmodule defstruct defguard defdelegate do end fn case cond with when if else
unless receive after try rescue catch raise throw true false nil and or not in use import alias require quote
unquote for of fun begin andalso orelse div rem band bor bxor bsl bsr xor return int char void const static
struct class public private protected unsigned signed long short double float bool auto size_t while switch
break continue default enum union typedef template typename namespace using new delete this nullptr sizeof
inline virtual override extern goto uint8_t uint16_t uint32_t uint64_t int32_t int64_t std ok error
""".split())
_COMMENT_LINE = re.compile(r"^\s*(#|%|//|/\*|\*)")


def renamed(text: str) -> str:
    """The code with comment lines dropped and its own identifiers renamed consistently
    (names after `.`/`:` -- remote calls, atoms -- and keywords stay)."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        word = match.group()
        if word.lower() in _KEYWORDS or len(word) < 2 or word[0].isupper() and "_" not in word:
            return word
        return names.setdefault(word, f"{'vw'[len(names) % 2]}{len(names)}")

    lines = [line for line in text.split("\n") if not _COMMENT_LINE.match(line)]
    return IDENT.sub(rename, "\n".join(lines))
