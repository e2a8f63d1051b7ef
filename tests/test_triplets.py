"""PolyglotTripletGenerator on examples/ and small polyglot repositories (real git, real chunker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from codekin.cli import main
from codekin.config import load_config
from codekin.errors import ConfigError, NotEnoughSnippetsError, TripletFileError
from codekin.training.evaluation.splits import split_by_file
from codekin.training.mining.analysis import analyze_triplets
from codekin.training.mining.cutting import cut
from codekin.training.mining.snippets import describe_selection, glob_match
from codekin.training.mining.triplets import (
    PolyglotTripletGenerator,
    Triplet,
    read_jsonl,
    write_jsonl,
)
from tests.conftest import git

TOLERANCE = 0.03


def elixir_worker(i: int) -> str:
    return f'''defmodule Shop.Worker{i} do
  @moduledoc """
  Worker number {i} keeps a counter of processed jobs for queue {i}
  and reports it to the metrics collector.
  """
  use GenServer

  @doc "Starts worker {i} linked to the caller with the given options."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: :"worker_{i}")
  end

  @impl true
  def init(opts) do
    {{:ok, %{{count: 0, queue: Keyword.get(opts, :queue, {i})}}}}
  end

  @impl true
  def handle_call(:count, _from, state) do
    {{:reply, state.count + {i}, state}}
  end

  @impl true
  def handle_cast({{:job, job}}, state) do
    _ = job
    {{:noreply, %{{state | count: state.count + 1}}}}
  end

  @doc """
  Formats the counter of worker {i} as a line for the status page,
  padded to a fixed width.
  """
  @spec describe(map()) :: String.t()
  def describe(%{{count: count}}) do
    "worker {i}: " <> String.pad_leading(Integer.to_string(count * {i}), 8)
  end
end
'''


def erlang_server(i: int) -> str:
    return f'''-module(shop_srv{i}).
-behaviour(gen_server).

-export([start_link/0, init/1, handle_call/3, handle_cast/2, lookup/1]).

%% @doc Starts the lookup server number {i} and registers it locally.
-spec start_link() -> {{ok, pid()}}.
start_link() ->
    gen_server:start_link({{local, ?MODULE}}, ?MODULE, [], []).

init([]) ->
    {{ok, #{{table => ets:new(shop_srv{i}, [set])}}}}.

handle_call({{lookup, Key}}, _From, State = #{{table := T}}) ->
    {{reply, ets:lookup(T, Key), State}}.

handle_cast({{store, Key, Value}}, State = #{{table := T}}) ->
    true = ets:insert(T, {{Key, Value + {i}}}),
    {{noreply, State}}.

%% @doc Looks a key up in server {i}; returns the stored objects or an empty list.
-spec lookup(term()) -> [tuple()].
lookup(Key) ->
    gen_server:call(?MODULE, {{lookup, Key}}).
'''


NIF_STUBS = '''defmodule Shop.Native.Hash do
  @moduledoc """
  Fast hashing of payloads implemented in C in c_src/hash_nif.c.
  """
  @on_load :load_nif

  def load_nif, do: :erlang.load_nif(~c"priv/hash_nif", 0)

  @doc "Hashes a binary with FNV-1a and returns a 64-bit integer."
  def fnv1a(_data), do: :erlang.nif_error(:nif_not_loaded)

  @doc "Mixes two hashes into one, order dependent."
  def mix(_a, _b), do: :erlang.nif_error(:nif_not_loaded)
end
'''

NIF_C = '''#include <erl_nif.h>
#include <stdint.h>

/* FNV-1a over the bytes of a binary, returned as an unsigned 64-bit integer. */
static ERL_NIF_TERM fnv1a_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifBinary bin;
    uint64_t hash = 1469598103934665603ULL;
    if (argc != 1 || !enif_inspect_binary(env, argv[0], &bin)) {
        return enif_make_badarg(env);
    }
    for (size_t i = 0; i < bin.size; i++) {
        hash = (hash ^ bin.data[i]) * 1099511628211ULL;
    }
    return enif_make_uint64(env, hash);
}

/* Combines two hashes; the order of the arguments matters. */
static ERL_NIF_TERM mix_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    ErlNifUInt64 a, b;
    if (argc != 2 || !enif_get_uint64(env, argv[0], &a) || !enif_get_uint64(env, argv[1], &b)) {
        return enif_make_badarg(env);
    }
    return enif_make_uint64(env, a * 31 + b);
}

static ErlNifFunc nif_funcs[] = {
    {"fnv1a", 1, fnv1a_nif, 0},
    {"mix", 2, mix_nif, 0},
};

ERL_NIF_INIT(Elixir.Shop.Native.Hash, nif_funcs, NULL, NULL, NULL, NULL)
'''


def cpp_class(i: int) -> tuple[str, str]:
    header = f'''#pragma once
#include <cstdint>
#include <vector>

namespace shop {{

// A ring buffer number {i} of fixed capacity holding integer samples.
class Ring{i} {{
 public:
  explicit Ring{i}(std::size_t capacity);
  // Appends a sample, dropping the oldest one once the buffer is full.
  void push(std::int64_t value);
  // Average of the samples currently held, or zero when empty.
  double mean() const;

 private:
  std::vector<std::int64_t> values_;
  std::size_t next_ = 0;
}};

}}  // namespace shop
'''
    source = f'''#include "ring{i}.hpp"

namespace shop {{

Ring{i}::Ring{i}(std::size_t capacity) {{ values_.reserve(capacity); }}

void Ring{i}::push(std::int64_t value) {{
  if (values_.size() < values_.capacity()) {{
    values_.push_back(value + {i});
  }} else {{
    values_[next_] = value;
    next_ = (next_ + 1) % values_.size();
  }}
}}

double Ring{i}::mean() const {{
  if (values_.empty()) {{
    return 0.0;
  }}
  std::int64_t sum = 0;
  for (auto v : values_) {{
    sum += v;
  }}
  return static_cast<double>(sum) / values_.size();
}}

}}  // namespace shop
'''
    return header, source


def polyglot_files(beam: int = 6, cpp: int = 3) -> dict[str, str]:
    files = {f"lib/shop/worker{i}.ex": elixir_worker(i) for i in range(beam)}
    files |= {f"src/shop_srv{i}.erl": erlang_server(i) for i in range(beam)}
    files["lib/shop/native/hash.ex"] = NIF_STUBS
    files["c_src/hash_nif.c"] = NIF_C
    for i in range(cpp):
        header, source = cpp_class(i)
        files[f"packages/ring/src/ring{i}.hpp"] = header
        files[f"packages/ring/src/ring{i}.cpp"] = source
    return files


def generator(root: Path, **kwargs) -> PolyglotTripletGenerator:
    return PolyglotTripletGenerator(root, load_config(root), **kwargs)


def assert_ratios(triplets: list[Triplet], beam: float, cross: float) -> dict:
    stats = analyze_triplets(triplets)
    assert abs(stats["beam_ratio"] - beam) <= TOLERANCE, stats
    assert abs(stats["cpp_ratio"] - (1 - beam)) <= TOLERANCE, stats
    assert abs(stats["cross_language_ratio"] - cross) <= TOLERANCE, stats
    return stats


# -- examples/ ---------------------------------------------------------------------------------
def test_examples_ratios_kinds_and_sources(examples_repo: Path) -> None:
    gen = generator(examples_repo)
    triplets = gen.generate(count=100, beam_ratio=0.7, cross_language_ratio=0.3, seed=1)
    assert len(triplets) == 100
    stats = assert_ratios(triplets, 0.7, 0.3)
    assert stats["anchor_equals_positive"] == 0 and stats["duplicates"] == 0 and stats["duplicate_pairs"] == 0
    assert {"doc", "pattern", "signature"} <= set(stats["positive_kinds"])
    assert stats["negative_kinds"] == {"hard": 50, "random": 50}
    assert stats["hard_negative_mining"] == {"lexical": 50}
    assert any("lexically" in note for note in stats["notes"])
    train, held = gen.split_paths()["train"], gen.split_paths()["eval"]
    assert train and held and not train & held
    for t in triplets:
        assert t.anchor != t.positive and t.negative not in (t.anchor, t.positive)
        for source in (t.anchor_source, t.positive_source, t.negative_source):
            assert source.path in train and 1 <= source.start_line <= source.end_line
            assert source.language in ("elixir", "erlang", "c", "cpp")
        assert t.negative_source.base_symbol not in (t.anchor_source.base_symbol, t.positive_source.base_symbol)
        if t.positive_kind == "doc":
            assert t.anchor_source.kind == "doc" and t.anchor not in t.positive
    # the NIF pairs of examples/ (no held-out files here, so no pair is cut by the split):
    # every stub meets the C/C++ function its ErlNifFunc table names, the class its wrapper
    pairs = generator(examples_repo, eval_fraction=0.0).pairs("train")[0]
    nif = {(p.anchor.symbol, p.positive.symbol) for p in pairs if p.kind == "nif"}
    assert ("KinShop.Native.Checksum.crc32/1", "crc32_nif") in nif
    assert ("lookup_price_nif", "KinShop.Native.PricingNif.lookup_price/3") in nif
    assert len(nif) == 12  # 6 table entries, both directions
    wrappers = {(p.anchor.symbol, p.positive.symbol) for p in pairs if p.kind == "wrapper"}
    assert ("kin_shop::PriceBook", "KinShop.Native.PricingNif") in wrappers


def test_same_seed_same_triplets_other_seed_differs(examples_repo: Path) -> None:
    first = [t.to_dict() for t in generator(examples_repo).generate(count=60, seed=5)]
    again = [t.to_dict() for t in generator(examples_repo).generate(count=60, seed=5)]
    other = [t.to_dict() for t in generator(examples_repo).generate(count=60, seed=6)]
    assert first == again
    assert first != other


# -- splits ------------------------------------------------------------------------------------
def test_split_by_file_is_deterministic_disjoint_and_stable() -> None:
    paths = [f"lib/m{i}.ex" for i in range(1000)]
    train, held = split_by_file(paths, seed=13, eval_fraction=0.2)
    assert train | held == set(paths) and not train & held
    assert 0.15 < len(held) / len(paths) < 0.25
    assert split_by_file(list(reversed(paths)), 13, 0.2) == (train, held)
    assert split_by_file(paths, 14, 0.2)[1] != held
    # growing the repository never moves a file from one side to the other
    grown_train, grown_held = split_by_file(paths + [f"lib/new{i}.ex" for i in range(300)], 13, 0.2)
    assert held <= grown_held and train <= grown_train
    small_train, small_held = split_by_file(["a.ex", "b.ex", "c.ex", "d.ex", "e.ex"], 13, 0.2)
    assert len(small_held) == 1 and len(small_train) == 4
    with pytest.raises(ConfigError):
        split_by_file(paths, 13, 1.5)


def test_eval_split_never_reaches_training_triplets(repo_factory: Callable[..., Path]) -> None:
    root = repo_factory(polyglot_files(beam=8, cpp=4))
    gen = generator(root)
    train = gen.generate(count=80, seed=3, split="train")
    held = gen.generate(count=20, beam_ratio=1.0, cross_language_ratio=0.0, seed=3, split="eval")
    eval_paths = gen.split_paths()["eval"]
    train_paths = {s.path for t in train for s in (t.anchor_source, t.positive_source, t.negative_source)}
    held_paths = {s.path for t in held for s in (t.anchor_source, t.positive_source, t.negative_source)}
    assert not train_paths & eval_paths and held_paths <= eval_paths
    assert analyze_triplets(train + held, eval_paths)["leakage"] == []
    # a triplet that mixes the sides is reported
    leaked = Triplet.from_dict({**train[0].to_dict(), "split": "train",
                                "negative_source": held[0].negative_source.to_dict()})
    assert analyze_triplets([leaked], eval_paths)["leakage"] == [held[0].negative_source.path]


# -- positives ---------------------------------------------------------------------------------
def test_fixture_repo_ratios_pattern_nif_and_header_pairs(repo_factory: Callable[..., Path]) -> None:
    root = repo_factory(polyglot_files(beam=8, cpp=4))
    gen = generator(root, eval_fraction=0.0)
    triplets = gen.generate(count=100, beam_ratio=0.7, cross_language_ratio=0.2, seed=2)
    assert len(triplets) == 100
    assert_ratios(triplets, 0.7, 0.2)
    pairs = gen.pairs("train")[0]
    kinds = {p.kind for p in pairs}
    assert {"pattern", "doc", "signature", "nif"} <= kinds
    nif = {(p.anchor.symbol, p.positive.symbol) for p in pairs if p.kind == "nif"}
    assert nif == {("Shop.Native.Hash.fnv1a/1", "fnv1a_nif"), ("fnv1a_nif", "Shop.Native.Hash.fnv1a/1"),
                   ("Shop.Native.Hash.mix/2", "mix_nif"), ("mix_nif", "Shop.Native.Hash.mix/2")}
    callbacks = {(p.anchor.symbol, p.positive.symbol) for p in pairs if p.kind == "pattern"}
    assert any(a.endswith("handle_call/3") and b.endswith("handle_call/3") and a != b for a, b in callbacks)
    assert any(a.startswith("shop_srv") and a.endswith(":init/1") for a, _ in callbacks)
    header = [p for p in pairs if p.kind == "signature" and p.anchor.kind == "declaration"]
    assert any(p.anchor.path.endswith("ring1.hpp") and p.positive.symbol == "shop::Ring1::mean"
               and "Average of the samples" in p.anchor.text for p in header)
    for p in pairs:  # the negative miner never offers a positive's own symbol
        assert p.anchor.model_text != p.positive.model_text


def test_history_pairs_before_and_after_a_commit(repo_factory: Callable[..., Path]) -> None:
    root = repo_factory(polyglot_files(beam=4, cpp=3))
    path = root / "lib/shop/worker1.ex"
    path.write_text(path.read_text().replace("count: state.count + 1}", "count: state.count + job.weight}"))
    git(root, "commit", "-qam", "weigh jobs")
    gen = generator(root, eval_fraction=0.0)
    history = [p for p in gen.pairs("train")[0] if p.kind == "history"]
    assert [p.anchor.symbol for p in history] == ["Shop.Worker1.handle_cast/2"]
    (pair,) = history
    assert "count: state.count + 1}" in pair.anchor.text and "job.weight" in pair.positive.text
    assert pair.anchor.revision.endswith("^") and pair.positive.revision == pair.anchor.revision[:-1]


def test_doc_and_spec_are_cut_out_of_the_positive() -> None:
    text = elixir_worker(3).split("  @doc \"\"\"")[1]
    parts = cut("elixir", '  @doc """' + text.split("\nend")[0])
    assert parts.doc.startswith("Formats the counter of worker 3")
    assert parts.spec == "@spec describe(map()) :: String.t()"
    body = parts.code(without_doc=True, without_spec=True)
    assert body.lstrip().startswith("def describe") and "@doc" not in body and "@spec" not in body
    erl = cut("erlang", "%% @doc Looks a key up in the table and returns what it finds.\n"
                        "-spec lookup(term()) -> [tuple()].\nlookup(Key) ->\n    ets:lookup(t, Key).")
    assert erl.doc == "Looks a key up in the table and returns what it finds."
    assert erl.code(without_doc=True, without_spec=True) == "lookup(Key) ->\n    ets:lookup(t, Key)."


