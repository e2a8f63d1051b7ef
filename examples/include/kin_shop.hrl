%%% Shared records and macros for the Erlang modules of kin_shop.

-ifndef(KIN_SHOP_HRL).
-define(KIN_SHOP_HRL, true).

%% Circuit breaker defaults.
-define(DEFAULT_FAILURE_THRESHOLD, 5).
-define(DEFAULT_RESET_TIMEOUT, 30000).

%% Upper bound for every backoff delay, in milliseconds.
-define(MAX_BACKOFF_MS, 600000).

-define(NOW_MS, erlang:monotonic_time(millisecond)).
-define(LOG_EVENT(Kind, Data), kin_event_log:log(Kind, Data)).

-record(breaker_data, {
    name :: atom(),
    failures = 0 :: non_neg_integer(),
    threshold = ?DEFAULT_FAILURE_THRESHOLD :: pos_integer(),
    reset_timeout = ?DEFAULT_RESET_TIMEOUT :: pos_integer(),
    opened_at :: integer() | undefined,
    trips = 0 :: non_neg_integer(),
    probing = false :: boolean()
}).

-record(conn_data, {
    host :: string(),
    port :: inet:port_number(),
    socket :: gen_tcp:socket() | undefined,
    attempt = 0 :: non_neg_integer(),
    pending = queue:new() :: queue:queue(binary()),
    buffer = <<>> :: binary(),
    subscriber :: pid() | undefined
}).

-record(event, {
    seq :: non_neg_integer(),
    at :: integer(),
    kind :: atom(),
    data :: term()
}).

-endif.
