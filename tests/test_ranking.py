"""The ranking stack: query kinds, definitions, path priors, spread, files as answers,
module-level similarity and bad queries (index/query.py, definitions.py, paths.py,
ranking.py, files.py), unit by unit and then through a real index of a real repository."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codekin.config import load_config
from codekin.engine import Engine
from codekin.errors import WorkspaceError
from codekin.index.definitions import Definitions, declared_names, definition_keys, query_keys
from codekin.index.paths import asks_for_tests, path_role, twin_key
from codekin.index.query import CODE, CONCEPT, PASSAGE, QUESTION, SYMBOL, classify, parse
from codekin.index.ranking import spread_order
from codekin.indexer import Indexer


@pytest.mark.parametrize("text, kind", [
    ("Channel", SYMBOL), ("Ecto.Changeset", SYMBOL), ("put_header/3", SYMBOL), ("re2::RE2::FullMatch", SYMBOL),
    ("gun:open/3", SYMBOL), ("app.use()", SYMBOL), ("g", SYMBOL),
    ("supervisor that restarts workers with backoff", QUESTION), ("how does Req.Request run steps", CONCEPT),
    ("Where are webhooks retried?", CONCEPT),
    ("def retry(n) do\n  sleep(n)\nend", CODE), ("int main(void) { return 0; }", CODE),
    ("static int count(int x)\n{\n  return x;\n}", CODE),
    # a chunk's own text (header line, then the code) is code: `similar` and the storm search it
    ("elixir function Kin.Anchor.backoff_delay/2: Nobody edits this file.\n  def backoff_delay(a, b) do\n"
     "    min(b * 2, 30_000)\n  end", CODE),
    # a doc comment pasted with its examples is a question about the code it documents
    ("Returns the header's values.\n\n## Examples\n\n    iex> get_header(r, \"a\")\n    [\"b\"]", QUESTION),
    ("Updates a request struct. See `new/1`. iex> req = Req.new() |> Req.update(a: 1)", QUESTION),
    # a passage (a pasted doc, a long description) names what it describes: its words weigh names more
    ("Returns the cookies that apply to the given URI. Cookies whose domain or path do not match, that "
     "expired, or that are marked secure while the URI is plain HTTP are left out of the list.", PASSAGE),
])
def test_query_kinds(text, kind):
    assert classify(text) == kind


def test_a_question_keeps_the_identifiers_it_names():
    assert parse("how does Req.Request call put_header/3 in run_request").symbols == \
        ["Req.Request", "put_header/3", "run_request"]
    assert parse("retry with backoff").symbols == []


def test_definition_keys_cover_every_spelling_a_user_types():
    keys = dict(definition_keys("Req.Request.put_header/3", "function"))
    assert keys["req.request.put_header/3"] == keys["req.request.put_header"] == max(keys.values())
    assert {"put_header", "put_header/3", "request.put_header"} <= set(keys)
    assert definition_keys("Req.Request (part 2/8)", "module") == []  # only the first part defines
    assert dict(definition_keys("Mutex (Debug)", "class"))["mutex"] == pytest.approx(0.75)  # a trait impl
    assert definition_keys("lz4.c", "block") == [] and definition_keys("x.ex", "window") == []
    assert query_keys("re2::RE2::FullMatch") == ["re2.re2.fullmatch"]
    assert query_keys("gun:open/3") == ["gun.open/3", "gun.open"]
    assert query_keys("how does") == []


def test_ties_between_definitions_of_one_name_go_to_the_one_the_user_means():
    symbols = ["click.core.Group", "click.decorators.group", "log_msg", "spdlog::details::log_msg",
               "LZ4F_cctx_t", "gun_pool (part 1/3)", "gun_pool"]
    kinds = ["class", "function", "class", "function", "class", "attributes", "attributes"]
    paths = ["core.py", "decorators.py", "log_msg.h", "log_msg-inl.h", "lz4frame.c", "gun_pool.erl", "gun_pool.erl"]
    languages = ["python", "python", "cpp", "cpp", "c", "erlang", "erlang"]
    definitions = Definitions(symbols, kinds, paths, languages)
    group, constructor, cctx, pool = (definitions.scores([word]) for word in ("Group", "log_msg", "LZ4F_cctx",
                                                                              "gun_pool"))
    assert group[0] > group[1] > 0  # the name in the query's case: the class, then the function
    assert group[0] > definitions.scores(["group"])[0]
    assert constructor[2] > constructor[3] > 0  # the class over its constructor
    assert cctx[4] > 0  # a C struct answers to its tag without the _t
    assert pool[5] > 0 and pool[6] == 0  # a module's second attribute block is not the module


def test_of_several_definitions_of_one_name_the_largest_is_meant():
    symbols = ["Mutex", "Mutex (part 1/2)", "Mutex (part 2/2)", "Mutex"]
    paths = ["src/loom/std/mutex.rs", "src/sync/mutex.rs", "src/sync/mutex.rs", "src/fs/mocks.rs"]
    texts = ["pub(crate) struct Mutex<T>(sync::Mutex<T>);", "/// An asynchronous Mutex\n" * 60,
             "pub struct Mutex<T> {\n" * 40, "struct Mutex;"]
    scores = Definitions(symbols, ["struct"] * 4, paths, ["rust"] * 4, texts).scores(["Mutex"])
    assert scores[1] == pytest.approx(1.0) and scores[2] == 0  # the documented public one, by its first part
    assert scores[1] > scores[0] > scores[3] > 0  # the others stay definitions, behind (mocks.rs: not named after it)
    assert Definitions(symbols, ["struct"] * 4, paths, ["rust"] * 4).scores(["Mutex"])[0] == pytest.approx(1.0)


def test_names_declared_inside_a_head_are_definitions_too():
    assert declared_names("erlang", "-module(ranch).\n-type proxy_info() :: #{}.\n-record(state, {a}).\n") == \
        ["proxy_info", "state"]
    assert declared_names("elixir", "  @type t :: %__MODULE__{}\n  @callback init(term) :: term\n") == ["t", "init"]
    assert declared_names("c", "#define LZ4_MEMORY_USAGE 14\ntypedef struct LZ4_s LZ4_stream_t;\n") == \
        ["lz4_memory_usage", "lz4_stream_t"]
    definitions = Definitions(["ranch_proxy_header", "ranch_proxy_header:header/1"], ["attributes", "function"],
                              ["src/p.erl"] * 2, ["erlang"] * 2, ["-type proxy_info() :: #{}.", "header(I) -> I."])
    assert list(definitions.scores(["proxy_info"])) == pytest.approx([0.85, 0])


def test_the_defining_chunk_matches_and_a_name_containing_the_word_does_not():
    definitions = Definitions(
        ["Phoenix.Channel", "Phoenix.Socket.put_channel/4", "Phoenix.Channel.join/3", "x.ex"],
        ["module", "function", "function", "block"],
        ["lib/phoenix/channel.ex", "lib/phoenix/socket.ex", "lib/phoenix/channel.ex", "lib/x.ex"])
    assert list(definitions.scores(["Channel"])) == pytest.approx([0.85, 0, 0, 0])
    assert list(definitions.scores(["Phoenix.Channel"])) == pytest.approx([1.0, 0, 0, 0])
    assert list(definitions.scores(["channel.ex"])) == pytest.approx([0.7, 0, 0, 0])
    assert list(definitions.scores(["x.ex"])) == pytest.approx([0, 0, 0, 0.7])  # a file without a head
    assert definitions.defines(["join/3"]) and not definitions.defines(["leave"])
    # a package or crate the symbol does not carry: its shorter forms answer
    assert list(definitions.scores(["shop.Phoenix.Channel"])) == pytest.approx([0.9, 0, 0, 0])


@pytest.mark.parametrize("path, role", [
    ("lib/req/steps.ex", "code"), ("test/req/steps_test.exs", "test"), ("src/ranch_tcp.erl", "code"),
    ("test/ranch_SUITE.erl", "test"), ("mux_test.go", "test"), ("__tests__/app.js", "test"),
    ("tests/test_core.py", "test"), ("src/foo.test.ts", "test"), ("examples/hello/main.go", "example"),
    ("benches/sync.rs", "bench"), ("third_party/zlib/inflate.c", "vendor"), ("api/v1/user.pb.go", "generated"),
    ("docs/guide.md", "docs"), ("CMakeLists.txt", "build"), ("re2/testing/tester.cc", "test"),
])
def test_path_roles(path, role):
    assert path_role(path) == role


def test_twins_and_queries_that_ask_for_tests():
    assert twin_key("src/win/pipe.c") == twin_key("src/unix/pipe.c") != twin_key("src/unix/tcp.c")
    assert twin_key("api/v3/user.go") == twin_key("api/v4/user.go")
    assert asks_for_tests("tests for the retry step") and not asks_for_tests("retry with backoff")


def test_spread_lets_other_files_onto_the_first_page():
    rank = np.array([1.0, 0.95, 0.9, 0.85, 0.5], dtype=np.float32)
    groups = np.array([0, 0, 0, 0, 1])
    assert spread_order(rank, [0, 1, 2, 3, 4], groups, 1.0) == [0, 1, 2, 3, 4]
    assert spread_order(rank, [0, 1, 2, 3, 4], groups, 0.6) == [0, 1, 4, 2, 3]  # 0.5 > 0.9 x 0.6^2


# -- through a real index ---------------------------------------------------------------------------
CHANNEL = '''defmodule Shop.Channel do
  @moduledoc """
  A channel carries messages between a client and its topic.
  """

  @doc "Joins the topic."
  def join(topic, payload, socket), do: {:ok, payload, socket}
end
'''
SOCKET = '''defmodule Shop.Socket do
  @moduledoc "Connections and the channels they route to."

  @doc "Puts a channel process for the topic into the socket state."
  def put_channel(socket, topic, pid, channel), do: Map.put(socket, topic, {pid, channel})

  @doc "Looks up the channel of a topic."
  def get_channel(socket, topic), do: Map.get(socket, topic)
end
'''
BACKOFF = '''defmodule Shop.Backoff do
  @moduledoc "Delays between retries."

  @doc "Exponential backoff with random jitter before retrying a failed webhook."
  def delay(attempt), do: :rand.uniform(100) + 500 * Integer.pow(2, attempt)
end
'''
BACKOFF_TEST = '''defmodule Shop.BackoffTest do
  use ExUnit.Case

  test "exponential backoff with random jitter before retrying a failed webhook" do
    assert Shop.Backoff.delay(1) > 1000
  end

  test "backoff grows with every retry of a failed webhook" do
    assert Shop.Backoff.delay(2) > Shop.Backoff.delay(1)
  end
end
'''
WORKER = '''defmodule Shop.{name}Worker do
  use GenServer
  @moduledoc "Keeps {what} in a process."

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)
  @impl true
  def init(opts), do: {{:ok, Map.new(opts)}}
  @impl true
  def handle_call(:get, _from, state), do: {{:reply, state, state}}
  @impl true
  def handle_cast({{:put, key, value}}, state), do: {{:noreply, Map.put(state, key, value)}}
end
'''
KEYS = "\n\n".join(f'''class {name}Key:
    """An API key read from the request {where}."""

    def __init__(self, name: str, auto_error: bool = True):
        self.name = name
        self.auto_error = auto_error

    def __call__(self, request):
        value = request.{where}.get(self.name)
        if not value and self.auto_error:
            raise PermissionError("not authenticated")
        return value
''' for name, where in (("Header", "headers"), ("Query", "query_params"), ("Cookie", "cookies"))) + '''

class Money:
    """An amount in cents."""

    def __init__(self, cents: int):
        self.cents = cents
'''
FORMATS = "\n".join(f'''  @doc "Formats {unit} amounts."
  def format_{unit}(value), do: "#{{value}} {unit}"
''' for unit in ("cents", "euros", "dollars", "pounds", "yen"))

RING_H = """#ifndef RING_H
#define RING_H
#include <stddef.h>