def test_globs_follow_the_issue_syntax() -> None:
    assert glob_match("lib/a.ex", ["lib/**/*.ex"]) and glob_match("lib/a/b/c.ex", ["lib/**/*.ex"])
    assert glob_match("packages/nif/src/x/y.hpp", ["packages/*/src/**/*.{cpp,h,hpp}"])
    assert not glob_match("packages/nif/test/y.hpp", ["packages/*/src/**/*.{cpp,h,hpp}"])
    assert not glob_match("deps/lib/a.ex", ["lib/**/*.ex"])


# -- errors ------------------------------------------------------------------------------------
def test_too_few_beam_files_is_an_error(repo_factory: Callable[..., Path], capsys) -> None:
    root = repo_factory({"lib/a.ex": elixir_worker(1), "lib/b.ex": elixir_worker(2), "README.md": "x\n"})
    with pytest.raises(NotEnoughSnippetsError) as info:
        generator(root).generate(count=10)
    assert info.value.message == (f"Not enough BEAM snippets in {root}: found 2 files / "
                                  f"{generator(root).files.count('beam')[1]} snippets; "
                                  "add code or lower --count")
    code = main(["triplets", "generate", "--repo", str(root), "--lexical", "--count", "10"])
    err = capsys.readouterr().err
    assert code != 0 and f"Not enough BEAM snippets in {root}: found 2 files" in err and "hint:" in err


