"""codekin.findSimilar: ranked chunks like the code at a range (or its unsaved text)."""

from __future__ import annotations

from typing import Any

from codekin.lsp.requests import parse_find_similar
from codekin.lsp.server import CodekinServer, rpc_errors

FIND_SIMILAR = "codekin.findSimilar"


@rpc_errors
async def find_similar(ls: CodekinServer, *args: Any) -> dict[str, Any]:
    """{uri, range, text?, limit?, minSimilarity?} -> {query: Result|null, results: [Result]}."""
    request = parse_find_similar(args, ls.session.root)
    return await ls.query(ls.session.find_similar, request)


def register(server: CodekinServer) -> None:
    server.command(FIND_SIMILAR)(find_similar)