/* Drops the oldest entry when the ring buffer is full, so that a writer never blocks. */
int ring_push_overwrite(struct ring *r, int value);

/* How many entries the ring holds. */
size_t ring_count(const struct ring *r);
#endif
"""
RING_C = """#include "ring.h"

int ring_push_overwrite(struct ring *r, int value)
{
    if (r->count == r->size) {
        r->head = (r->head + 1) % r->size;
        r->count--;
    }
    r->items[(r->head + r->count) % r->size] = value;
    r->count++;
    return 0;
}

size_t ring_count(const struct ring *r)
{
    return r->count;
}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from tests.conftest import make_repo

    files = {"lib/shop/channel.ex": CHANNEL, "lib/shop/socket.ex": SOCKET, "lib/shop/backoff.ex": BACKOFF,
             "test/shop/backoff_test.exs": BACKOFF_TEST,
             "shop/keys.py": KEYS, "c_src/ring.h": RING_H, "c_src/ring.c": RING_C,
             "lib/shop/money_format.ex": f"defmodule Shop.MoneyFormat do\n{FORMATS}end\n",
             "lib/shop/cart_worker.ex": WORKER.format(name="Cart", what="the cart"),
             "lib/shop/stock_worker.ex": WORKER.format(name="Stock", what="stock levels"),
             "lib/shop/price_worker.ex": WORKER.format(name="Price", what="prices")}
    root = make_repo(tmp_path_factory.mktemp("ranking") / "shop", files)
    config = load_config(root)
    Indexer(root, config).run()
    return Engine(root, config)


