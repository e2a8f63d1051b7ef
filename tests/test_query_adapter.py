"""The training signals that teach doc-like queries (doc views, comments, renamed copies, with
false in-batch negatives kept apart) and the served query-side adapter: an adapter-only run
through the CLI, promoted or kept by the search gate, then applied to text queries by the
search path (no re-embed), never to symbols or code, and only on the table it was fitted on.
A tiny random-init model for mechanics; real LanceDB, real git, the real CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from codekin.cli import main as cli_main
from codekin.config import load_config
from codekin.engine import Engine
from codekin.index import query as queries
from codekin.indexer import Indexer
from codekin.models.adapters import WEIGHTS, AdapterStore, QueryAdapter
from codekin.training.mining.signals import doc_views, text_pairs
from codekin.training.mining.snippets import Snippet
from codekin.training.pairs.batches import file_of, mnrl_batches
from tests.tiny_model import build_tiny_model, use_in_user_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ELIXIR = '''  @doc """
  Adds the amount to the running total and replies with it.

  The total never goes below zero, so refunds are clamped.

  ```elixir
  iex> add(1)
  ```
  """
  def add(total, amount) do
    # Clamp refunds so the running total never turns negative.
    next = max(total + amount, 0)
    # old: total = next
    {:reply, next, next}
  end
'''
ERLANG = '''add(Total, Amount) ->
    %% Clamp refunds so the running total never turns negative.
    %% Next = {Total, Amount},
    Next = max(Total + Amount, 0),
    {reply, Next, Next}.
'''


def _snippet(path: str, language: str, text: str, start: int = 1) -> Snippet:
    return Snippet(path, language, "function", f"Kin.{path}/2", start, start + text.count("\n"), text, "beam")


def test_signals_give_doc_views_comments_and_renamed_copies() -> None:
    assert doc_views("Adds the amount to the total.\n\nThe total never goes below zero.\n\n```\nx\n```") == [
        "Adds the amount to the total.", "The total never goes below zero."]
    pairs = text_pairs([_snippet("a.ex", "elixir", ELIXIR), _snippet("b.erl", "erlang", ERLANG)])
    by_kind: dict[str, list[str]] = {}
    for p in pairs:
        by_kind.setdefault(f"{p.group.split('.')[1]}:{p.kind}", []).append(p.query)
    assert by_kind["ex:1:doc"] == ["Adds the amount to the running total and replies with it.",
                                   "The total never goes below zero, so refunds are clamped."]
    # the comment block is prose; commented-out code is not a query
    assert by_kind["ex:1:comment"] == ["Clamp refunds so the running total never turns negative."]
    assert by_kind["erl:1:comment"] == ["Clamp refunds so the running total never turns negative."]
    doc_pair = next(p for p in pairs if p.kind == "doc")
    assert "@doc" not in doc_pair.code and "def add(total, amount)" in doc_pair.code
    comment_pair = next(p for p in pairs if p.kind == "comment" and p.group.startswith("a.ex"))
    assert "Clamp refunds" not in comment_pair.code and "max(total + amount, 0)" in comment_pair.code
    copy = next(p for p in pairs if p.kind == "renamed" and p.group.startswith("a.ex"))
    assert "total" not in copy.query and "#" not in copy.query and "total" in copy.code


def test_mnrl_batches_keep_one_function_and_its_near_duplicates_apart() -> None:
    twin = ELIXIR.replace("total", "sum").replace("amount", "delta")  # the same function renamed
    snippets = [_snippet("a.ex", "elixir", ELIXIR), _snippet("c.ex", "elixir", twin)] + [
        _snippet(f"f{i}.ex", "elixir", f"  def f{i}(x, y) do\n    # Doubles the value {i} before storing it.\n"
                 f"    z = x * {i} + y\n    {{:ok, z}}\n  end\n") for i in range(6)]
    pairs = text_pairs(snippets)
    batches = mnrl_batches(pairs, batch_size=4)
    batched = [p for b in batches for p in b]
    assert {p.group for p in pairs if p.group.startswith("f")} <= {p.group for p in batched}  # distinct: all used
    for batch in batches:
        assert len(batch) >= 2
        assert len({p.kind for p in batch}) == 1
        groups = [p.group for p in batch]
        assert len(groups) == len(set(groups))
        assert not {"a.ex:1", "c.ex:1"} <= set(groups)  # near-duplicates are false negatives


def test_doc_pairs_are_a_functions_doc_and_a_modules_moduledoc() -> None:
    """A function's doc is a `doc` pair, a module's @moduledoc a `moduledoc` pair; a documented
    C++ declaration is not one yet (unmeasured: issue 24's notes), attributes never are."""
    declaration = ("  // Returns the number of capturing groups in the pattern.\n"
                   "  int NumberOfCapturingGroups() const;")
    function = ('  @doc "Returns the number of items in the cart."\n  def count(cart) do\n'
                "    length(cart.items)\n  end")
    module = '  @moduledoc """\n  Keeps the running totals of every ledger worker.\n  """\n  use GenServer\n'
    snippets = [Snippet("re2.h", "cpp", "declaration", "RE2::NumberOfCapturingGroups", 10, 11, declaration, "cpp"),
                Snippet("cart.ex", "elixir", "function", "Cart.count/1", 3, 6, function, "beam"),
                Snippet("kin.ex", "elixir", "module", "Kin", 1, 4, module, "beam"),
                Snippet("a.erl", "erlang", "attributes", "a", 1, 2, "%% Keeps the running totals here.\n-module(a).",
                        "beam")]
    pairs = {p.kind: p for p in text_pairs(snippets) if p.kind in ("doc", "moduledoc")}
    assert set(pairs) == {"doc", "moduledoc"}
    assert pairs["doc"].query == "Returns the number of items in the cart."
    assert "@doc" not in pairs["doc"].code and "length(cart.items)" in pairs["doc"].code
    assert pairs["moduledoc"].query == "Keeps the running totals of every ledger worker."
    assert "@moduledoc" not in pairs["moduledoc"].code and "use GenServer" in pairs["moduledoc"].code
    assert not [p for p in text_pairs(snippets) if "capturing groups" in p.query]


def test_mnrl_batches_by_file_fill_a_batch_from_few_files() -> None:
    snippets = [_snippet(f"f{i % 4}.ex", "elixir", f"  def f{i}(x, y) do\n    # Doubles the value {i} before storing it."
                         f"\n    z = x * {i} + y * {i * i}\n    {{:ok, z, :v{i}}}\n  end\n", start=10 * i)
                for i in range(16)]
    pairs = [p for p in text_pairs(snippets) if p.kind == "comment"]
    spread = {by_file: [len({file_of(p) for p in b}) for b in mnrl_batches(pairs, 4, by_file=by_file)]
              for by_file in (False, True)}
    assert spread[True] == [1, 1, 1, 1] and max(spread[False]) > 1
    for batch in mnrl_batches(pairs, 4, by_file=True):
        assert len({p.group for p in batch}) == len(batch)


WORKER = '''defmodule Kin.{title} do
  @moduledoc "Workers that keep the {name} figures."

  @doc "Adds the amount to the running {name} total and replies with the new {name} total."
  def add_{name}(total, amount) do
    # Keep the {name} total from going below zero when refunds arrive.
    max(total + amount, 0)
  end

  @doc "Resets the {name} counter to zero and returns the value it had before the reset."
  def reset_{name}(state) do
    {{Map.get(state, :{name}, 0), Map.put(state, :{name}, 0)}}
  end
end
'''
NAMES = ["ledger", "basket", "meter", "tally", "quota", "bucket", "window", "ticket", "wallet", "budget"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_adapter_run_is_judged_recorded_and_served_to_text_queries_only(tiny_model_dir, repo_factory,
                                                                        capsys) -> None:
    use_in_user_config(tiny_model_dir, "max_tokens = 64\n")
    root = repo_factory({f"lib/{n}.ex": WORKER.format(title=n.title(), name=n) for n in NAMES})
    config = load_config(root)
    Indexer(root, config).run()
    assert cli_main(["train", "--adapter", "--json", "--repo", str(root), "--min-improvement", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "adapter" and result["pairs"] >= 8
    assert "search_doc_to_code_mrr@10" in result["active_metrics"]
    store = AdapterStore(root)
    manifest = store.manifest(result["version"])
    assert manifest["applies_to"] == result["applies_to"] and manifest["status"] == result["status"]
    with sqlite3.connect(root / ".codekin" / "metrics.db") as db:
        assert db.execute("SELECT loss, new_version FROM runs").fetchall() == [("adapter", result["version"])]
    engine = Engine(root, config)
    key = engine.store.state()["active_key"]
    assert key == result["applies_to"]
    # a promoted adapter: a strong fixed move, so its effect is plain to see
    dim = engine.embedder.dim
    shift = QueryAdapter(np.eye(dim, 4, dtype=np.float32), np.ones((4, dim), dtype=np.float32))
    version = store.save(shift, key, {}, "test")
    store.promote(version, "test")
    question, symbol = queries.parse("where do refunds get clamped"), queries.parse("add_ledger")
    assert not np.allclose(engine._query_vector(question, key), engine._embed(question.text, key))
    assert np.allclose(engine._query_vector(symbol, key), engine._embed(symbol.text, key))
    assert engine.status()["query_adapter"] == version
    assert cli_main(["status", "--repo", str(root)]) == 0
    assert f"query adapter: {version} (moves text questions)" in capsys.readouterr().out
    assert engine.search("where do refunds get clamped")  # the search path runs with it
    other = store.save(shift, "another-table", {}, "test")
    store.promote(other, "test")  # fitted on another model's vectors: inert here
    assert np.allclose(engine._query_vector(question, key), engine._embed(question.text, key))
    store.promote(version, "test")
    (store.dir / version / WEIGHTS).write_bytes(b"damaged")  # weights that fail their sha256 are not served
    assert engine.status()["query_adapter"] is None


def test_gate_keeps_the_served_adapter_when_it_gains_more_than_a_fine_tune() -> None:
    from codekin.training.evaluation.evaluate import GateDecision
    from codekin.training.judging.search import weigh_adapter

    def metrics(doc: float) -> dict[str, float]:
        return {"search_doc_to_code_mrr@10": doc, "search_doc_to_code_queries": 20.0}

    passed = GateDecision(True, "doc->code up")
    adapter = {"active": metrics(0.40), "candidate": metrics(0.47)}
    kept = weigh_adapter(passed, metrics(0.41), metrics(0.45), adapter)
    assert not kept.promote and "served query adapter gains more" in kept.reason and "+0.070" in kept.reason
    assert weigh_adapter(passed, metrics(0.41), metrics(0.50), adapter) is passed  # the fine-tune gains more
    assert weigh_adapter(passed, metrics(0.41), metrics(0.45), None) is passed  # no adapter served
    rejected = GateDecision(False, "drop")
    assert weigh_adapter(rejected, metrics(0.41), metrics(0.45), adapter) is rejected


def test_the_adapter_leaves_exactly_symbol_and_code_queries_alone() -> None:
    from codekin.models.adapters import UNMOVED_KINDS, adapted

    assert set(UNMOVED_KINDS) == {queries.SYMBOL, queries.CODE}
    assert adapted(queries.QUESTION) and adapted(queries.CONCEPT)
