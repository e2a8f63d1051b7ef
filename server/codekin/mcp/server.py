"""The MCP server: the official SDK's low-level Server over stdio, with codekin's five tools.

Calls are checked against the tools' schemas (a malformed call is an MCP error, -32602), then
run on worker threads: queries on a few at once, a retrain on its own (holding its call open
and sending progress notifications). A failure codekin can explain comes back as an error
result the agent reads (what happened, what to do); anything else too, and the server keeps
serving. Only the SDK and light modules are imported here: the engine (LanceDB, the model)
loads on a thread after start-up, so `initialize` is answered at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from codekin import __version__
from codekin.errors import CodekinError
from codekin.mcp.arguments import InvalidArguments, RetrainArgs, parse
from codekin.mcp.progress import CallProgress
from codekin.mcp.service import Workspace
from codekin.mcp.tools import DEFINITION, SEARCH, SIMILAR, STATUS, TOOLS

log = logging.getLogger(__name__)

QUERY_THREADS = 4

INSTRUCTIONS = (
    "codekin indexes this repository's code as syntax-aware chunks (functions, modules, classes) and answers by "
    "meaning and by name (its embedding model can be fine-tuned on this code). Use `search` to find code from a "
    "description, a question or a symbol before grepping; `definition` to go to where a name is defined; "
    "`similar` before writing code, to find what already does the same; `status` when results look stale. "
    "Results give repository-relative paths and 1-based inclusive lines, with a short snippet: read the file "
    "for the rest.")


def tool_list() -> list[types.Tool]:
    return [types.Tool.model_validate({"name": name, **spec}) for name, spec in TOOLS.items()]


def build_server(workspace: Workspace) -> Server[Any]:
    tools = types.ListToolsResult(tools=tool_list())
    queries = anyio.CapacityLimiter(QUERY_THREADS)
    methods: dict[str, Callable[[Any], dict[str, Any]]] = {
        SEARCH: workspace.search, SIMILAR: workspace.similar, DEFINITION: workspace.definition,
        STATUS: lambda _: workspace.status()}

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return tools

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            args = parse(params.name, params.arguments)
        except InvalidArguments as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        try:
            if isinstance(args, RetrainArgs):
                progress = CallProgress(ctx.session.report_progress)
                # not behind the query limiter: a second call is refused at once, never queued
                payload = await anyio.to_thread.run_sync(workspace.retrain, args, progress,
                                                         abandon_on_cancel=True)  # a cancelled run goes on
            else:
                payload = await anyio.to_thread.run_sync(methods[params.name], args, limiter=queries)
        except CodekinError as exc:
            return _error(str(exc))
        except Exception as exc:  # a bug must not take the server down: say it, keep serving
            log.exception("codekin mcp: %s failed", params.name)
            return _error(f"internal error in {params.name}: {exc!r}; the server keeps running, see its log")
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(payload, ensure_ascii=False))],
                                    structured_content=payload)

    server: Server[Any] = Server("codekin", version=__version__, title="codekin: code search that learns your codebase",
                                 instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)
    # The SDK's one default middleware traces every message with OpenTelemetry: nothing about a
    # repository leaves the machine, so codekin opts out, also where a tracer is configured.
    server.middleware = [_WarmAfterFirstMessage(workspace)]
    return server


class _WarmAfterFirstMessage:
    """Loads the index and the model on a thread once the first message (`initialize`) is
    answered: importing LanceDB and the model holds the interpreter for seconds, and the
    handshake should not wait for it."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.started = False

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            return await call_next(ctx)
        finally:
            if not self.started:
                self.started = True
                threading.Thread(target=self.workspace.warm, name="codekin-warm", daemon=True).start()


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def _serve(workspace: Workspace) -> None:
    server = build_server(workspace)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve_stdio(workspace: Workspace) -> None:
    """Serve until the client closes stdin."""
    anyio.run(_serve, workspace)
