"""`codekin mcp` end to end: the real server over stdio, driven by the MCP SDK's own client
(mcp.client.stdio), against a real index of a temp git repository built with the real MiniLM
model; the server loads its own copy of the model. One server serves the module's read-only
tests; a second one, whose user config allows retraining, trains a tiny model with progress
notifications and is shut down while training. The parts without a server (argument checks,
snippet caps, progress numbering) are tested in-process first."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import PROCESS_TERMINATION_TIMEOUT, stdio_client
from mcp.shared.exceptions import MCPError

from codekin.config import load_config
from codekin.engine import Engine
from codekin.indexer import Indexer
from codekin.mcp.arguments import InvalidArguments, SimilarArgs, parse
from codekin.mcp.progress import CallProgress
from codekin.mcp.results import SNIPPET_CHARS, SNIPPET_LINES, snippet
from codekin.mcp.tools import TOOLS
from tests.conftest import make_repo
from tests.processes import alive, children_of, group_members
from tests.samples import CART, LEDGER, RETRY, STOCK

INVALID_PARAMS = -32602
RESULT_KEYS = {"path", "start_line", "end_line", "symbol", "language", "kind", "score", "snippet"}
SERVER_SRC = str(Path(__file__).resolve().parents[1] / "server")  # this checkout's codekin, not an installed one

CART_TEST = '''defmodule Shop.CartTest do
  use ExUnit.Case

  test "adds an item to the cart" do
    assert Shop.Cart.add_item(%{}, "sku", 2) == %{"sku" => 2}
  end
end
'''

# One function of 80 statements: chunked in two parts (max_chunk_lines 60).
REPORT = "defmodule Shop.Report do\n  @doc \"Renders the monthly sales report.\"\n  def render(sales) do\n" + "".join(
    f"    total_{i} = Enum.sum(Enum.map(sales, fn s -> s.amount * {i} end))\n" for i in range(1, 81)) + \
    "    total_80\n  end\nend\n"


# -- without a server ------------------------------------------------------------------------
def test_every_tool_and_argument_is_described():
    for name, tool in TOOLS.items():
        assert len(tool["description"]) > 200, name
        schema = tool["inputSchema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert all(len(p.get("description", "")) > 10 for p in schema["properties"].values()), name
        assert "anyOf" not in schema and "oneOf" not in schema  # clients differ on top-level combinators


@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("search", {}, "'query' is a required property"),
    ("search", {"query": 3}, "query: 3 is not of type 'string'"),
    ("search", {"query": "x", "limit": 0}, "limit: 0 is less than the minimum of 1"),
    ("search", {"query": "x", "limit": True}, "limit: True is not of type 'integer'"),
    ("search", {"query": "x", "mode": "fuzzy"}, "mode: 'fuzzy' is not one of"),
    ("search", {"query": "x", "colour": "red"}, "unknown argument(s) ('colour' was unexpected)"),
    ("search", {"query": "   "}, "query is blank"),
    ("search", [1, 2], "arguments must be an object"),
    ("similar", {}, "nothing to compare"),
    ("similar", {"path": "lib/a.ex"}, "path and line go together"),
    ("similar", {"line": 3, "code": "x = 1"}, "path and line go together"),
    ("similar", {"path": "lib/a.ex", "line": 5, "end_line": 2}, "needs a line at or before it"),
    ("definition", {"symbol": ""}, "symbol: '' should be non-empty"),
    ("status", {"verbose": True}, "unknown argument(s)"),
    ("retrain", {"epochs": 0}, "epochs: 0 is less than the minimum of 1"),
    ("retrain", {"learning_rate": 1}, "learning_rate: 1 is greater than or equal to the maximum of 1"),
    ("teleport", {}, "unknown tool 'teleport'"),
])
def test_malformed_arguments_say_what_to_change(tool, arguments, message):
    with pytest.raises(InvalidArguments) as caught:
        parse(tool, arguments)
    assert message in str(caught.value)


def test_no_tracing_middleware(tmp_path: Path):
    from codekin.config import Config
    from codekin.mcp.server import build_server
    from codekin.mcp.service import Workspace

    server = build_server(Workspace(tmp_path, Config()))
    assert [type(m).__name__ for m in server.middleware] == ["_WarmAfterFirstMessage"]


def test_only_the_users_own_config_allows_retraining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from codekin.config import ConfigError
    from codekin.mcp.service import _retrain_allowed

    repo = tmp_path / "repo"
    (repo / ".codekin").mkdir(parents=True)
    assert load_config(repo).mcp.allow_retrain is False and not _retrain_allowed(repo)
    (repo / ".codekin" / "config.toml").write_text("[mcp]\nallow_retrain = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mcp.allow_retrain may only be set in your own config"):
        load_config(repo)
    assert not _retrain_allowed(repo)
    (repo / ".codekin" / "config.toml").unlink()
    user = tmp_path / "xdg" / "codekin"
    user.mkdir(parents=True)
    (user / "config.toml").write_text("[mcp]\nallow_retrain = true\n", encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user.parent))
    assert _retrain_allowed(repo)


def test_a_folder_filter_means_everything_under_it(tmp_path: Path):
    from codekin.config import Config
    from codekin.mcp.service import Workspace

    (tmp_path / "lib" / "shop").mkdir(parents=True)
    workspace = Workspace(tmp_path, Config())
    root = workspace.root
    assert [workspace._glob(p) for p in ("lib", "lib/shop/", "./lib", str(root / "lib"), ".", str(root))] == \
        ["lib/*", "lib/shop/*", "lib/*", "lib/*", None, None]
    assert [workspace._glob(p) for p in ("lib/**", "lib/a.ex", "../lib", "/etc", None)] == \
        ["lib/**", "lib/a.ex", "../lib", "/etc", None]  # globs, files and what lies outside stay as given


def test_arguments_become_typed_values():
    assert parse("similar", {"path": "lib/a.ex", "line": 4.0, "limit": 3}) == SimilarArgs("lib/a.ex", 4, limit=3)
    assert parse("similar", {"code": "x = 1", "path": "lib/a.ex"}).code == "x = 1"  # the path names the language
    assert parse("status", None) == parse("status", {})


def test_snippets_are_capped():
    assert snippet("def f do\n  :ok\nend\n") == "def f do\n  :ok\nend"
    long = "\n".join(f"line {i} " + "x" * 300 for i in range(100))
    capped = snippet(long)
    assert len(capped) <= SNIPPET_CHARS + 40 and capped.endswith("more lines)")
    assert len(capped.split("\n")) <= SNIPPET_LINES + 1
    assert all(len(line) <= 160 for line in capped.split("\n"))


def test_progress_only_grows_across_phases():
    sent: list[tuple[float, float | None, str | None]] = []

    async def send(progress: float, total: float | None, message: str | None) -> None:
        sent.append((progress, total, message))

    async def work() -> None:
        import anyio.to_thread

        def phases() -> None:
            progress = CallProgress(send)
            with progress("codekin: retraining (epochs 2)", 2) as bar:
                bar.advance(1)
                bar.advance(1)
            with progress("codekin: re-embedding 3 chunks", 3) as bar:
                bar.advance(3)

        await anyio.to_thread.run_sync(phases)

    asyncio.run(work())
    # each phase starts at the count the last one ended; steps closer than REPORT_EVERY_S wait
    assert sent == [(1.0, 3.0, "retraining (epochs 2)"), (3.0, 3.0, "retraining (epochs 2): 2/2"),
                    (4.0, 7.0, "re-embedding 3 chunks"), (7.0, 7.0, "re-embedding 3 chunks: 3/3")]


# -- one server over stdio -------------------------------------------------------------------
class Served:
    """`codekin mcp` over stdio with the SDK's client, held open by a task of its own (anyio's
    scopes must be entered and left by one task)."""

    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.params = StdioServerParameters(command=sys.executable,
                                            args=["-m", "codekin.cli", "mcp", "--repo", str(root)],
                                            env=env, cwd=str(root.parent))
        self.log = log
        self.session: ClientSession
        self.init: Any = None
        self.pid = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> Served:
        ready = asyncio.Event()

        async def hold() -> None:
            with self.log.open("w") as errlog:
                async with stdio_client(self.params, errlog=errlog) as (read, write), \
                        ClientSession(read, write) as session:
                    self.session = session
                    self.init = await session.initialize()
                    self.pid = server_pid()
                    ready.set()
                    await self._stop.wait()

        self._task = asyncio.create_task(hold())
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiter}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            waiter.cancel()
            raise AssertionError(f"the server did not start: {self.log.read_text()}")
        return self

    async def close(self) -> float:
        """Close the client (stdin first, as the spec says); seconds until the server was gone."""
        started = time.perf_counter()
        self._stop.set()
        assert self._task is not None
        await self._task
        return time.perf_counter() - started

    async def call(self, tool: str, arguments: dict[str, Any] | None = None, **options: Any) -> Any:
        return await self.session.call_tool(tool, arguments or {}, **options)

    async def ok(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = await self.call(tool, arguments)
        assert not answer.is_error, answer.content[0].text
        assert json.loads(answer.content[0].text) == answer.structured_content  # text mirrors the structure
        return answer.structured_content


def server_pid() -> int:
    """The `codekin mcp` process this test process started (the newest, if several)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"mcp" in cmdline and b"codekin.cli" in cmdline:
            found.append(int(stat.parent.name))
    assert found, "no codekin mcp process found"
    return max(found)


