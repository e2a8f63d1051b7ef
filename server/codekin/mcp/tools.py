"""The tools as an agent sees them: names, descriptions and JSON schemas (plain data, no SDK).

The input schemas are also what arguments.py checks calls against, so what an agent reads
and what the server enforces cannot drift apart. They stay in the JSON Schema subset every
client accepts (no top-level anyOf): rules across fields are said in the descriptions and
checked in arguments.py.
"""

from __future__ import annotations

from typing import Any

from codekin.modes import SEARCH_MODES
from codekin.request_fields import MIN_SIMILARITY

MAX_LIMIT = 50  # each result carries a snippet: 50 of them stay well under 100 kB

SEARCH, SIMILAR, DEFINITION, STATUS, RETRAIN = "search", "similar", "definition", "status", "retrain"

_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
          "description": f"How many results to return (1-{MAX_LIMIT}; default 10)."}
_MODE = {"type": "string", "enum": list(SEARCH_MODES),
         "description": "hybrid (default): meaning and words together; dense: meaning only (the embedding "
                        "model); lexical: words and names only (BM25, works while the model loads)."}
_MIN_SIMILARITY = {"type": "number", "minimum": MIN_SIMILARITY[0], "maximum": MIN_SIMILARITY[1],
                   "description": "Drop results whose score is below this (cosine similarity; default 0)."}
_LANG = {"type": "string", "minLength": 1,
         "description": "Only code in this language: elixir, erlang, c, cpp, python, go, javascript, rust, ... "
                        "(`status` lists the languages in the index)."}
_PATH_GLOB = {"type": "string", "minLength": 1,
              "description": "Only files whose repository-relative path matches this glob, e.g. 'lib/**' "
                             "or '**/*_test.exs'; a directory without wildcards ('lib/') means everything under it."}
_TESTS = {"type": "boolean",
          "description": "Rank tests, fixtures and examples like the code (by default they are weighed down, "
                         "unless the query itself asks for tests)."}

_RESULT = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "Repository-relative path."},
        "start_line": {"type": "integer", "description": "First line, 1-based."},
        "end_line": {"type": "integer", "description": "Last line, 1-based and inclusive."},
        "symbol": {"type": "string", "description": "What the lines define, e.g. Shop.Cart.add_item/3."},
        "language": {"type": "string"},
        "kind": {"type": "string", "description": "function, module, class, ...; file for whole files."},
        "score": {"type": "number", "description": "Cosine similarity (definition: how exactly the name "
                                                   "matched; files: relative to the best file)."},
        "snippet": {"type": "string", "description": "The first lines of the code, capped; read the file at "
                                                     "start_line-end_line for all of it."},
    },
    "required": ["path", "start_line", "end_line", "symbol", "language", "kind", "score", "snippet"],
}
_RESULTS = {"type": "array", "items": _RESULT, "description": "Best first."}


def _schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


