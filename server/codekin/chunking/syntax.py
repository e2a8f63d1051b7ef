"""Which tree-sitter nodes define what, one table per language (definitions.py walks them).

Roles: a FUNCTION or MACRO is one unit; a CLASS is one unit, or a head plus its members when
long; a TYPE is one `class` unit never split by members (a Go type, a TS type alias); a SCOPE
is walked for definitions (a file, a namespace, #if blocks), a NAMED_SCOPE also qualifies
the names inside it (C++ namespace, Rust mod); a WRAPPER holds one definition and belongs
to it (a decorator, `export`, `template <...>`, `typedef`, the `res.send = ` of a function
expression) and may name it (bind.py).
"""

from __future__ import annotations

from dataclasses import dataclass

FUNCTION, MACRO, CLASS, TYPE = "function", "macro", "class", "type"
SCOPE, NAMED_SCOPE, WRAPPER = "scope", "named_scope", "wrapper"


@dataclass(frozen=True)
class Syntax:
    roles: dict[str, str]
    separator: str = "::"  # between a scope and a name: `Router::route`, `Mux.Use`
    prototypes: bool = False  # C/C++: a documented function declaration is a unit of its own


_ROLES = {"functions": FUNCTION, "macros": MACRO, "classes": CLASS, "types": TYPE, "scopes": SCOPE,
          "named_scopes": NAMED_SCOPE, "wrappers": WRAPPER}


def _table(**groups: str) -> dict[str, str]:
    """functions="node_type node_type ...", classes=... -> {node_type: role}."""
    return {node_type: _ROLES[group] for group, types in groups.items() for node_type in types.split()}


_C = dict(
    functions="function_definition",
    classes="struct_specifier union_specifier enum_specifier",
    scopes="translation_unit preproc_if preproc_ifdef preproc_else preproc_elif linkage_specification "
          "declaration_list",
    wrappers="type_definition declaration",
)
_JS = dict(
    functions="function_declaration generator_function_declaration function_expression function "
             "generator_function arrow_function method_definition",
    classes="class_declaration class object",
    scopes="program class_body",
    wrappers="export_statement expression_statement assignment_expression lexical_declaration "
            "variable_declaration variable_declarator pair",
)
_TS_EXTRA = dict(
    functions="function_signature method_signature abstract_method_signature",
    classes="abstract_class_declaration interface_declaration enum_declaration",
    types="type_alias_declaration",
    named_scopes="internal_module module",
    scopes="statement_block ambient_declaration",
)


def _merge(*groups: dict[str, str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for group in groups:
        merged.update(_table(**group))
    return merged


LANGUAGES: dict[str, Syntax] = {
    "c": Syntax(_merge(_C), prototypes=True),
    "cpp": Syntax(_merge(_C, dict(
        classes="class_specifier",
        named_scopes="namespace_definition",
        scopes="field_declaration_list",
        wrappers="template_declaration field_declaration",
    )), prototypes=True),
    "rust": Syntax(_table(
        functions="function_item function_signature_item",
        macros="macro_definition",
        classes="struct_item enum_item union_item trait_item impl_item",
        scopes="source_file declaration_list",
        named_scopes="mod_item",
    )),
    "go": Syntax(_table(
        functions="function_declaration method_declaration",
        types="type_spec type_alias",
        scopes="source_file",
        wrappers="type_declaration",
    ), separator="."),
    "python": Syntax(_table(
        functions="function_definition",
        classes="class_definition",
        scopes="module block if_statement elif_clause else_clause try_statement except_clause "
               "finally_clause",
        wrappers="decorated_definition",
    ), separator="."),
    "javascript": Syntax(_merge(_JS), separator="."),
    "typescript": Syntax(_merge(_JS, _TS_EXTRA), separator="."),
    "tsx": Syntax(_merge(_JS, _TS_EXTRA), separator="."),
}

# Every other language with a grammar: the node types of all of them, no wrappers.
DEFAULT = Syntax(_table(
    functions="function_definition function_declaration function_item method_definition "
             "method_declaration method singleton_method function_signature_item "
             "constructor_declaration arrow_function func_literal",
    classes="class_specifier struct_specifier union_specifier enum_specifier class_definition "
                "class_declaration interface_declaration struct_item enum_item trait_item impl_item "
                "class module object_declaration type_declaration",
    scopes="translation_unit declaration_list linkage_specification preproc_if "
          "preproc_ifdef preproc_else preproc_elif program source_file field_declaration_list "
          "class_body block body_statement export_statement decorated_definition template_declaration "
          "expression_statement lexical_declaration variable_declarator field_declaration declaration "
          "type_definition",
    named_scopes="namespace_definition mod_item",
))


def syntax_for(language: str) -> Syntax:
    return LANGUAGES.get(language, DEFAULT)
