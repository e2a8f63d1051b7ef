"""Function/class chunking for C/C++ and every other language with a grammar.

A definition becomes one unit; a class longer than the chunk limit becomes a head
unit plus one unit per method. Scopes (namespaces, extern "C", #if blocks) are walked.
"""

from __future__ import annotations

from tree_sitter import Node

from codekin.chunking.chunk import Unit
from codekin.chunking.tree import inner_boundaries, leading_comments, text_of

FUNCTION_TYPES = {
    "function_definition", "function_declaration", "function_item", "method_definition",
    "method_declaration", "method", "singleton_method", "function_signature_item",
    "constructor_declaration", "arrow_function", "func_literal",
}
CLASS_TYPES = {
    "class_specifier", "struct_specifier", "union_specifier", "enum_specifier", "class_definition",
    "class_declaration", "interface_declaration", "struct_item", "enum_item", "trait_item",
    "impl_item", "class", "module", "object_declaration", "type_declaration",
}
SCOPE_TYPES = {
    "translation_unit", "namespace_definition", "declaration_list", "linkage_specification",
    "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "program", "source_file",
    "module", "field_declaration_list", "class_body", "block", "body_statement",
    "export_statement", "decorated_definition", "template_declaration", "expression_statement",
    "lexical_declaration", "variable_declarator", "field_declaration", "declaration",
    "type_definition", "mod_item",
}
NAMED_SCOPES = {"namespace_definition", "mod_item"}


def _name(node: Node) -> str:
    name = node.child_by_field_name("name")
    if name is not None:
        return text_of(name)
    declarator = node.child_by_field_name("declarator")
    while declarator is not None:  # C/C++: pointer/reference/function declarators nest
        inner = declarator.child_by_field_name("declarator")
        if inner is None or declarator.type in ("qualified_identifier", "destructor_name"):
            return text_of(declarator)
        declarator = inner
    return ""


def _is_nif_table(node: Node) -> bool:
    return node.type == "declaration" and "ErlNifFunc" in text_of(node.child_by_field_name("type"))


class DefinitionChunker:
    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.units: list[Unit] = []

    def run(self, root: Node) -> list[Unit]:
        self._walk(root, "")
        return self.units

    def _add(self, node: Node, kind: str, symbol: str) -> None:
        # A template's `template <...>` line and the comments above belong to the unit.
        outer = node.parent if node.parent is not None and node.parent.type == "template_declaration" else node
        start = leading_comments(outer)
        self.units.append(Unit(kind, symbol, start, node.end_point.row, inner_boundaries(node)))

    def _walk(self, node: Node, scope: str, in_class: bool = False) -> None:
        for child in node.named_children:
            kind = child.type
            if _is_nif_table(child):
                self._add(child, "nif_table", _qualify(scope, _name(child) or "nif_funcs"))
            elif kind in FUNCTION_TYPES:
                name = _name(child) or "<anonymous>"
                self._add(child, "method" if in_class or "::" in name else "function", _qualify(scope, name))
            elif kind in CLASS_TYPES and child.child_by_field_name("body") is not None:
                self._class(child, scope)
            elif kind in SCOPE_TYPES or kind in NAMED_SCOPES:
                inner = _qualify(scope, _name(child)) if kind in NAMED_SCOPES and _name(child) else scope
                self._walk(child, inner, in_class)

    def _class(self, node: Node, scope: str) -> None:
        symbol = _qualify(scope, _name(node) or "<anonymous>")
        lines = node.end_point.row - node.start_point.row + 1
        if lines <= self.max_lines:
            self._add(node, "class", symbol)
            return
        head = Unit("class", symbol, leading_comments(node), node.end_point.row)
        self.units.append(head)
        before = len(self.units)
        body = node.child_by_field_name("body")
        if body is not None:  # a class this long has a body; tree-sitter types it as optional
            self._walk(body, symbol, in_class=True)
        if len(self.units) > before:
            head.end = max(head.start, min(u.start for u in self.units[before:]) - 1)
        head.boundaries = inner_boundaries(node)


def _qualify(scope: str, name: str) -> str:
    return f"{scope}::{name}" if scope else name


def definition_units(root: Node, max_lines: int) -> list[Unit]:
    return DefinitionChunker(max_lines).run(root)
