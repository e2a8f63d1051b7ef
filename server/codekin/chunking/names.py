"""The name a definition goes by: its own name, or the one a wrapper binds it to.

`impl<S> Service for Router<S>` -> `Router (Service)`; `func (mx *Mux) Use` -> `Mux.Use`;
`res.send = function send(...)` -> `res.send`; `typedef struct {...} LZ4_stream_t;` ->
`LZ4_stream_t`; `Foo.prototype.bar = function` -> `Foo.bar`.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from codekin.chunking.tree import text_of

# Left sides that say only "what this file exports": the definition's own name is better.
_EXPORTS = re.compile(r"^(module\.)?exports(\.default)?$")
_EXPORT_PREFIX = re.compile(r"^(module\.)?exports\.")
# Wrappers that type a name in front of the thing they hold, and the field that holds it.
_BINDINGS = {"assignment_expression": "left", "variable_declarator": "name", "pair": "key",
             "type_definition": "declarator"}
# Nodes around a type's own name: `*Mux`, `Router<S>`, `crate::x::Mutex`, `&'a T`.
_TYPE_WRAPPERS = {"pointer_type", "generic_type", "reference_type", "scoped_type_identifier",
                  "qualified_type", "parameter_declaration", "parameter_list", "abstract_type"}


def own_name(node: Node) -> str:
    """The name written in the definition itself ("" when it has none)."""
    if node.type == "impl_item":
        return _impl_name(node)
    if node.type == "method_declaration" and node.child_by_field_name("receiver") is not None:
        receiver = base_type(node.child_by_field_name("receiver"))  # Go
        return f"{receiver}.{text_of(node.child_by_field_name('name'))}"
    name = text_of(node.child_by_field_name("name")).strip("'\"`")
    if name:
        return name
    declarator = node.child_by_field_name("declarator")
    if declarator is not None:
        return declarator_name(declarator)
    if node.parent is not None and node.parent.type in ("declaration", "field_declaration"):
        variable = declarator_name(node.parent.child_by_field_name("declarator"))
        if variable:
            return variable  # `struct {...} opts;`
    if node.type == "enum_specifier":  # `enum { LZ4B_COMPRESSED, ... }`: its first constant
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        return text_of(first.child_by_field_name("name")) if first is not None else ""
    return ""


def declarator_name(declarator: Node | None) -> str:
    """C/C++: the identifier inside pointer, reference and function declarators."""
    while declarator is not None:
        if declarator.type in ("qualified_identifier", "destructor_name", "operator_name"):
            return _last_word(text_of(declarator))
        inner = declarator.child_by_field_name("declarator")
        if inner is None and declarator.type == "reference_declarator" and declarator.named_children:
            inner = declarator.named_children[-1]
        if inner is None:
            return text_of(declarator)
        declarator = inner
    return ""


def binding(wrapper: Node) -> str:
    """The name a wrapper gives what it holds ("" when none, or only `module.exports`)."""
    field = _BINDINGS.get(wrapper.type)
    if field is None:
        return ""
    target = wrapper.child_by_field_name(field)
    if wrapper.type == "type_definition":
        return declarator_name(target)
    text = " ".join(text_of(target).split()).strip("'\"`")
    if _EXPORTS.match(text) or (target is not None and target.type not in
                                ("identifier", "member_expression", "property_identifier", "string")):
        return ""
    return _EXPORT_PREFIX.sub("", text).replace(".prototype.", ".")


def base_type(node: Node | None) -> str:
    """The plain name of a type: `*Mux` -> `Mux`, `crate::x::Mutex<T>` -> `Mutex`."""
    while node is not None and node.type in _TYPE_WRAPPERS:
        inner = node.child_by_field_name("type") or node.child_by_field_name("name")
        if inner is None:
            named = [c for c in node.named_children if c.type not in ("identifier", "lifetime")]
            inner = named[0] if named else None
        if inner is None:
            break
        node = inner
    return text_of(node)


def _impl_name(node: Node) -> str:
    """Rust: `impl Router` -> `Router`; `impl<S> Service<R> for Router<S>` -> `Router (Service)`."""
    own = base_type(node.child_by_field_name("type"))
    trait = node.child_by_field_name("trait")
    return f"{own} ({base_type(trait)})" if trait is not None else own


def _last_word(text: str) -> str:
    """`SPDLOG_INLINE std::shared_ptr<logger> logger::clone` parses as one qualified name when a
    macro stands before the return type: the name is its last word outside `<...>`."""
    depth, start = 0, 0
    for i, char in enumerate(text):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char.isspace() and depth <= 0:
            start = i + 1
    return text[start:]
