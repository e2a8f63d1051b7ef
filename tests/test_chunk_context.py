"""Module context in chunk headers, the Erlang module comment, and lexical matching of prose."""

from __future__ import annotations

import pyarrow as pa

from codekin.chunking import Chunk, chunk_text
from codekin.chunking.context import first_sentence, leading_comment
from codekin.index.lexical import Bm25, name_terms, query_terms, stem, terms
from codekin.index.store import IndexStore
from tests.samples import TREE_INSERT, TREE_INSERT_IN_LEAF

ELIXIR = '''defmodule Shop.Cache do
  @moduledoc """
  Read-through cache of stock levels. Entries expire after a TTL.
  """
  use GenServer

  def fetch(sku), do: GenServer.call(__MODULE__, {:fetch, sku})

  defmodule Entry do
    def new(v), do: {v, System.monotonic_time()}
  end

  defmodule Stats do
    @moduledoc "Hit and miss counters."
    def hits(s), do: s.hits
  end
end
'''

ERLANG = '''%% Copyright Example Corp 2024. Licensed under the Apache License.

%%% @doc Bounded in-memory log of business events.
%%% Keeps the last N events.
-module(ev_log).
-export([clear/0]).

%% @doc Forgets all events.
clear() -> gen_server:call(?MODULE, clear).
'''

C = '''/* CRC-32 checksums for Shop.Native. Table driven. */
#include <erl_nif.h>

static unsigned crc(const unsigned char *p, int n) {
  return n ? p[0] : 0;
}
'''


def headers(chunks: list[Chunk]) -> dict[str, str]:
    return {c.symbol: c.header for c in chunks}


def test_elixir_functions_carry_the_first_sentence_of_their_module_doc():
    got = headers(chunk_text("lib/cache.ex", ELIXIR))
    assert got == {
        "Shop.Cache": "elixir module Shop.Cache",  # the head holds the doc itself
        "Shop.Cache.fetch/1": "elixir function Shop.Cache.fetch/1: Read-through cache of stock levels.",
        # an undocumented inner module inherits the outer summary, a documented one has its own
        "Shop.Cache.Entry.new/1": "elixir function Shop.Cache.Entry.new/1: Read-through cache of stock levels.",
        "Shop.Cache.Stats": "elixir module Shop.Cache.Stats",
        "Shop.Cache.Stats.hits/1": "elixir function Shop.Cache.Stats.hits/1: Hit and miss counters.",
    }


def test_erlang_module_comment_is_indexed_and_summarises_the_functions():
    chunks = chunk_text("src/ev_log.erl", ERLANG)
    attributes = next(c for c in chunks if c.kind == "attributes")
    assert (attributes.start_line, attributes.end_line) == (3, 6)  # the %%% @doc block belongs to it
    assert "Keeps the last N events." in attributes.text
    clear = next(c for c in chunks if c.kind == "function")
    assert clear.header == "erlang function ev_log:clear/0: Bounded in-memory log of business events."
    assert clear.embed_text.startswith(clear.header + "\n%% @doc Forgets all events.")


def test_c_file_comment_is_the_context_and_windows_get_none():
    fn = next(c for c in chunk_text("c_src/crc.c", C) if c.kind == "function")
    assert fn.context == "CRC-32 checksums for Shop.Native."
    windows = chunk_text("c_src/crc.c", C, _windows_config())
    assert all(c.context == "" for c in windows)


def test_context_changes_the_content_hash_only_through_the_header():
    a = Chunk("x.ex", "elixir", "function", "M.f/0", 1, 1, "def f, do: 1")
    b = Chunk("x.ex", "elixir", "function", "M.f/0", 1, 1, "def f, do: 1", context="Does things.")
    assert a.header == "elixir function M.f/0"  # no context: the header (and hash) of before
    assert a.content_hash != b.content_hash


def test_first_sentence_and_licence_skipping():
    assert first_sentence("Token-bucket limiter (API id, IP, ...). Every key starts full.") == \
        "Token-bucket limiter (API id, IP, ...)."
    assert len(first_sentence("word " * 40).split()) == 16
    assert leading_comment("// Copyright 2020 X. All rights reserved.\n\n// Fast pricing of baskets.\nint x;\n") == \
        "Fast pricing of baskets."
    assert leading_comment("int main() { return 0; }\n// trailing\n") == ""
    hackney = ("%%% -*- erlang -*-\n%%%\n%%% This file is part of hackney released under the Apache 2 license.\n"
               "%%% See the NOTICE for more information.\n%%%\n%%% Simplified hackney API.\n\n-module(hackney).\n")
    assert leading_comment(hackney) == "Simplified hackney API."  # the licence paragraph's tail is not the summary
    isc = ("%% Copyright (c) Loic <essen@ninenines.eu>\n%%\n"
           "%% Permission to use, copy, modify, and/or distribute this software for any\n"
           "%% purpose with or without fee is hereby granted, provided that the above\n"
           "%% copyright notice and this permission notice appear in all copies.\n%%\n"
           "%% THE SOFTWARE IS PROVIDED \"AS IS\" AND THE AUTHOR DISCLAIMS ALL WARRANTIES\n"
           "%% ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES\n"
           "%% WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN\n"
           "%% ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF\n\n-module(gun).\n")
    assert leading_comment(isc) == ""  # a whole ISC licence, no module summary
    assert leading_comment("//! A runtime for writing reliable network applications.\n") == \
        "A runtime for writing reliable network applications."  # "reliable" holds "liab", not a licence word
    escript = "#!/usr/bin/env escript\n%% -*- erlang -*-\n%%! -pa ebin\n\n%% Demo of pooled HTTP requests.\nmain(_) -> ok.\n"
    assert leading_comment(escript) == "Demo of pooled HTTP requests."
    rust = "#![warn(rust_2018_idioms)]\n#![cfg(feature = \"full\")]\n\n//! Tests of the TCP listener.\nuse tokio;\n"
    assert leading_comment(rust) == "Tests of the TCP listener."  # attributes are no comment; `//!` is a doc
    assert leading_comment("#error Define SPDLOG_COMPILED_LIB first\n#endif\n// Sinks of the logger.\n") == \
        "Sinks of the logger."


