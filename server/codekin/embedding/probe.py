"""The agreement probe: a few code snippets whose int8 and fp32 vectors must agree."""

from __future__ import annotations

MIN_AGREEMENT = 0.98  # least cosine between int8 and torch vectors on the load-time probe
PROBE_TEXTS = (
    "erlang function handle_call/3\nhandle_call({get, Key}, _From, State) ->\n"
    "    {reply, maps:get(Key, State, undefined), State}.",
    "elixir function MyApp.Worker.start_link/1\ndef start_link(opts) do\n"
    "  GenServer.start_link(__MODULE__, opts, name: __MODULE__)\nend",
    "cpp function nif_add\nstatic ERL_NIF_TERM nif_add(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {\n"
    "  int a, b;\n  if (!enif_get_int(env, argv[0], &a)) return enif_make_badarg(env);\n}",
    "supervisor that restarts workers with exponential backoff",
)
