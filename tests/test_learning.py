"""Learning that shows in search: which files train, the held-out queries, scoring through the
real hybrid search (LanceDB on disk), the per-kind gate, retrain progress, and bad input
(each a clear message with the active model kept). A tiny random-init model for mechanics."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codekin.cli import main as cli_main
from codekin.config import load_config
from codekin.errors import CodekinError
from codekin.jobs.loop import describe_last_training
from codekin.jobs.retrain import progress_step, serve_active_model
from codekin.jobs.scheduler import write_jobs_state
from codekin.models.registry import BASE, ModelRegistry
from codekin.training.adapter import QueryAdapter, query_encoder, train_adapter
from codekin.training.judging.judge import held_out_files
from codekin.training.judging.queries import (
    COMMIT,
    DOC_TO_CODE,
    MODULE,
    SYMBOL,
    build_eval_set,
    renamed,
)
from codekin.training.judging.search import PRIMARY, SearchEvaluator, SearchGate, model_encoder
from codekin.training.mining.snippets import collect, describe_selection
from codekin.training.pipeline import PipelineOptions, run_pipeline
from codekin.training.trainer.args import TrainingArguments
from tests.conftest import git
from tests.processes import alive, children_of
from tests.tiny_model import build_tiny_model, use_in_user_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORKER = '''defmodule {mod} do
  @moduledoc "Workers of {mod}."
  use GenServer

  @doc """
  Starts the {name} worker linked to the caller with the given options.
  """
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "Adds the amount to the running {name} total and replies with the new total."
  def handle_call({{:add, amount}}, _from, total) do
    new_total = total + amount
    {{:reply, new_total, new_total}}
  end

  def {name}_value(state) do
    state
    |> Map.get(:value, 0)
    |> Kernel.+(1)
  end
end
'''


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _workers(n: int, prefix: str = "lib") -> dict[str, str]:
    names = ["ledger", "basket", "meter", "tally", "quota", "bucket", "window", "ticket"]
    return {f"{prefix}/{names[i]}.ex": WORKER.format(mod=f"Kin.{names[i].title()}", name=names[i])
            for i in range(n)}


def _config(root: Path, model: Path):
    return load_config(root, {"model": {"primary": str(model), "fallback": str(model), "device": "cpu",
                              "backend": "torch"}})


def _options(**changes) -> PipelineOptions:
    args = TrainingArguments(learning_rate=2e-3, batch_size=8, epochs=1, device="cpu", max_seq_length=64,
                             warmup_ratio=0.0)
    return PipelineOptions(args=args, count=40, resume=False, **changes)


def test_default_selection_finds_every_project_layout(repo_factory) -> None:
    files = {**_workers(1, "phoenix/lib"), **_workers(1, "apps/shop/lib"), "ecto/src/ecto_x.erl": "-module(ecto_x).\n",
             "apps/shop/c_src/hash.c": "int f(void) { return 1; }\n", "deps/plug/lib/plug.ex": "defmodule P do\nend\n",
             "_build/dev/lib/x/ebin.erl": "-module(e).\n", "node_modules/a/b.c": "int g;\n",
             "test/ledger_test.exs": "defmodule T do\nend\n", "vendor/zstd/lib/zstd.c": "int z;\n",
             "phoenix/priv/static/x.c": "int p;\n", "mix.exs": "defmodule M.MixProject do\nend\n"}
    root = repo_factory(files)
    found = collect(root, load_config(root))
    assert found.family == {"phoenix/lib/ledger.ex": "beam", "apps/shop/lib/ledger.ex": "beam",
                            "ecto/src/ecto_x.erl": "beam", "apps/shop/c_src/hash.c": "cpp"}
    assert describe_selection(found) == "4 training files: elixir 2, c 1, erlang 1"
    narrowed = collect(root, load_config(root, {"training": {"beam_globs": ["phoenix/**/*.ex"]}}))
    assert set(narrowed.family) == {"phoenix/lib/ledger.ex", "apps/shop/c_src/hash.c"}


def test_held_out_queries_come_from_held_out_files_with_docs_stripped(repo_factory) -> None:
    root = repo_factory(_workers(8))
    (root / "lib/ledger.ex").write_text(WORKER.format(mod="Kin.Ledger", name="ledger").replace(
        "new_total = total + amount", "new_total = max(total + amount, 0)"))
    git(root, "commit", "-qam", "Never let the ledger total go below zero")
    config = load_config(root)
    held = held_out_files(root, config, seed=13)
    assert 1 <= len(held) < 8
    eval_set = build_eval_set(root, held, config, seed=13)
    assert {c.path for c in eval_set.chunks} == set(held)
    assert all("@doc" not in c.text for c in eval_set.chunks)
    docs = [q for q in eval_set.queries if q.kind == DOC_TO_CODE]
    assert docs and all(q.targets[0][0] in held and "@doc" not in q.text for q in docs)
    assert {q.text for q in eval_set.queries if q.kind == SYMBOL} >= {f"{Path(p).stem}_value" for p in held}
    modules = sorted(q.targets for q in eval_set.queries if q.kind == MODULE)  # "Workers of Kin.Ledger." -> its file
    assert modules == sorted(((p, 0, 0),) for p in held)
    assert all("@moduledoc" not in c.text and "Workers of" not in c.embed_text for c in eval_set.chunks)
    commits = [q for q in eval_set.queries if q.kind == COMMIT]
    assert [q.text for q in commits] == (["Never let the ledger total go below zero"]
                                         if "lib/ledger.ex" in held else [])
    copy = renamed("  def ledger_value(state) do\n    # note\n    Map.get(state, :value)\n  end")
    assert copy == "  def v0(w1) do\n    Map.get(w1, :value)\n  end"


def test_evaluator_scores_through_hybrid_search_and_gate_needs_a_gain(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    files = {path: text for path, text in _workers(6).items()}
    root = tmp_path / "plain"  # no git history: no commit queries, the rest stands
    root.mkdir()
    config = load_config(root)
    eval_set = build_eval_set(root, files, config, seed=1, per_kind=8)
    assert eval_set.counts()[COMMIT] == 0 and eval_set.counts()[DOC_TO_CODE] >= 5
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    with SearchEvaluator(eval_set, config.search, scratch=tmp_path) as evaluator:
        base = evaluator(model_encoder(model), "base")
        same = evaluator(model_encoder(model), "again", reuse="base")
        assert (tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith("codekin-eval-"))).is_dir()
    assert not any(p.name.startswith("codekin-eval-") for p in tmp_path.iterdir())
    assert 0 < base[PRIMARY] <= 1 and base["search_symbol_mrr@10"] > 0.5  # definitions rank names
    assert same == base
    decision = SearchGate(min_improvement=0.01)(base, same)
    assert not decision.promote and "does not beat" in decision.reason and "doc_to_code" in decision.reason


def test_code_without_docs_still_gets_symbol_and_code_queries(tmp_path: Path) -> None:
    files = {p: "\n".join(line for line in text.split("\n") if "@doc" not in line and "Starts the" not in line
                          and "Adds the" not in line and line.strip() != '"""')
             for p, text in _workers(4).items()}
    eval_set = build_eval_set(tmp_path, files, load_config(tmp_path), seed=1)
    counts = eval_set.counts()
    assert counts[DOC_TO_CODE] == 0 and counts[SYMBOL] >= 4 and counts["code_to_code"] >= 4
    from codekin.training.judging.search import decisive

    assert decisive({"search_doc_to_code_queries": 0.0}) == PRIMARY  # the mean over kinds decides


