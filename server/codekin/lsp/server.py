"""The codekin language server: lifecycle, options, error translation and the worker lanes.

Import cost matters here: `initialize` must be answered within a second of a cold start,
so this module pulls in only pygls/lsprotocol; the engine (LanceDB, torch) is imported on
a worker lane after the handshake. Feature handlers live in one module each and are
registered by `create_server`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlparse

import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
)
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from codekin import __version__
from codekin.errors import ArgumentError, CodekinError
from codekin.lsp.lanes import Lane
from codekin.lsp.options import ServerOptions, parse_options
from codekin.lsp.session import Session

if TYPE_CHECKING:
    from codekin.lsp.early import EarlyStart, Warmup

log = logging.getLogger(__name__)

REQUEST_FAILED = -32803  # LSP ErrorCodes.RequestFailed: well-formed, but it could not be done
SERVER_NOT_INITIALIZED = -32002
INDEX_NOW = "Index"  # the answer to "no index yet: index it now?"
T = TypeVar("T")


class CodekinProtocol(LanguageServerProtocol):
    """Answers requests whose params do not fit the LSP types, instead of dropping them."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                detail = _describe(exc.__cause__) if exc.__cause__ is not None else exc.message
                error = JsonRpcInvalidParams(f"invalid params for {data['method']}: {detail}")
                self._send_response(data["id"], None, error.to_response_error())
            raise

    def handle_message(self, message: Any) -> None:
        if self._shutdown and getattr(message, "method", "exit") != "exit" and hasattr(message, "id"):
            error = JsonRpcInvalidRequest(f"the server is shutting down; {message.method} is not served")
            self._send_response(message.id, None, error.to_response_error())
            return
        super().handle_message(message)


def _describe(cause: BaseException) -> str:
    if isinstance(cause, cattrs.BaseValidationError):
        messages = cattrs.transform_error(cause, path="request")  # "... @ request.params.text_document"
        return "; ".join(re.sub(r"_([a-z])", lambda c: c.group(1).upper(), text) for text in messages)
    return str(cause)


