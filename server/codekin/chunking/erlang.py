"""Erlang: a function with all its clauses, -spec and comments above; module attributes."""

from __future__ import annotations

from tree_sitter import Node

from codekin.chunking.chunk import Unit
from codekin.chunking.tree import inner_boundaries, leading_comments, text_of


def _signature(fun_decl: Node) -> tuple[str, int]:
    clause = fun_decl.named_children[0] if fun_decl.named_children else None
    if clause is None:
        return "?", 0
    name = text_of(clause.child_by_field_name("name")) or "?"
    args = next((c for c in clause.named_children if c.type == "expr_args"), None)
    return name, len(args.named_children) if args is not None else 0


def erlang_units(root: Node) -> list[Unit]:
    module = "?"
    units: list[Unit] = []
    attributes: Unit | None = None
    group: Unit | None = None
    group_key: tuple[str, int] | None = None
    spec_start: int | None = None
    for node in root.named_children:
        if node.type == "module_attribute":
            module = text_of(node.child_by_field_name("name")) or module
        if node.type == "fun_decl":
            key = _signature(node)
            if group is not None and key == group_key:
                group.end = node.end_point.row
                group.boundaries += [node.start_point.row, *inner_boundaries(node)]
            else:
                start = leading_comments(node) if spec_start is None else spec_start
                group = Unit("function", f"{module}:{key[0]}/{key[1]}", start, node.end_point.row,
                             inner_boundaries(node))
                group_key = key
                units.append(group)
            spec_start = None
            attributes = None
        elif node.type == "spec" or (node.type == "wild_attribute" and text_of(node).startswith("-doc")):
            # -spec and OTP 27 -doc belong to the function below (keep the first one's start)
            spec_start = leading_comments(node) if spec_start is None else spec_start
        elif node.type == "comment":
            continue
        else:  # -module, -export, -record, -define, -type ...: one block per run
            group, group_key, spec_start = None, None, None
            if attributes is None:  # with the comment above (the module's own doc, %%% @doc ...)
                attributes = Unit("attributes", module, leading_comments(node), node.end_point.row)
                units.append(attributes)
            else:
                attributes.end = node.end_point.row
            attributes.boundaries.append(node.start_point.row)
    for unit in units:  # the module name may come after the first attribute block
        if unit.kind == "attributes":
            unit.symbol = module
    return units