def inet_sockets(pid: int) -> list[str]:
    """The TCP/UDP sockets (IPv4/6) among the process's open files: listening or not."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[9] in inodes:
                    found.append(f"{table} {fields[1]}")
    return found


def server_env(xdg: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (SERVER_SRC, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "XDG_CONFIG_HOME": str(xdg), "PYTHONPATH": path, **extra}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, minilm) -> Path:
    root = make_repo(tmp_path_factory.mktemp("mcp") / "shop", {
        "lib/shop/cart.ex": CART, "lib/shop/ledger.ex": LEDGER, "lib/shop/retry.ex": RETRY,
        "src/shop_stock.erl": STOCK, "test/shop/cart_test.exs": CART_TEST, "lib/shop/report.ex": REPORT,
        ".gitignore": ".codekin/\n",
    })
    Indexer(root, load_config(root), embedder=minilm).run()
    return root


@pytest.fixture(scope="module")
def engine(shop: Path, minilm) -> Engine:
    """The same index read in-process: what the server's answers are checked against."""
    return Engine(shop, load_config(shop), embedder=minilm)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(shop: Path, tmp_path_factory: pytest.TempPathFactory):
    xdg = tmp_path_factory.mktemp("xdg-empty")  # no user config: read-only
    served = await Served(shop, server_env(xdg), shop.parent / "server.log").start()
    yield served
    if not served._stop.is_set():
        await served.close()