def test_few_cpp_files_warns_and_goes_beam_only(repo_factory: Callable[..., Path]) -> None:
    root = repo_factory(polyglot_files(beam=6, cpp=0))  # only c_src/hash_nif.c
    gen = generator(root)
    triplets = gen.generate(count=50, seed=4)
    stats = analyze_triplets(triplets)
    assert stats["beam_ratio"] == 1.0 and stats["cpp_ratio"] == 0.0 and stats["cross_language_ratio"] == 0.0
    assert any("only 1 C/C++ files" in w and "BEAM-only" in w for w in gen.report.warnings)


def test_count_beyond_supply_is_capped_with_a_warning(repo_factory: Callable[..., Path]) -> None:
    root = repo_factory(polyglot_files(beam=4, cpp=3))
    gen = generator(root)
    triplets = gen.generate(count=5000, seed=4)
    assert 10 <= len(triplets) < 5000 and gen.report.generated == len(triplets)
    assert any("capped from 5000" in w for w in gen.report.warnings)
    stats = assert_ratios(triplets, 0.7, 0.3)
    assert stats["duplicate_pairs"] == 0


def test_bad_arguments_are_config_errors(examples_repo: Path) -> None:
    gen = generator(examples_repo)
    for kwargs in ({"count": 0}, {"beam_ratio": 1.2}, {"cross_language_ratio": -0.1}, {"split": "test"}):
        with pytest.raises(ConfigError):
            gen.generate(**kwargs)


