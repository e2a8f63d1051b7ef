-module(kin_util).
-moduledoc """
Small helpers shared by the Erlang modules of kin_shop: backoff delays,
number parsing and formatting, hex encoding and list chunking.
""".

-export([backoff_ms/3, clamp/3, parse_int/1, format_cents/2, to_hex/1, chunk/2, now_ms/0]).

-doc """
Delay in milliseconds before retry number Attempt (counting from 1):
Base doubled once per earlier attempt, never more than Cap, plus random
jitter of up to a fifth of the delay so that clients do not retry in step.
""".
-spec backoff_ms(pos_integer(), pos_integer(), pos_integer()) -> pos_integer().
backoff_ms(Attempt, Base, Cap) when is_integer(Attempt), Attempt > 0 ->
    Delay = min(Base * (1 bsl min(Attempt - 1, 30)), Cap),
    Delay + rand:uniform(max(Delay div 5, 1)).

-doc "Limits Value to the closed range Min..Max.".
-spec clamp(number(), number(), number()) -> number().
clamp(Value, Min, _Max) when Value < Min -> Min;
clamp(Value, _Min, Max) when Value > Max -> Max;
clamp(Value, _Min, _Max) -> Value.

-doc """
Parses a decimal integer from a binary, a string or an integer. Leading
and trailing whitespace is ignored; anything else makes it return error.
""".
-spec parse_int(binary() | string() | integer()) -> {ok, integer()} | error.
parse_int(Value) when is_integer(Value) ->
    {ok, Value};
parse_int(Value) when is_binary(Value) ->
    parse_int(binary_to_list(Value));
parse_int(Value) when is_list(Value) ->
    case string:to_integer(string:trim(Value)) of
        {Int, []} when is_integer(Int) -> {ok, Int};
        _ -> error
    end;
parse_int(_Value) ->
    error.

-doc """
Formats integer cents with a currency code as a binary, for example
format_cents(129990, <<"EUR">>) returns <<"1299.90 EUR">>.
""".
-spec format_cents(integer(), binary()) -> binary().
format_cents(Cents, Currency) when Cents < 0 ->
    Positive = format_cents(-Cents, Currency),
    <<"-", Positive/binary>>;
format_cents(Cents, Currency) when is_integer(Cents), is_binary(Currency) ->
    Units = integer_to_binary(Cents div 100),
    Fraction = iolist_to_binary(io_lib:format("~2..0B", [Cents rem 100])),
    <<Units/binary, ".", Fraction/binary, " ", Currency/binary>>.

-doc "Encodes a binary as lower-case hexadecimal.".
-spec to_hex(binary()) -> binary().
to_hex(Bin) when is_binary(Bin) ->
    << <<(hex_digit(N))>> || <<N:4>> <= Bin >>.

-doc "Splits List into consecutive chunks of at most Size elements.".
-spec chunk([T], pos_integer()) -> [[T]].
chunk([], _Size) ->
    [];
chunk(List, Size) when length(List) =< Size ->
    [List];
chunk(List, Size) when is_integer(Size), Size > 0 ->
    {Head, Tail} = lists:split(Size, List),
    [Head | chunk(Tail, Size)].

-doc "Monotonic time in milliseconds, for measuring durations only.".
-spec now_ms() -> integer().
now_ms() ->
    erlang:monotonic_time(millisecond).

hex_digit(N) when N < 10 -> $0 + N;
hex_digit(N) -> $a + N - 10.
