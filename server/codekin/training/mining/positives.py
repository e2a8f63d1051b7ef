"""Positive pairs within one language family: shared pattern, doc -> code, signature -> body.

Each miner returns Pairs (anchor, positive, kind). `pattern_keys` also tells the negative
miner which snippets share a pattern with an anchor, so a negative is never a positive.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, replace

from codekin.chunking.languages import parser_for
from codekin.chunking.tree import leading_comments, text_of
from codekin.training.mining.cutting import cut
from codekin.training.mining.snippets import BEAM, CPP, Snippet, SourceFiles

PARTNERS_PER_ANCHOR = 4  # pattern groups can be large: each member pairs with this many others
MAX_DECLARATION_LINES = 12


@dataclass(frozen=True)
class Pair:
    anchor: Snippet
    positive: Snippet
    kind: str  # pattern | doc | signature | history | nif | wrapper

    @property
    def cross_language(self) -> bool:
        return self.anchor.family != self.positive.family


def make_pair(anchor: Snippet, positive: Snippet, kind: str) -> Pair | None:
    """A pair, unless the two texts are the same (nothing to learn)."""
    if anchor.model_text.strip() == positive.model_text.strip() or not positive.text.strip():
        return None
    return Pair(anchor, positive, kind)


# -- patterns ------------------------------------------------------------------------------
KNOWN_CALLBACKS: dict[str, set[str]] = {
    "GenServer": {"init/1", "handle_call/3", "handle_cast/2", "handle_info/2", "handle_continue/2",
                  "terminate/2", "code_change/3", "format_status/1"},
    "Supervisor": {"init/1"}, "Application": {"start/2", "stop/1", "prep_stop/1"},
    "Plug": {"init/1", "call/2"}, "Agent": set(), "Task": set(),
    "gen_server": {"init/1", "handle_call/3", "handle_cast/2", "handle_info/2", "handle_continue/2",
                   "terminate/2", "code_change/3", "format_status/1", "format_status/2"},
    "gen_statem": {"init/1", "callback_mode/0", "handle_event/4", "terminate/3", "code_change/4",
                   "format_status/1", "format_status/2"},
    "gen_event": {"init/1", "handle_event/2", "handle_call/2", "handle_info/2", "terminate/2",
                  "code_change/3"},
    "supervisor": {"init/1"}, "supervisor_bridge": {"init/1", "terminate/2"},
    "application": {"start/2", "stop/1", "prep_stop/1", "config_change/3"},
}
HEAD_KINDS = {"module", "attributes"}
PLAIN_KINDS = {"function", "macro", "guard", "delegate", "module", "attributes", "block", "window",
               "class", "method", "template", "nif_table"}
_EX_USE = re.compile(r"^\s*(?:use|@behaviour)\s+([A-Z][\w.]*|:\w+)", re.MULTILINE)
_ERL_BEHAVIOUR = re.compile(r"^-behaviou?r\(\s*'?([\w.]+)'?\s*\)", re.MULTILINE)
_EX_CALLBACK = re.compile(r"^\s*@(?:macro)?callback\s+(\w+[?!]?)\(", re.MULTILINE)
_ERL_CALLBACK = re.compile(r"^-callback\s+'?(\w+)'?\(", re.MULTILINE)
_IMPL = re.compile(r"^\s*@impl\s+([A-Z][\w.]*|true)", re.MULTILINE)
_C_HEAD = re.compile(r"\b([A-Za-z_]\w*)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*(?:const\s*)?(?:noexcept\s*)?\{",
                     re.DOTALL)
_C_BASES = re.compile(r"^\s*(?:class|struct)\s+\w+\s*(?:final\s*)?:\s*([^{]+)\{", re.MULTILINE)
_C_SPECIALIZATION = re.compile(r"^\s*(?:class|struct)\s+(\w+)\s*<", re.MULTILINE)


def module_of(snippet: Snippet) -> str:
    symbol = snippet.base_symbol.split(" ")[0]
    if snippet.kind in HEAD_KINDS or snippet.family == CPP:
        return symbol
    if snippet.language == "erlang":
        return symbol.split(":")[0]
    return symbol.rsplit(".", 1)[0] if "/" in symbol else symbol


def function_name(snippet: Snippet) -> str:
    """`name/arity` of a BEAM function chunk (`Mod.name/2`, `mod:name/2`)."""
    symbol = snippet.base_symbol
    if "/" not in symbol:
        return ""
    return symbol.split(":")[-1] if snippet.language == "erlang" else symbol.rsplit(".", 1)[-1]


def _arity(text: str, start: int) -> int:
    """Number of top-level arguments of the call whose `(` is at text[start - 1]."""
    depth, count, seen = 1, 0, False
    for ch in text[start:start + 2000]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return count + 1 if seen else 0
        elif ch == "," and depth == 1:
            count += 1
        elif not ch.isspace():
            seen = True
    return count + 1 if seen else 0


def _declared_callbacks(text: str, erlang: bool) -> set[str]:
    pattern = _ERL_CALLBACK if erlang else _EX_CALLBACK
    return {f"{m.group(1)}/{_arity(text, m.end())}" for m in pattern.finditer(text)}


def _c_signature(text: str) -> str:
    """Normalized parameter types of a C/C++ function definition (names dropped)."""
    match = _C_HEAD.search(text)
    if not match:
        return ""
    params = [p.strip() for p in match.group(2).split(",") if p.strip()]
    if len(params) < 2:
        return ""
    types = []
    for param in params:
        param = re.sub(r"\s*=.*$", "", param)
        brackets = "[]" if "[" in param else ""
        param = re.sub(r"\[.*?\]", "", param)
        param = re.sub(r"\s*([*&])\s*", r"\1 ", param).strip()
        words = param.split()
        if len(words) > 1 and re.match(r"^[A-Za-z_]\w*$", words[-1]) and words[-1] not in ("int", "char"):
            words = words[:-1]
        types.append(" ".join(words).replace(" *", "*").replace(" &", "&").strip() + brackets)
    return ", ".join(types)


def pattern_keys(files: SourceFiles, snippets: list[Snippet]) -> dict[tuple, frozenset[tuple]]:
    """Snippet.key -> the patterns it takes part in (behaviour, callback, DSL block, C signature)."""
    behaviours: dict[str, set[str]] = defaultdict(set)  # module -> behaviours it adopts
    callbacks: dict[str, set[str]] = defaultdict(set)  # behaviour module -> declared callbacks
    for s in snippets:
        if s.family != BEAM:
            continue
        erlang = s.language == "erlang"
        adopted = _ERL_BEHAVIOUR.findall(s.text) if erlang else _EX_USE.findall(s.text)
        if s.kind in HEAD_KINDS or erlang:
            behaviours[module_of(s)].update(b.lstrip(":") for b in adopted)
        callbacks[module_of(s)].update(_declared_callbacks(s.text, erlang))
    keys: dict[tuple, frozenset[tuple]] = {}
    for s in snippets:
        found: set[tuple] = set()
        if s.family == BEAM:
            module = module_of(s)
            if s.kind in HEAD_KINDS and (s.symbol == s.base_symbol or "(part 1/" in s.symbol):
                found.update(("adopts", b) for b in behaviours.get(module, ()))
            name = function_name(s)
            if name:
                impl = _IMPL.search(s.text)
                for b in behaviours.get(module, ()):
                    if name in KNOWN_CALLBACKS.get(b, set()) or name in callbacks.get(b, set()):
                        found.add(("callback", b, name))
                if name in callbacks.get(module, set()):  # the behaviour's own dispatching function
                    found.add(("callback", module, name))
                if impl and impl.group(1) != "true":
                    found.add(("callback", impl.group(1), name))
                elif impl and not found:
                    found.add(("callback", "", name))
            elif s.kind not in PLAIN_KINDS:  # schema, pipeline, test, describe, get, post ...
                found.add(("dsl", s.kind))
        else:
            if s.kind in ("function", "method"):
                signature = _c_signature(s.text)
                if signature:
                    found.add(("c-signature", signature))
                scope, _, name = s.base_symbol.rpartition("::")
                if s.kind == "method" and scope and name != scope.rpartition("::")[2]:
                    found.add(("method", name))  # the same method in another class: one interface
            if s.kind == "class":
                for bases in _C_BASES.findall(s.text[:400]):
                    found.update(("base", b.split()[-1]) for b in bases.split(",") if b.strip())
                found.update(("template", t) for t in _C_SPECIALIZATION.findall(s.text[:200]))
        keys[s.key] = frozenset(found)
    return keys


def pattern_pairs(snippets: list[Snippet], keys: dict[tuple, frozenset[tuple]], seed: int) -> list[Pair]:
    groups: dict[tuple, list[Snippet]] = defaultdict(list)
    for s in snippets:
        for key in keys.get(s.key, ()):
            groups[key].append(s)
    rng = random.Random(seed)
    pairs: dict[tuple, Pair] = {}
    for key in sorted(groups, key=repr):
        members = groups[key]
        for anchor in members:
            others = [m for m in members if m.base_symbol != anchor.base_symbol]
            for positive in rng.sample(others, min(PARTNERS_PER_ANCHOR, len(others))):
                pair = make_pair(anchor, positive, "pattern")
                if pair is not None:
                    pairs.setdefault((anchor.key, positive.key), pair)
    return list(pairs.values())


# -- doc -> code, spec -> body --------------------------------------------------------------
def _piece(s: Snippet, kind: str, text: str, lines: tuple[int, int]) -> Snippet:
    return replace(s, kind=kind, text=text, start_line=s.start_line + lines[0],
                   end_line=s.start_line + lines[1])


def _has_code(text: str) -> bool:
    return sum(1 for line in text.split("\n") if line.strip()) >= 1 and len(text.strip()) >= 20


def doc_and_signature_pairs(snippets: list[Snippet]) -> list[Pair]:
    pairs: list[Pair] = []
    for s in snippets:
        if s.kind not in ("function", "macro", "guard", "delegate", "module", "attributes", "class",
                          "method", "template"):
            continue
        parts = cut(s.language, s.text)
        if parts.doc and parts.doc_lines:
            code = parts.code(without_doc=True)
            if _has_code(code) and len(code.split("\n")) >= 2:
                pair = make_pair(_piece(s, "doc", parts.doc, parts.doc_lines), replace(s, text=code), "doc")
                pairs.extend([pair] if pair else [])
        if parts.spec and parts.spec_lines:
            body = parts.code(without_doc=True, without_spec=True)
            if _has_code(body):
                pair = make_pair(_piece(s, "spec", parts.spec, parts.spec_lines), replace(s, text=body),
                             "signature")
                pairs.extend([pair] if pair else [])
    return pairs


def _declarations(path: str, text: str, language: str) -> list[tuple[str, int, int, str]]:
    """(qualified name, first row, last row, text) of function declarations in a header."""
    parser = parser_for(language)
    if parser is None:
        return []
    lines = text.split("\n")
    out: list[tuple[str, int, int, str]] = []
    stack = [(parser.parse(text.encode("utf-8")).root_node, "")]
    while stack:
        node, scope = stack.pop()
        for child in node.named_children:
            if child.type in ("declaration", "field_declaration"):
                declarator = child.child_by_field_name("declarator")
                if declarator is not None and declarator.type == "function_declarator":
                    name = text_of(declarator.child_by_field_name("declarator"))
                    start, end = leading_comments(child), child.end_point.row
                    if name and end - start < MAX_DECLARATION_LINES:
                        qualified = f"{scope}::{name}" if scope else name
                        out.append((qualified, start, end, "\n".join(lines[start:end + 1]).strip()))
            elif child.type in ("class_specifier", "struct_specifier"):
                body = child.child_by_field_name("body")
                if body is not None:
                    stack.append((body, text_of(child.child_by_field_name("name"))))
            elif child.type in ("namespace_definition", "declaration_list", "linkage_specification",
                                "preproc_if", "preproc_ifdef", "preproc_else", "template_declaration"):
                stack.append((child, scope))
    return out


def header_pairs(files: SourceFiles, snippets: list[Snippet]) -> list[Pair]:
    """C/C++ header declaration (with its comment) -> the definition in a source file."""
    definitions: dict[str, list[Snippet]] = defaultdict(list)
    for s in snippets:
        if s.family == CPP and s.kind in ("function", "method"):
            parts = s.base_symbol.split("::")
            for n in range(1, min(3, len(parts)) + 1):
                definitions["::".join(parts[-n:])].append(s)
    paths = {s.path for s in snippets}
    pairs: list[Pair] = []
    for path in sorted(paths):
        if files.family.get(path) != CPP or not path.endswith((".h", ".hpp", ".hh", ".hxx")):
            continue
        language = "cpp" if path.endswith((".hpp", ".hh", ".hxx")) or "::" in files.texts[path] else "c"
        for name, start, end, text in _declarations(path, files.texts[path], language):
            for target in definitions.get(name, [])[:2]:
                anchor = Snippet(path, target.language, "declaration", name, start + 1, end + 1, text, CPP)
                pair = make_pair(anchor, target, "signature")
                pairs.extend([pair] if pair else [])
    return pairs
