"""One malformed frame never makes `codekin serve` deaf (issue 19, item 4).

Each fault is written to the real server over a raw stdio pipe: the frame's own request is
answered when its message is whole, the next well-framed request is answered, and the
server's log names the fault. Before the fix, pygls's reader glued every later message to
the next header and never answered again.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codekin.lsp.framing import Frame, FrameDecoder
from tests.reliability.harness import base_env, codekin_command, make_repo
from tests.reliability.rawclient import ANSWER_S, RawClient

pytestmark = pytest.mark.reliability


def _body(number: int) -> bytes:
    # non-ASCII text: a client counting characters instead of UTF-8 bytes gets the length wrong
    return json.dumps({"jsonrpc": "2.0", "id": number, "method": "workspace/executeCommand",
                       "params": {"command": "codekin.status", "arguments": [], "note": "naïve ünïcödé"}},
                      ensure_ascii=False).encode()


def _faulty(fault: str, body: bytes) -> bytes:
    if fault == "length-abc":
        return b"Content-Length: abc\r\n\r\n" + body
    if fault == "length-missing":
        return b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + body
    if fault == "length-negative":
        return b"Content-Length: -%d\r\n\r\n" % len(body) + body
    if fault == "length-20-too-long":
        return b"Content-Length: %d\r\n\r\n" % (len(body) + 20) + body
    if fault == "length-10-too-short":
        return b"Content-Length: %d\r\n\r\n" % (len(body) - 10) + body
    if fault == "lf-only-headers":
        return b"Content-Length: %d\n\n" % len(body) + body
    raise ValueError(fault)


FAULTS = ["length-abc", "length-missing", "length-negative", "length-20-too-long", "length-10-too-short",
          "lf-only-headers"]
LOGGED = {"length-abc": "is not a byte count", "length-missing": "without Content-Length",
          "length-negative": "is not a byte count", "length-20-too-long": "bytes longer than its message",
          "length-10-too-short": "not a whole JSON message"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RawClient, Path]]:
    base = tmp_path_factory.mktemp("framing")
    root = make_repo(base / "ws", {"lib/a.ex": "defmodule A do\n  def a, do: 1\nend\n"})
    log = base / "serve.log"
    client = RawClient(codekin_command("serve", "--no-watch"), base_env(base / "xdg"), root, log)
    init = client.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
    assert "result" in init, init
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    client.probe()
    yield client, log
    client.close()


@pytest.mark.parametrize("fault", FAULTS)
def test_a_malformed_frame_is_skipped_and_the_next_request_answered(served: tuple[RawClient, Path], fault: str):
    client, log = served
    number, probe = client.new_id(), client.new_id()
    client.write(_faulty(fault, _body(number)))
    client.write(b"Content-Length: %d\r\n\r\n" % len(_body(probe)) + _body(probe))  # a well-framed request
    answers = _answers(client, {number, probe})
    assert "result" in answers[probe], answers  # the next well-framed request is answered
    assert "result" in answers[number], answers  # and the faulty frame's own, whose message was whole
    if fault in LOGGED:
        assert LOGGED[fault] in log.read_text(encoding="utf-8", errors="replace"), fault


def _answers(client: RawClient, wanted: set[int]) -> dict[int, dict]:
    got: dict[int, dict] = {}
    deadline = time.monotonic() + ANSWER_S
    while set(got) != wanted and time.monotonic() < deadline:
        try:
            message = client.responses.get(timeout=0.2)
        except queue.Empty:
            assert client.proc.poll() is None, "the server died"
            continue
        if message.get("id") in wanted:
            got[message["id"]] = message
    assert set(got) == wanted, f"unanswered: {wanted - set(got)}"
    return got


def test_a_too_long_frame_alone_is_answered_once_the_client_goes_quiet(served: tuple[RawClient, Path]):
    client, log = served
    number = client.new_id()
    client.write(_faulty("length-20-too-long", _body(number)))
    assert "result" in client.wait_for(number)
    assert "but the message ended after" in log.read_text(encoding="utf-8", errors="replace")
    client.probe()


def test_the_decoder_resynchronises_byte_by_byte():
    """Bytes arriving one at a time (a slow pipe) give the same messages as one write."""
    stream = b"".join(_faulty(fault, _body(i)) + b"Content-Length: 2\r\n\r\n{}" for i, fault in enumerate(FAULTS)
                      if fault != "length-20-too-long")
    whole = [item for item in FrameDecoder().feed(stream) if isinstance(item, Frame)]
    decoder = FrameDecoder()
    single = [item for byte in stream for item in decoder.feed(bytes([byte])) if isinstance(item, Frame)]
    assert single == whole
    assert [json.loads(frame.body).get("id") for frame in whole] == [0, None, 1, None, 2, None, 4, None, 5, None]
