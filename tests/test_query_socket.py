"""`codekin search` asks the language server running for the repository over its Unix socket
(.codekin/serve.sock, owner-only) and prints what a search of its own prints; without a server
that answers exactly so (none, a killed one's socket file, another model configuration) it
searches itself without a word. Real `codekin serve` processes, real sockets, the real model."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import index_words_only
from tests.samples import CART, LEDGER, RETRY
from tests.test_instant_start import ENV, _frame, _read_message, codekin, stop_server

pytestmark = pytest.mark.slow

SEARCHES = (["search", "retry with exponential backoff"], ["search", "add an item to the cart", "--limit", "3"],
            ["search", "Shop.Cart", "--mode", "lexical"], ["search", "ledger balance", "--files"])


def _serve(root: Path) -> subprocess.Popen:
    """A language server for `root`, initialized; returns once it listens on its socket."""
    server = subprocess.Popen([sys.executable, "-m", "codekin.cli", "serve", "--no-watch"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    assert server.stdin is not None and server.stdout is not None
    params = {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {}}
    server.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}))
    server.stdin.flush()
    _read_message(server.stdout)
    server.stdin.write(_frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    server.stdin.flush()
    path = root / ".codekin" / "serve.sock"
    deadline = time.monotonic() + 300  # a wait for the model to load, not a timed assertion
    while not _listening(path):
        assert server.poll() is None and time.monotonic() < deadline, "the server never listened"
        time.sleep(0.1)
    return server


def _listening(path: Path) -> bool:
    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _search(root: Path, args: list[str]) -> tuple[str, str, bool]:
    """`codekin ARGS --repo ROOT` in a fresh interpreter: its human output (the timing left
    out), its --json output, and whether it searched itself (imported the engine)."""
    outputs, local = [], []
    for extra in ([], ["--json"]):
        probe = ("import sys\nfrom codekin.cli.main import main\ncode = main(" + repr([*args, "--repo", str(root), *extra])
                 + ")\nprint('\\nLOCAL', 'codekin.engine' in sys.modules)\nsys.exit(code)")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=300)
        assert out.returncode == 0, out.stderr
        body, _, flag = out.stdout.rpartition("\nLOCAL ")
        outputs.append(re.sub(r" in \d+ ms ", " in N ms ", body))
        local.append(flag.strip() == "True")
    assert local[0] == local[1]
    return outputs[0], outputs[1], local[0]


def test_search_asks_the_running_server_and_prints_what_it_would_print_itself(repo_factory):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    out = codekin("index", str(root))
    assert out.returncode == 0, out.stderr
    alone = [_search(root, args) for args in SEARCHES]
    assert all(local for _, _, local in alone)  # no server: each searched itself

    server = _serve(root)
    try:
        path = root / ".codekin" / "serve.sock"
        mode = path.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        asked = [_search(root, args) for args in SEARCHES]
        assert not any(local for _, _, local in asked)  # the server answered every one
        assert [(human, js) for human, js, _ in asked] == [(human, js) for human, js, _ in alone]
        assert json.loads(asked[0][1])[0]["path"] == "lib/retry.ex"

        # A search the server would answer with other settings (another device): searched here.
        human, js, local = _search(root, [*SEARCHES[0], "--device", "cpu"])
        assert local and (human, js) == alone[0][:2]
    finally:
        server.kill()
        server.wait(timeout=60)

    # Killed: its socket file stays and refuses connections; the CLI searches itself, silently.
    assert path.exists() and not _listening(path)
    assert _search(root, SEARCHES[0]) == alone[0]

    server = _serve(root)  # a new server replaces the stale socket
    try:
        assert _search(root, SEARCHES[1]) == (*alone[1][:2], False)
    finally:
        stop_server(server)
    assert not path.exists()  # a server that stops takes its socket with it


def test_the_socket_refuses_what_is_not_a_search_of_this_version(repo_factory):
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.query_socket import VERSION, QuerySocket, answer_search, ask, search_request

    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY})
    index_words_only(root)
    config = load_config(root)
    engine = Engine(root, config)
    listener = QuerySocket.open(root, lambda request: answer_search(engine, request))
    assert listener is not None
    try:
        request = search_request(config, "add an item to the cart", limit=2, min_similarity=None, mode="lexical",
                                 language=None, path_glob=None, tests=False, files=False)
        answer = ask(root, request)
        assert answer is not None and [h["path"] for h in answer["hits"]] == ["lib/cart.ex"] * len(answer["hits"])
        assert ask(root, {**request, "version": VERSION + 1}) is None
        assert ask(root, {**request, "model": {**request["model"], "device": "cuda"}}) is None
        assert ask(root, {**request, "language": "fortran"}) is None  # an error: the CLI reports it itself
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:  # not JSON: closed without an answer
            raw.connect(str(root / ".codekin" / "serve.sock"))
            raw.sendall(b"GET / HTTP/1.1\r\n\r\n\n")
            assert raw.recv(100) == b""
        assert (ask(root, request) or {}).get("hits") == answer["hits"]  # still serving

        (root / "lib/ledger.ex").write_text(LEDGER, encoding="utf-8")  # indexed by another process: served at once
        index_words_only(root)
        found = ask(root, {**request, "query": "post a ledger entry"})
        assert found is not None and found["hits"][0]["path"] == "lib/ledger.ex"
    finally:
        listener.close()
    assert ask(root, request) is None and not (root / ".codekin" / "serve.sock").exists()


def test_a_socket_file_left_behind_is_not_a_server(repo_factory):
    from codekin.config import load_config
    from codekin.query_socket import ask, search_request

    root = repo_factory({"lib/cart.ex": CART})
    (root / ".codekin").mkdir()
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(root / ".codekin" / "serve.sock"))
    left.close()  # bound, never listening: what a killed server leaves
    request = search_request(load_config(root), "cart", limit=None, min_similarity=None, mode=None, language=None,
                             path_glob=None, tests=False, files=False)
    assert ask(root, request) is None
    (root / ".codekin" / "serve.sock").unlink()
    (root / ".codekin" / "serve.sock").write_text("not a socket", encoding="utf-8")
    assert ask(root, request) is None
