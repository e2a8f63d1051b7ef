%%% @doc Connection to the warehouse push feed.
%%%
%%% Keeps one TCP connection (4-byte length-prefixed frames) to the
%%% warehouse and forwards every frame it receives to a subscriber process.
%%% Frames sent while the connection is down are queued, up to a limit, and
%%% flushed as soon as it is back up.
%%%
%%% States: connecting -> connected; any failure goes to backoff, which
%%% waits an exponentially growing, jittered delay before connecting again.
-module(kin_conn_statem).
-behaviour(gen_statem).

-include("kin_shop.hrl").

-export([start_link/3, send/1, subscribe/1, status/0, stop/0]).
-export([init/1, callback_mode/0, handle_event/4, terminate/3]).

-define(SERVER, ?MODULE).
-define(CONNECT_TIMEOUT, 5000).
-define(BASE_BACKOFF_MS, 250).
-define(MAX_PENDING, 1000).
-define(SOCKET_OPTS, [binary, {packet, 4}, {active, once}, {keepalive, true}, {nodelay, true}]).

-type state_name() :: connecting | connected | backoff.

%%====================================================================
%% API
%%====================================================================

%% @doc Starts the connection process; frames received from Host:Port are
%% sent to Subscriber as {warehouse_frame, Binary} messages.
-spec start_link(string(), inet:port_number(), pid()) -> gen_statem:start_ret().
start_link(Host, Port, Subscriber) ->
    gen_statem:start_link({local, ?SERVER}, ?MODULE, {Host, Port, Subscriber}, []).

%% @doc Sends one frame to the warehouse. Returns ok when it was written to
%% the socket, queued when it was buffered for later, or {error, queue_full}.
-spec send(binary()) -> ok | queued | {error, queue_full}.
send(Frame) when is_binary(Frame) ->
    gen_statem:call(?SERVER, {send, Frame}).

%% @doc Replaces the process that receives incoming frames.
-spec subscribe(pid()) -> ok.
subscribe(Pid) when is_pid(Pid) ->
    gen_statem:cast(?SERVER, {subscribe, Pid}).

%% @doc Returns the current state, the reconnect attempt and the queue length.
-spec status() -> #{state := state_name(), attempt := non_neg_integer(), pending := non_neg_integer()}.
status() ->
    gen_statem:call(?SERVER, status).

%% @doc Closes the connection and stops the process.
-spec stop() -> ok.
stop() ->
    gen_statem:stop(?SERVER).

%%====================================================================
%% gen_statem callbacks
%%====================================================================

callback_mode() ->
    [handle_event_function, state_enter].

init({Host, Port, Subscriber}) ->
    process_flag(trap_exit, true),
    {ok, connecting, #conn_data{host = Host, port = Port, subscriber = Subscriber}}.

%% connecting: try once, then either connected or backoff.
handle_event(enter, _OldState, connecting, _Data) ->
    {keep_state_and_data, [{state_timeout, 0, connect}]};
handle_event(state_timeout, connect, connecting, #conn_data{host = Host, port = Port} = Data) ->
    case gen_tcp:connect(Host, Port, ?SOCKET_OPTS, ?CONNECT_TIMEOUT) of
        {ok, Socket} ->
            {next_state, connected, Data#conn_data{socket = Socket}};
        {error, Reason} ->
            logger:notice("warehouse feed ~s:~b unreachable: ~p", [Host, Port, Reason]),
            {next_state, backoff, Data}
    end;
%% backoff: wait before the next connection attempt.
handle_event(enter, _OldState, backoff, #conn_data{attempt = Attempt} = Data) ->
    Delay = kin_util:backoff_ms(Attempt + 1, ?BASE_BACKOFF_MS, ?MAX_BACKOFF_MS),
    {keep_state, Data#conn_data{attempt = Attempt + 1}, [{state_timeout, Delay, reconnect}]};
handle_event(state_timeout, reconnect, backoff, Data) ->
    {next_state, connecting, Data};
%% connected: flush what was queued, then relay frames both ways.
handle_event(enter, _OldState, connected, #conn_data{host = Host, attempt = Attempt} = Data) ->
    ?LOG_EVENT(feed_connected, #{host => Host, attempts => Attempt}),
    {keep_state, flush_pending(Data#conn_data{attempt = 0})};
handle_event({call, From}, {send, Frame}, connected, #conn_data{socket = Socket} = Data) ->
    case gen_tcp:send(Socket, Frame) of
        ok ->
            {keep_state_and_data, [{reply, From, ok}]};
        {error, Reason} ->
            logger:warning("warehouse feed send failed: ~p", [Reason]),
            {next_state, backoff, enqueue(Frame, close_socket(Data)), [{reply, From, queued}]}
    end;
handle_event(info, {tcp, Socket, Frame}, connected, #conn_data{socket = Socket, subscriber = Sub}) ->
    ok = inet:setopts(Socket, [{active, once}]),
    deliver(Sub, Frame),
    keep_state_and_data;
handle_event(info, {tcp_closed, Socket}, connected, #conn_data{socket = Socket} = Data) ->
    ?LOG_EVENT(feed_closed, #{host => Data#conn_data.host}),
    {next_state, backoff, Data#conn_data{socket = undefined}};
handle_event(info, {tcp_error, Socket, Reason}, connected, #conn_data{socket = Socket} = Data) ->
    logger:warning("warehouse feed socket error: ~p", [Reason]),
    {next_state, backoff, close_socket(Data)};
%% Any state: queue outgoing frames, report status, change subscriber.
handle_event({call, From}, {send, Frame}, _State, #conn_data{pending = Pending} = Data) ->
    case queue:len(Pending) >= ?MAX_PENDING of
        true -> {keep_state_and_data, [{reply, From, {error, queue_full}}]};
        false -> {keep_state, enqueue(Frame, Data), [{reply, From, queued}]}
    end;
handle_event({call, From}, status, State, #conn_data{attempt = Attempt, pending = Pending}) ->
    Reply = #{state => State, attempt => Attempt, pending => queue:len(Pending)},
    {keep_state_and_data, [{reply, From, Reply}]};
handle_event(cast, {subscribe, Pid}, _State, Data) ->
    {keep_state, Data#conn_data{subscriber = Pid}};
handle_event(info, Msg, State, _Data) ->
    %% Stale messages from sockets that were already replaced end up here.
    logger:debug("~p ignoring ~p in state ~p", [?MODULE, Msg, State]),
    keep_state_and_data.

terminate(_Reason, _State, Data) ->
    _ = close_socket(Data),
    ok.

%%====================================================================
%% Internal functions
%%====================================================================

enqueue(Frame, #conn_data{pending = Pending} = Data) ->
    Data#conn_data{pending = queue:in(Frame, Pending)}.

%% Writes queued frames in order; stops at the first failure and keeps the
%% rest queued, the socket error message will move us to backoff.
flush_pending(#conn_data{socket = Socket, pending = Pending} = Data) ->
    case queue:out(Pending) of
        {empty, _} ->
            Data;
        {{value, Frame}, Rest} ->
            case gen_tcp:send(Socket, Frame) of
                ok -> flush_pending(Data#conn_data{pending = Rest});
                {error, _Reason} -> Data
            end
    end.

close_socket(#conn_data{socket = undefined} = Data) ->
    Data;
close_socket(#conn_data{socket = Socket} = Data) ->
    ok = gen_tcp:close(Socket),
    Data#conn_data{socket = undefined}.

deliver(undefined, _Frame) ->
    ok;
deliver(Pid, Frame) when is_pid(Pid) ->
    Pid ! {warehouse_frame, Frame},
    ok.