TOOLS: dict[str, dict[str, Any]] = {
    SEARCH: {
        "title": "Search the code",
        "description": (
            "Search this repository's code index by meaning and by name. The index holds syntax-aware chunks "
            "(functions, modules, classes) of every file git tracks. Use it when you know what code does but "
            "not what it is called or where it lives, before grepping. The query can be a symbol (Shop.Cart, "
            "put_header/3, re2::RE2::FullMatch), words that say what the code does (\"retry a failed webhook "
            "with exponential backoff\"), a question (\"how are orders persisted\") or a code snippet. Returns "
            "ranked chunks with path, 1-based lines, symbol, score and a short snippet: read the file at those "
            "lines for the whole code. files=true ranks whole files instead. The index follows commits and "
            "saves through codekin's hooks; `status` says whether it lags the files."),
        "inputSchema": _schema({
            "query": {"type": "string", "minLength": 1,
                      "description": "A symbol, a description in words, a question, or code."},
            "limit": _LIMIT, "mode": _MODE, "lang": _LANG, "path": _PATH_GLOB,
            "files": {"type": "boolean",
                      "description": "Rank whole files instead of chunks (\"which file handles X\"); each file "
                                     "comes with its best chunk's lines and snippet."},
            "tests": _TESTS, "min_similarity": _MIN_SIMILARITY,
        }, ("query",)),
        "outputSchema": _schema({
            "results": _RESULTS,
            "note": {"type": "string", "description": "Said when the answer needs a caveat, e.g. a symbol that "
                                                      "nothing in the index defines."},
        }, ("results",)),
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    SIMILAR: {
        "title": "Find similar code",
        "description": (
            "Find code similar to a piece of this repository or to a snippet. Give path and line for the "
            "function or module enclosing that line; add end_line for an exact span (a span holding a whole "
            "module compares modules as wholes); or give code alone (with language) for a snippet that is in no "
            "file, e.g. code you are about to write. Use it to find duplicates, other implementations of the same "
            "pattern, or how something alike was done elsewhere before writing it. The query's own lines are "
            "never among the results."),
        "inputSchema": _schema({
            "path": {"type": "string", "minLength": 1,
                     "description": "The file: repository-relative, or absolute inside the repository. With line."},
            "line": {"type": "integer", "minimum": 1,
                     "description": "A 1-based line inside the function or module to compare."},
            "end_line": {"type": "integer", "minimum": 1,
                         "description": "With line: the last line (inclusive) of the span to compare."},
            "code": {"type": "string", "minLength": 1,
                     "description": "Code to compare: alone, a snippet that is in no file; with path and line, the "
                                    "unsaved text of those lines."},
            "language": {"type": "string", "minLength": 1,
                         "description": "The language of code when no path says it (elixir, python, ...)."},
            "limit": _LIMIT, "mode": _MODE, "min_similarity": _MIN_SIMILARITY,
        }),
        "outputSchema": _schema({
            "query": {"description": "The indexed chunk compared (path, lines, symbol), or null for a span or "
                                     "a snippet.",
                      "anyOf": [{"type": "null"}, {"type": "object"}]},
            "results": _RESULTS,
        }, ("query", "results")),
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    DEFINITION: {
        "title": "Go to definition",
        "description": (
            "Find where a symbol is defined: a module, class, function, method, macro, type or record, in any "
            "spelling you would type: qualified or not, with or without arity (Shop.Cart, Cart, add_item/3, "
            "Shop.Cart.add_item, re2::RE2::FullMatch, gun:open/3), or a file name (cart.ex). Returns the defining "
            "chunks, exact matches first (score 1; shorter forms and file names less), code before tests. An "
            "empty list means nothing in the index defines it: `search` finds where the name is used."),
        "inputSchema": _schema({
            "symbol": {"type": "string", "minLength": 1, "description": "The name to look up."},
            "limit": {**_LIMIT, "description": f"How many definitions to return (1-{MAX_LIMIT}; default 10)."},
            "lang": _LANG, "path": _PATH_GLOB, "tests": _TESTS,
        }, ("symbol",)),
        "outputSchema": _schema({
            "results": _RESULTS,
            "note": {"type": "string", "description": "Said when nothing defines the symbol."},
        }, ("results",)),
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    STATUS: {
        "title": "Index status",
        "description": (
            "The state of codekin for this repository: whether an index exists, its size (files, chunks, "
            "languages), how fresh it is (when it was updated, at which commit, how many files changed since: "
            "when stale, the user runs `codekin sync` or `codekin index`), which model answers queries (name, "
            "registry version, the active version when it differs, device), the last training result, and "
            "whether training runs now or may be started from here. Call it when results look stale or wrong, "
            "or before `retrain`."),
        "inputSchema": _schema({}),
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    RETRAIN: {
        "title": "Retrain the model",
        "description": (
            "Fine-tune the embedding model on this repository's own code: mine training examples, train, "
            "evaluate on held-out files, and promote the new version only if it beats the current one, then "
            "re-embed the index with it. Takes minutes (GPU) to an hour or more (CPU) and loads the machine: "
            "call it only when the user asks for it. Allowed only when the user's own config "
            "(~/.config/codekin/config.toml) sets [mcp] allow_retrain = true; otherwise the call fails and says "
            "so. Reports progress (epochs, then re-embedded chunks) and returns when the run has ended: promoted, "
            "rejected (with the reason) or failed. A call while another training runs is refused."),
        "inputSchema": _schema({
            "epochs": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Training epochs (default 3)."},
            "learning_rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                              "description": "Learning rate (default 1e-5)."},
            "batch_size": {"type": "integer", "minimum": 2, "maximum": 4096,
                           "description": "Triplets per training step (default 16)."},
        }),
        "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False,
                        "openWorldHint": False},
    },
}
