"""C and C++ text the grammar cannot read as written: export macros.

`class SPDLOG_API logger {` is how libraries mark what a shared library exports, but the
grammar does not know the macro and reads the whole class as a function named `logger`, so
none of its members becomes a unit. The macro is blanked out (same length, so every byte
offset and line stays where it was) in the text given to the parser only.
"""

from __future__ import annotations

import re

# `class|struct|union MACRO Name` followed by what may follow a class name: (head)(MACRO).
_EXPORT_MACRO = re.compile(r"(\b(?:class|struct|union)\s+)([A-Z][A-Z0-9_]*[A-Z0-9_])"
                           r"(?=[ \t]+[A-Za-z_][\w:]*\s*(?:final\b|:|\{|<|;|$))", re.M)


def without_export_macros(text: str) -> str:
    """`text` with the export macro of every class head replaced by spaces."""
    return _EXPORT_MACRO.sub(lambda m: m[1] + " " * len(m[2]), text)
