"""Elixir: module heads, def/defp/defmacro/... grouped by name/arity with @doc/@spec/@impl."""

from __future__ import annotations

from tree_sitter import Node

from codekin.chunking.chunk import Unit
from codekin.chunking.tree import inner_boundaries, text_of

MODULE_DEFS = {"defmodule", "defprotocol", "defimpl"}
FUNCTION_DEFS = {
    "def": "function", "defp": "function", "defmacro": "macro", "defmacrop": "macro",
    "defguard": "guard", "defguardp": "guard", "defdelegate": "delegate", "defn": "function",
    "defnp": "function",
}
ATTACHED_ATTRIBUTES = {"doc", "spec", "impl", "deprecated", "since", "decorate"}


def _call_name(node: Node) -> str:
    if node.type != "call":
        return ""
    target = node.child_by_field_name("target")
    return text_of(target) if target is not None and target.type == "identifier" else ""


def _arguments(node: Node) -> Node | None:
    for child in node.named_children:
        if child.type == "arguments":
            return child
    return None


def _do_block(node: Node) -> Node | None:
    for child in node.named_children:
        if child.type == "do_block":
            return child
    return None


def _attribute_name(node: Node) -> str:
    if node.type == "unary_operator" and text_of(node).startswith("@"):
        operand = node.child_by_field_name("operand")
        if operand is not None:
            return _call_name(operand) or text_of(operand)
    return ""


def _function_signature(node: Node) -> tuple[str, int]:
    """(name, arity) of a def-like call: `def name(a, b)`, `def name(a) when g`, `def name`."""
    args = _arguments(node)
    head = args.named_children[0] if args is not None and args.named_children else None
    if head is not None and head.type == "binary_operator":  # guard: `name(args) when ...`
        head = head.child_by_field_name("left")
    if head is None:
        return "?", 0
    if head.type == "identifier":
        return text_of(head), 0
    if head.type == "call":
        target = head.child_by_field_name("target")
        inner = _arguments(head)
        return text_of(target), len(inner.named_children) if inner is not None else 0
    return text_of(head)[:40], 0


def _module_name(node: Node, parent: str) -> str:
    args = _arguments(node)
    name = text_of(args.named_children[0]) if args is not None and args.named_children else "?"
    if _call_name(node) == "defimpl" and args is not None:
        for child in args.named_children[1:]:
            if child.type == "keywords":
                name = f"{name}.{text_of(child).removeprefix('for:').strip()}"
    name = name.replace("__MODULE__", parent) if parent else name
    return f"{parent}.{name}" if parent and not name.startswith(parent) else name


def elixir_units(root: Node) -> list[Unit]:
    units: list[Unit] = []
    for child in root.named_children:
        if _call_name(child) in MODULE_DEFS:
            _module(child, "", units)
    return units


def _module(node: Node, parent: str, units: list[Unit]) -> None:
    name = _module_name(node, parent)
    body = _do_block(node)
    statements = body.named_children if body is not None else []
    head = Unit("module", name, node.start_point.row, node.end_point.row)
    units.append(head)
    first_unit_row: int | None = None
    pending: list[Node] = []  # @doc/@spec/@impl waiting for their def
    group: Unit | None = None  # the def group being extended with more clauses
    group_key: tuple[str, int] | None = None
    for stmt in statements:
        call = _call_name(stmt)
        if _attribute_name(stmt) in ATTACHED_ATTRIBUTES:
            pending.append(stmt)
            continue
        if call in FUNCTION_DEFS:
            fname, arity = _function_signature(stmt)
            key = (fname, arity)
            start = pending[0].start_point.row if pending else stmt.start_point.row
            if group is not None and key == group_key:
                group.end = stmt.end_point.row
                group.boundaries += [start, *inner_boundaries(stmt)]
            else:
                group = Unit(FUNCTION_DEFS[call], f"{name}.{fname}/{arity}", start,
                             stmt.end_point.row, inner_boundaries(stmt))
                group_key = key
                units.append(group)
            first_unit_row = start if first_unit_row is None else first_unit_row
            pending = []
            continue
        group, group_key, pending = None, None, []
        if call in MODULE_DEFS:
            first_unit_row = stmt.start_point.row if first_unit_row is None else first_unit_row
            _module(stmt, name, units)
        elif _do_block(stmt) is not None:  # schema, routes, test/describe, pipelines ...
            first_unit_row = stmt.start_point.row if first_unit_row is None else first_unit_row
            args = _arguments(stmt)
            label = " ".join(text_of(args).split())[:60] if args is not None else ""
            units.append(Unit(call or "block", f"{name} {call} {label}".strip(), stmt.start_point.row,
                              stmt.end_point.row, inner_boundaries(stmt)))
    # The head runs to the line before the first inner unit; loose statements after it
    # are picked up as gap blocks by the caller.
    if first_unit_row is not None:
        head.end = max(head.start, first_unit_row - 1)
        if head.end == head.start:  # a bare `defmodule X do` line says nothing its functions don't
            units.remove(head)
    head.boundaries = [s.start_point.row for s in statements if s.start_point.row <= head.end]
