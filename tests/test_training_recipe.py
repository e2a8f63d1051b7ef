"""The signals recipe (the default training recipe): its rows and batches, the Trainer on
pairs, its settings in [training], and a pipeline run that mines, stores and trains on
pairs. A tiny random-init model for mechanics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.errors import ConfigError
from codekin.jobs.retrain import RetrainOptions, pipeline_options
from codekin.training.data import read_triplets_file
from codekin.training.pairs.batches import TextPair, near_duplicate_key
from codekin.training.pipeline import PipelineOptions, run_pipeline
from codekin.training.trainer.args import TrainingArguments
from codekin.training.trainer.recipe import recipe_rows
from codekin.training.trainer.trainer import Trainer
from tests.tiny_model import build_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORDS = ["ledger", "basket", "meter", "tally", "quota", "bucket", "window", "ticket", "parcel", "socket",
         "stream", "cursor", "lease", "token", "queue", "frame"]
WORKER = '''defmodule Kin.{Name} do
  @moduledoc "Workers that keep the {name} total."
  use GenServer

  @doc """
  Starts the {name} worker linked to the caller with the given options.
  """
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "Adds the amount to the running {name} total and replies with the new total."
  def handle_call({{:add, amount}}, _from, total) do
    # keep the {name} total below the configured ceiling for this worker
    new_total = min(total + amount, 1000)
    {{:reply, new_total, new_total}}
  end
end
'''


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _pairs(kind: str = "doc") -> list[TextPair]:
    return [TextPair(f"{kind}: adds the amount to the {w} total", f"# lib/{w}.ex\ndef add_{w}(total, amount) do\n"
                     f"  {w}_total(total + amount * {i})\nend", f"lib/{w}.ex:{i}", kind) for i, w in enumerate(WORDS)]


def _triplets(n: int) -> list[dict[str, str]]:
    return [{"anchor": f"the {WORDS[i % 16]} worker", "positive": f"defmodule Kin.{WORDS[i % 16].title()} do end",
             "negative": f"defmodule Kin.{WORDS[(i + 5) % 16].title()} do end"} for i in range(n)]


def test_recipe_batches_hold_one_kind_and_never_one_function_twice() -> None:
    doc = _pairs("doc")
    twin = TextPair("another view of the ledger doc", doc[0].code, doc[0].group, "doc")
    copy = TextPair("a copy of the basket adder", doc[1].code.replace("basket", "bsk"), "lib/copy.ex:1", "doc")
    pairs = [*doc, twin, copy, *_pairs("renamed")]
    made = recipe_rows(pairs, _triplets(21), ["doc", "renamed", "seed"], batch_size=8, seed=13)
    assert made.counts["seed"] == 21 and made.counts["renamed"] == 16 and 16 <= made.counts["doc"] <= 18
    assert sorted(i for batch in made.batches for i in batch) == list(range(len(made.rows)))
    by_row = {(p.query, p.code): p for p in pairs}
    for batch in made.batches:
        rows = [made.rows[i] for i in batch]
        assert 2 <= len(rows) <= 8
        source = [by_row.get(row) for row in rows]
        if source[0] is None:  # a seed batch: (anchor, positive) of the triplets
            assert all(row[0].startswith("the ") for row in rows)
            continue
        assert len({p.kind for p in source}) == 1
        groups = [p.group for p in source]
        keys = [near_duplicate_key(p.code.split("\n", 1)[1]) for p in source]
        assert len(set(groups)) == len(groups) and len(set(keys)) == len(keys)
    assert set(recipe_rows(pairs, _triplets(21), ["doc"], 8, 13).counts) == {"doc"}
    again = recipe_rows(pairs, _triplets(21), ["doc", "renamed", "seed"], 8, 13)
    assert (again.rows, again.batches) == (made.rows, made.batches)


def test_signals_recipe_trains_on_pairs_and_seed_rows(tiny_model_dir: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    args = TrainingArguments(learning_rate=2e-3, batch_size=8, epochs=3, device="cpu", max_seq_length=64,
                             warmup_ratio=0.0, signals=["doc", "seed"])
    trainer = Trainer(str(tiny_model_dir), "cpu", args, out=lines.append, show_progress=False)
    result = trainer.train(_triplets(16), pairs=_pairs("doc") + _pairs("renamed"), checkpoint_dir=tmp_path / "ck")
    assert lines[0].startswith(f"Fine-tuning {tiny_model_dir} on 32 pairs (doc 16, seed 16)\n")
    assert "  Loss: ranking over pairs (in-batch negatives, both ways)" in lines[0]
    losses = [e.loss for e in result.epochs]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert all(e.steps == 4 for e in result.epochs) and 0 <= result.epochs[-1].accuracy <= 1
    assert (tmp_path / "ck" / "epoch-3" / "model.safetensors").is_file()


def test_triplets_recipe_stays_available(tiny_model_dir: Path, capsys, monkeypatch) -> None:
    """Also: without a terminal an epoch reports its batches as lines (a CPU epoch takes
    minutes; a log or the editor's retrain progress must not look hung)."""
    monkeypatch.setenv("CODEKIN_PROGRESS_EVERY_S", "0")
    lines: list[str] = []
    args = TrainingArguments(learning_rate=2e-3, batch_size=8, epochs=1, device="cpu", max_seq_length=64,
                             recipe="triplets")
    Trainer(str(tiny_model_dir), "cpu", args, out=lines.append).train(_triplets(16), pairs=_pairs())
    assert lines[0].startswith(f"Fine-tuning {tiny_model_dir} on 16 triplets\n")
    assert "  Loss: triplet (margin 0.3)" in lines[0]
    progress = capsys.readouterr().err.splitlines()
    assert progress[0].startswith("Training epoch 1/1: 1/2 (50%)") and progress[1].startswith(
        "Training epoch 1/1: 2/2 (100%)"), progress


def test_a_step_budget_keeps_every_doc_batch_and_a_share_of_the_rest() -> None:
    made = recipe_rows([*_pairs("doc"), *_pairs("renamed"), *_pairs("comment")], _triplets(32),
                       ["doc", "comment", "renamed", "seed"], batch_size=4, seed=13)
    assert len(made.batches) == 20 and made.counts == {"doc": 16, "comment": 16, "renamed": 16, "seed": 32}
    cut = made.at_most(7, seed=13)
    assert len(cut.batches) == 7 and cut.counts["doc"] == 16 and sum(cut.counts.values()) == 28
    assert sorted(i for batch in cut.batches for i in batch) == list(range(len(cut.rows)))
    kept = {made.rows[i] for batch in made.batches for i in batch}
    assert set(cut.rows) <= kept and len(set(cut.rows)) == 28
    assert made.at_most(7, seed=13).rows == cut.rows and made.at_most(20, seed=13) is made


def test_a_cpu_run_trains_within_its_step_budget(tiny_model_dir: Path) -> None:
    """0 (auto) on a CPU: at most CPU_MAX_STEPS steps; an explicit max_steps is kept on any
    device; the header says what was cut."""
    from codekin.training.trainer import trainer as module

    lines: list[str] = []
    args = TrainingArguments(learning_rate=2e-3, batch_size=4, epochs=2, device="cpu", max_seq_length=64,
                             signals=["doc", "renamed", "seed"], max_steps=6)
    result = Trainer(str(tiny_model_dir), "cpu", args, out=lines.append, show_progress=False).train(
        _triplets(16), pairs=_pairs("doc") + _pairs("renamed"))
    assert [e.steps for e in result.epochs] == [3, 3]
    assert "Step budget: 3 of 12 batches an epoch, every doc batch first (training.max_steps = 6)" in lines[0]
    auto = Trainer(str(tiny_model_dir), "cpu", args.replace(max_steps=0), out=lambda s: None, show_progress=False)
    assert auto._step_budget() == module.CPU_MAX_STEPS
    auto.device = "cuda"
    assert auto._step_budget() == 0


def test_signals_recipe_without_rows_is_a_clear_error(tiny_model_dir: Path) -> None:
    args = TrainingArguments(device="cpu", max_seq_length=64, signals=["comment"])
    with pytest.raises(Exception, match="no training pairs of the kinds comment") as caught:
        Trainer(str(tiny_model_dir), "cpu", args, out=lambda s: None, show_progress=False).train(_triplets(8))
    assert "training.recipe" in caught.value.hint


def _write_config(root: Path, text: str) -> None:
    (root / ".codekin").mkdir(exist_ok=True)
    (root / ".codekin" / "config.toml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("text, message", [
    ('[training]\nrecipe = "pairs"\n', "training.recipe must be one of signals, triplets, got 'pairs'"),
    ('[training]\nsignals = ["doc", "docs"]\n', "training.signals: 'docs' is not a signal"),
    ('[training]\nsignals = []\n', "training.signals: an empty list is not a signal"),
    ('[training]\nmode = "nightly"\n', "training.mode must be one of auto, adapter, finetune, got 'nightly'"),
    ('[training]\nlearning_rate = 2.0\n', "training.learning_rate must be in"),
    ('[training]\nmax_steps = -5\n', "training.max_steps must be in [0, "),
])
def test_bad_training_settings_name_the_file_and_key(repo_factory, text: str, message: str) -> None:
    root = repo_factory({"README.md": "x\n"})
    _write_config(root, text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")) as caught:
        load_config(root)
    assert str(root / ".codekin" / "config.toml") in caught.value.message


def test_training_settings_reach_the_nightly_arguments(repo_factory) -> None:
    root = repo_factory({"README.md": "x\n"})
    defaults = pipeline_options(load_config(root), RetrainOptions()).args
    assert (defaults.recipe, defaults.signals, defaults.learning_rate, defaults.batch_size, defaults.epochs) == (
        "signals", ["doc", "comment", "renamed", "seed"], 2e-5, 32, 3)
    assert defaults.max_steps == 0  # auto: the CPU budget on a CPU, everything on a GPU
    _write_config(root, '[training]\nrecipe = "triplets"\nloss = "mnrl"\nlearning_rate = 1e-5\nbatch_size = 16\n'
                        'max_steps = 40\n')
    args = pipeline_options(load_config(root), RetrainOptions(epochs=2)).args
    assert (args.recipe, args.loss, args.learning_rate, args.batch_size, args.epochs, args.max_steps) == (
        "triplets", "mnrl", 1e-5, 16, 2, 40)


@pytest.mark.slow
def test_pipeline_mines_stores_and_trains_on_pairs(tiny_model_dir: Path, repo_factory) -> None:
    files = {f"lib/{w}.ex": WORKER.format(Name=w.title(), name=w) for w in WORDS}
    root = repo_factory(files)
    config = load_config(root, {"model": {"primary": str(tiny_model_dir), "fallback": str(tiny_model_dir),
                                          "device": "cpu", "backend": "torch"}})
    args = TrainingArguments(learning_rate=2e-3, batch_size=8, epochs=1, device="cpu", max_seq_length=64)
    lines: list[str] = []
    result = run_pipeline(root, config, PipelineOptions(args=args, count=40, resume=False), lines.append)
    assert result.status in ("promoted", "rejected") and result.adapter == {}  # mode finetune: no adapter
    assert not any(line.startswith("Adapter pairs: ") for line in lines)
    mined = next(line for line in lines if line.startswith("Training pairs: "))
    header = next(line for line in lines if line.startswith("Fine-tuning "))
    assert "doc " in mined and "renamed " in mined and "seed 40" in header and " pairs (" in header
    stored = read_triplets_file(root / ".codekin" / "models" / "v1" / "triplets.jsonl")
    assert len(stored.train) == 40 and {p.kind for p in stored.pairs} <= {"doc", "comment", "renamed"}
    assert str(len(stored.pairs)) in mined
    first_pair = next(json.loads(line) for line in (root / ".codekin/models/v1/triplets.jsonl").read_text().splitlines()
                      if '"signal"' in line)
    assert set(first_pair) == {"signal", "query", "code", "group"}


def test_a_test_pairs_with_the_one_function_of_its_subject_it_calls(repo_factory) -> None:
    from codekin.training.mining.snippets import collect
    from codekin.training.mining.tested import tested_pairs

    files = {
        "lib/kin/ledger.ex": "defmodule Kin.Ledger do\n  def add(a, b) do\n    a + b\n  end\n\n"
                             "  def clamp(x) do\n    min(x, 1000)\n  end\nend\n",
        "test/kin/ledger_test.exs": 'defmodule Kin.LedgerTest do\n  use ExUnit.Case\n  alias Kin.Ledger\n\n'
                                    '  test "adds two amounts" do\n    assert Ledger.add(1, 2) == 3\n  end\n\n'
                                    '  test "adds and clamps" do\n    assert Ledger.clamp(Ledger.add(999, 2)) == 1000\n  end\n\n'
                                    '  test "other modules" do\n    assert Enum.sum([1]) == 1\n  end\nend\n',
        "src/ledger.erl": "-module(ledger).\n-export([add/2]).\n\nadd(A, B) ->\n    Sum = A + B,\n    Sum.\n",
        "test/ledger_tests.erl": '-module(ledger_tests).\n-include_lib("eunit/include/eunit.hrl").\n\n'
                                 "add_test() ->\n    ?assertEqual(3, ledger:add(1, 2)).\n",
    }
    root = repo_factory(files)
    config = load_config(root)
    functions = [s for found in collect(root, config).snippets.values() for s in found if s.kind == "function"]
    pairs = tested_pairs(root, config, functions)
    assert {s.symbol for s in functions} >= {"Kin.Ledger.add/2", "ledger:add/2"}, [s.symbol for s in functions]
    assert sorted((p.query.split("\n")[0].strip(), p.group) for p in pairs) == [
        ("add_test() ->", "src/ledger.erl:4"), ('test "adds two amounts" do', "lib/kin/ledger.ex:2")]
    assert all(p.kind == "test" and "def add" in p.code or "add(A, B)" in p.code for p in pairs)
    without_add = [s for s in functions if "add" not in s.symbol]
    assert tested_pairs(root, config, without_add) == []  # only functions of the given split answer
