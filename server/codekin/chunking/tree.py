"""Small helpers over tree-sitter nodes shared by the language chunkers."""

from __future__ import annotations

from tree_sitter import Node


def text_of(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def inner_boundaries(node: Node, depth: int = 3) -> list[int]:
    """Start lines of nested statements: the places an over-long unit may be split."""
    rows: set[int] = set()
    frontier = [node]
    for _ in range(depth):
        children = [c for n in frontier for c in n.named_children]
        rows.update(c.start_point.row for c in children if c.start_point.row > node.start_point.row)
        frontier = children
    return sorted(rows)


def leading_comments(node: Node) -> int:
    """The first row of the comment block directly above `node` (or its own row)."""
    row = node.start_point.row
    prev = node.prev_named_sibling
    while prev is not None and prev.type == "comment" and prev.end_point.row >= row - 1:
        row = prev.start_point.row
        prev = prev.prev_named_sibling
    return row