class CodekinServer(LanguageServer):
    def __init__(self, overrides: dict[str, dict[str, Any]] | None = None, watch: bool = True) -> None:
        super().__init__("codekin", __version__, protocol_cls=CodekinProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.overrides = overrides or {}
        self.watch = watch
        self.options = ServerOptions()
        self.option_problems: list[str] = []
        self._session: Session | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.warm: Warmup | None = None  # the engine opened while pygls loaded (lsp/early.py)

    @property
    def session(self) -> Session:
        if self._session is None:
            raise JsonRpcException("the server is not initialized yet", code=SERVER_NOT_INITIALIZED)
        return self._session

    def open_session(self, root: Path) -> None:
        from codekin.lsp.progress import ProgressReporter

        self.loop = asyncio.get_running_loop()
        reporter = ProgressReporter(self, self.loop)
        self._session = Session(root, self.options, self.overrides, self.watch, reporter,
                                on_index_changed=self.index_changed, warn=self.warn_threadsafe,
                                on_no_index=self.offer_index, warm=self.warm)

    def document_path(self, uri: str) -> Path | None:
        """The file behind a document URI when it lies inside the workspace, else None."""
        parsed = urlparse(uri)
        if parsed.scheme != "file" or self._session is None:
            return None
        path = Path(unquote(parsed.path)).resolve()
        return path if path.is_relative_to(self._session.root) else None

    async def run_on(self, lane: Lane, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(lane, functools.partial(fn, *args))

    async def query(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read on the query lane."""
        return await self.run_on(self.session.queries, fn, *args)

    # -- messages to the client ------------------------------------------------------------
    def warn(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    def warn_threadsafe(self, message: str) -> None:
        log.warning("%s", message)
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.warn, message)

    def offer_index(self) -> None:
        """No index yet: ask the user whether to index now (from any thread)."""
        window = self.client_capabilities.window
        if window is None or window.show_message is None:  # a client that cannot show a choice
            return
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._ask_index()))

    async def _ask_index(self) -> None:
        root = self.session.root
        try:
            answer = await self.window_show_message_request_async(types.ShowMessageRequestParams(
                type=types.MessageType.Info,
                actions=[types.MessageActionItem(INDEX_NOW), types.MessageActionItem("Not now")],
                message=f"codekin: {root.name} has no index yet, so search and similar code have nothing to answer "
                        "from. Index it now? (`index.auto = true` under [index] in ~/.config/codekin/config.toml "
                        "indexes on open)"))
        except (JsonRpcException, asyncio.CancelledError) as exc:
            log.info("the client did not answer the offer to index: %s", exc)
            return
        if answer is not None and answer.title == INDEX_NOW:
            try:
                await self.run_on(self.session.work, self.session.index_repository)
            except CodekinError as exc:
                self.warn(f"codekin: indexing {root} failed: {exc}")

    def index_changed(self) -> None:
        """After a sync: ask the client to re-request code lenses, when it can."""
        workspace = self.client_capabilities.workspace
        refresh = workspace and workspace.code_lens and workspace.code_lens.refresh_support
        if refresh and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.workspace_code_lens_refresh, None)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors go to the log, not into a pop-up: a request already got its error response."""
        if isinstance(error, JsonRpcInternalError):
            log.error("internal error: %s\n%s", error, "".join((error.data or {}).get("traceback", [])))
        else:
            log.info("%s", error)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                 early: EarlyStart | None = None) -> None:
        """pygls's stdio loop, with codekin's reader: a malformed frame is logged and skipped.
        `early` carries on from the first message, read (and maybe answered) before pygls loaded."""
        from codekin.lsp.early import InitializeTap
        from codekin.lsp.framing import read_frames

        self._stop_event = threading.Event()
        writer = StdoutWriter(stdout or sys.stdout.buffer)
        self.protocol.set_writer(InitializeTap(writer, early) if early is not None else writer)
        decoder, pending = (early.decoder, early.pending) if early is not None else (None, None)
        try:
            asyncio.run(read_frames(self._stop_event, stdin or sys.stdin.buffer, self.dispatch, decoder, pending))
        except BrokenPipeError:
            log.error("the connection to the client is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def dispatch(self, body: bytes) -> None:
        """One message body, as pygls's loop handles it: a message that fails is logged, never fatal."""
        try:
            message = json.loads(body, object_hook=self.protocol.structure_message)
            self.protocol.handle_message(message)
        except Exception as exc:  # the edge of the protocol loop: one bad message never stops the server
            log.info("unable to handle a message: %s", exc)
            self.report_server_error(exc, JsonRpcException)

    def shutdown(self) -> None:
        """Stop without waiting for the stdin reader thread (the client may keep the pipe open)."""
        if self._stop_event is not None:
            self._stop_event.set()
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)
        if self._session is not None:
            self._session.close()


def rpc_errors(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """codekin errors -> JSON-RPC errors: bad arguments are InvalidParams, the rest RequestFailed."""

    @functools.wraps(handler)
    async def wrapper(ls: CodekinServer, *args: Any) -> T:
        try:
            return await handler(ls, *args)
        except ArgumentError as exc:
            raise JsonRpcInvalidParams(_message(exc)) from exc
        except CodekinError as exc:
            raise JsonRpcException(_message(exc), code=REQUEST_FAILED, data={"hint": exc.hint}) from exc

    return wrapper


def _message(exc: CodekinError) -> str:
    return f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message


def workspace_root(params: types.InitializeParams) -> Path:
    """The workspace's root, by lsp/early.py's rule (which the warm-up follows too)."""
    from codekin.lsp.early import workspace_root as root_of

    return root_of(params.root_uri, [f.uri for f in params.workspace_folders or []], params.root_path)


def create_server(overrides: dict[str, dict[str, Any]] | None = None, watch: bool = True) -> CodekinServer:
    from codekin.lsp import commands, lens, similar, symbols

    server = CodekinServer(overrides, watch)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CodekinServer, params: types.InitializeParams) -> None:
        """Read the options and the root; everything heavy waits for `initialized`."""
        ls.options, ls.option_problems = parse_options(params.initialization_options)
        ls.open_session(workspace_root(params))
        if ls.options.code_lens.enabled:
            lens.register(ls)

    @server.feature(types.INITIALIZED)
    def initialized(ls: CodekinServer, params: types.InitializedParams) -> None:
        """Report bad options, then load the index and the model on a worker lane."""
        if ls.option_problems:
            ls.warn("codekin: invalid initializationOptions, defaults used: " + "; ".join(ls.option_problems))
        ls.session.start()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CodekinServer, params: None) -> None:
        """Stop the watcher and the worker lanes; nothing is left running."""
        if ls._session is not None:
            ls._session.close()

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: CodekinServer, params: types.DidSaveTextDocumentParams) -> None:
        """Re-index the saved file in the background."""
        path = ls.document_path(params.text_document.uri)
        if path is not None:
            ls.session.save(path)

    similar.register(server)
    symbols.register(server)
    commands.register(server)
    return server
