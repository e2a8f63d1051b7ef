%%% @doc Bounded in-memory log of notable business events.
%%%
%%% Keeps the last Capacity events (order placed, breaker opened, feed
%%% connected, ...) in a queue so that operators can look at recent
%%% activity from a remote shell without grepping log files. Older events
%%% are dropped; only their number is remembered.
-module(kin_event_log).
-behaviour(gen_server).

-include("kin_shop.hrl").

-export([start_link/1, log/2, recent/1, recent/2, stats/0, clear/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(state, {
    capacity :: pos_integer(),
    seq = 0 :: non_neg_integer(),
    size = 0 :: non_neg_integer(),
    dropped = 0 :: non_neg_integer(),
    events = queue:new() :: queue:queue(#event{})
}).

%%====================================================================
%% API
%%====================================================================

%% @doc Starts the log, registered as kin_event_log, keeping at most
%% Capacity events.
-spec start_link(pos_integer()) -> {ok, pid()} | {error, term()}.
start_link(Capacity) when is_integer(Capacity), Capacity > 0 ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Capacity, []).

%% @doc Appends an event of the given kind. Asynchronous, and a no-op
%% when the log is not running, so callers never fail because of it.
-spec log(atom(), term()) -> ok.
log(Kind, Data) when is_atom(Kind) ->
    gen_server:cast(?MODULE, {log, Kind, Data}).

%% @doc Returns up to N of the most recent events, newest first.
-spec recent(pos_integer()) -> [#event{}].
recent(N) when is_integer(N), N > 0 ->
    gen_server:call(?MODULE, {recent, N, fun(_) -> true end}).

%% @doc Returns up to N of the most recent events of one kind, newest first.
-spec recent(atom(), pos_integer()) -> [#event{}].
recent(Kind, N) when is_atom(Kind), is_integer(N), N > 0 ->
    gen_server:call(?MODULE, {recent, N, fun(#event{kind = K}) -> K =:= Kind end}).

%% @doc Returns counters: events logged in total, currently kept, dropped.
-spec stats() -> #{logged := non_neg_integer(), kept := non_neg_integer(), dropped := non_neg_integer()}.
stats() ->
    gen_server:call(?MODULE, stats).

%% @doc Forgets all kept events; the sequence number keeps counting.
-spec clear() -> ok.
clear() ->
    gen_server:call(?MODULE, clear).

%%====================================================================
%% gen_server callbacks
%%====================================================================

init(Capacity) ->
    {ok, #state{capacity = Capacity}}.

handle_call({recent, N, Pred}, _From, #state{events = Events} = State) ->
    {reply, take_newest(N, Events, Pred, []), State};
handle_call(stats, _From, #state{seq = Seq, size = Size, dropped = Dropped} = State) ->
    {reply, #{logged => Seq, kept => Size, dropped => Dropped}, State};
handle_call(clear, _From, State) ->
    {reply, ok, State#state{events = queue:new(), size = 0}};
handle_call(Request, _From, State) ->
    {reply, {error, {unknown_request, Request}}, State}.

handle_cast({log, Kind, Data}, #state{seq = Seq, events = Events, size = Size} = State) ->
    Event = #event{seq = Seq + 1, at = erlang:system_time(millisecond), kind = Kind, data = Data},
    {noreply, trim(State#state{seq = Seq + 1, events = queue:in(Event, Events), size = Size + 1})};
handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info(_Info, State) ->
    {noreply, State}.

%%====================================================================
%% Internal functions
%%====================================================================

%% Drops the oldest event when the log has grown past its capacity.
trim(#state{size = Size, capacity = Cap, events = Events, dropped = Dropped} = State) when Size > Cap ->
    {_, Rest} = queue:out(Events),
    State#state{events = Rest, size = Size - 1, dropped = Dropped + 1};
trim(State) ->
    State.

%% Walks the queue from the newest end, collecting matching events.
take_newest(0, _Queue, _Pred, Acc) ->
    lists:reverse(Acc);
take_newest(N, Queue, Pred, Acc) ->
    case queue:out_r(Queue) of
        {empty, _} ->
            lists:reverse(Acc);
        {{value, Event}, Rest} ->
            case Pred(Event) of
                true -> take_newest(N - 1, Rest, Pred, [Event | Acc]);
                false -> take_newest(N, Rest, Pred, Acc)
            end
    end.
