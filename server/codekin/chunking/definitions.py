"""Function/class chunking for C/C++ and every other language with a grammar.

A definition becomes one unit with the comments, attributes and wrappers (decorators,
`export`, `template <...>`, `typedef`) that belong to it; a class longer than the chunk limit
becomes a head unit, one unit per member and blocks for the lines between members. Scopes
(namespaces, extern "C", #if blocks) are walked. Which node is what: syntax.py; names: names.py.
"""

from __future__ import annotations

from tree_sitter import Node

from codekin.chunking.chunk import Unit, uncovered_runs
from codekin.chunking.names import binding, declarator_name, own_name
from codekin.chunking.syntax import (
    CLASS,
    FUNCTION,
    MACRO,
    NAMED_SCOPE,
    SCOPE,
    TYPE,
    WRAPPER,
    Syntax,
    syntax_for,
)
from codekin.chunking.tree import ATTACHED, inner_boundaries, last_row, leading_comments, text_of

_DEFINITIONS = (FUNCTION, MACRO, CLASS, TYPE, WRAPPER)


def _is_nif_table(node: Node) -> bool:
    return node.type == "declaration" and "ErlNifFunc" in text_of(node.child_by_field_name("type"))


def _documented(node: Node) -> str:
    """C/C++: the kind of a function declaration or function-like macro with a comment above
    it (the API doc of a header), else ""."""
    if node.type == "preproc_function_def":
        kind = MACRO
    elif node.type in ("declaration", "field_declaration"):
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type in ("pointer_declarator", "reference_declarator"):
            declarator = declarator.child_by_field_name("declarator") or declarator.named_children[-1]
        kind = "declaration" if declarator is not None and declarator.type == "function_declarator" else ""
    else:
        return ""
    return kind if kind and leading_comments(node) < node.start_point.row else ""


def _code(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type not in ATTACHED]


class DefinitionChunker:
    def __init__(self, syntax: Syntax, lines: list[str], max_lines: int, file_stem: str) -> None:
        self.syntax = syntax
        self.roles = syntax.roles
        self.lines = lines
        self.max_lines = max_lines
        self.file_stem = file_stem
        self.units: list[Unit] = []

    def run(self, root: Node) -> list[Unit]:
        self._walk(root, "")
        return self.units

    def _walk(self, node: Node, scope: str, in_class: bool = False) -> None:
        for child in node.named_children:
            role = self.roles.get(child.type)
            if _is_nif_table(child):
                self._add(child, "nif_table", self._qualify(scope, self._name(child) or "nif_funcs"))
            elif self.syntax.prototypes and (documented := _documented(child)):
                self._add(child, documented, self._qualify(scope, self._name(child)))
            elif role in (FUNCTION, MACRO):
                name = self._name(child)
                method = in_class or child.type == "method_declaration" or "::" in name
                kind = MACRO if role == MACRO else "method" if method else "function"
                self._add(child, kind, self._qualify(scope, name))
            elif role == TYPE or (role == CLASS and self._body(child) is not None):
                self._class(child, scope, walk_members=role == CLASS)
            elif role in (SCOPE, WRAPPER, CLASS):
                self._walk(child, scope, in_class)
            elif role == NAMED_SCOPE:
                self._walk(child, self._qualify(scope, own_name(child)), in_class)

    def _add(self, node: Node, kind: str, symbol: str) -> Unit:
        outer = self._outer(node)
        start = leading_comments(outer)
        above = list(range(start + 1, outer.start_point.row + 1))  # a long doc splits anywhere
        unit = Unit(kind, symbol, start, last_row(node), above + inner_boundaries(node))
        self.units.append(unit)
        return unit

    def _class(self, node: Node, scope: str, walk_members: bool) -> None:
        name = self._name(node)
        symbol = self._qualify(scope, name)
        head = self._add(node, "class", symbol)
        if not walk_members or head.end - head.start + 1 <= self.max_lines:
            return
        body = self._body(node)
        if body is None:
            return
        before = len(self.units)
        self._walk(body, self._qualify(scope, name.split(" (")[0]), in_class=True)  # not ` (Service)`
        members = self.units[before:]
        if not members:
            return
        first = min(members, key=lambda u: u.start)
        self.units += [Unit("block", symbol, start, end)
                       for start, end in uncovered_runs(members, self.lines, first.start, head.end)]
        head.end = max(head.start, first.start - 1)
        if node.type == "impl_item" and head.start == node.start_point.row and head.end <= body.start_point.row:
            self.units.remove(head)  # only `impl<S> Router<S> {`: context of the first member
            first.start = head.start

    def _outer(self, node: Node) -> Node:
        """The outermost wrapper that holds `node` and no other definition."""
        while node.parent is not None and self.roles.get(node.parent.type) == WRAPPER and self._sole(node.parent):
            node = node.parent
        return node

    def _sole(self, wrapper: Node) -> bool:
        return sum(1 for c in wrapper.named_children if self.roles.get(c.type) in _DEFINITIONS) == 1

    def _name(self, node: Node) -> str:
        """The name a wrapper binds the definition to (`res.send = function send`), else its own
        name, else the file's (`module.exports = {...}`)."""
        wrapper = node
        while wrapper.parent is not None and self.roles.get(wrapper.parent.type) == WRAPPER:
            wrapper = wrapper.parent
            bound = binding(wrapper)
            if bound:
                return bound
        if node.type in ("declaration", "field_declaration"):
            return declarator_name(node.child_by_field_name("declarator"))
        return own_name(node) or self.file_stem

    def _body(self, node: Node) -> Node | None:
        if node.type == "object":  # JS: an object literal of functions is a class
            return node if any(self._is_function(c) for c in node.named_children) else None
        body = node.child_by_field_name("body")
        if node.type == "impl_item" and body is not None and not _code(body):
            return None  # `unsafe impl Send for Mutex {}`: a line for the file's block
        return body

    def _is_function(self, node: Node) -> bool:
        if node.type == "pair":
            node = node.child_by_field_name("value") or node
        return self.roles.get(node.type) == FUNCTION

    def _qualify(self, scope: str, name: str) -> str:
        return f"{scope}{self.syntax.separator}{name}" if scope else name


def definition_units(root: Node, language: str, lines: list[str], max_lines: int, file_stem: str) -> list[Unit]:
    return DefinitionChunker(syntax_for(language), lines, max_lines, file_stem).run(root)
