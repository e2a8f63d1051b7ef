"""Context of thin functions (what they delegate to) and section headings, on small snippets."""

from __future__ import annotations

from codekin.chunking import chunk_text
from codekin.chunking.delegation import EXCERPT_WORDS
from codekin.config import IndexConfig

ELIXIR = '''defmodule Shop.Limiter do
  @moduledoc "Token buckets per key."
  use GenServer

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "Spends tokens."
  def check(key, cost \\\\ 1, server \\\\ __MODULE__) do
    GenServer.call(server, {:check, key, cost})
  end

  def reset(key), do: GenServer.cast(__MODULE__, {:reset, key})

  def sync_now do
    send(__MODULE__, :refill)
    :ok
  end

  def total(keys), do: keys |> Enum.map(&cost_of/1) |> sum_up()

  def busy(state) do
    a = 1
    b = 2
    c = 3
    d = 4
    e = 5
    f = 6
    g = 7
    GenServer.call(state, {:check, a, b})
  end

  @impl true
  def init(opts) do
    {:ok, %{capacity: Keyword.get(opts, :capacity, 60), buckets: %{}}}
  end

  @impl true
  def handle_call({:check, key, cost}, _from, state) do
    tokens = Map.get(state.buckets, key, state.capacity)
    {:reply, tokens >= cost, state}
  end

  @impl true
  def handle_cast({:reset, key}, state), do: {:noreply, drop_bucket(state, key)}

  @impl true
  def handle_info(:refill, state), do: {:noreply, refill_buckets(state)}

  defp sum_up(costs), do: Enum.sum(costs) * @weight
  defp cost_of(key), do: key
end
'''

ERLANG = '''-module(ev_log).
-behaviour(gen_server).
-export([log/2, recent/1, recent/2, stats/0]).

%%====================================================================
%% Client API
%%====================================================================

log(Kind, Data) ->
    gen_server:cast(?MODULE, {log, Kind, Data}).

recent(N) ->
    recent(all, N).

recent(Kind, N) ->
    gen_server:call(?MODULE, {recent, Kind, N}).

stats() -> gen_server:call(?MODULE, stats).

%%====================================================================
%% Callbacks
%%====================================================================

handle_call({recent, Kind, N}, _From, State) ->
    {reply, take_newest(N, Kind, State), State};
handle_call(stats, _From, #{seq := Seq} = State) ->
    {reply, #{logged => Seq}, State}.

handle_cast({log, Kind, Data}, State) ->
    {noreply, append(Kind, Data, State)}.

%% Keeps the newest N events of a kind.
take_newest(N, Kind, State) ->
    %% the queue is kept newest last

    lists:sublist(lists:reverse(maps:get(Kind, State, [])), N).
'''

STATEM = '''-module(conn).
-export([send/1, status/0]).

send(Frame) -> gen_statem:call(?SERVER, {send, Frame}).

status() -> gen_statem:call(?SERVER, status).

handle_event({call, From}, {send, Frame}, connected, Data) ->
    {keep_state, Data, [{reply, From, transmit(Frame)}]};
handle_event({call, From}, status, State, Data) ->
    {keep_state_and_data, [{reply, From, State}]}.
'''


def by_symbol(chunks):
    return {c.symbol: c for c in chunks}


def via(chunk) -> str:
    return chunk.context.partition("via: ")[2]


def test_elixir_client_functions_carry_the_callback_clause_of_their_message():
    chunks = by_symbol(chunk_text("lib/limiter.ex", ELIXIR))
    check = chunks["Shop.Limiter.check/3"]
    # the words of the clause head and first lines, each once, without punctuation or keywords
    assert via(check) == "handle_call check key cost from state tokens Map get buckets capacity reply"
    assert via(chunks["Shop.Limiter.reset/1"]) == "handle_cast reset key state noreply drop_bucket"
    assert via(chunks["Shop.Limiter.sync_now/0"]) == "handle_info refill state noreply refill_buckets"
    assert via(chunks["Shop.Limiter.start_link/1"]) == "init opts ok capacity Keyword get buckets"
    # embedded and matched lexically, never shown: the displayed text is the function alone
    assert "handle_call" in check.embed_text and "handle_call" not in check.text
    assert check.context.startswith("Token buckets per key. via: ")