def test_a_symbol_query_finds_its_definition_first(engine):
    for query in ("Channel", "Shop.Channel", "channel.ex"):
        assert engine.search(query, limit=3)[0].symbol == "Shop.Channel", query
    assert engine.search("get_channel/2", limit=1)[0].symbol == "Shop.Socket.get_channel/2"


def test_tests_are_weighed_down_for_questions_but_come_back_when_asked(engine):
    question = "exponential backoff with random jitter before retrying a failed webhook"
    assert engine.search(question, limit=1)[0].path == "lib/shop/backoff.ex"
    assert engine.search("tests of " + question, limit=1)[0].path.startswith("test/")
    assert engine.search(question, limit=1, tests=True)[0].path.startswith("test/")


def test_a_question_answered_by_a_prototypes_doc_finds_the_function_it_declares(engine):
    hits = engine.search("drop the oldest entry when the ring buffer is full so a writer never blocks", limit=5)
    assert (hits[0].path, hits[0].kind) == ("c_src/ring.c", "function"), hits
    assert any(h.path == "c_src/ring.h" and h.kind == "declaration" for h in hits), hits  # still listed


def test_files_answer_whole_file_questions(engine):
    files = engine.search_files("which module formats money amounts", limit=3)
    assert files[0].path == "lib/shop/money_format.ex"
    assert files[0].to_dict()["path"] == "lib/shop/money_format.ex"


