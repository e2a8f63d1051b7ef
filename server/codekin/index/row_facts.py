"""What ranking knows of each chunk row beyond its columns: the module head that encloses it,
the role of its path, its group of twin files, the definitions a declaration declares. Functions of the rows' paths, kinds and symbols
only, so the index keeps them beside the query file (query_file.py) and a cold search maps
them instead of computing them (~30-80 ms for 10k chunks); SearchIndex computes them for an
index without that copy.
"""

from __future__ import annotations

import numpy as np

from codekin.index.definitions import HEAD_KINDS
from codekin.index.paths import ROLES, is_test_symbol, path_role, twin_key
from codekin.parts import base_symbol

DEFINED_KINDS = frozenset({"function", "method", "macro", "template"})  # what a declaration declares


def rows_by_path(paths: list[str]) -> dict[str, list[int]]:
    """Each path's rows, paths in the order of their first row."""
    out: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        out.setdefault(path, []).append(i)
    return out


def parents(by_path: dict[str, list[int]], kinds: list[str], symbols: list[str]) -> np.ndarray:
    """For each chunk, the head chunk (module/class/attributes) of its file that encloses it."""
    parent = np.arange(len(kinds))
    for rows in by_path.values():
        heads = [r for r in rows if kinds[r] in HEAD_KINDS]
        if not heads:
            continue
        for r in rows:
            owners = [h for h in heads if symbols[r].startswith(symbols[h])] or heads[:1]
            parent[r] = max(owners, key=lambda h: len(symbols[h]))
    return parent


def roles(paths: list[str], symbols: list[str], by_path: dict[str, list[int]]) -> np.ndarray:
    """Each row's index in ROLES: its path's role, or test for a test inside a code file."""
    role_of = {p: ROLES.index(path_role(p)) for p in by_path}
    test = ROLES.index("test")
    return np.array([test if is_test_symbol(s) else role_of[p] for p, s in zip(paths, symbols, strict=True)],
                    dtype=np.int8)


def twin_groups(paths: list[str], by_path: dict[str, list[int]]) -> np.ndarray:
    """Each row's group: rows of twin files (twin_key) share one, numbered by first appearance."""
    group_of: dict[str, int] = {}
    twin_of = {p: twin_key(p) for p in by_path}  # once per file, not per chunk
    return np.array([group_of.setdefault(twin_of[p], len(group_of)) for p in paths], dtype=np.int64)


def declared(symbols: list[str], kinds: list[str]) -> np.ndarray:
    """(2, pairs): a C/C++ prototype's row (kind `declaration`) over the row of each function
    it declares (defined elsewhere, under its own name)."""
    defined: dict[str, list[int]] = {}
    for i, (symbol, kind) in enumerate(zip(symbols, kinds, strict=True)):
        if kind in DEFINED_KINDS:
            defined.setdefault(base_symbol(symbol), []).append(i)
    pairs = [(i, d) for i, (symbol, kind) in enumerate(zip(symbols, kinds, strict=True))
             if kind == "declaration" for d in defined.get(symbol, ())]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2).T.copy()


def row_facts(paths: list[str], kinds: list[str], symbols: list[str]) -> dict[str, np.ndarray]:
    """parent, roles, groups and declared of the rows, as the query file keeps them."""
    by_path = rows_by_path(paths)
    return {"parent": parents(by_path, kinds, symbols), "roles": roles(paths, symbols, by_path),
            "groups": twin_groups(paths, by_path), "declared": declared(symbols, kinds)}