def test_local_callees_in_call_order_and_thick_functions_get_nothing():
    chunks = by_symbol(chunk_text("lib/limiter.ex", ELIXIR))
    total = via(chunks["Shop.Limiter.total/1"])
    assert total == "cost_of key sum_up costs Enum sum weight"  # the capture `&cost_of/1` counts
    assert via(chunks["Shop.Limiter.busy/1"]) == ""  # eight code lines: not thin
    assert via(chunks["Shop.Limiter.handle_call/3"]) == ""  # calls nothing of this file
    assert all(len(via(c).split()) <= EXCERPT_WORDS for c in chunks.values())


def test_erlang_calls_and_casts_find_their_clauses_and_arity_siblings_link():
    chunks = by_symbol(chunk_text("src/ev_log.erl", ERLANG))
    assert via(chunks["ev_log:log/2"]) == "handle_cast log Kind Data State noreply append"
    assert via(chunks["ev_log:recent/2"]) == "handle_call recent Kind From State reply take_newest"
    assert via(chunks["ev_log:stats/0"]) == "handle_call stats From seq State reply logged"
    assert via(chunks["ev_log:recent/1"]) == "recent Kind gen_server call MODULE"  # its arity sibling


def test_gen_statem_calls_find_handle_event_clauses():
    chunks = by_symbol(chunk_text("src/conn.erl", STATEM))
    assert via(chunks["conn:send/1"]).startswith("handle_event call From send Frame connected Data")
    assert via(chunks["conn:status/0"]).startswith("handle_event call From status State Data")


def test_section_headings_reach_the_functions_below_them():
    chunks = by_symbol(chunk_text("src/ev_log.erl", ERLANG))
    assert chunks["ev_log:log/2"].context.startswith("Client API via: ")
    assert chunks["ev_log:stats/0"].header.startswith("erlang function ev_log:stats/0: Client API via:")
    assert chunks["ev_log:handle_cast/2"].context.startswith("Callbacks")
    # a comment attached to a function is its own, and one inside a body heads nothing
    assert chunks["ev_log:take_newest/3"].context == "Callbacks"


def test_both_kinds_of_context_can_be_switched_off():
    plain = IndexConfig(delegation_context=False, section_context=False)
    chunks = by_symbol(chunk_text("src/ev_log.erl", ERLANG, plain))
    assert {c.context for c in chunks.values()} == {""}
    elixir = by_symbol(chunk_text("lib/limiter.ex", ELIXIR, plain))
    assert elixir["Shop.Limiter.check/3"].context == "Token buckets per key."


def test_erlang_bang_send_reaches_handle_info():
    source = ("-module(tick).\n\nping(Pid) -> Pid ! {ping, self()}.\n\n"
              "handle_info({ping, From}, State) ->\n    From ! pong,\n    {noreply, State}.\n")
    ping = by_symbol(chunk_text("src/tick.erl", source))["tick:ping/1"]
    assert via(ping) == "handle_info ping From State pong noreply"


def test_module_summary_drops_credit_lines_but_keeps_the_description():
    source = ("%% Licensed under the Apache License, Version 2.0 (the \"License\");\n"
              "%% you may not use this file except in compliance with the License.\n%%\n"
              "%% Multiple PRNG module for Erlang/OTP\n%% Copyright (c) 2015-2016 Kenji Rikitake\n%%\n"
              "%% @author Ann Author <ann@example.com>\n%% @doc Support functions for lists.\n"
              "-module(prng).\n\nnext(S) -> S + 1.\n")
    assert by_symbol(chunk_text("src/prng.erl", source))["prng:next/1"].context == (
        "Multiple PRNG module for Erlang/OTP")


def test_a_long_generated_line_is_not_thin():
    calls = "send(x, {:tick, 1}); " * 200
    source = (f"defmodule Gen do\n  def flood(x), do: {calls}\n\n"
              "  def handle_info({:tick, n}, s), do: {:noreply, s + n}\nend\n")
    assert via(by_symbol(chunk_text("lib/gen.ex", source))["Gen.flood/1"]) == ""
    short = by_symbol(chunk_text("lib/gen.ex", source.replace(calls, "send(x, {:tick, 1})")))
    assert via(short["Gen.flood/1"]) == "handle_info tick noreply"  # one-letter names dropped
