"""`codekin.search` answered before pygls is loaded.

Importing pygls and lsprotocol costs about half a second of CPU, the engine (index snapshot,
then the model) about as much again, and both hold the GIL: loaded side by side, the first
search waited for the sum. When `initialize` was answered early (lsp/early.py), the engine
opens first and pygls loads once the model is (or at once when a request only pygls answers
arrives); meanwhile this loop reads the client's
messages and answers each `workspace/executeCommand` of `codekin.search` itself, exactly as
the session would (session.search_answer), as soon as the engine (and, for a query that is
embedded, the model) is ready. Every other message, and any search it cannot answer (bad
arguments, an error, no engine), waits in order for pygls, which then handles it as always.

Nothing here imports pygls, lsprotocol or asyncio.
"""

from __future__ import annotations

import json
import logging
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codekin.errors import CodekinError
from codekin.lsp.early import HEADER, EarlyStart, Warmup
from codekin.lsp.framing import Fault, Frame

if TYPE_CHECKING:
    from codekin.lsp.requests import SearchArgs

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the loop looks whether pygls has loaded while no message arrives


def answer_searches_until(early: EarlyStart, warm: Warmup, loaded: threading.Event,
                          load_pygls: Callable[[], None]) -> None:
    """Read messages until `loaded` (pygls is ready) or the input ends, answering the searches.

    `load_pygls` (called once) starts pygls loading when the model is ready, or at once when a
    request arrives that only pygls answers: a search sent first gets the CPU to itself, and
    nothing else waits for a slow model."""
    from codekin.lsp.options import parse_options

    options, _ = parse_options(early.params.get("initializationOptions"))  # pygls reports its problems
    fileno = early.stdin.fileno()
    fresh, early.pending[:] = list(early.pending), []
    started = False
    while True:
        waiting = [item for item in fresh if not _answered(early, warm, options, item)]  # in order
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


def _answered(early: EarlyStart, warm: Warmup, options: Any, frame: Frame | Fault) -> bool:
    """Answer `frame` when it is a `codekin.search` this engine can answer; False leaves it to pygls."""
    message = _decoded(frame) if isinstance(frame, Frame) else None
    if not (message is not None and message.get("method") == "workspace/executeCommand" and "id" in message
            and isinstance(message.get("params"), dict) and message["params"].get("command") == "codekin.search"):
        return False
    arguments = message["params"].get("arguments") or []
    answer = _search(warm, options, arguments if isinstance(arguments, list) else [])
    if answer is None:
        return False
    body = json.dumps({"id": message["id"], "jsonrpc": "2.0", "result": answer})
    early.stdout.write(HEADER.format(len(body.encode())).encode() + body.encode())
    early.stdout.flush()
    log.info("answered codekin.search before pygls loaded")
    return True


def _search(warm: Warmup, options: Any, arguments: list[Any]) -> dict[str, Any] | None:
    from codekin.lsp.requests import parse_search
    from codekin.lsp.session import apply_search_options, search_answer
    from codekin.modes import mode_of

    try:
        args: SearchArgs = parse_search(tuple(arguments))
    except CodekinError:
        return None  # pygls answers with the error, as always
    warm.index_ready.wait()
    engine = warm.engine
    if engine is None or not engine.store.exists() or warm.root != engine.root:
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
