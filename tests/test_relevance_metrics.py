"""The relevance benchmark's metrics (benchmarks/relevance/scoring.py) on hand-made rankings,
and its doc -> code stripping (doc2code.py). Loaded by path; no bytecode is written."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

RELEVANCE = Path(__file__).resolve().parents[1] / "benchmarks" / "relevance"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"relevance_{name}", RELEVANCE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


scoring = _load("scoring")
doc2code = _load("doc2code")
T = scoring.Target
L3, L4 = math.log2(3), math.log2(4)  # discounts at ranks 2 and 3


def test_chunk_ndcg_counts_each_target_once_at_its_first_overlapping_hit():
    targets = [T("a.ex", 10, 20, 2), T("b.ex", None, None, 1)]
    hits = [("c.ex", 1, 5), ("a.ex", 15, 30), ("a.ex", 12, 14), ("b.ex", 1, 2)]
    # a.ex counts at rank 2 (not again at 3), b.ex (whole file) at rank 4
    expected = (2 / L3 + 1 / math.log2(5)) / (2 + 1 / L3)
    assert scoring.chunk_ndcg(hits, targets) == pytest.approx(expected)


def test_chunk_ndcg_needs_overlap_and_the_same_path():
    targets = [T("a.ex", 10, 20, 2)]
    assert scoring.chunk_ndcg([("a.ex", 21, 40), ("a.ex", 1, 9), ("b.ex", 10, 20)], targets) == 0.0
    assert scoring.chunk_ndcg([("a.ex", 20, 40)], targets) == 1.0  # one shared line is enough


def test_chunk_ndcg_one_hit_credits_one_target():
    # a 40-line window holding two small answers is paid once (for the better one) ...
    targets = [T("a.c", 5, 8, 1), T("a.c", 10, 12, 2)]
    window = [("a.c", 1, 40)]
    assert scoring.chunk_ndcg(window, targets) == pytest.approx(2 / (2 + 1 / L3))
    # ... and the second target counts at the next hit that overlaps it
    assert scoring.chunk_ndcg(window + [("a.c", 5, 6)], targets) == pytest.approx(1.0)


def test_chunk_ndcg_stops_at_rank_10():
    targets = [T("a.ex", 1, 5, 2)]
    hits = [("z.ex", i, i) for i in range(1, 11)] + [("a.ex", 1, 5)]
    assert scoring.chunk_ndcg(hits, targets) == 0.0
    assert scoring.chunk_ndcg(hits[:9] + hits[10:], targets) == pytest.approx(2 / math.log2(11) / 2)


def test_file_ndcg_dedupes_hits_into_files_with_the_best_gain():
    targets = [T("a.ex", 1, 5, 1), T("a.ex", 50, 60, 2), T("b.ex", None, None, 1)]
    hits = [("x.ex", 1, 1), ("x.ex", 9, 9), ("b.ex", 3, 4), ("a.ex", 100, 120)]
    files = scoring.files_of(hits)
    assert files == ["x.ex", "b.ex", "a.ex"]
    # a.ex has gain 2 (its best target) at rank 3, b.ex gain 1 at rank 2; lines do not matter
    expected = (1 / L3 + 2 / L4) / (2 + 1 / L3)
    assert scoring.file_ndcg(files, targets) == pytest.approx(expected)


def test_mrr_counts_relevant_targets_only():
    targets = [T("a.ex", 10, 20, 2), T("b.ex", None, None, 1)]
    assert scoring.mrr([("b.ex", 1, 9), ("c.ex", 1, 1), ("a.ex", 18, 25)], targets) == pytest.approx(1 / 3)
    assert scoring.mrr([("b.ex", 1, 9)], targets) == 0.0
    assert scoring.file_mrr(["b.ex", "a.ex"], targets) == 0.5


def test_precision_at_5_over_the_reachable_number_of_relevant_files():
    three = [T(p) for p in ("s1.erl", "s2.erl", "s3.erl")] + [T("t.erl", gain=1)]
    assert scoring.precision_at_5(["s1.erl", "t.erl", "x.erl", "s3.erl", "y.erl", "s2.erl"], three) == \
        pytest.approx(2 / 3)  # s2 is 6th; the secondary file does not count
    seven = [T(f"m{i}.ex") for i in range(7)]
    assert scoring.precision_at_5(["m0.ex", "m1.ex", "q.ex", "m2.ex", "m3.ex"], seven) == pytest.approx(4 / 5)


def test_score_chunks_and_files_keys():
    targets = [T("a.ex", 1, 3, 2)]
    assert scoring.score_chunks([("a.ex", 1, 1)], targets) == {"ndcg": 1.0, "fndcg": 1.0, "mrr": 1.0}
    assert scoring.score_chunks([], targets, module=True) == {"ndcg": 0.0, "fndcg": 0.0, "mrr": 0.0, "p5": 0.0}
    assert scoring.score_files(["b.ex", "a.ex", "a.ex"], targets) == {"fndcg": pytest.approx(1 / L3),
                                                                       "fmrr": 0.5}


def test_targets_of_keeps_the_best_gain_of_a_target_listed_twice():
    query = {"relevant": [{"path": "a.ex", "start": 1, "end": 9}],
             "secondary": [{"path": "a.ex", "start": 1, "end": 9}, {"path": "b.ex"}]}
    assert scoring.targets_of(query) == [T("a.ex", 1, 9, 2), T("b.ex", None, None, 1)]


def test_half_of_is_sha1_parity_of_the_id():
    assert scoring.half_of("ranch-01") == "tune"  # sha1 ends in an even hex digit
    assert scoring.half_of("req-07") == "held"


def test_aggregate_means_per_half_kind_language_and_doc2code():
    def row(half, kind, lang, ndcg, doc=False, level=None, p5=None):
        scores = {"ndcg": ndcg, "fndcg": 1.0, "mrr": ndcg}
        if p5 is not None:
            scores["p5"] = p5
        return {"half": half, "kind": kind, "lang": lang, "level": level, "doc2code": doc,
                "scores": {"hybrid": scores}}

    rows = [row("tune", "symbol", "go", 1.0), row("tune", "code", "go", 0.5, level="module", p5=0.6),
            row("held", "symbol", "c", 0.0), row("tune", "doc2code", "erlang", 0.25, doc=True),
            row("held", "doc2code", "elixir", 0.75, doc=True)]
    out = scoring.aggregate(rows, ["hybrid"], ["tune", "held", "all"])["hybrid"]
    assert out["tune"]["all"] == {"n": 2, "ndcg": 0.75, "fndcg": 1.0, "mrr": 0.75}
    assert out["tune"]["kind"]["code"]["ndcg"] == 0.5
    assert out["tune"]["p5_module"] == {"n": 1, "p5": 0.6}
    assert out["tune"]["doc2code"] == {"n": 1, "mrr": 0.25, "erlang": 0.25}
    assert out["held"]["lang"] == {"c": {"n": 1, "ndcg": 0.0, "fndcg": 1.0, "mrr": 0.0}}
    assert out["all"]["all"]["n"] == 3
    assert out["all"]["doc2code"] == {"n": 2, "mrr": 0.5, "elixir": 0.75, "erlang": 0.25}


ELIXIR = '''defmodule Shop.Cache do
  @doc """
  Fetches a cached value by its key.
  """
  @spec fetch(term()) ::
          term()
  def fetch(key) do
    key
  end

  def fetch(key, default), do:
    key || default

  @doc "See `fetch/1`."
  def get(key), do: fetch(key)

  @doc false
  def hidden(x), do: x
end
'''

ERLANG = '''-module(shop).

%% Sends the order confirmation mail to the customer.
-spec confirm(term()) -> ok.
confirm(Order) ->
    "100%", $%,
    ok.

%% Section heading only.

helper() -> ok.

%% Note between clauses, not a doc at all.
later(a) -> 1;
%% Another clause note that should be ignored here.
later(b) -> 2.
'''


def test_doc2code_finds_documented_functions_and_their_spans():
    [fetch] = doc2code.elixir_functions("lib/shop/cache.ex", ELIXIR)
    assert (fetch.name, fetch.start, fetch.end, fetch.doc_lines) == ("fetch", 7, 12, (2, 3, 4))
    assert fetch.doc == "Fetches a cached value by its key."  # "See `fetch/1`." is no prose
    [confirm, later] = doc2code.erlang_functions("src/shop.erl", ERLANG)
    assert (confirm.start, confirm.end, confirm.doc_lines) == (5, 7, (3,))  # the % in a string is no comment
    assert (later.start, later.end) == (14, 16)
    assert doc2code.documented_functions("test/shop_test.exs", ELIXIR) == []  # tests are left out


def test_doc2code_stripping_keeps_every_line_number():
    functions = doc2code.elixir_functions("lib/shop/cache.ex", ELIXIR)
    stripped = doc2code.strip_docs(ELIXIR, functions)
    assert stripped.count("\n") == ELIXIR.count("\n")
    assert "Fetches" not in stripped and stripped.split("\n")[6] == "  def fetch(key) do"
    picked = doc2code.select("shop", functions)
    assert picked == doc2code.select("shop", list(reversed(functions)))  # seeded, order-free


def test_doc2code_leaves_out_docs_that_another_function_nearly_repeats():
    def fn(path, start, doc):
        return doc2code.DocFunction(path, "f", start, start + 2, (start - 1,), doc)

    put = fn("lib/req.ex", 10, "Makes a PUT request and returns a response or raises an error.")
    patch = fn("lib/req.ex", 20, "Makes a PATCH request and returns a response or raises an error.")
    other = fn("lib/req.ex", 30, "Parses the netrc file into a map of hosts and credentials.")
    assert doc2code.without_twins([put, other], [put, patch, other]) == [other]
