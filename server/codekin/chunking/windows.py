"""Overlapping line windows: the fallback for files without a grammar."""

from __future__ import annotations

from codekin.chunking.chunk import Unit


def window_units(start: int, end: int, size: int, stride: int, kind: str, symbol: str) -> list[Unit]:
    """Windows of `size` lines every `stride` lines covering [start, end] (0-based inclusive)."""
    units = []
    first = start
    while True:
        last = min(first + size - 1, end)
        units.append(Unit(kind, symbol, first, last))
        if last >= end:
            return units
        first += stride