@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_initialize_and_list_tools(server: Served):
    assert server.init.server_info.name == "codekin" and server.init.capabilities.tools is not None
    assert "`search`" in server.init.instructions
    listed = (await server.session.list_tools()).tools
    assert [t.name for t in listed] == ["search", "similar", "definition", "status", "retrain"]
    for tool in listed:
        assert tool.input_schema == TOOLS[tool.name]["inputSchema"] and tool.description
        assert tool.annotations.read_only_hint is (tool.name != "retrain")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_search_answers_what_the_engine_answers(server: Served, engine: Engine):
    answer = await server.ok("search", {"query": "retry with exponential backoff", "limit": 3})
    first = answer["results"][0]
    assert set(first) == RESULT_KEYS and "note" not in answer
    assert (first["path"], first["start_line"], first["end_line"], first["symbol"]) == \
        ("lib/shop/retry.ex", 2, 11, "Shop.Retry.with_backoff/2")
    assert first["snippet"] == "\n".join(RETRY.split("\n")[1:11])  # 10 lines: within the cap, as written
    expected = engine.search("retry with exponential backoff", 3)
    assert [(r["path"], r["start_line"], r["score"]) for r in answer["results"]] == \
        [(h.path, h.start_line, pytest.approx(h.score, abs=2e-3)) for h in expected]


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_search_filters_files_and_tests(server: Served):
    erlang = await server.ok("search", {"query": "reserve stock for an item", "lang": "erlang"})
    assert {r["language"] for r in erlang["results"]} == {"erlang"}
    lib = await server.ok("search", {"query": "add an item to the cart", "path": "lib/**", "mode": "lexical"})
    assert lib["results"] and all(r["path"].startswith("lib/") for r in lib["results"])
    assert await server.ok("search", {"query": "add an item to the cart", "path": "lib/", "mode": "lexical"}) == lib
    files = await server.ok("search", {"query": "cart", "files": True, "limit": 2})
    assert files["results"][0]["kind"] == "file" and files["results"][0]["score"] == 1.0
    tests = await server.ok("search", {"query": "add an item to the cart", "tests": True, "limit": 10})
    assert "test/shop/cart_test.exs" in [r["path"] for r in tests["results"]]
    missing = await server.ok("search", {"query": "Shop.Invoice"})
    assert missing["note"].startswith("nothing in the index defines Shop.Invoice")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_similar_by_location_span_and_snippet(server: Served):
    answer = await server.ok("similar", {"path": "lib/shop/cart.ex", "line": 11, "mode": "dense"})
    assert answer["query"]["symbol"] == "Shop.Cart.total/2" and "snippet" not in answer["query"]
    assert answer["results"][0]["symbol"] == "Shop.Ledger.total/2"
    assert all(r["path"] != "lib/shop/cart.ex" or r["start_line"] != 9 for r in answer["results"])
    span = await server.ok("similar", {"path": "lib/shop/ledger.ex", "line": 3, "end_line": 5})
    assert span["results"][0]["symbol"] == "Shop.Cart.total/2"
    code = "def sum_prices(items, prices) do\n  Enum.reduce(items, 0, fn {sku, n}, acc -> acc + prices[sku] * n end)\nend"
    pasted = await server.ok("similar", {"code": code, "language": "elixir", "limit": 2})
    assert pasted["query"] is None and pasted["results"][0]["symbol"].endswith("total/2")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_definition(server: Served):
    module = await server.ok("definition", {"symbol": "Shop.Cart"})
    assert (module["results"][0]["path"], module["results"][0]["kind"], module["results"][0]["score"]) == \
        ("lib/shop/cart.ex", "module", 1.0)
    function = await server.ok("definition", {"symbol": "add_item/3"})
    assert function["results"][0]["symbol"] == "Shop.Cart.add_item/3"
    assert function["results"][0]["snippet"].startswith('  @doc "Adds an item')
    split = (await server.ok("definition", {"symbol": "Shop.Report.render/1"}))["results"][0]
    assert (split["symbol"], split["start_line"], split["end_line"]) == ("Shop.Report.render/1", 2, 85)  # both parts
    erlang = await server.ok("definition", {"symbol": "shop_stock:reserve/2"})
    assert erlang["results"][0]["path"] == "src/shop_stock.erl"
    nothing = await server.ok("definition", {"symbol": "Shop.Invoice.pay"})
    assert nothing["results"] == [] and "`search`" in nothing["note"]


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_status(server: Served, engine: Engine):
    status = await server.ok("status")
    assert status["indexed"] and status["index"]["chunks"] == len(engine.index())
    assert set(status["index"]["languages"]) == {"elixir", "erlang", "text"} and status["index"]["files"] == 7
    assert status["freshness"]["stale"] is False and status["freshness"]["head_indexed"] is True
    assert status["model"]["name"] == "default" and status["model"]["version"] == "base"
    assert status["model"]["active_version"] == "base" and status["model"]["note"] is None
    assert status["training"] == {"last": None, "running": None, "retrain_allowed": False}


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_retrain_needs_the_users_own_config(server: Served, shop: Path):
    answer = await server.call("retrain", {"epochs": 1})
    assert answer.is_error and "allow_retrain = true" in answer.content[0].text
    assert not (shop / ".codekin" / "models").exists()  # nothing trained, nothing written


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("similar", {"path": "/etc/passwd", "line": 1}, "is outside the repository"),
    ("similar", {"path": "../../outside.ex", "line": 1}, "is outside the repository"),
    ("similar", {"path": "lib/shop/nowhere.ex", "line": 1}, "cannot read lib/shop/nowhere.ex"),
    ("search", {"query": "cart", "lang": "cobol"}, "--lang cobol matches no indexed file"),
    ("definition", {"symbol": "Shop.Cart", "path": "vendor/**"}, "--path 'vendor/**' matches no indexed file"),
])
async def test_what_cannot_be_done_is_an_error_result(server: Served, tool, arguments, message):
    answer = await server.call(tool, arguments)
    assert answer.is_error and message in answer.content[0].text, answer.content[0].text


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("search", {"query": 42}, "query: 42 is not of type 'string'"),
    ("search", {"limit": 5}, "'query' is a required property"),
    ("similar", {"path": "lib/shop/cart.ex"}, "path and line go together"),
    ("definition", {"symbol": "Shop.Cart", "depth": 2}, "unknown argument(s)"),
    ("rm_rf", {}, "unknown tool 'rm_rf'"),
])
async def test_malformed_calls_are_mcp_errors(server: Served, tool, arguments, message):
    with pytest.raises(MCPError) as caught:
        await server.call(tool, arguments)
    assert caught.value.code == INVALID_PARAMS and message in caught.value.message
    assert (await server.ok("status"))["indexed"]  # still serving


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_shutdown_leaves_nothing_behind(server: Served):
    """Last in the module: no network socket while serving; on close, the server exits by itself
    before the client's grace period ends (then the client would kill it) and leaves no process."""
    await server.ok("search", {"query": "cart total"})
    assert inet_sockets(server.pid) == []
    seconds = await server.close()
    assert seconds < PROCESS_TERMINATION_TIMEOUT, f"the server did not exit on its own ({seconds:.1f} s)"
    assert group_members(server.pid) == [] and not alive(server.pid)
    assert "Traceback" not in server.log.read_text()


