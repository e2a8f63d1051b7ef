"""Every command quick to answer: status and doctor from the state file (no LanceDB, no torch),
the BM25 kept beside the query file, `initialize` answered before pygls loads, and a repository
of one file. Real CLI subprocesses on temp git repositories; the LSP tests speak raw JSON-RPC
over the real server's stdio."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import index_words_only
from tests.samples import CART, LEDGER, RETRY

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
pytestmark = pytest.mark.slow

HEAVY = ("torch", "transformers", "lancedb", "sentence_transformers")


def codekin(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codekin.cli", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=300)


def run_and_list_heavy(argv: list[str]) -> tuple[str, list[str]]:
    """`codekin ARGV` in a fresh interpreter: its output, and which heavy modules it imported."""
    probe = ("import sys\nfrom codekin.cli.main import main\ntry:\n    main(" + repr(argv) + ")\n"
             "except SystemExit:\n    pass\nimport json\nprint('\\nHEAVY', json.dumps(sorted(m for m in "
             + repr(HEAVY) + " if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    body, _, heavy = out.stdout.rpartition("\nHEAVY ")
    return body, json.loads(heavy)


def test_status_and_doctor_answer_from_the_state_file_and_agree_with_the_index(repo_factory):
    from codekin.config import load_config
    from codekin.indexer import pending_changes, skipped_files

    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER, "lib/empty.ex": ""})
    assert codekin("index", str(root), "--lexical-only").returncode == 0
    out, heavy = run_and_list_heavy(["status", str(root), "--json"])
    status = json.loads(out)
    assert heavy == []
    config = load_config(root)
    assert status["pending"] == pending_changes(root, config) == {"changed": 0, "new": 0, "removed": 0}
    assert status["skipped_files"] == skipped_files(root, config) and list(status["skipped_files"]) == ["lib/empty.ex"]
    assert (status["indexed_files"], status["files"], status["chunks"], status["embedded_chunks"]) == (4, 3, 5, 0)

    out, heavy = run_and_list_heavy(["doctor", str(root), "--skip-model", "--json"])
    index = next(c for c in json.loads(out) if c["name"] == "index")
    assert "lancedb" not in heavy
    assert index["detail"] == "5 chunks, 5 without vectors, 0 files changed since"

    # A changed file: the stamp differs, and the index's file records say what changed.
    (root / "lib/cart.ex").write_text(CART + "\n# touched\n", encoding="utf-8")
    status = json.loads(codekin("status", str(root), "--json").stdout)
    assert status["pending"] == pending_changes(root, config) == {"changed": 1, "new": 0, "removed": 0}
    assert status["skipped_files"] == skipped_files(root, config)


def test_the_bm25_is_kept_beside_the_query_file_and_used_only_for_its_own_rows(repo_factory):
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.index.arrays_file import write_arrays
    from codekin.index.lexical import chunk_bm25, terms
    from codekin.index.query_file import POSTINGS, QueryFile, write_query_file
    from codekin.index.store import IndexStore

    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY})
    index_words_only(root)
    store = IndexStore(root)
    mapped = QueryFile.open(store.state_dir, store.state())
    assert mapped is not None
    kept = mapped.load_bm25()
    built = chunk_bm25(mapped.strings("terms"), mapped.strings("symbol"), mapped.strings("kind"))
    for query in ("retry with exponential backoff", "add an item to the cart", "Shop.Cart.add/3"):
        assert kept is not None and np.array_equal(kept.scores(terms(query), 0.5), built.scores(terms(query), 0.5))

    postings = store.state_dir / POSTINGS
    before = postings.stat().st_mtime_ns
    write_query_file(store, store.write_state(), 50_000)  # new state, same rows (a phase-2 slice)
    assert postings.stat().st_mtime_ns == before
    old = postings.read_bytes()

    (root / "lib/ledger.ex").write_text(LEDGER, encoding="utf-8")
    index_words_only(root)
    assert postings.read_bytes() != old
    expected = [h.to_dict() for h in Engine(root, load_config(root)).search("post a ledger entry", mode="lexical")]
    current = _stored_arrays(postings)
    postings.write_bytes(old)  # the BM25 of other rows: not used; the search builds its own and keeps it
    assert [h.to_dict() for h in Engine(root, load_config(root)).search("post a ledger entry",
                                                                        mode="lexical")] == expected
    assert _same_arrays(_stored_arrays(postings), current)

    arrays = dict(current, code=np.frombuffer(b"an older lexical.py", dtype=np.uint8))  # built before an upgrade
    write_arrays(postings, arrays)
    assert QueryFile.open(store.state_dir, store.state()).load_bm25() is not None  # type: ignore[union-attr]
    assert _same_arrays(_stored_arrays(postings), current)  # rebuilt by this code, and kept


def test_the_file_ranking_from_the_kept_summaries_equals_the_one_built_from_the_rows(repo_factory):
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.index.files import FileRanking, FileWeights
    from codekin.index.lexical import terms
    from codekin.index.query_file import NAME, QueryFile
    from codekin.index.search import SearchIndex
    from codekin.index.store import IndexStore

    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER,
                         "test/cart_test.exs": CART.replace("defmodule Shop.Cart", "defmodule Shop.CartTest")})
    index_words_only(root)
    store = IndexStore(root)
    state = store.state()
    mapped = QueryFile.open(store.state_dir, state)
    assert mapped is not None
    index = SearchIndex(mapped, state["active_key"])
    kept, built = index.files(), FileRanking(index)  # built: from the rows, as before the copy was kept
    assert kept.bm25 is not built.bm25 and kept.paths == built.paths
    weights = FileWeights(0.5, 1.0, 0.0)
    priors = np.ones(8, dtype=np.float32)
    for query in ("retry with exponential backoff", "shopping cart items", "ledger entries balance", "Shop.Cart"):
        assert np.array_equal(kept.bm25.scores(terms(query)), built.bm25.scores(terms(query)))
        rank = index.bm25.scores(terms(query))
        assert np.array_equal(kept.rank(rank, None, terms(query), kept.keep(index.mask()), weights, priors),
                              built.rank(rank, None, terms(query), built.keep(index.mask()), weights, priors))

    questions = ("how does the cart add an item", "retry with exponential backoff", "post a ledger entry")
    config = load_config(root)
    from_kept = [[f.to_dict() for f in Engine(root, config).search_files(q, mode="lexical")] for q in questions] \
        + [[h.to_dict() for h in Engine(root, config).search(q, mode="lexical")] for q in questions]
    (store.state_dir / NAME).unlink()  # no query file: LanceDB's rows, each ranking built from them
    from_rows = [[f.to_dict() for f in Engine(root, config).search_files(q, mode="lexical")] for q in questions] \
        + [[h.to_dict() for h in Engine(root, config).search(q, mode="lexical")] for q in questions]
    assert from_kept == from_rows and all(from_kept)


def _stored_arrays(path: Path) -> dict[str, np.ndarray]:
    from codekin.index.arrays_file import read_arrays

    return {name: np.array(array) for name, array in read_arrays(path).items()}


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_repository_of_one_file_indexes_searches_and_reports(repo_factory):
    root = repo_factory({"retry.ex": RETRY})
    out = codekin("index", str(root), "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(codekin("search", "retry with exponential backoff", "--repo", str(root), "--json").stdout)
    assert hits and hits[0]["path"] == "retry.ex" and "embedded" not in hits[0]
    status = json.loads(codekin("status", str(root), "--json").stdout)
    assert (status["indexed_files"], status["dense_complete"], status["pending"]["changed"]) == (1, True, 0)


# -- the language server's `initialize` -----------------------------------------------------
def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def _read_message(stream) -> dict:
    length = None
    while True:
        line = stream.readline()
        if not line:
            raise AssertionError("the server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None
    return json.loads(stream.read(length))


def _initialize(root: Path, capabilities: dict, options: dict | None = None) -> dict:
    """Spawn `codekin serve`, send `initialize`, return its answer, then shut the server down."""
    server = subprocess.Popen([sys.executable, "-m", "codekin.cli", "serve", "--no-watch"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    assert server.stdin is not None and server.stdout is not None
    params = {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities}
    if options is not None:
        params["initializationOptions"] = options
    server.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}))
    server.stdin.flush()
    answer = _read_message(server.stdout)
    server.stdin.write(_frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    stop_server(server)
    return answer


def stop_server(server: subprocess.Popen) -> None:
    """`shutdown`, then `exit`; the server must end cleanly."""
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
    server.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
    server.stdin.flush()
    while _read_message(server.stdout).get("id") != 2:  # notifications and progress
        pass
    assert server.wait(timeout=60) == 0


@pytest.fixture
def kept_answers():
    """The `initialize` answers this test's servers kept (cache_root()/lsp), as a callable that
    gives those added so far; they are removed after the test."""
    from codekin.config import cache_root

    kept = cache_root() / "lsp"

    def answers() -> set[Path]:
        return set(kept.glob("initialize-*.json")) if kept.is_dir() else set()

    before = answers()
    yield lambda: answers() - before
    for path in answers() - before:
        path.unlink()


def test_initialize_is_answered_from_pygls_own_answer_kept_for_the_same_client(repo_factory, kept_answers):
    root = repo_factory({"lib/cart.ex": CART})
    assert codekin("index", str(root), "--lexical-only").returncode == 0
    marker = uuid.uuid4().hex  # a client never seen before: the first start is a miss
    capabilities = {"experimental": {"codekinTest": marker}, "workspace": {"codeLens": {"refreshSupport": True}}}
    first = _initialize(root, capabilities)
    added = kept_answers()
    assert len(added) == 1  # pygls answered, and its answer was kept
    second = _initialize(root, capabilities)
    assert second == first and kept_answers() == added
    assert first["result"]["capabilities"]["codeLensProvider"] == {"resolveProvider": True}
    assert first["result"]["serverInfo"]["name"] == "codekin"

    no_lens = _initialize(root, capabilities, {"codeLens": {"enabled": False}})  # another key, pygls's answer
    assert "codeLensProvider" not in no_lens["result"]["capabilities"]
    assert len(kept_answers()) == 2


# the capabilities the VS Code extension (vscode-languageclient) sends, from its trace in the e2e test
VSCODE_CAPABILITIES = json.loads((Path(__file__).parent / "data" / "vscode_capabilities.json").read_text())


@pytest.mark.parametrize("capabilities, options", [
    (VSCODE_CAPABILITIES, {"codeLens": {"enabled": True, "minSimilarity": 0.7},  # as the extension sends them
                           "search": {"limit": 10, "minSimilarity": 0, "mode": "hybrid"}}),
    ({"general": {"positionEncodings": ["utf-16"]}, "textDocument": {"codeLens": {}}}, None),
    ({"general": {"positionEncodings": ["utf-8", "utf-16", "utf-32"]}}, {"codeLens": {"enabled": True}}),  # Neovim
    ({"general": {"positionEncodings": ["utf-7"]}}, {"codeLens": {"enabled": False}}),
    ({"notebookDocument": {"synchronization": {}}, "workspace": {"fileOperations": {"didCreate": True}},
      "textDocument": {"rename": {"prepareSupport": True}, "synchronization": {"willSave": True}}}, {"codeLens": 3}),
])
def test_a_first_start_is_answered_before_pygls_loads_as_pygls_answers_it(repo_factory, kept_answers, capabilities, options):
    root = repo_factory({"lib/cart.ex": CART})
    assert codekin("index", str(root), "--lexical-only").returncode == 0
    capabilities = {**capabilities, "experimental": {"codekinTest": uuid.uuid4().hex}}  # never seen: a first start
    first = _initialize(root, capabilities, options)  # built by codekin (early.built_answer)
    added = kept_answers()
    assert len(added) == 1
    assert json.loads(added.pop().read_text()) == first["result"]  # pygls's own answer, kept, is the same


def _serve(root: Path, capabilities: dict, options: dict, after_pygls: bool = False) -> subprocess.Popen:
    """Spawn `codekin serve` (log level INFO) and send initialize and initialized; `after_pygls`:
    wait until pygls answered a workspace/symbol, so pygls answers what comes next too."""
    server = subprocess.Popen([sys.executable, "-m", "codekin.cli", "serve", "--no-watch", "--log-level", "INFO"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    params = {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities,
              "initializationOptions": options}
    messages = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params},
                {"jsonrpc": "2.0", "method": "initialized", "params": {}}]
    if after_pygls:
        messages.append({"jsonrpc": "2.0", "id": 5, "method": "workspace/symbol", "params": {"query": "Cart"}})
    _ask(server, messages)
    if after_pygls:
        while _read_message(server.stdout).get("id") != 5:
            pass
    return server


def _ask(server: subprocess.Popen, messages: list[dict]) -> dict:
    """Send `messages` at once; the answers to those with an id >= 10, by id (the result, or the
    error's code)."""
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(b"".join(_frame(m) for m in messages))
    server.stdin.flush()
    asked = {m["id"] for m in messages if m.get("id", 0) >= 10}
    answers: dict = {}
    while len(answers) < len(asked):
        message = _read_message(server.stdout)
        if message.get("id") in asked and "method" not in message:
            answers[message["id"]] = message.get("result", {"error": message.get("error", {}).get("code")})
    return answers


def _stop(server: subprocess.Popen) -> str:
    """shutdown and exit; the server's log."""
    assert server.stdout is not None and server.stderr is not None
    _ask(server, [{"jsonrpc": "2.0", "id": 2, "method": "shutdown"}, {"jsonrpc": "2.0", "method": "exit"}])
    while _read_message(server.stdout).get("id") != 2:
        pass
    assert server.wait(timeout=60) == 0
    return server.stderr.read().decode()


def _searches(root: Path, capabilities: dict, options: dict, searches: list[dict],
              after_pygls: bool = False) -> tuple[dict, str]:
    """Each search sent at once after initialize (`after_pygls`: once pygls is loaded); the
    answers by id and the server's log."""
    server = _serve(root, capabilities, options, after_pygls)
    answers = _ask(server, [{"jsonrpc": "2.0", "id": 10 + n, "method": "workspace/executeCommand",
                             "params": {"command": "codekin.search", "arguments": [search]}}
                            for n, search in enumerate(searches)])
    return answers, _stop(server)


def _lenses(root: Path, capabilities: dict, uris: list[str], known: list[dict] | None = None,
            after_pygls: bool = False) -> tuple[dict, str]:
    """The code lenses of each document (ids 10...), each lens resolved (ids 100...), and a lens
    codekin did not make resolved (the last id): the answers by id, and the server's log. Without
    `known` lenses to resolve, those of the first answers; with them, all is asked at once."""
    server = _serve(root, capabilities, {"codeLens": {"minSimilarity": 0.5}}, after_pygls)
    asks = [{"jsonrpc": "2.0", "id": 10 + n, "method": "textDocument/codeLens",
             "params": {"textDocument": {"uri": uri}}} for n, uri in enumerate(uris)]
    answers = {} if known is not None else _ask(server, asks)
    if known is None:
        known, asks = [lens for n in range(len(uris)) for lens in answers[10 + n]], []
    forged = {"range": known[0]["range"], "data": {"uri": uris[0], "startLine": 0, "endLine": 2}}
    answers |= _ask(server, asks + [{"jsonrpc": "2.0", "id": 100 + n, "method": "codeLens/resolve", "params": lens}
                                    for n, lens in enumerate([*known, forged])])
    return answers, _stop(server)


def test_searches_sent_before_pygls_loads_are_answered_as_the_session_answers_them(repo_factory, kept_answers):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    out = codekin("index", str(root))
    assert out.returncode == 0, out.stderr
    capabilities = {"experimental": {"codekinTest": uuid.uuid4().hex}}  # a new client
    options = {"search": {"limit": 2}}
    searches = [{"query": "retry with exponential backoff"}, {"query": "add an item", "mode": "lexical"},
                {"query": "ledger", "files": True}, {"query": "Shop.Cart", "limit": 1}, {"query": "  "},
                {"query": "cart", "colour": "red"}]
    by_pygls, log = _searches(root, capabilities, options, searches, after_pygls=True)
    assert "before pygls loaded" not in log
    capabilities = {"experimental": {"codekinTest": uuid.uuid4().hex}}  # another new client
    early, log = _searches(root, capabilities, options, searches)  # a first start: initialize built early
    assert log.count("answered codekin.search before pygls loaded") == 4  # the bad two are left to pygls
    again, log = _searches(root, capabilities, options, searches)  # initialize answered from the kept answer
    assert log.count("answered codekin.search before pygls loaded") == 4 and again == early
    assert early == by_pygls
    assert [len(by_pygls[10 + n]["results"]) for n in range(4)] == [2, 2, 2, 1]
    assert by_pygls[10]["results"][0]["path"] == "lib/retry.ex"
    assert by_pygls[14] == by_pygls[15] == {"error": -32602}


def test_code_lenses_asked_before_pygls_loads_are_answered_as_pygls_answers_them(repo_factory, kept_answers):
    """What VS Code asks once a file opens, about a second after `initialize`, while pygls still
    loads: the file's lenses, then each one resolved. A document outside the workspace and a
    lens codekin did not make are left to pygls."""
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    out = codekin("index", str(root))
    assert out.returncode == 0, out.stderr
    uris = [(root / "lib/retry.ex").as_uri(), (root / "lib/cart.ex").as_uri(), "file:///elsewhere/x.ex"]
    by_pygls, log = _lenses(root, {"experimental": {"codekinTest": uuid.uuid4().hex}}, uris, after_pygls=True)
    assert "before pygls loaded" not in log
    lenses = [lens for n in range(2) for lens in by_pygls[10 + n]]
    early, log = _lenses(root, {"experimental": {"codekinTest": uuid.uuid4().hex}}, uris, lenses)
    assert early == by_pygls
    assert log.count("answered textDocument/codeLens before pygls loaded") == 2  # not the one outside
    assert log.count("answered codeLens/resolve before pygls loaded") == len(lenses)  # not the forged one
    assert by_pygls[12] == [] and by_pygls[100 + len(lenses)] == {"error": -32602}
    titles = [by_pygls[100 + n]["command"]["title"] for n in range(len(lenses))]
    assert len(titles) >= 2, by_pygls
    assert all(re.fullmatch(r"\d+ similar · best [01]\.\d\d|no similar code", t) for t in titles), titles


@pytest.mark.storm
def test_a_repository_of_20000_files_is_searchable_and_status_stays_off_lancedb(repo_factory):
    files = {f"lib/part_{n // 500}/mod_{n}.ex": f"defmodule Big.Mod{n} do\n  def run_{n}(x), do: x + {n}\nend\n"
             for n in range(20_000)}
    root = repo_factory(files)
    out = codekin("index", str(root), "--lexical-only", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["files"] == 20_000
    hits = json.loads(codekin("search", "run_12345", "--mode", "lexical", "--repo", str(root), "--json").stdout)
    assert hits[0]["path"] == "lib/part_24/mod_12345.ex"
    out, heavy = run_and_list_heavy(["status", str(root), "--json"])
    status = json.loads(out)
    assert heavy == [] and status["indexed_files"] == 20_000 and status["pending"]["changed"] == 0


def test_file_vectors_are_summed_to_the_bit_as_numpy_add_at_sums_them():
    from codekin.index.files import _add_by_group

    rng = np.random.default_rng(7)
    for rows, groups in ((0, 3), (1, 1), (500, 40), (3000, 7)):
        group_of_row = rng.integers(0, groups, rows)
        keep = rng.random(rows) > 0.2
        values = rng.standard_normal((rows, 16)).astype(np.float32)
        expected = np.zeros((groups, 16), dtype=np.float32)
        np.add.at(expected, group_of_row[keep], values[keep])
        summed = np.zeros((groups, 16), dtype=np.float32)
        _add_by_group(summed, group_of_row, keep, values)
        assert np.array_equal(summed, expected)
