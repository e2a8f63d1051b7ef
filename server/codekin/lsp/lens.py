"""Code lenses: cheap lenses from the index, titles ("N similar · best 0.91") on resolve."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from codekin.lsp.requests import parse_lens_data, path_of_uri
from codekin.lsp.server import CodekinServer, rpc_errors
from codekin.lsp.session import lens_data
from codekin.lsp.similar import FIND_SIMILAR

NOT_INDEXED = "not indexed yet (save to update)"


@rpc_errors
async def code_lens(ls: CodekinServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    """One unresolved lens per function/module chunk of the document (no model, no scoring)."""
    path = ls.document_path(params.text_document.uri)
    if path is None:
        return []
    chunks = await ls.query(ls.session.lenses, path)
    return [types.CodeLens(range=_first_line(c["range"]), data=lens_data(params.text_document.uri, c))
            for c in chunks]


@rpc_errors
async def resolve_code_lens(ls: CodekinServer, lens: types.CodeLens) -> types.CodeLens:
    """Count the chunk's neighbours above codeLens.minSimilarity; clicking runs findSimilar."""
    uri, start, end, full_range = parse_lens_data(lens.data)
    relatives = await ls.query(ls.session.relatives, path_of_uri(uri, ls.session.root), start, end)
    title = relatives.title() if relatives is not None else NOT_INDEXED
    lens.command = types.Command(title=title, command=FIND_SIMILAR, arguments=[{"uri": uri, "range": full_range}])
    return lens


def _first_line(full: dict[str, Any]) -> types.Range:
    line = full["start"]["line"]
    return types.Range(start=types.Position(line=line, character=0), end=types.Position(line=line, character=0))


def register(server: CodekinServer) -> None:
    """Called from `initialize` when codeLens.enabled is true."""
    server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=True))(code_lens)
    server.feature(types.CODE_LENS_RESOLVE)(resolve_code_lens)
