"""LSP base-protocol framing that survives a broken client.

pygls's reader trusts every `Content-Length`: after one frame whose length is not a number,
is missing or negative, is off by a few bytes (a client counting characters, not UTF-8
bytes), or whose header lines end in a bare LF, it reads every later message glued to the
next header and never answers again. `FrameDecoder` resynchronises on the next valid
header instead, answers what can be answered (a complete JSON message inside a frame of the
wrong length) and reports the rest as faults, which the server logs.

The decoder is fed bytes and yields `Frame`s (one message body each) and `Fault`s; it never
blocks, so it is tested without a process and driven by `read_frames` over stdin.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # imported where used: `codekin serve` answers `initialize` before (lsp/early.py)
    import asyncio

log = logging.getLogger(__name__)

MARKER = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
HEADER = re.compile(rb"^[!-9;-~]+[ \t]*:")
MAX_LENGTH = 1 << 30   # a larger Content-Length is a broken header, not a message
MAX_JUNK = 1 << 16     # bytes kept while looking for a header line's end
STALL_S = 0.3          # a short frame's complete message is answered after this quiet time
_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True)
class Frame:
    body: bytes


@dataclass(frozen=True)
class Fault:
    text: str


def _json_prefix(data: bytes) -> int | None:
    """Bytes taken by the JSON value at the start of `data` (after whitespace), or None."""
    text = data.decode("utf-8", errors="surrogateescape")
    stripped = text.lstrip()
    try:
        _, end = json.JSONDecoder().raw_decode(stripped)
    except ValueError:
        return None
    used = len(text) - len(stripped) + end
    return len(text[:used].encode("utf-8", errors="surrogateescape"))


def _show(data: bytes, limit: int = 40) -> str:
    return repr(bytes(data[:limit])) + ("..." if len(data) > limit else "")


class FrameDecoder:
    """Bytes in, `Frame`s and `Fault`s out; resynchronises on the next `Content-Length` header."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.in_headers = True
        self.seen_header = False
        self.length: int | None = None       # the declared length, None when missing or invalid
        self.length_fault = ""
        self.salvage: bytearray | None = None  # a body of unknown extent, completed up to the next header

    def feed(self, data: bytes) -> Iterator[Frame | Fault]:
        self.buffer += data
        while (items := self._step()) is not None:
            yield from items

    def stalled(self) -> list[Frame | Fault]:
        """No bytes came for a while: a frame still waiting for bytes, which already holds a whole
        message, is done (its Content-Length was too long and nothing followed it)."""
        if self.in_headers or self.salvage is not None or self.length is None:
            return []
        if not self.buffer.rstrip(_WHITESPACE).endswith(b"}") or (used := _json_prefix(bytes(self.buffer))) is None:
            return []
        body = bytes(self.buffer[:used])
        del self.buffer[:used]
        fault = Fault(f"Content-Length {self.length} but the message ended after {used} bytes; answered it")
        self._reset()
        return [fault, Frame(body)]

    def _reset(self) -> None:
        self.in_headers, self.seen_header, self.length, self.length_fault, self.salvage = True, False, None, "", None

    def _step(self) -> list[Frame | Fault] | None:
        """The items of one step ([] for progress without any), None when more bytes are needed."""
        if self.salvage is not None:
            return self._salvage_step()
        if self.in_headers:
            return self._header_step()
        return self._body_step()

    def _header_step(self) -> list[Frame | Fault] | None:
        end = self.buffer.find(b"\n")
        if end < 0:
            marker = MARKER.search(self.buffer, 1)
            if marker is not None or len(self.buffer) > MAX_JUNK:  # junk (a stray body) before a header
                cut = marker.start() if marker is not None else len(self.buffer) - 64
                junk = bytes(self.buffer[:cut])
                del self.buffer[:cut]
                self.seen_header = False
                return [Fault(f"ignored {len(junk)} bytes before a header: {_show(junk)}")] if junk.strip() else []
            return None
        line = bytes(self.buffer[:end]).rstrip(b"\r")
        del self.buffer[:end + 1]
        items: list[Frame | Fault] = []
        markers = list(MARKER.finditer(line))
        if markers and markers[-1].start() > 0:
            junk, line = line[:markers[-1].start()], line[markers[-1].start():]
            self.seen_header, self.length, self.length_fault = False, None, ""
            if junk.strip(_WHITESPACE):
                items.append(Fault(f"ignored {len(junk)} bytes before a header: {_show(junk)}"))
        return items + self._header_line(line)

    def _header_line(self, line: bytes) -> list[Frame | Fault]:
        if not line.strip(_WHITESPACE):
            if self.seen_header:
                self.in_headers = False
            return []
        if not HEADER.match(line):
            return [Fault(f"ignored a line that is not a header: {_show(line)}")]
        self.seen_header = True
        if MARKER.match(line):
            value = line.split(b":", 1)[1].strip()
            if value.isdigit() and int(value) <= MAX_LENGTH:
                self.length, self.length_fault = int(value), ""
            else:
                self.length, self.length_fault = None, f"Content-Length {_show(value)} is not a byte count"
        return []

    def _body_step(self) -> list[Frame | Fault] | None:
        if self.length is None:
            self.salvage = bytearray()
            return [Fault((self.length_fault or "a frame without Content-Length")
                          + "; its message is read up to the next header")]
        if len(self.buffer) < self.length:
            return None
        length, body = self.length, bytes(self.buffer[:self.length])
        del self.buffer[:length]
        used = _json_prefix(body)
        if used is not None and not body[used:].strip(_WHITESPACE):
            self._reset()
            return [Frame(body)]
        if used is not None:  # the length was too long: what follows the message starts the next frame
            self.buffer[:0] = body[used:]
            self._reset()
            return [Fault(f"Content-Length {length} is {length - used} bytes longer than its message"),
                    Frame(body[:used])]
        self.salvage = bytearray(body)
        return [Fault(f"the {length} bytes of a frame are not a whole JSON message; it is read up to the next header")]

    def _salvage_step(self) -> list[Frame | Fault] | None:
        salvage = self.salvage if self.salvage is not None else bytearray()
        marker = MARKER.search(self.buffer)
        end = marker.start() if marker else len(self.buffer)
        candidate = bytes(salvage) + bytes(self.buffer[:end])
        whole = marker is not None or candidate.lstrip(_WHITESPACE).startswith(b"{")
        used = _json_prefix(candidate) if whole and candidate.strip(_WHITESPACE) else None
        if used is None and marker is None:
            return None  # the message may still be arriving
        del self.buffer[:end]
        self._reset()
        if used is None:
            if not candidate.strip(_WHITESPACE):
                return []
            return [Fault(f"dropped {len(candidate)} bytes that are not a JSON message: {_show(candidate)}")]
        items: list[Frame | Fault] = [Frame(candidate[:used])]
        if extra := candidate[used:].strip(_WHITESPACE):
            items.append(Fault(f"dropped {len(extra)} bytes after a message: {_show(extra)}"))
        return items


