"""`codekin serve` end to end: the real server over stdio (pytest-lsp), a real index of a temp
git repository built with the real MiniLM model, the real model loaded by the server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codekin.config import load_config
from codekin.engine import Engine
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.lsp.options import LENS_MIN_SIMILARITY
from tests.conftest import index_words_only, make_repo
from tests.samples import CART, LEDGER, RETRY, STOCK

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SERVER_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
              "XDG_CONFIG_HOME": "/nonexistent/codekin-test-user-config"}
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "codekin.cli", "serve"], server_env=SERVER_ENV)
READY_TIMEOUT_S = 180.0
RESULT_KEYS = {"uri", "range", "path", "startLine", "endLine", "symbol", "language", "kind", "score"}

REFUNDS = '''defmodule Shop.Refunds do
  @doc "Sends the money of a cancelled order back to the customer's credit card."
  def refund_to_card(order, gateway) do
    gateway.refund(order.payment_id, order.amount)
  end
end
'''


def uri(path: Path) -> str:
    return path.resolve().as_uri()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, minilm) -> Path:
    root = make_repo(tmp_path_factory.mktemp("lsp") / "shop", {
        "lib/shop/cart.ex": CART, "lib/shop/ledger.ex": LEDGER, "lib/shop/retry.ex": RETRY,
        "src/shop_stock.erl": STOCK, ".gitignore": ".codekin/\n",
    })
    Indexer(root, load_config(root), embedder=minilm).run()
    return root


@pytest.fixture(scope="module")
def engine(shop: Path, minilm) -> Engine:
    """The same index read in-process: what the server's answers are checked against."""
    return Engine(shop, load_config(shop), embedder=minilm)


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient, shop: Path):
    lsp_client.refreshes = 0

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(params: None) -> None:
        lsp_client.refreshes += 1

    lsp_client.init_result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=uri(shop),
        initialization_options={"codeLens": {"enabled": True, "minSimilarity": LENS_MIN_SIMILARITY},
                                "search": {"limit": 10, "mode": "hybrid"}}))
    yield
    await lsp_client.shutdown_session()


async def command(client: LanguageClient, name: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(arguments)))


async def wait_ready(client: LanguageClient) -> dict:
    """Poll codekin.status until the model is loaded and nothing is syncing."""
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    while True:
        status = await command(client, "codekin.status", {})
        if status["state"] == "ready" or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.2)


def open_document(client: LanguageClient, path: Path, language: str = "elixir") -> str:
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri(path), language_id=language, version=1, text=path.read_text(encoding="utf-8"))))
    return uri(path)


async def resolved_lenses(client: LanguageClient, doc: str) -> list[types.CodeLens]:
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=doc)))
    return [await client.code_lens_resolve_async(lens) for lens in lenses]


def expected_title(engine: Engine, path: str, start: int, end: int, threshold: float = LENS_MIN_SIMILARITY) -> str:
    """The lens title computed through Engine.similar (dense scores), not the server's code."""
    _, above = engine.similar(path, start, end, limit=100, min_similarity=threshold, mode="dense")
    if not above:
        return "no similar code"
    return f"{len(above)} similar · best {above[0].score:.2f}"


async def test_initialize_advertises_the_features(client: LanguageClient):
    caps = client.init_result.capabilities
    assert set(caps.execute_command_provider.commands) == {
        "codekin.findSimilar", "codekin.search", "codekin.status", "codekin.retrain", "codekin.index"}
    assert caps.code_lens_provider.resolve_provider is True
    assert caps.workspace_symbol_provider
    assert caps.text_document_sync.save is not None and caps.text_document_sync.save is not False


