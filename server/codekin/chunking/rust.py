"""Rust items written inside a macro call, made visible to the definition walker.

`cfg_rt! { pub struct JoinHandle<T> { ... } }` and `pin_project! { ... }` hold whole items,
but the grammar sees only a token tree. When the braces hold nothing but items, the call's
`cfg_rt! {` and its closing `}` are blanked (rows and columns kept) and the file is parsed again.
"""

from __future__ import annotations

from tree_sitter import Node, Parser

MAX_DEPTH = 3  # `cfg_rt! { cfg_net! { ... } }`: one level per pass


def without_item_macros(parser: Parser, source: bytes, root: Node) -> Node:
    """The tree of `source` with every item-holding macro call at item level unwrapped."""
    for _ in range(MAX_DEPTH):
        spans = [span for call in _item_level_calls(root) for span in _wrapper_spans(parser, source, call)]
        if not spans:
            break
        data = bytearray(source)
        for start, end in spans:
            data[start:end] = bytes(b if b == 0x0A else 0x20 for b in data[start:end])
        source = bytes(data)
        root = parser.parse(source).root_node
    return root


def _item_level_calls(root: Node) -> list[Node]:
    calls, stack = [], [root]
    while stack:
        for child in stack.pop().named_children:
            if child.type == "macro_invocation":
                calls.append(child)
            elif child.type in ("mod_item", "declaration_list"):
                stack.append(child)
    return calls


def _wrapper_spans(parser: Parser, source: bytes, call: Node) -> list[tuple[int, int]]:
    """The byte spans of `name! {` and of the closing `}`, when the braces hold only items."""
    tree = call.named_children[-1] if call.named_children else None
    if tree is None or tree.type != "token_tree" or source[tree.start_byte:tree.start_byte + 1] != b"{":
        return []
    inside = parser.parse(source[tree.start_byte + 1:tree.end_byte - 1]).root_node
    if inside.has_error or not any(c.type.endswith("_item") for c in inside.named_children):
        return []
    return [(call.start_byte, tree.start_byte + 1), (tree.end_byte - 1, call.end_byte)]
