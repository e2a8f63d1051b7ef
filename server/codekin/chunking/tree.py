"""Small helpers over tree-sitter nodes shared by the language chunkers."""

from __future__ import annotations

from tree_sitter import Node

# Nodes that belong to the definition right below them: comments (every grammar's name for
# them) and Rust's `#[attribute]` lines.
ATTACHED = frozenset({"comment", "line_comment", "block_comment", "attribute_item"})


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


def last_row(node: Node) -> int:
    """The last row that holds text of `node` (a Rust `///` comment ends after its newline)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def leading_comments(node: Node, attached: frozenset[str] = ATTACHED) -> int:
    """The first row of the comments (and attributes) directly above `node`, or its own row.

    Each one touches the next (no blank line between, but a `/** doc */` block may stand one
    blank line above), starts its own line (not a trailing comment of the code before it) and
    documents what follows (not a Rust inner doc `//!`, which belongs to the enclosing module)."""
    row = node.start_point.row
    prev = node.prev_named_sibling
    while (prev is not None and prev.type in attached and last_row(prev) >= row - 1 - _doc_block(prev)
           and prev.child_by_field_name("inner") is None and not _trailing(prev)):
        row = prev.start_point.row
        prev = prev.prev_named_sibling
    return row


def _doc_block(comment: Node) -> int:
    return 1 if comment.text is not None and comment.text.startswith(b"/**") else 0


def _trailing(comment: Node) -> bool:
    before = comment.prev_sibling
    return before is not None and before.type not in ATTACHED and before.end_point.row == comment.start_point.row
