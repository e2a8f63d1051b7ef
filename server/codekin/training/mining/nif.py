"""Cross-language pairs: NIF stubs <-> the C/C++ functions registered for them, and
C++ classes <-> the Elixir/Erlang module that wraps them.

A C/C++ file registers NIFs in an `ErlNifFunc` table (`{"name", arity, c_function, flags}`)
and names its module in `ERL_NIF_INIT(module, ...)`. The stub is the function of that
name/arity in that module; when the module is not found, any module that calls
`load_nif` and has a function of the same name/arity is taken.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from codekin.training.mining.positives import HEAD_KINDS, Pair, function_name, make_pair, module_of
from codekin.training.mining.snippets import BEAM, CPP, Snippet, SourceFiles

_TABLE = re.compile(r"ErlNifFunc\s+\w+\s*\[\s*\w*\s*\]\s*=\s*\{(.*?)\}\s*;", re.DOTALL)
_ENTRY = re.compile(r'\{\s*"([^"]+)"\s*,\s*(\d+)\s*,\s*([A-Za-z_]\w*)')
_INIT = re.compile(r"ERL_NIF_INIT\s*\(\s*([\w.@$']+)")
_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]+")


@dataclass(frozen=True)
class NifEntry:
    path: str  # the C/C++ file holding the table
    module: str  # from ERL_NIF_INIT, "Elixir." removed; "" if absent
    name: str
    arity: int
    c_function: str


def nif_entries(files: SourceFiles, paths: set[str]) -> list[NifEntry]:
    entries = []
    for path in sorted(paths):
        text = files.texts.get(path, "")
        if files.family.get(path) != CPP or "ErlNifFunc" not in text:
            continue
        init = _INIT.search(text)
        module = init.group(1).strip("'").removeprefix("Elixir.") if init else ""
        for table in _TABLE.finditer(text):
            for name, arity, c_function in _ENTRY.findall(table.group(1)):
                entries.append(NifEntry(path, module, name, int(arity), c_function))
    return entries


def _nif_modules(files: SourceFiles, snippets: list[Snippet]) -> set[str]:
    """Modules whose file calls load_nif (candidate owners of stubs)."""
    paths = {s.path for s in snippets if s.family == BEAM and "load_nif" in files.texts.get(s.path, "")}
    return {module_of(s) for s in snippets if s.path in paths}


def nif_pairs(files: SourceFiles, snippets: list[Snippet]) -> tuple[list[Pair], dict[tuple, set[tuple]]]:
    """Stub <-> C function pairs in both directions, and C++ class <-> wrapper module pairs.

    Also returns extra pattern keys (Snippet.key -> keys) so the two ends of a pair are never
    picked as each other's negatives.
    """
    paths = {s.path for s in snippets}
    functions: dict[tuple[str, str], Snippet] = {}  # (module, name/arity) -> BEAM function chunk
    heads: dict[str, Snippet] = {}
    c_functions: dict[str, list[Snippet]] = defaultdict(list)
    classes: dict[str, Snippet] = {}
    for s in snippets:
        if s.family == BEAM:
            name = function_name(s)
            if name:
                functions.setdefault((module_of(s), name), s)
            elif s.kind in HEAD_KINDS:
                heads.setdefault(module_of(s), s)
        elif s.kind in ("function", "method"):
            c_functions[s.base_symbol.split("::")[-1]].append(s)
        elif s.kind == "class" and (s.symbol == s.base_symbol or "(part 1/" in s.symbol):
            classes.setdefault(s.base_symbol.split("::")[-1], s)
    loaders = _nif_modules(files, snippets)
    pairs: list[Pair] = []
    keys: dict[tuple, set[tuple]] = defaultdict(set)
    wrapped: dict[str, str] = {}  # table file -> module
    for entry in nif_entries(files, paths):
        wanted = f"{entry.name}/{entry.arity}"
        owners = [entry.module] if (entry.module, wanted) in functions else \
            sorted(m for m in loaders if (m, wanted) in functions)
        targets = sorted((c for c in c_functions.get(entry.c_function, []) if c.path == entry.path),
                         key=lambda c: c.start_line) or c_functions.get(entry.c_function, [])[:1]
        for module in owners[:1]:
            stub = functions[(module, wanted)]
            wrapped.setdefault(entry.path, module)
            for target in targets[:1]:
                key = ("nif", module, wanted)
                keys[stub.key].add(key)
                keys[target.key].add(key)
                for pair in (make_pair(stub, target, "nif"), make_pair(target, stub, "nif")):
                    pairs.extend([pair] if pair else [])
    for table_path, module in sorted(wrapped.items()):
        head = heads.get(module)
        if head is None:
            continue
        used = set(_CLASS_NAME.findall(files.texts.get(table_path, "")))
        for name in sorted(used & set(classes)):
            cls = classes[name]
            key = ("wrapper", module, name)
            keys[cls.key].add(key)
            keys[head.key].add(key)
            for pair in (make_pair(cls, head, "wrapper"), make_pair(head, cls, "wrapper")):
                pairs.extend([pair] if pair else [])
    return pairs, keys
