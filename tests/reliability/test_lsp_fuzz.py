"""`codekin serve` under a hypothesis fuzzer over a raw stdio pipe: broken framing, wrong
types, unknown methods, huge payloads, out-of-range positions, URIs outside the
workspace. After every message the server must still answer a probe, every request with
an id gets an answer (mostly an error), and it never reads outside the workspace (a FIFO
outside it would block the reader forever)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codekin.config import load_config
from codekin.indexer import Indexer
from tests.reliability.harness import CrashBench, codekin_command, initial_files, make_repo
from tests.reliability.rawclient import RawClient

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

EXAMPLES = int(os.environ.get("CODEKIN_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def fuzz_root(crash_bench: CrashBench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("fuzz")
    root = make_repo(base / "ws", initial_files(9))
    with pytest.MonkeyPatch.context() as patch:  # the tiny model's user config, for this module only
        patch.setenv("XDG_CONFIG_HOME", str(crash_bench.work / "xdg"))
        Indexer(root, load_config(root), embedder=crash_bench.embedder).run()
        outside = base / "outside"
        outside.mkdir()
        os.mkfifo(outside / "pipe.ex")
        (outside / "secret.ex").write_text("defmodule Secret do\nend\n", encoding="utf-8")
        (root / "lib/escape.ex").symlink_to(outside / "pipe.ex")
        yield root, outside


@pytest.fixture(scope="module")
def server(crash_bench: CrashBench, fuzz_root: tuple[Path, Path]) -> RawClient:
    root, _ = fuzz_root
    client = RawClient(codekin_command("serve", "--no-watch"), crash_bench.env, root, crash_bench.log("serve-fuzz"))
    init = client.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
    assert "result" in init, init
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until the index and the model are loaded
        status = client.request("workspace/executeCommand", {"command": "codekin.status", "arguments": []})
        if status.get("result", {}).get("state") == "ready":
            break
        time.sleep(0.5)
    yield client
    if client.proc.poll() is None:
        try:
            client.request("shutdown", None)
            client.send({"jsonrpc": "2.0", "method": "exit"})
            client.proc.wait(timeout=20)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            client.proc.kill()
            client.proc.wait()


METHODS = ["textDocument/codeLens", "codeLens/resolve", "workspace/symbol", "workspace/executeCommand",
           "textDocument/didSave", "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
           "textDocument/hover", "textDocument/definition", "$/cancelRequest", "$/setTrace", "codekin/unknown",
           "unknown/method", "", "\u0000", "initialized"]
NOTIFICATIONS = {"textDocument/didSave", "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
                 "$/cancelRequest", "$/setTrace", "initialized"}  # pygls never answers these, id or not
COMMANDS = ["codekin.findSimilar", "codekin.search", "codekin.status", "codekin.nope", ""]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
big_ints = st.integers(-2**62, 2**62)


def _uris(root: Path, outside: Path) -> st.SearchStrategy[str]:
    return st.sampled_from([
        (outside / "pipe.ex").as_uri(), (outside / "secret.ex").as_uri(), "file:///etc/passwd",
        (root / "lib/escape.ex").as_uri(), root.as_uri() + "/../outside/secret.ex", "file:///dev/zero",
        "http://example.com/a.ex", "not a uri", "file://", (root / "lib/kin/worker_0.ex").as_uri(),
        (root / "no/such/file.ex").as_uri(), root.as_uri() + "/lib/kin/%2e%2e/%2e%2e/../../../etc/passwd",
    ]) | st.text(max_size=40)


def _position() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({"line": big_ints, "character": big_ints}) | json_values


@st.composite
def hostile_message(draw: st.DrawFn, root: Path, outside: Path) -> tuple[bytes, int | None]:
    """(bytes to write, id that must be answered or None)."""
    kind = draw(st.sampled_from(["request", "notification", "command", "similar", "lens", "garbage",
                                 "bad-length", "not-an-object", "bad-envelope"]))
    number = 2_000_000 + draw(st.integers(0, 10**9))
    uris = _uris(root, outside)

    def frame(message: Any) -> bytes:
        body = json.dumps(message).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    if kind == "request":
        method = draw(st.sampled_from(METHODS))
        message = {"jsonrpc": "2.0", "id": number, "method": method, "params": draw(json_values)}
        return frame(message), None if method in NOTIFICATIONS else number
    if kind == "notification":
        return frame({"jsonrpc": "2.0", "method": draw(st.sampled_from(METHODS)), "params": draw(json_values)}), None
    if kind == "command":
        arguments = draw(st.lists(json_values, max_size=3) | json_values)
        params = {"command": draw(st.sampled_from(COMMANDS)), "arguments": arguments}
        return frame({"jsonrpc": "2.0", "id": number, "method": "workspace/executeCommand", "params": params}), number
    if kind == "similar":
        argument = {"uri": draw(uris), "range": {"start": draw(_position()), "end": draw(_position())}}
        if draw(st.booleans()):
            argument["text"] = draw(st.text(max_size=200))
        if draw(st.booleans()):
            argument["limit"] = draw(json_values)
        params = {"command": "codekin.findSimilar", "arguments": [argument]}
        return frame({"jsonrpc": "2.0", "id": number, "method": "workspace/executeCommand", "params": params}), number
    if kind == "lens":
        params = {"textDocument": {"uri": draw(uris)}}
        return frame({"jsonrpc": "2.0", "id": number, "method": "textDocument/codeLens", "params": params}), number
    if kind == "garbage":  # junk header lines: ignored up to the next Content-Length
        return draw(st.binary(max_size=200)).replace(b"\n", b" ") + b"\r\n", None
    if kind == "bad-length":  # a frame whose body is not what its header says
        body = json.dumps({"jsonrpc": "2.0", "id": number, "method": "workspace/symbol",
                           "params": {"query": draw(st.text(max_size=30))}}).encode()
        declared = draw(st.integers(1, len(body) + 50))
        if declared >= len(body):
            return b"Content-Length: %d\r\n\r\n" % declared + body + b" " * (declared - len(body)), None
        return b"Content-Length: %d\r\n\r\n" % declared + body + b"\r\n", None
    if kind == "not-an-object":
        body = draw(st.sampled_from([b"[1, 2]", b'"x"', b"null", b"42", b"{", b"\xff\xfe", b"{}", b"[]"]))
        return b"Content-Length: %d\r\n\r\n" % len(body) + body, None
    envelope = {"jsonrpc": draw(st.sampled_from(["2.0", "1.0", None, 2])), "id": number,
                "method": draw(st.sampled_from(["workspace/symbol", "textDocument/codeLens"]))}
    if draw(st.booleans()):
        envelope["params"] = draw(json_values)
    return frame(envelope), None  # a non-2.0 envelope need not be answered, but must not hurt


@pytest.mark.timeout(900)
def test_fuzzed_messages_never_stop_the_server(server: RawClient, fuzz_root: tuple[Path, Path]):
    root, outside = fuzz_root

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(hostile_message(root, outside))
    def check(message: tuple[bytes, int | None]) -> None:
        data, wanted = message
        server.write(data)
        if wanted is not None:
            answer = server.wait_for(wanted)
            assert "result" in answer or "error" in answer, answer
        server.probe()

    check()


@pytest.mark.timeout(300)
def test_huge_payloads_and_outside_uris_get_error_answers(server: RawClient, fuzz_root: tuple[Path, Path]):
    root, outside = fuzz_root
    huge = server.request("workspace/executeCommand",
                          {"command": "codekin.search", "arguments": [{"query": "retry " * 1_000_000}]})
    assert "result" in huge or "error" in huge
    server.probe()
    for target in (outside / "pipe.ex", outside / "secret.ex", root / "lib/escape.ex"):
        argument = {"uri": target.as_uri(), "range": {"start": {"line": 0, "character": 0},
                                                      "end": {"line": 2**31, "character": 0}}}
        answer = server.request("workspace/executeCommand", {"command": "codekin.findSimilar", "arguments": [argument]})
        assert "outside the workspace" in answer["error"]["message"], answer
    server.probe()
