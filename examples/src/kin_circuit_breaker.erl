%%% @doc Circuit breaker for calls to unreliable external services.
%%%
%%% The breaker is a gen_statem with three states:
%%%   closed    - calls go through; consecutive failures are counted.
%%%   open      - calls are rejected with {error, circuit_open} until the
%%%               reset timeout has passed.
%%%   half_open - exactly one trial call is let through; its outcome
%%%               decides between closed and open.
%%%
%%% The protected function runs in the caller's process, never inside the
%%% breaker, so a slow provider cannot block the breaker itself. Each time
%%% the breaker trips again without recovering, the open period grows
%%% exponentially.
-module(kin_circuit_breaker).
-behaviour(gen_statem).

-include("kin_shop.hrl").

-export([start_link/2, call/2, state/1, reset/1]).
-export([init/1, callback_mode/0, terminate/3]).
-export([closed/3, open/3, half_open/3]).

-type state_name() :: closed | open | half_open.

%%====================================================================
%% API
%%====================================================================

%% @doc Starts a breaker registered locally as Name.
%% Options: {threshold, N}, the consecutive failures that open the circuit,
%% and {reset_timeout, Ms}, the first period spent open before a trial call.
-spec start_link(atom(), proplists:proplist()) -> gen_statem:start_ret().
start_link(Name, Opts) when is_atom(Name), is_list(Opts) ->
    gen_statem:start_link({local, Name}, ?MODULE, {Name, Opts}, []).

%% @doc Runs Fun through the breaker named Name.
%% Returns {error, circuit_open} without calling Fun while the circuit is
%% open. A return value of {error, _} or an exception counts as a failure;
%% exceptions are re-raised in the caller with their original stacktrace.
-spec call(atom(), fun(() -> Result)) -> Result | {error, circuit_open}.
call(Name, Fun) when is_function(Fun, 0) ->
    case gen_statem:call(Name, ask) of
        allow ->
            try Fun() of
                {error, _} = Error ->
                    gen_statem:cast(Name, failure),
                    Error;
                Result ->
                    gen_statem:cast(Name, success),
                    Result
            catch
                Class:Reason:Stack ->
                    gen_statem:cast(Name, failure),
                    erlang:raise(Class, Reason, Stack)
            end;
        deny ->
            {error, circuit_open}
    end.

%% @doc Returns the current state name and the consecutive failure count.
-spec state(atom()) -> {state_name(), non_neg_integer()}.
state(Name) ->
    gen_statem:call(Name, get_state).

%% @doc Forces the breaker back to closed and forgets earlier trips.
-spec reset(atom()) -> ok.
reset(Name) ->
    gen_statem:cast(Name, reset).

%%====================================================================
%% gen_statem callbacks
%%====================================================================

callback_mode() ->
    [state_functions, state_enter].

init({Name, Opts}) ->
    Data = #breaker_data{
        name = Name,
        threshold = proplists:get_value(threshold, Opts, ?DEFAULT_FAILURE_THRESHOLD),
        reset_timeout = proplists:get_value(reset_timeout, Opts, ?DEFAULT_RESET_TIMEOUT)
    },
    {ok, closed, Data}.

%% closed: let everything through and count consecutive failures.
closed(enter, _OldState, Data) ->
    {keep_state, Data#breaker_data{failures = 0, opened_at = undefined}};
closed({call, From}, ask, _Data) ->
    {keep_state_and_data, [{reply, From, allow}]};
closed(cast, success, Data) ->
    {keep_state, Data#breaker_data{failures = 0}};
closed(cast, failure, #breaker_data{failures = F, threshold = T} = Data) when F + 1 >= T ->
    {next_state, open, Data#breaker_data{failures = F + 1}};
closed(cast, failure, #breaker_data{failures = F} = Data) ->
    {keep_state, Data#breaker_data{failures = F + 1}};
closed(EventType, Event, Data) ->
    handle_common(EventType, Event, closed, Data).

%% open: reject everything until the state timeout fires.
open(enter, _OldState, #breaker_data{name = Name, reset_timeout = Base, trips = Trips} = Data) ->
    Delay = open_delay(Base, Trips),
    ?LOG_EVENT(breaker_opened, #{name => Name, trips => Trips + 1, delay_ms => Delay}),
    NewData = Data#breaker_data{opened_at = ?NOW_MS, trips = Trips + 1},
    {keep_state, NewData, [{state_timeout, Delay, probe}]};
open(state_timeout, probe, Data) ->
    {next_state, half_open, Data};
open({call, From}, ask, _Data) ->
    {keep_state_and_data, [{reply, From, deny}]};
open(cast, Outcome, _Data) when Outcome =:= success; Outcome =:= failure ->
    %% Late results of calls that were allowed before the circuit opened.
    keep_state_and_data;
open(EventType, Event, Data) ->
    handle_common(EventType, Event, open, Data).

%% half_open: allow a single probe call and wait for its result.
half_open(enter, _OldState, Data) ->
    {keep_state, Data#breaker_data{probing = false}};
half_open({call, From}, ask, #breaker_data{probing = false} = Data) ->
    {keep_state, Data#breaker_data{probing = true}, [{reply, From, allow}]};
half_open({call, From}, ask, _Data) ->
    {keep_state_and_data, [{reply, From, deny}]};
half_open(cast, success, #breaker_data{name = Name} = Data) ->
    ?LOG_EVENT(breaker_closed, #{name => Name}),
    {next_state, closed, Data#breaker_data{trips = 0, probing = false}};
half_open(cast, failure, Data) ->
    {next_state, open, Data#breaker_data{probing = false}};
half_open(EventType, Event, Data) ->
    handle_common(EventType, Event, half_open, Data).

terminate(_Reason, _State, _Data) ->
    ok.

%%====================================================================
%% Internal functions
%%====================================================================

%% Events every state handles the same way.
handle_common({call, From}, get_state, State, #breaker_data{failures = F}) ->
    {keep_state_and_data, [{reply, From, {State, F}}]};
handle_common(cast, reset, _State, Data) ->
    {next_state, closed, Data#breaker_data{failures = 0, trips = 0, probing = false}};
handle_common(info, Msg, State, #breaker_data{name = Name}) ->
    logger:warning("breaker ~p in state ~p got unexpected message ~p", [Name, State, Msg]),
    keep_state_and_data.

%% How long to stay open after the Trips-th consecutive trip: the reset
%% timeout doubled per earlier trip, capped, plus up to 20% random jitter.
-spec open_delay(pos_integer(), non_neg_integer()) -> pos_integer().
open_delay(Base, Trips) ->
    Exponential = Base * (1 bsl min(Trips, 16)),
    Capped = min(Exponential, ?MAX_BACKOFF_MS),
    Capped + rand:uniform(max(Capped div 5, 1)).
