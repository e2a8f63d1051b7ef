"""Chunk boundaries per language on fixture files."""

from __future__ import annotations

from codekin.chunking import chunk_text
from codekin.config import IndexConfig

ELIXIR = '''defmodule MyApp.Worker do
  @moduledoc "Keeps a value."
  use GenServer
  @behaviour MyApp.Store

  @doc "Starts the worker."
  @spec start_link(keyword) :: GenServer.on_start()
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts)

  @impl true
  def handle_call(:get, _from, state) do
    {:reply, state, state}
  end

  def handle_call({:put, v}, _from, _state), do: {:reply, :ok, v}

  defp bump(x) when is_integer(x), do: x + 1
  defguard is_pos(x) when x > 0
  defdelegate fetch(a), to: MyApp.Repo
  defmacro trace(expr), do: quote(do: unquote(expr))

  defmodule Inner do
    def ping, do: :pong
  end
end
'''

ERLANG = '''-module(cb).
-behaviour(gen_statem).
-export([start_link/0, init/1]).
-record(state, {n = 0 :: integer()}).

%% @doc Start it.
-spec start_link() -> {ok, pid()}.
start_link() ->
    gen_statem:start_link(?MODULE, [], []).

init([]) -> {ok, closed, #state{}};
init(_) -> ignore.
'''

CPP = '''#include <erl_nif.h>
namespace kin {
template <typename T>
T clamp(T v, T lo, T hi) { return v < lo ? lo : v > hi ? hi : v; }

class PriceBook {
 public:
  double lookup(int id) const;
};

double PriceBook::lookup(int id) const { return id * 2.0; }
}  // namespace kin

// Apply a discount to a price.
static ERL_NIF_TERM apply_discount_nif(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  return argv[0];
}

static ErlNifFunc nif_funcs[] = {{"apply_discount", 2, apply_discount_nif}};
'''


def spans(chunks):
    return [(c.kind, c.symbol, c.start_line, c.end_line) for c in chunks]


def test_elixir_groups_clauses_with_their_attributes():
    assert spans(chunk_text("lib/worker.ex", ELIXIR)) == [
        ("module", "MyApp.Worker", 1, 5),
        ("function", "MyApp.Worker.start_link/1", 6, 8),
        ("function", "MyApp.Worker.handle_call/3", 10, 15),
        ("function", "MyApp.Worker.bump/1", 17, 17),
        ("guard", "MyApp.Worker.is_pos/1", 18, 18),
        ("delegate", "MyApp.Worker.fetch/1", 19, 19),
        ("macro", "MyApp.Worker.trace/1", 20, 20),
        ("function", "MyApp.Worker.Inner.ping/0", 23, 23),
    ]


def test_erlang_function_keeps_spec_comment_and_all_clauses():
    assert spans(chunk_text("src/cb.erl", ERLANG)) == [
        ("attributes", "cb", 1, 4),
        ("function", "cb:start_link/0", 6, 9),
        ("function", "cb:init/1", 11, 12),
    ]


def test_cpp_functions_classes_templates_and_nif_table():
    assert spans(chunk_text("c_src/nif.cpp", CPP)) == [
        ("function", "kin::clamp", 3, 4),
        ("class", "kin::PriceBook", 6, 9),
        ("method", "kin::PriceBook::lookup", 11, 11),
        ("function", "apply_discount_nif", 14, 17),
        ("nif_table", "nif_funcs", 19, 19),
    ]


def test_other_grammar_languages_get_functions_and_classes():
    source = "import os\n\nclass A:\n    def f(self):\n        return 1\n\n\ndef g(x):\n    return x\n"
    assert spans(chunk_text("a.py", source)) == [("class", "A", 3, 5), ("function", "g", 8, 9)]


def test_unknown_language_falls_back_to_overlapping_windows():
    text = "\n".join(f"line {i}" for i in range(100))
    chunks = chunk_text("notes.txt", text, IndexConfig(window_lines=40, window_stride=30))
    assert [(c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("window", 1, 40), ("window", 31, 70), ("window", 61, 100)]


def test_long_function_is_split_at_inner_boundaries_with_a_header():
    body = "\n".join(f"    x{i} = {i}" for i in range(130))
    source = f"defmodule Big do\n  def run do\n{body}\n  end\nend\n"
    chunks = [c for c in chunk_text("big.ex", source) if c.kind == "function"]
    assert len(chunks) == 3
    assert [c.symbol for c in chunks] == [f"Big.run/0 (part {i}/3)" for i in (1, 2, 3)]
    assert all(c.end_line - c.start_line + 1 <= 60 for c in chunks)
    assert chunks[0].start_line == 2 and chunks[-1].end_line == 133
    assert all(c.embed_text.startswith(f"elixir function {c.symbol}\n") for c in chunks)


def test_content_hash_ignores_the_path_so_renames_reuse_vectors():
    a = chunk_text("lib/a.ex", ELIXIR)
    b = chunk_text("lib/renamed.ex", ELIXIR)
    assert [c.content_hash for c in a] == [c.content_hash for c in b]


def test_syntax_errors_and_deep_nesting_still_chunk():
    broken = "defmodule Broken do\n  def ok, do: 1\n  def bad( do\nend\n"
    assert chunk_text("broken.ex", broken)
    deep = "int f() {" + "{" * 5000 + "}" * 5000 + "}\n"
    assert chunk_text("deep.c", deep)


def test_empty_file_has_no_chunks():
    assert chunk_text("empty.ex", "") == []