async def test_code_lenses_carry_real_counts(client: LanguageClient, shop: Path, engine: Engine):
    doc = open_document(client, shop / "lib/shop/cart.ex")
    lenses = await resolved_lenses(client, doc)
    index = engine.index()
    rows = sorted(index.by_path["lib/shop/cart.ex"], key=lambda i: index.starts[i])
    assert [lens.range.start.line for lens in lenses] == [int(index.starts[i]) - 1 for i in rows]
    titles = {lens.data["startLine"]: lens.command.title for lens in lenses}
    assert titles == {int(index.starts[i]): expected_title(engine, "lib/shop/cart.ex", int(index.starts[i]),
                                                            int(index.ends[i])) for i in rows}
    total = next(lens for lens in lenses if lens.data["startLine"] == 9)  # Shop.Cart.total/2
    count, best = total.command.title.split(" similar · best ")
    assert int(count) >= 1 and float(best) >= 0.85  # at least its twin, Shop.Ledger.total/2
    assert total.command.command == "codekin.findSimilar"
    assert total.command.arguments[0]["uri"] == doc


async def test_find_similar_returns_the_twin_first(client: LanguageClient, shop: Path):
    lenses = await resolved_lenses(client, uri(shop / "lib/shop/cart.ex"))
    total = next(lens for lens in lenses if lens.data["startLine"] == 9)
    answer = await command(client, "codekin.findSimilar", *total.command.arguments)
    assert answer["query"]["symbol"] == "Shop.Cart.total/2"
    assert set(answer["query"]) == RESULT_KEYS
    best = answer["results"][0]
    assert (best["path"], best["symbol"], best["startLine"], best["endLine"]) == (
        "lib/shop/ledger.ex", "Shop.Ledger.total/2", 2, 5)
    assert best["uri"] == uri(shop / "lib/shop/ledger.ex")
    assert best["range"] == {"start": {"line": 1, "character": 0},
                             "end": {"line": 4, "character": len("  end")}}
    assert best["score"] >= 0.85 and set(best) == RESULT_KEYS
    assert all(r["path"] != "lib/shop/cart.ex" or r["endLine"] < 9 for r in answer["results"])


async def test_find_similar_embeds_unsaved_text(client: LanguageClient, shop: Path):
    edited = ('  def add_item(cart, sku, qty) when qty > 0 do\n'
              '    # sum up price times quantity for every line of the cart\n'
              '    Enum.reduce(cart, 0, fn {sku, qty}, acc -> acc + Map.fetch!(prices, sku) * qty end)\n'
              '  end')
    answer = await command(client, "codekin.findSimilar", {
        "uri": uri(shop / "lib/shop/cart.ex"), "text": edited, "limit": 3,
        "range": {"start": {"line": 3, "character": 0}, "end": {"line": 6, "character": 5}}})
    assert answer["query"] is None
    assert {r["symbol"] for r in answer["results"][:2]} == {"Shop.Cart.total/2", "Shop.Ledger.total/2"}


async def test_workspace_symbol_matches_meaning(client: LanguageClient, shop: Path):
    symbols = await client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="retry a call with exponential backoff"))
    first = symbols[0]
    assert first.name == "Shop.Retry.with_backoff/2"
    assert first.kind == types.SymbolKind.Function
    assert first.location.uri == uri(shop / "lib/shop/retry.ex")
    assert first.location.range.start.line == 1
    assert list(await client.workspace_symbol_async(types.WorkspaceSymbolParams(query=""))) == []


async def test_search_honours_min_similarity(client: LanguageClient, engine: Engine):
    query = "total price of the items in the cart"
    answer = await command(client, "codekin.search", {"query": query, "minSimilarity": 0.3, "limit": 5})
    expected = engine.search(query, limit=5, min_similarity=0.3)
    assert [(r["path"], r["symbol"]) for r in answer["results"]] == [(h.path, h.symbol) for h in expected]
    assert answer["results"] and all(r["score"] >= 0.3 for r in answer["results"])
    assert answer["results"][0]["symbol"].endswith("total/2")
    strict = await command(client, "codekin.search", {"query": query, "minSimilarity": 0.99})
    assert strict == {"results": []}
    lexical = await command(client, "codekin.search", {"query": "ets update_counter", "mode": "lexical"})
    assert lexical["results"][0]["symbol"] == "shop_stock:release/2"