def test_a_module_as_the_query_finds_modules_of_the_same_behaviour(engine):
    query, hits = engine.similar("lib/shop/cart_worker.ex", 1, 12)
    assert query is None
    assert {h.path for h in hits[:2]} == {"lib/shop/stock_worker.ex", "lib/shop/price_worker.ex"}
    assert all(h.kind == "module" for h in hits[:2])


def test_modules_that_define_the_same_callbacks_overlap_fully(engine):
    index = engine.index()
    modules = index.modules()
    overlap = {key.split("#")[0]: share for key, share  # a module's key: its path#its head's row
               in zip(modules.paths, modules.callbacks(index.by_path["lib/shop/cart_worker.ex"]), strict=True)}
    assert overlap["lib/shop/stock_worker.ex"] == overlap["lib/shop/price_worker.ex"] == 1.0  # the same 4 of 4
    assert overlap["lib/shop/money_format.ex"] == 0.0
    assert not modules.callbacks([]).any()


def test_a_class_as_the_query_finds_its_siblings_in_the_same_file(engine):
    text = (engine.root / "shop/keys.py").read_text().split("\n")
    end = next(n for n, line in enumerate(text, 1) if line.startswith("class Query")) - 2
    _, hits = engine.similar("shop/keys.py", 1, end)
    assert [h.symbol for h in hits[:2]] in (["QueryKey", "CookieKey"], ["CookieKey", "QueryKey"])


@pytest.mark.parametrize("query, message", [
    ("", "empty"), ("   ", "empty"), ("?!?", "has no words"),
])
def test_queries_without_words_say_so(engine, query, message):
    with pytest.raises(WorkspaceError, match=message):
        engine.search(query)


def test_a_filter_that_matches_nothing_is_named(engine):
    with pytest.raises(WorkspaceError, match=r"--path 'nothing/\*\*'"):
        engine.search("retry", path_glob="nothing/**")
    with pytest.raises(WorkspaceError, match="--lang cobol"):
        engine.search_files("retry", language="cobol")


def test_a_pasted_file_and_an_unknown_symbol_still_answer(engine):
    pasted = (CHANNEL + SOCKET) * 200  # ~70 kB
    assert engine.search(pasted, limit=3)
    assert engine.search("NoSuchModule.nowhere/9", limit=3) is not None
    assert engine.undefined_symbol("NoSuchModule.nowhere/9") == "NoSuchModule.nowhere/9"
    assert engine.undefined_symbol("Shop.Channel") is None and engine.undefined_symbol("retry a job") is None


def test_the_command_line_says_when_a_symbol_is_defined_nowhere(engine, capsys):
    from codekin.cli import main

    assert main(["search", "NoSuchModule.nowhere/9", "--repo", str(engine.root), "--limit", "2"]) == 0
    assert capsys.readouterr().out.startswith("No definition of NoSuchModule.nowhere/9 in the index;")
    assert main(["search", "Shop.Channel", "--repo", str(engine.root), "--files", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == "lib/shop/channel.ex"
