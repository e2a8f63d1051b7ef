"""workspace/symbol: the query is embedded and matched against the chunks."""

from __future__ import annotations

from lsprotocol import types

from codekin.lsp.server import CodekinServer, rpc_errors

SYMBOL_LIMIT = 30
KINDS = {
    "module": types.SymbolKind.Module, "function": types.SymbolKind.Function,
    "macro": types.SymbolKind.Function, "method": types.SymbolKind.Method, "class": types.SymbolKind.Class,
    "template": types.SymbolKind.Class, "nif_table": types.SymbolKind.Array,
}


@rpc_errors
async def workspace_symbol(ls: CodekinServer, params: types.WorkspaceSymbolParams) -> list[types.SymbolInformation]:
    """Chunks closest in meaning to the query, as symbols with their locations."""
    found = await ls.query(ls.session.symbols, params.query, max(SYMBOL_LIMIT, ls.options.search.limit or 0))
    return [
        types.SymbolInformation(
            name=hit.symbol or f"{hit.path}:{hit.start_line}", kind=KINDS.get(hit.kind, types.SymbolKind.Object),
            location=types.Location(uri=result["uri"], range=types.Range(
                start=types.Position(**result["range"]["start"]), end=types.Position(**result["range"]["end"]))),
            container_name=f"{hit.path} · {hit.score:.2f}")
        for hit, result in found
    ]


def register(server: CodekinServer) -> None:
    server.feature(types.WORKSPACE_SYMBOL)(workspace_symbol)
