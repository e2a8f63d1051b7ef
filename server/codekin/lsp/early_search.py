"""`codekin.search` and code lenses answered before pygls is loaded.

Importing pygls and lsprotocol costs about half a second of CPU, the engine (index snapshot,
then the model) about as much again, and both hold the GIL: loaded side by side, the first
search waited for the sum. When `initialize` was answered early (lsp/early.py), the engine
opens first and pygls loads once the model is (or at once when a request only pygls answers
arrives); meanwhile this loop reads the client's
messages and answers each `workspace/executeCommand` of `codekin.search` itself, exactly as
the session would (session.search_answer), as soon as the engine (and, for a query that is
embedded, the model) is ready; and `textDocument/codeLens` and `codeLens/resolve` as lens.py
does, from the index alone. An editor opening a file asks for its lenses about a second after
`initialize`, when pygls (its import started by the editor's first status request) is still
loading: VS Code e2e, the lens request waited 0.8 s for it. Every other message, and any
request it cannot answer (bad arguments, an error, no engine, a lens not indexed), waits in
order for pygls, which then handles it as always.

Nothing here imports pygls, lsprotocol or asyncio.
"""

from __future__ import annotations

import json
import logging
import select
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.errors import CodekinError
from codekin.lsp.early import HEADER, EarlyStart, Warmup
from codekin.lsp.framing import Fault, Frame

if TYPE_CHECKING:
    from codekin.engine import Engine
    from codekin.lsp.neighbours import RelativesCache
    from codekin.lsp.options import ServerOptions
    from codekin.lsp.requests import SearchArgs

log = logging.getLogger(__name__)

FIND_SIMILAR = "codekin.findSimilar"  # similar.FIND_SIMILAR, whose module imports pygls
POLL_S = 0.05  # how often the loop looks whether pygls has loaded while no message arrives


def answer_searches_until(early: EarlyStart, warm: Warmup, loaded: threading.Event,
                          load_pygls: Callable[[], None]) -> None:
    """Read messages until `loaded` (pygls is ready) or the input ends, answering the searches
    and code lenses.

    `load_pygls` (called once) starts pygls loading when the model is ready, or at once when a
    request arrives that only pygls answers: a search sent first gets the CPU to itself, and
    nothing else waits for a slow model."""
    from codekin.lsp.neighbours import RelativesCache
    from codekin.lsp.options import parse_options

    options, _ = parse_options(early.params.get("initializationOptions"))  # pygls reports its problems
    relatives = RelativesCache()
    fileno = early.stdin.fileno()
    fresh, early.pending[:] = list(early.pending), []
    started = False
    while True:
        waiting = [item for item in fresh if not _answered(early, warm, options, relatives, item)]  # in order
        early.pending.extend(waiting)  # what is not answered here waits for pygls
        # only the new ones: an earlier request would have started pygls when it came
        if not started and (warm.model_ready.is_set() or any(_request(early, item) for item in waiting)):
            load_pygls()
            started = True
        if loaded.is_set():
            return
        ready, _, _ = select.select([fileno], [], [], POLL_S)
        if not ready:
            fresh = []
            continue
        data = early.stdin.read1(65536) if hasattr(early.stdin, "read1") else early.stdin.read(1)
        if not data:
            return  # the input ended: pygls's loop sees the same
        fresh = list(early.decoder.feed(data))


def _decoded(frame: Frame) -> dict | None:
    """The frame's JSON object; None when it holds something else or cannot be read."""
    try:
        message = json.loads(frame.body)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _request(early: EarlyStart, item: Frame | Fault) -> bool:
    """A message that still expects an answer (a request other than the `initialize` answered
    early, or what cannot be read: pygls says so)."""
    if not isinstance(item, Frame):
        return False
    message = _decoded(item)
    if message is None:
        return True
    return "id" in message and not (message.get("method") == "initialize" and message["id"] == early.request_id)


