"""Searchable before the vectors exist: two-phase indexing through the real CLI (subprocesses
on temp git repositories, the real model), a phase 2 killed midway, a second indexer while
phase 2 runs, an int8 export that fails, and commands that answer without torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import index_words_only
from tests.samples import CART, LEDGER, RETRY

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def codekin(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codekin.cli", *args], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=300)


def modules(count: int) -> dict[str, str]:
    """`count` Elixir modules of three functions each: enough chunks for several slices."""
    files = {}
    for n in range(count):
        body = "\n".join(f'  @doc "Step {k} of job {n}: moves record {n * 7 + k} to stage {k}."\n'
                         f"  def step_{k}(rec) do\n    Map.put(rec, :stage_{n}_{k}, {n * k})\n  end\n"
                         for k in range(3))
        files[f"lib/job_{n}.ex"] = f"defmodule Jobs.Job{n} do\n{body}end\n"
    return files


def state(root: Path) -> dict:
    return json.loads((root / ".codekin" / "state.json").read_text(encoding="utf-8"))


def test_lexical_only_index_answers_by_words_then_index_adds_the_vectors(repo_factory):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    out = codekin("index", str(root), "--lexical-only", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["chunks"], summary["new_embeddings"], summary["missing_vectors"]) == (5, 0, 5)

    # A query on an index without vectors needs neither the model nor torch.
    probe = ("import sys; from codekin.cli.main import main; main(['search', 'retry with exponential backoff', "
             f"'--repo', {str(root)!r}, '--json', '--limit', '2']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    hits_line, torch_loaded = out.stdout.strip().splitlines()
    hits = json.loads(hits_line)
    assert hits[0]["symbol"] == "Shop.Retry.with_backoff/2" and hits[0]["embedded"] is False
    assert torch_loaded == "False"
    human = codekin("search", "retry with exponential backoff", "--limit", "1", cwd=root)
    assert "note: 5 of 5 chunks have no vector yet" in human.stdout

    status = json.loads(codekin("status", str(root), "--json").stdout)
    assert (status["chunks"], status["embedded_chunks"], status["dense_complete"]) == (5, 0, False)
    assert "dense layer incomplete: 5 chunks" in codekin("status", str(root)).stdout

    out = codekin("index", str(root), "--json")
    assert out.returncode == 0, out.stderr
    assert (json.loads(out.stdout)["new_embeddings"], json.loads(out.stdout)["missing_vectors"]) == (5, 0)
    hits = json.loads(codekin("search", "retry with exponential backoff", "--repo", str(root), "--json").stdout)
    assert hits[0]["symbol"] == "Shop.Retry.with_backoff/2" and "embedded" not in hits[0]
    status = json.loads(codekin("status", str(root), "--json").stdout)
    assert (status["embedded_chunks"], status["dense_complete"], status["pending"]) == \
        (5, True, {"changed": 0, "new": 0, "removed": 0})


def test_killed_phase_2_keeps_its_slices_and_a_second_indexer_is_told_who_holds_the_lock(repo_factory):
    root = repo_factory(modules(40))
    env = {**ENV, "CODEKIN_EMBED_SLICE": "4", "CODEKIN_PROGRESS_EVERY_S": "0"}
    first = subprocess.Popen([sys.executable, "-m", "codekin.cli", "index", str(root)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            dense = state(root).get("dense", {}) if (root / ".codekin" / "state.json").is_file() else {}
            if dense.get("embedded_chunks", 0) > 0 and not dense.get("complete", True):
                break
            time.sleep(0.02)
        assert first.poll() is None, "phase 2 ended before it could be interrupted"
        second = codekin("index", str(root))
        assert second.returncode != 0
        assert f"the index is locked by pid {first.pid} (codekin index) since" in second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    kept = state(root)["dense"]
    assert 0 < kept["embedded_chunks"] < kept["chunks"] == 120  # 40 modules of three functions

    status = json.loads(codekin("status", str(root), "--json").stdout)
    assert status["embedded_chunks"] >= kept["embedded_chunks"] and not status["dense_complete"]
    hits = json.loads(codekin("search", "moves record 23 to stage", "--repo", str(root), "--json").stdout)
    assert hits  # searchable by words while the vectors are incomplete

    again = codekin("index", str(root), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["new_embeddings"] <= 120 - kept["embedded_chunks"]  # what the kill kept is not redone
    assert summary["missing_vectors"] == 0 and state(root)["dense"]["complete"] is True


@pytest.mark.storm  # loads torch and embeds with it: ~15 s quiet, over a minute on the shared machine
def test_an_int8_export_that_fails_falls_back_to_torch_with_one_line(repo_factory, tmp_path):
    root = repo_factory({"lib/cart.ex": CART})
    user = tmp_path / "xdg"  # the backend is the user's choice, never a repository's
    (user / "codekin").mkdir(parents=True)
    (user / "codekin" / "config.toml").write_text('[model]\nbackend = "openvino-int8"\n', encoding="utf-8")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the export cache would go\n", encoding="utf-8")
    out = codekin("index", str(root), "--json",
                  env={**ENV, "CODEKIN_CACHE_DIR": str(blocked), "XDG_CONFIG_HOME": str(user)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["new_embeddings"] == 3
    lines = [line for line in out.stderr.splitlines() if "using torch" in line]
    assert len(lines) == 1 and lines[0].startswith("codekin: the int8 model is unavailable; using torch instead")
    assert "vectors_minilm" in codekin("status", str(root)).stdout
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def lexical_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import make_repo

    root = make_repo(tmp_path_factory.mktemp("quick") / "repo", {"lib/cart.ex": CART, "lib/retry.ex": RETRY})
    assert codekin("index", str(root), "--lexical-only").returncode == 0
    return root


@pytest.mark.parametrize("argv", [["--version"], ["hooks", "status"],
                                  ["search", "add an item to the cart", "--mode", "lexical"],
                                  ["search", "add an item to the cart"]])  # no vector yet: words only
def test_quick_commands_import_no_model_stack(argv, lexical_repo):
    root = lexical_repo
    probe = ("import sys\nfrom codekin.cli.main import main\ntry:\n    main(" + repr(argv) + ")\n"
             "except SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'transformers', 'lancedb', "
             "'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, cwd=root,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_query_file_answers_like_lancedb_and_only_for_the_state_it_was_written_for(repo_factory):
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.index.query_file import QueryFile
    from codekin.index.search import SearchIndex
    from codekin.index.store import IndexStore

    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    index_words_only(root)
    store = IndexStore(root)
    state = store.state()
    mapped = QueryFile.open(store.state_dir, state)
    assert mapped is not None
    engine = Engine(root, load_config(root))
    assert isinstance(engine.index(), SearchIndex)
    from_file = [h.to_dict() for h in engine.search("retry with exponential backoff", mode="lexical")]
    direct = SearchIndex(store, state["active_key"])
    assert direct.texts == engine.index().texts and direct.hashes == engine.index().hashes
    assert from_file[0]["symbol"] == "Shop.Retry.with_backoff/2"

    store.write_state(model="another writer")  # e.g. a re-embed switching tables: the file is stale now
    assert QueryFile.open(store.state_dir, store.state()) is None
    assert [h.to_dict() for h in Engine(root, load_config(root)).search("retry with exponential backoff",
                                                                        mode="lexical")] == from_file


def test_the_mapped_snapshot_ranks_exactly_as_the_one_built_from_lancedb(indexed_examples, minilm):
    """A cold search maps the query file's vectors and the rows' kept BM25, module heads, roles and
    twin groups (query.rows) instead of building them: the same arrays, the same hits to the bit."""
    from codekin.config import load_config
    from codekin.index import query as queries
    from codekin.index.files import FileWeights
    from codekin.index.query_file import QueryFile
    from codekin.index.ranking import weights_for
    from codekin.index.search import SearchIndex
    from codekin.index.store import IndexStore

    store = IndexStore(indexed_examples)
    state = store.state()
    mapped_file = QueryFile.open(store.state_dir, state)
    assert mapped_file is not None and mapped_file.kept_rows() is not None
    mapped, built = SearchIndex(mapped_file, state["active_key"]), SearchIndex(store, state["active_key"])
    assert mapped.has_vector.all() and np.array_equal(mapped.has_vector, built.has_vector)
    for name in ("vectors", "parent", "roles", "groups", "_declared", "starts", "ends"):
        assert np.array_equal(getattr(mapped, name), getattr(built, name)), name
    assert mapped.texts == built.texts and mapped.hashes == built.hashes and mapped.contexts == built.contexts
    search = load_config(indexed_examples).search
    for text in ("retry with exponential backoff", "how does the cart add an item", "Shop.Cart",
                 "defp backoff(attempt), do: attempt * 100"):
        parsed = queries.parse(text)
        vector = minilm.encode([parsed.text])[0]
        weights = weights_for(search, parsed.kind)
        files = FileWeights(search.file_chunk_decay, search.file_summary_weight, search.file_dense_weight)
        for mode in ("hybrid", "dense", "lexical"):
            hits = mapped.search(vector, parsed, mode, 10, -1.0, mapped.mask(), weights, files)
            assert hits and hits == built.search(vector, parsed, mode, 10, -1.0, built.mask(), weights, files), (text, mode)
