"""The ` (part i/n)` suffix that names the pieces of an over-long unit split in parts.

Its own module, so the query path reads symbols without importing the chunkers (tree-sitter
specs and their patterns cost a cold search ~20 ms).
"""

from __future__ import annotations

import re

_PART = re.compile(r" \(part \d+/\d+\)$")


def part_symbol(symbol: str, number: int, total: int) -> str:
    """The symbol of piece `number` of an over-long unit split in `total` pieces."""
    return f"{symbol} (part {number}/{total})"


def base_symbol(symbol: str) -> str:
    """The symbol without the ` (part i/n)` that part_symbol adds."""
    return _PART.sub("", symbol)