def _answered(early: EarlyStart, warm: Warmup, options: ServerOptions, relatives: RelativesCache,
              frame: Frame | Fault) -> bool:
    """Answer `frame` when it is a request answered here and the engine can answer it; False
    leaves it to pygls."""
    message = _decoded(frame) if isinstance(frame, Frame) else None
    if message is None or "id" not in message or not isinstance(message.get("params"), dict):
        return False
    method, params = message.get("method"), message["params"]
    if method == "workspace/executeCommand" and params.get("command") == "codekin.search":
        method = "codekin.search"
        arguments = params.get("arguments") or []
        answer: Any = _search(warm, options, arguments if isinstance(arguments, list) else [])
    elif method == "textDocument/codeLens" and options.code_lens.enabled:
        answer = _code_lenses(warm, params)
    elif method == "codeLens/resolve" and options.code_lens.enabled:
        answer = _resolved_lens(warm, options, relatives, params)
    else:
        return False
    if answer is None:
        return False
    body = json.dumps({"id": message["id"], "jsonrpc": "2.0", "result": answer})
    early.stdout.write(HEADER.format(len(body.encode())).encode() + body.encode())
    early.stdout.flush()
    log.info("answered %s before pygls loaded", method)
    return True


def _engine(warm: Warmup) -> Engine | None:
    """The warm engine once its index snapshot is loaded; None when it has no index (pygls says so)."""
    warm.index_ready.wait()
    engine = warm.engine
    if engine is None or not engine.store.exists() or warm.root != engine.root:
        return None
    return engine


def _code_lenses(warm: Warmup, params: dict[str, Any]) -> list[dict[str, Any]] | None:
    """lens.code_lens's answer: a lens on the first line of each function/module chunk."""
    from urllib.parse import unquote, urlparse

    from codekin.lsp.session import lens_chunks, lens_data

    document = params.get("textDocument")
    uri = document.get("uri") if isinstance(document, dict) else None
    if not isinstance(uri, str) or urlparse(uri).scheme != "file":
        return None
    path = Path(unquote(urlparse(uri).path)).resolve()  # as CodekinServer.document_path
    engine = _engine(warm)
    if engine is None or not path.is_relative_to(warm.root):
        return None
    try:
        chunks = lens_chunks(engine, warm.root, path)
    except CodekinError as exc:
        log.info("textDocument/codeLens is left to pygls: %s", exc)
        return None
    return [{"range": _first_line(c["range"]), "data": lens_data(uri, c)} for c in chunks]


def _resolved_lens(warm: Warmup, options: ServerOptions, relatives: RelativesCache,
                   lens: dict[str, Any]) -> dict[str, Any] | None:
    """lens.resolve_code_lens's answer for a chunk that is indexed: its title and command."""
    from codekin.lsp.requests import parse_lens_data, path_of_uri

    if not _is_range(lens.get("range")):
        return None
    try:
        uri, start, end, full_range = parse_lens_data(lens.get("data"))
        path = path_of_uri(uri, warm.root)
        engine = _engine(warm)
        if engine is None:
            return None
        found = relatives.get(engine.index(), path.relative_to(warm.root).as_posix(),
                              options.code_lens.min_similarity).get((start, end))
    except CodekinError as exc:
        log.info("codeLens/resolve is left to pygls: %s", exc)
        return None
    if found is None:
        return None  # not indexed (now): pygls answers with its title for that
    command = {"title": found.title(), "command": FIND_SIMILAR, "arguments": [{"uri": uri, "range": full_range}]}
    return {"range": lens["range"], "command": command, "data": lens["data"]}


def _first_line(full: dict[str, Any]) -> dict[str, Any]:
    line = full["start"]["line"]
    return {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}


def _is_range(value: Any) -> bool:
    """An LSP Range as pygls reads it (anything else is pygls's to refuse)."""
    return isinstance(value, dict) and set(value) == {"start", "end"} and all(
        isinstance(value[end], dict) and set(value[end]) == {"line", "character"}
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value[end].values())
        for end in ("start", "end"))


def _search(warm: Warmup, options: Any, arguments: list[Any]) -> dict[str, Any] | None:
    from codekin.lsp.requests import parse_search
    from codekin.lsp.session import apply_search_options, search_answer
    from codekin.modes import mode_of

    try:
        args: SearchArgs = parse_search(tuple(arguments))
    except CodekinError:
        return None  # pygls answers with the error, as always
    engine = _engine(warm)
    if engine is None:
        return None
    apply_search_options(engine.config, options)  # what the session applies when it takes the engine
    try:
        if mode_of(args.mode or engine.config.search.mode).needs_vector and engine.index().dim:
            warm.model_ready.wait()
            if not warm.model_loaded:
                return None  # the session reports why the model does not load
        return search_answer(engine, warm.root, args)
    except CodekinError as exc:
        log.info("codekin.search is left to pygls: %s", exc)
        return None
