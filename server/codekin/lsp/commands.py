"""codekin.search, codekin.status, codekin.retrain and codekin.index (workspace/executeCommand)."""

from __future__ import annotations

from typing import Any

from codekin.lsp.requests import parse_index, parse_retrain, parse_search, parse_status
from codekin.lsp.server import CodekinServer, rpc_errors


@rpc_errors
async def search(ls: CodekinServer, *args: Any) -> dict[str, Any]:
    """{query, limit?, minSimilarity?, mode?} -> {results: [Result]}."""
    request = parse_search(args)
    return await ls.query(ls.session.search, request)


@rpc_errors
async def status(ls: CodekinServer, *args: Any) -> dict[str, Any]:
    """{} -> index size, model, queue, staleness (fields that do not exist yet are null)."""
    parse_status(args)
    return await ls.query(ls.session.status)


@rpc_errors
async def retrain(ls: CodekinServer, *args: Any) -> dict[str, Any]:
    """{epochs?, learningRate?, batchSize?} -> {started, message}; never a fake success."""
    request = parse_retrain(args)
    return await ls.run_on(ls.session.work, ls.session.retrain, request)


@rpc_errors
async def index(ls: CodekinServer, *args: Any) -> dict[str, Any]:
    """{} -> {indexed, files, chunks, message}: `codekin index` of the workspace, with progress."""
    parse_index(args)
    return await ls.run_on(ls.session.work, ls.session.index_repository)


def register(server: CodekinServer) -> None:
    server.command("codekin.search")(search)
    server.command("codekin.status")(status)
    server.command("codekin.retrain")(retrain)
    server.command("codekin.index")(index)