async def test_search_answers_with_files(client: LanguageClient, engine: Engine):
    query = "total price of the items in the cart"
    answer = await command(client, "codekin.search", {"query": query, "files": True, "limit": 3})
    expected = engine.search_files(query, limit=3)
    assert [r["path"] for r in answer["results"]] == [f.path for f in expected]
    assert answer["results"][0]["kind"] == "file" and answer["results"][0]["uri"].startswith("file://")


async def test_status_describes_the_index(client: LanguageClient, shop: Path, engine: Engine):
    status = await wait_ready(client)
    index = engine.index()
    assert {k: status[k] for k in ("root", "indexed", "chunks", "files", "device", "stale", "queue",
                                   "lastTraining", "state", "modelLoaded")} == {
        "root": str(shop.resolve()), "indexed": True, "chunks": len(index), "files": len(index.by_path),
        "device": "cpu", "stale": False, "queue": 0, "lastTraining": None, "state": "ready", "modelLoaded": True}
    assert status["nextTraining"].endswith("T02:00:00+00:00")  # the nightly default
    assert status["dashboard"].startswith("http://127.0.0.1:")
    assert status["model"] == IndexStore(shop).state()["model"]


@pytest.mark.parametrize(("name", "arguments", "message"), [
    ("codekin.nope", [{}], "'codekin.nope' is not defined"),
    ("codekin.findSimilar", [], "takes exactly one argument object"),
    ("codekin.findSimilar", [{"uri": "file:///etc/hosts", "range": {
        "start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}}], "outside the workspace"),
    ("codekin.findSimilar", [{"uri": "SHOP/lib/shop/cart.ex"}], "missing required field 'range'"),
    ("codekin.findSimilar", [{"uri": "SHOP/lib/shop/cart.ex", "range": {
        "start": {"line": 900, "character": 0}, "end": {"line": 900, "character": 0}}}],
     "line 901 is past the end of lib/shop/cart.ex (14 lines)"),
    ("codekin.findSimilar", [{"uri": "SHOP/lib/shop/cart.ex", "range": {"start": {"line": -1}}}],
     "range.start.line must be an integer >= 0"),
    ("codekin.search", [{"query": 5}], "query must be a string"),
    ("codekin.search", [{"query": "x", "mode": "fuzzy"}], "mode must be one of dense, lexical, hybrid"),
    ("codekin.search", [{"query": "x", "limt": 3}], "unknown field(s) limt"),
    ("codekin.search", [{"query": "x", "files": "yes"}], "files must be true or false"),
    ("codekin.retrain", [{"epochs": "two"}], "epochs must be an integer"),
])
async def test_bad_commands_get_invalid_params(client: LanguageClient, shop: Path, name: str,
                                               arguments: list, message: str):
    arguments = [{k: (v.replace("SHOP", uri(shop)) if isinstance(v, str) else v) for k, v in a.items()}
                 for a in arguments]
    with pytest.raises(JsonRpcException) as error:
        await command(client, name, *arguments)
    assert error.value.code == -32602
    assert message in error.value.message


async def raw_request(client: LanguageClient, method: str, params: Any) -> dict:
    """Send JSON the typed client would refuse to build; return the error of the response."""
    answer = asyncio.get_running_loop().create_future()
    client.protocol._request_futures["raw-1"] = answer
    client.protocol._send_data({"jsonrpc": "2.0", "id": "raw-1", "method": method, "params": params})
    with pytest.raises(JsonRpcException) as error:
        await asyncio.wait_for(answer, 10)
    return {"code": error.value.code, "message": error.value.message}


async def test_malformed_lsp_requests_are_answered(client: LanguageClient):
    error = await raw_request(client, "textDocument/codeLens", {"textDocument": 7})
    assert error["code"] == -32602
    assert error["message"].startswith("invalid params for textDocument/codeLens: ")
    with pytest.raises(JsonRpcException) as error:
        await client.code_lens_resolve_async(types.CodeLens(
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
            data={"from": "another server"}))
    assert error.value.code == -32602 and "not made by codekin" in error.value.message
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri="file:///etc/hosts")))
    assert list(lenses) == []
    assert (await command(client, "codekin.status"))["indexed"] is True  # still serving


async def test_a_saved_file_is_found_by_search(client: LanguageClient, shop: Path):
    await wait_ready(client)
    refresh_before = client.refreshes
    path = shop / "lib/shop/refunds.ex"
    path.write_text(REFUNDS, encoding="utf-8")
    doc = open_document(client, path)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=doc)))
    query = {"query": "give the money back to the customer's credit card", "limit": 3}
    for _ in range(300):
        found = await command(client, "codekin.search", query)
        if found["results"] and found["results"][0]["path"] == "lib/shop/refunds.ex":
            break
        await asyncio.sleep(0.2)
    assert found["results"][0]["symbol"] == "Shop.Refunds.refund_to_card/2"
    for _ in range(300):  # the save's own sync may still be waiting for the watcher's to finish
        ended = all(isinstance(reports[-1], types.WorkDoneProgressEnd)
                    for reports in client.progress_reports.values() if reports)
        if ended and client.refreshes > refresh_before:
            break
        await asyncio.sleep(0.1)
    titles = [reports[0].title for reports in client.progress_reports.values() if reports]
    assert any(title == "codekin: indexing 1 saved file(s)" for title in titles)
    assert ended  # every $/progress that began also ended
    assert client.refreshes > refresh_before  # the editor is told to re-request code lenses