def test_prose_queries_meet_identifiers_through_stems_without_function_words():
    for word, other in [("starts", "start"), ("entries", "entry"), ("matches", "match"), ("handling", "handle"),
                        ("parsed", "parse"), ("compression", "compress"), ("connections", "connected")]:
        assert stem(word) == stem(other), (word, other)
    assert stem("status") == "status" and stem("process") == "process"
    assert stem("max_entries") == "max_entry"  # an identifier loses its plural only; its parts are words
    assert query_terms(terms("Starts the worker of the pool")) == ["start", "worker", "pool"]
    docs = [terms("def start_link(opts), do: GenServer.start_link(__MODULE__, opts)"),
            terms("# the the the of the\ndef other, do: :ok")]
    scores = Bm25(docs, prose=True).scores(terms("Starts the worker"))
    assert scores[0] > 0 and scores[1] == 0
    assert Bm25(docs).scores(terms("Starts the worker"))[0] == 0  # code-to-code: terms as they are


def test_name_terms_are_the_callables_own_name_in_every_symbol_form():
    assert name_terms("dets_utils:bplus_insert_in_leaf/2", "function") == \
        ["bplus_insert_in_leaf", "bplus", "insert", "in", "leaf"]
    assert name_terms("KinShop.Cache.fetch/2", "function") == ["fetch"]
    assert name_terms("kin_shop::nif::PriceBook::total", "method") == ["total"]
    assert name_terms("rand:seed64/1 (part 2/3)", "function") == ["seed64", "seed", "64"]
    assert name_terms("KinShop.RateLimiter.valid?/1", "guard") == ["valid"]
    assert name_terms("KinShop.RateLimiter", "module") == name_terms("a.ex", "window") == []


def test_the_name_field_ranks_a_thin_wrapper_above_the_sibling_that_holds_its_words():
    symbols = [("tree:insert/2", "function"), ("tree:insert_in_leaf/2", "function"), ("tree", "module")]
    docs = [terms(f"{s} {t}") for (s, _), t in zip(symbols, [TREE_INSERT, TREE_INSERT_IN_LEAF, "-module(tree)."], strict=True)]
    bm25 = Bm25(docs, prose=True, names=[name_terms(s, k) for s, k in symbols])
    query = terms("Inserts a key in a leaf")
    plain, named = bm25.scores(query), bm25.scores(query, name_weight=1.5)
    assert plain[0] > plain[1]  # the longer sibling says "key" and "leaf" more often
    assert named[1] > named[0]  # but the wrapper is named for what the query asks
    assert named[2] == plain[2] == 0 and named[0] > plain[0]  # "insert" is in insert/2's name too


def test_an_index_written_before_chunk_contexts_still_embeds_and_takes_new_chunks(tmp_path):
    store = IndexStore(tmp_path)
    old_schema = pa.schema([f for f in store_schema() if f.name != "context"])
    old = Chunk("a.ex", "elixir", "function", "A.f/0", 1, 1, "def f, do: 1")
    row = {"path": old.path, "language": old.language, "kind": old.kind, "symbol": old.symbol,
           "start_line": 1, "end_line": 1, "content_hash": old.content_hash, "text": old.text, "terms": "f"}
    store.db.create_table("chunks", pa.Table.from_pylist([row], schema=old_schema))
    assert store.chunk_texts({old.content_hash}) == {old.content_hash: old.embed_text}
    new = Chunk("b.ex", "elixir", "function", "B.g/0", 1, 1, "def g, do: 2", context="Gets two.")
    store.replace_files(["b.ex"], [new], [])
    texts = store.chunk_texts({old.content_hash, new.content_hash})
    assert texts == {old.content_hash: old.embed_text, new.content_hash: new.embed_text}
    assert "two" in store.load_chunks().to_pylist()[-1]["terms"].split()  # the context is searchable


def store_schema() -> pa.Schema:
    from codekin.index.store import CHUNKS_SCHEMA

    return CHUNKS_SCHEMA


def _windows_config():
    from codekin.config import IndexConfig

    return IndexConfig(chunker="windows")