def _read_stdin(stdin: BinaryIO, loop: asyncio.AbstractEventLoop, chunks: asyncio.Queue[bytes]) -> None:
    """The reader thread: whatever bytes arrive, as they arrive; b"" at the end of input."""
    while True:
        try:
            data = stdin.read1(65536) if hasattr(stdin, "read1") else stdin.read(1)
        except (OSError, ValueError):
            data = b""
        loop.call_soon_threadsafe(chunks.put_nowait, data)
        if not data:
            return


async def read_frames(stop: threading.Event, stdin: BinaryIO, dispatch: Callable[[bytes], Any],
                      decoder: FrameDecoder | None = None, pending: list[Frame | Fault] | None = None) -> None:
    """Feed stdin to a `FrameDecoder` until the input ends or `stop` is set; each message body
    goes to `dispatch`, each fault to the log. `decoder` and its `pending` items carry on from
    a first read made before this loop started (lsp/early.py)."""
    import asyncio

    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(stdin, loop, chunks), name="lsp-stdin", daemon=True).start()
    decoder = decoder or FrameDecoder()
    _handle(pending or [], stop, dispatch)
    while not stop.is_set():
        try:
            data = await asyncio.wait_for(chunks.get(), STALL_S if not decoder.in_headers else None)
        except TimeoutError:
            items: list[Frame | Fault] = decoder.stalled()
        else:
            if not data:
                return
            items = list(decoder.feed(data))
        _handle(items, stop, dispatch)


def _handle(items: list[Frame | Fault], stop: threading.Event, dispatch: Callable[[bytes], Any]) -> None:
    for item in items:
        if isinstance(item, Fault):
            log.warning("LSP framing: %s", item.text)
        elif not stop.is_set():
            dispatch(item.body)