def test_a_file_comment_asks_for_its_file_and_leaves_the_corpus(tmp_path: Path) -> None:
    erlang = ("%% Copyright 2024 Kin. Licensed under the Apache License.\n%%\n"
              "%% Rate limiting of API keys with token buckets.\n%% Buckets refill every second.\n"
              "-module(kin_rate).\n-export([take/1]).\n\ntake(Key) ->\n    ets:update_counter(kin_rate, Key, -1).\n")
    eval_set = build_eval_set(tmp_path, {"src/kin_rate.erl": erlang}, load_config(tmp_path), seed=1)
    [module] = [q for q in eval_set.queries if q.kind == MODULE]
    assert module.text == "Rate limiting of API keys with token buckets."  # the licence paragraph is skipped
    assert module.targets == (("src/kin_rate.erl", 0, 0),)
    assert all("token buckets" not in c.embed_text for c in eval_set.chunks)  # nor kept as the chunks' context
    take = next(c for c in eval_set.chunks if c.symbol.startswith("kin_rate:take"))
    assert (take.start_line, take.end_line) == (8, 9)  # blanked, not removed: the lines stay where they were


def test_gate_rejects_any_kind_that_drops_and_ignores_tiny_kinds() -> None:
    active = {PRIMARY: 0.5, "dim": 8.0, "search_doc_to_code_mrr@10": 0.4, "search_doc_to_code_queries": 30.0,
              "search_symbol_mrr@10": 0.9, "search_symbol_queries": 30.0, "search_commit_mrr@10": 0.5,
              "search_commit_queries": 2.0}
    better = {**active, PRIMARY: 0.6, "search_doc_to_code_mrr@10": 0.6, "search_commit_mrr@10": 0.0}
    assert SearchGate()(active, better).promote  # two commit queries neither decide nor block
    worse_symbols = {**better, "search_symbol_mrr@10": 0.88}
    decision = SearchGate()(active, worse_symbols)
    assert not decision.promote and "symbol 0.900 -> 0.880" in decision.reason
    cannot = SearchGate()({PRIMARY: math.nan}, {PRIMARY: math.nan})
    assert not cannot.promote and "could not run" in cannot.reason
    assert "--allow-dim-change" in SearchGate()(active, {**better, "dim": 16.0}).reason