# -- files and CLI -----------------------------------------------------------------------------
def test_jsonl_round_trip_and_bad_files(examples_repo: Path, tmp_path: Path) -> None:
    triplets = generator(examples_repo).generate(count=20, seed=1)
    path = write_jsonl(triplets, tmp_path / "t.jsonl")
    back = read_jsonl(path)
    assert [t.to_dict() for t in back] == [t.to_dict() for t in triplets]
    assert back[0].anchor_source.path == triplets[0].anchor_source.path
    (tmp_path / "bad.jsonl").write_text(path.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(TripletFileError, match="bad.jsonl:2"):
        read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(TripletFileError, match="no triplets file"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_cli_generate_and_analyze(examples_repo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "triplets.jsonl"
    code = main(["triplets", "generate", "--repo", str(examples_repo), "--count", "100", "--beam-ratio", "0.7",
                 "--cross-language-ratio", "0.3", "--seed", "7", "--out", str(out), "--lexical"])
    captured = capsys.readouterr()
    assert code == 0
    files = generator(examples_repo).files
    assert captured.out == (
        "Generating 100 polyglot triplets\n  BEAM ratio: 70.0%\n  C++ ratio: 30.0%\n  Cross-language: 30.0%\n"
        f"  BEAM snippets found: {files.count('beam')[1]}\n  C++ snippets found: {files.count('cpp')[1]}\n"
        f"  {describe_selection(files)}\nGenerated 100 triplets\n")
    assert "real cross-language pairs" in captured.err
    assert len(read_jsonl(out)) == 100
    assert main(["triplets", "analyze", str(out), "--json", "--repo", str(examples_repo)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"] == 100 and stats["leakage"] == [] and stats["beam_ratio"] == 0.7
    assert main(["triplets", "analyze", str(out)]) == 0
    human = capsys.readouterr().out
    assert human.startswith(f"Triplets in {out}: 100 (train 100)\n  BEAM ratio: 70.0%\n")
    assert "Near-duplicate anchor/positive pairs: 0" in human and "Train/eval leakage: 0 files" in human


# -- the real model ----------------------------------------------------------------------------
@pytest.mark.slow
def test_hard_negatives_from_the_model_and_the_index(indexed_examples: Path, minilm) -> None:
    gen = PolyglotTripletGenerator(indexed_examples, load_config(indexed_examples), embedder=minilm)
    triplets = gen.generate(count=40, seed=3)
    negatives = gen.report.negatives
    assert negatives["hard_model"] == 20 and negatives["hard_lexical"] == 0 and negatives["dense"]
    assert negatives["index_vectors"] > 0
    assert negatives["embedded"] < 40  # only doc/spec/declaration anchors: code vectors come from the index
    stats = analyze_triplets(triplets)
    assert stats["hard_negative_mining"] == {"model": 20}
    assert not any("lexical" in note for note in stats["notes"])
    vectors = minilm.encode([t.anchor for t in triplets] + [t.negative for t in triplets])
    similarity = np.sum(vectors[:len(triplets)] * vectors[len(triplets):], axis=1)
    hard = [s for s, t in zip(similarity, triplets, strict=True) if t.negative_kind == "hard"]
    rand = [s for s, t in zip(similarity, triplets, strict=True) if t.negative_kind == "random"]
    assert np.mean(hard) > np.mean(rand) + 0.1
