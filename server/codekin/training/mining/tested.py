"""Test -> the function it tests: positive pairs matched by module and function name.

A test file names its subject: `Kin.LedgerTest` (ExUnit) tests `Kin.Ledger`, and
`ledger_tests`, `ledger_test` and `ledger_SUITE` (EUnit, Common Test) test `ledger`. A test
block (`test "..." do`, or an Erlang `*_test` function or suite case) that calls exactly one
function of its subject -- `Ledger.add(`, `Kin.Ledger.add(`, `ledger:add(` -- pairs with that
function when the training split defines it (held-out functions never take part). Calls of
two or more subject functions are left out: which one the test is about is a guess.
"""

from __future__ import annotations

import re
from pathlib import Path

from codekin.chunking import chunk_text
from codekin.chunking.chunk import base_symbol
from codekin.chunking.languages import language_for
from codekin.config import Config
from codekin.index.paths import path_role
from codekin.training.mining.snippets import Snippet
from codekin.training.pairs.batches import TextPair
from codekin.workspace import UnreadableFile, read_text, scan

_EX_CALL = re.compile(r"(?<![\w.:])((?:[A-Z]\w*\.)*[A-Z]\w*)\.([a-z_]\w*[!?]?)\s*\(")
_ERL_CALL = re.compile(r"(?<![\w:])([a-z]\w*):([a-z]\w*)\s*\(")
_ERL_SUFFIX = re.compile(r"_(?:tests?|SUITE)$")
_ERL_CASE_SKIP = frozenset({"all", "groups", "suite", "init_per_suite", "end_per_suite", "init_per_testcase",
                            "end_per_testcase", "init_per_group", "end_per_group"})


def function_key(snippet: Snippet) -> tuple[str, str] | None:
    """(module, function name) of an Elixir or Erlang function snippet, else None."""
    symbol = base_symbol(snippet.symbol).split("/")[0]
    if snippet.language == "erlang" and ":" in symbol:
        module, name = symbol.split(":", 1)
        return module, name
    if snippet.language == "elixir" and "." in symbol:
        module, name = symbol.rsplit(".", 1)
        return module, name
    return None


def subject_of(language: str, test_module: str) -> str | None:
    """The module a test module tests: Kin.LedgerTest -> Kin.Ledger, ledger_SUITE -> ledger."""
    if language == "elixir" and test_module.endswith("Test") and len(test_module) > 4:
        return test_module[:-4]
    if language == "erlang" and _ERL_SUFFIX.search(test_module):
        return _ERL_SUFFIX.sub("", test_module)
    return None


def called(language: str, text: str, subject: str) -> set[str]:
    """Names of the subject's functions the test text calls."""
    if language == "erlang":
        return {name for module, name in _ERL_CALL.findall(text) if module == subject}
    last = subject.rsplit(".", 1)[-1]
    return {name for module, name in _EX_CALL.findall(text) if module in (subject, last)}


def _test_blocks(path: str, text: str, config: Config) -> list[tuple[str, str, str]]:
    """(language, subject module, test text) of each test block in a test file."""
    language = language_for(path)
    out = []
    for chunk in chunk_text(path, text, config.index):
        symbol = base_symbol(chunk.symbol)
        if language == "elixir" and chunk.kind == "test":
            module = symbol.split(" ", 1)[0]
        elif language == "erlang" and chunk.kind == "function" and ":" in symbol:
            module, name = symbol.split("/")[0].split(":", 1)
            if name in _ERL_CASE_SKIP or not (name.endswith("_test") or module.endswith("_SUITE")):
                continue
        else:
            continue
        subject = subject_of(language or "", module)
        if subject:
            out.append((language or "", subject, chunk.text))
    return out


def tested_pairs(root: Path, config: Config, functions: list[Snippet]) -> list[TextPair]:
    """(test text, the function it tests) for the Elixir/Erlang test files of the repository,
    with the functions of `functions` (the training split's) as the only answers."""
    by_key: dict[tuple[str, str], list[Snippet]] = {}
    for snippet in functions:
        key = function_key(snippet)
        if key is not None:
            by_key.setdefault(key, []).append(snippet)
    out: list[TextPair] = []
    for source in scan(root, config.index).files:
        if path_role(source.path) != "test" or language_for(source.path) not in ("elixir", "erlang"):
            continue
        try:
            text = read_text(root, source.path)
        except UnreadableFile:
            continue
        for language, subject, block in _test_blocks(source.path, text, config):
            names = called(language, block, subject)
            found = by_key.get((subject, next(iter(names)))) if len(names) == 1 else None
            if found:
                target = found[0]  # all clauses of a function are one chunk; parts share its start
                out.append(TextPair(block, target.model_text, f"{target.path}:{target.start_line}", "test"))
    return out