def test_adapter_moves_text_queries_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(64, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = np.roll(docs, 1, axis=1)  # a fixed rotation the adapter has to learn
    adapter = train_adapter(queries, docs, rank=8, epochs=60, learning_rate=2e-2)
    hits = np.argmax(adapter.apply(queries) @ docs.T, axis=1)
    assert (hits == np.arange(64)).mean() > (np.argmax(queries @ docs.T, axis=1) == np.arange(64)).mean()

    def encode(texts: list[str]) -> np.ndarray:
        return np.tile(queries[:1], (len(texts), 1))

    moved = query_encoder(encode, adapter)(["where are totals added up", "ledger_value", "def f(x) do\n  x\nend"])
    assert not np.allclose(moved[0], queries[0]) and np.allclose(moved[1:], queries[:1])
    back = QueryAdapter.load(adapter.save(tmp_path / "adapter.npz"))
    assert np.allclose(back.apply(queries), adapter.apply(queries))


@pytest.mark.parametrize("files, expected", [
    (_workers(2), "Not enough BEAM snippets in .*: found 2 files"),
    ({"c_src/a.c": "int f(int x) {\n  return x + 1;\n}\n", "c_src/b.c": "int g(int y) {\n  return y;\n}\n"},
     "Not enough BEAM snippets in .*: found 0 files"),
])
def test_too_little_code_is_a_clear_error_and_the_model_stays(tiny_model_dir, repo_factory, files, expected) -> None:
    root = repo_factory(files)
    with pytest.raises(CodekinError, match=expected) as caught:
        run_pipeline(root, _config(root, tiny_model_dir), _options(), lambda s: None)
    assert "less tests, deps/" in caught.value.hint and str(root) in caught.value.message
    assert ModelRegistry(root).active_ref() == BASE


def _triplets(path: Path, n: int) -> Path:
    rows = [{"anchor": f"sum the ledger {i}", "positive": f"def ledger_{i}(x), do: x + {i}",
             "negative": f"def other_{i}(y), do: y", "split": "train"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_evaluation_that_cannot_run_rejects_and_keeps_the_model(tiny_model_dir, repo_factory, tmp_path) -> None:
    root = repo_factory({"README.md": "nothing to search\n"})
    lines: list[str] = []
    result = run_pipeline(root, _config(root, tiny_model_dir),
                          _options(triplets_file=str(_triplets(tmp_path / "t.jsonl", 16))), lines.append)
    assert result.status == "rejected" and result.reason.startswith("the evaluation cannot run: no held-out")
    assert ModelRegistry(root).active_ref() == BASE
    assert [line for line in lines if line.startswith("Phase: ")] == [
        "Phase: triplets", "Phase: training", "Phase: evaluation"]


def test_interrupted_run_is_recorded_as_interrupted(tiny_model_dir, repo_factory, tmp_path, capsys) -> None:
    root = repo_factory({"README.md": "x\n"})

    def interrupt(line: str) -> None:
        if line.startswith("Phase: training"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(root, _config(root, tiny_model_dir),
                     _options(triplets_file=str(_triplets(tmp_path / "t.jsonl", 16))), interrupt)
    version = ModelRegistry(root).get("v1")
    assert version.status == "interrupted" and "resumes" in version.manifest["reason"]
    assert ModelRegistry(root).active_ref() == BASE
    write_jobs_state(root, last_run={"trigger": "on demand", "outcome": "running", "message": "", "at": 1.0})
    last = describe_last_training(root)
    assert last is not None and last["lastAttempt"]["outcome"] == "interrupted" and last["status"] == "failed"
    assert cli_main(["models", "list", "--repo", str(root)]) == 0
    assert "interrupted: interrupted (the next `codekin train` resumes it)" in capsys.readouterr().out


def test_a_killed_codekin_train_stops_its_training_child(tiny_model_dir, repo_factory, tmp_path) -> None:
    """`kill` of `codekin train` ends its training child too (it trained on, orphaned), which
    records the run as interrupted; the active model stays."""
    use_in_user_config(tiny_model_dir)
    root = repo_factory({"README.md": "x\n"})
    command = [sys.executable, "-m", "codekin", "train", "--repo", str(root), "--device", "cpu", "--recipe",
               "triplets", "--triplets", str(_triplets(tmp_path / "t.jsonl", 64)), "--epochs", "500",
               "--batch-size", "4", "--no-reembed"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # the child's human lines
            if line.startswith("Fine-tuning"):
                break
        children = children_of(proc.pid)  # the training child
        assert len(children) == 1, children
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert not alive(children[0])
    assert ModelRegistry(root).get("v1").status == "interrupted"
    assert ModelRegistry(root).active_ref() == BASE


def test_retrain_progress_names_each_phase_and_the_verdict() -> None:
    within = "Training epoch 1/2: 3/6 (50%), 2.0 s each, about 6 s left"
    lines = ["Phase: triplets", "Training files under /r: 3 training files: elixir 3", "Phase: training", within,
             "Epoch 1/2: loss=0.1, accuracy=0.9", "Epoch 2/2: loss=0.1, accuracy=0.9", "Phase: evaluation",
             "Rejected v1 (kept for inspection): search MRR@10 0.5 does not beat 0.5"]
    steps = [step for step in (progress_step(line, 2) for line in lines) if step is not None]
    assert [s[0] for s in steps] == [0, 1, 0, 1, 1, 0, 1]  # epochs + 2 steps in all
    assert [s[1] for s in steps][:4] == ["triplets", "training (2 epochs)", within,
                                         "Epoch 1/2: loss=0.1, accuracy=0.9"]
    assert steps[-1][1].startswith("Rejected v1")


def test_after_training_the_summary_says_which_vectors_answer(repo_factory) -> None:
    root = repo_factory({"README.md": "x\n"})
    assert serve_active_model(root, load_config(root)) == {
        "vectors": None, "reembed": None, "message": "No index yet: `codekin index` builds it with base"}
    out = subprocess.run([sys.executable, "-m", "codekin", "train", "--repo", str(root), "--count", "0"],
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "--count must be >= 1" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "codekin", "train", "--repo", str(root), "--max-steps", "-3"],
                         capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "max_steps must be 0 (auto) or more, got -3" in out.stderr
    assert "Traceback" not in out.stderr


def test_after_a_promotion_search_answers_from_the_promoted_model(repo_factory, tiny_model_dir, tmp_path) -> None:
    from codekin.indexer import Indexer
    from tests.tiny_model import register_version

    use_in_user_config(tiny_model_dir, "max_tokens = 64\n")
    root = repo_factory(_workers(2))
    config = load_config(root)
    Indexer(root, config).run()
    assert serve_active_model(root, config)["message"] == "Search answers from base's vectors"
    version = register_version(root, build_tiny_model(tmp_path / "other", seed=1))
    waiting = serve_active_model(root, config, reembed_now=False)
    assert waiting["vectors"] == "base" and "run `codekin reembed` to use" in waiting["message"]
    done = serve_active_model(root, config)
    assert done["vectors"] == version and done["message"].startswith(f"Search now answers from {version}'s vectors")
    assert serve_active_model(root, config)["message"] == f"Search answers from {version}'s vectors"