# -- a server that may retrain -----------------------------------------------------------------
@pytest.fixture(scope="module")
def trainable(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny random-init model indexes a small repository; the user's config trains on a
    triplets file and allows agents to retrain."""
    from tests.test_trainer import make_triplets, write_jsonl
    from tests.tiny_model import build_tiny_model

    base = build_tiny_model(tmp_path_factory.mktemp("mcp-tiny"), 0)
    work = tmp_path_factory.mktemp("mcp-train")
    triplets = write_jsonl(work / "triplets.jsonl", make_triplets(96, 12) + make_triplets(32, 11, split="eval"))
    xdg = work / "xdg"
    (xdg / "codekin").mkdir(parents=True)
    (xdg / "codekin/config.toml").write_text(
        f'[model]\nprimary = "{base}"\nfallback = "{base}"\ndevice = "cpu"\nbackend = "torch"\nmax_tokens = 96\n'
        f'[schedule]\ntriplets_file = "{triplets}"\nmin_improvement = 0.0\n[mcp]\nallow_retrain = true\n',
        encoding="utf-8")
    root = make_repo(work / "shop", {"lib/shop/cart.ex": CART, "lib/shop/ledger.ex": LEDGER,
                                     "lib/shop/retry.ex": RETRY, ".gitignore": ".codekin/\n"})
    previous = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(xdg)  # this process indexes with the same config
    try:
        Indexer(root, load_config(root)).run()
    finally:
        os.environ.pop("XDG_CONFIG_HOME") if previous is None else os.environ.update(XDG_CONFIG_HOME=previous)
    return {"root": root, "xdg": xdg}


@pytest.mark.slow
@pytest.mark.storm  # a real training run (a tiny model), then a second one ended by the shutdown
@pytest.mark.asyncio(loop_scope="module")
async def test_retrain_reports_progress_and_shutdown_ends_the_training(trainable):
    root = trainable["root"]
    env = server_env(trainable["xdg"], CODEKIN_CACHE_DIR=str(trainable["xdg"].parent / "cache"))
    served = await Served(root, env, root.parent / "server.log").start()
    call: asyncio.Task | None = None
    training: list[int] = []
    try:
        assert (await served.ok("status"))["training"]["retrain_allowed"] is True
        reports: list[tuple[float, float | None, str | None]] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            reports.append((value, total, message))

        outcome = (await served.call("retrain", {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3},
                                     progress_callback=progress)).structured_content
        assert outcome["started"] and outcome["finished"] and outcome["outcome"] in ("promoted", "rejected"), outcome
        values = [v for v, _, _ in reports]
        assert values == sorted(set(values)), reports  # MCP progress only grows
        assert reports[0][2].startswith("retraining (epochs 2, learning rate 0.001, batch size 16)")
        steps = [re.search(r": (\d+)/(\d+)$", m or "") for _, _, m in reports]
        assert any(s and s.group(1) == s.group(2) for s in steps), reports  # every phase, to the last step
        if outcome["outcome"] == "promoted":
            assert outcome["version"] == "v1" and outcome["hotReload"].startswith("Re-embedded")
            assert any(m and m.startswith("re-embedding ") for _, _, m in reports), reports
            assert (await served.ok("status"))["model"]["version"] == "v1"
        last = (await served.ok("status"))["training"]["last"]
        assert last["lastAttempt"]["trigger"] == "on demand (agent)"

        # A second run, ended by the client going away while its training child runs.
        started = asyncio.Event()

        async def first_epoch(value: float, total: float | None, message: str | None) -> None:
            started.set()

        call = asyncio.create_task(served.call("retrain", {"epochs": 50}, progress_callback=first_epoch))
        await asyncio.wait_for(started.wait(), 120)
        training = children_of(served.pid)
        assert training, "the training child should be running"
        again = await served.call("retrain", {})
        assert again.is_error and again.content[0].text.startswith("training already running"), again
    finally:
        seconds = await served.close()
    assert call is not None
    with pytest.raises(MCPError, match="Connection closed"):  # the call ends with the connection
        await call
    # The server ended its training child and exited by itself, before the client would kill the group.
    assert seconds < PROCESS_TERMINATION_TIMEOUT, f"{seconds:.1f} s"
    assert group_members(served.pid) == [] and not any(alive(pid) for pid in training)