# -- a second server on a repository without an index: errors, then a clean exit --------------
@pytest.fixture
def bare(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "bare", {"lib/a.ex": "defmodule A do\n  def a, do: 1\nend\n"})


@pytest_lsp.fixture(config=SERVER, loop_scope="module")  # the loop the tests of this module run in
async def bare_client(lsp_client: LanguageClient, bare: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=uri(bare)))
    yield


async def test_no_index_is_an_error_and_exit_is_clean(bare_client: LanguageClient, bare: Path):
    with pytest.raises(JsonRpcException) as error:
        await command(bare_client, "codekin.findSimilar", {"uri": uri(bare / "lib/a.ex"), "range": {
            "start": {"line": 1, "character": 2}, "end": {"line": 1, "character": 2}}})
    assert error.value.code == -32803
    assert f"no index in {bare.resolve()} yet" in error.value.message and "codekin index" in error.value.message
    status = await command(bare_client, "codekin.status")
    assert (status["indexed"], status["state"], status["chunks"]) == (False, "no-index", None)
    assert list(await bare_client.text_document_code_lens_async(types.CodeLensParams(
        text_document=types.TextDocumentIdentifier(uri=uri(bare / "lib/a.ex"))))) == []
    server = bare_client._server
    await asyncio.wait_for(bare_client.shutdown_session(), 30)  # while the model may still be loading
    assert server.returncode == 0


# -- a server on an index searchable by words only: it answers, and embeds the rest meanwhile --
@pytest.fixture
def words_only(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "words", {"lib/shop/cart.ex": CART, "lib/shop/retry.ex": RETRY})
    assert index_words_only(root).missing_vectors == 4
    return root


@pytest_lsp.fixture(config=SERVER, loop_scope="module")
async def words_client(lsp_client: LanguageClient, words_only: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=uri(words_only)))
    yield
    await lsp_client.shutdown_session()


async def test_a_server_embeds_an_index_without_vectors_while_it_answers(words_client: LanguageClient):
    answer = await command(words_client, "codekin.search", {"query": "retry with exponential backoff",
                                                             "mode": "lexical", "limit": 1})
    assert answer["results"][0]["symbol"] == "Shop.Retry.with_backoff/2"
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    status = await command(words_client, "codekin.status")
    while status["embeddedChunks"] < status["chunks"] and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        status = await command(words_client, "codekin.status")
    assert (status["embeddedChunks"], status["chunks"]) == (4, 4)
    answer = await command(words_client, "codekin.search", {"query": "retry with exponential backoff",
                                                             "mode": "dense", "limit": 1})
    assert answer == {"results": [answer["results"][0]]}  # no denseIncomplete: every chunk has its vector
    assert answer["results"][0]["symbol"] == "Shop.Retry.with_backoff/2"
