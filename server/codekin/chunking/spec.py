"""One spec per language, looked up by name (`spec_for("elixir")`): its file extensions, how
its units are found, how its docs read (the context summary; the training doc cut), what its
thin functions delegate to, and the training family its files belong to by default.

Adding a language is one entry in SPECS (its grammar comes from tree-sitter-language-pack;
without one its files are cut into line windows). A language that reads its definitions from
syntax.py's node tables needs no `units`; one with a doc style of its own adds a cutter in
training/mining/cutting.py under its `doc_cut` name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tree_sitter import Node, Parser

from codekin.chunking.chunk import Unit
from codekin.chunking.context import ModuleDoc, elixir_moduledoc, leading_comment_doc
from codekin.chunking.cpp import without_export_macros
from codekin.chunking.delegation import ELIXIR_RULES, ERLANG_RULES, DelegationRules
from codekin.chunking.elixir import elixir_units
from codekin.chunking.erlang import erlang_units
from codekin.chunking.rust import without_item_macros

BEAM, CPP = "beam", "cpp"  # the training families (training.beam_globs, training.cpp_globs)


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    extensions: tuple[str, ...] = ()
    units: Callable[[Node], list[Unit]] | None = None  # its own unit finder; None: syntax.py's node tables
    parse_text: Callable[[str], str] | None = None  # the text the parser reads, when it differs (C/C++ export macros)
    prepare: Callable[[Parser, bytes, Node], Node] | None = None  # a tree rewrite before the units are read
    module_doc: Callable[[str], ModuleDoc] = leading_comment_doc  # a module's doc; its first sentence is the summary
    per_module_doc: bool = False  # a file holds several modules, each with its own doc (Elixir)
    doc_cut: str = ""  # how training cuts a chunk's doc and spec (cutting.py): "elixir", "erlang", "c"
    delegation: DelegationRules | None = None  # what a thin function hands its work to (delegation.py)
    family: str | None = None  # the training family whose default selection takes its files


SPECS: dict[str, LanguageSpec] = {spec.name: spec for spec in (
    LanguageSpec("elixir", (".ex", ".exs"), units=elixir_units, module_doc=elixir_moduledoc, per_module_doc=True,
                 doc_cut="elixir", delegation=ELIXIR_RULES, family=BEAM),
    LanguageSpec("erlang", (".erl", ".hrl"), units=erlang_units, doc_cut="erlang", delegation=ERLANG_RULES,
                 family=BEAM),
    LanguageSpec("c", (".c",), parse_text=without_export_macros, doc_cut="c", family=CPP),
    LanguageSpec("cpp", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".h"), parse_text=without_export_macros,
                 doc_cut="c", family=CPP),
    LanguageSpec("python", (".py",)),
    LanguageSpec("javascript", (".js", ".mjs")),
    LanguageSpec("typescript", (".ts",)),
    LanguageSpec("tsx", (".tsx",)),
    LanguageSpec("go", (".go",)),
    LanguageSpec("rust", (".rs",), prepare=without_item_macros),
    *(LanguageSpec(name, tuple(extensions.split())) for name, extensions in (
        ("java", ".java"), ("ruby", ".rb"), ("lua", ".lua"), ("bash", ".sh"), ("csharp", ".cs"),
        ("kotlin", ".kt"), ("scala", ".scala"), ("php", ".php"), ("swift", ".swift"), ("zig", ".zig"),
        ("haskell", ".hs"), ("ocaml", ".ml"), ("gleam", ".gleam"))),
)}
# File extension -> the language whose grammar parses it.
EXTENSIONS: dict[str, str] = {extension: spec.name for spec in SPECS.values() for extension in spec.extensions}


def spec_for(language: str) -> LanguageSpec:
    """The spec of a language; one without an entry (markdown, yaml, ...) gets the defaults."""
    return SPECS.get(language) or LanguageSpec(language)


def family_languages(family: str) -> frozenset[str]:
    """The languages whose files a training family takes by default."""
    return frozenset(spec.name for spec in SPECS.values() if spec.family == family)
