"""Re-embedding into a promoted version's table and the atomic switch: tiny random-init models
(two different weight sets = two vector spaces), a real LanceDB index of examples/, real git."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from codekin.cli import main as cli_main
from codekin.config import Config, load_config
from codekin.engine import Engine
from codekin.errors import HotReloadError
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.jobs.reembed import load_active_model, reembed
from codekin.metrics import MetricsStore
from codekin.models.registry import ModelRegistry
from codekin.models.serving import serving_model, version_ref
from tests.tiny_model import build_tiny_model, use_in_user_config
from tests.tiny_model import register_version as add_version

QUERY = "retry a failing call with exponential backoff"


# Two shared cores: OpenMP spinning on both makes a tiny model much slower.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base, other): two tiny models with different weights, i.e. two vector spaces."""
    return (build_tiny_model(tmp_path_factory.mktemp("tiny-base"), 0),
            build_tiny_model(tmp_path_factory.mktemp("tiny-other"), 1))


def write_user_config(base: Path, **schedule: object) -> None:
    """The user's config (trusted): the tiny model on the CPU with the torch backend."""
    lines = ["max_tokens = 96"]
    if schedule:
        lines.append("[schedule]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in schedule.items()]
    use_in_user_config(base, "\n".join(lines) + "\n")


def weights_file(root: Path, version: str) -> Path:
    return next((root / ".codekin/models" / version / "checkpoints/epoch-1").glob("*.safetensors"))


@pytest.fixture
def tiny_index(examples_repo: Path, tiny_models: tuple[Path, Path]) -> tuple[Path, Config]:
    write_user_config(tiny_models[0])
    config = load_config(examples_repo)
    Indexer(examples_repo, config).run()
    return examples_repo, config


def dense_scores(model_dir: Path, store: IndexStore, query: str, hashes: list[str]) -> np.ndarray:
    """Cosine of the query and chunks as `model_dir` embeds them (what the new table must give)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = 96
    texts = store.chunk_texts(set(hashes))
    vectors = model.encode([query] + [texts[h] for h in hashes], normalize_embeddings=True)
    return vectors[1:] @ vectors[0]


def test_reembed_switches_queries_to_the_promoted_version(tiny_index, tiny_models):
    root, config = tiny_index
    store = IndexStore(root)
    before = store.state()
    engine = Engine(root, config)
    old_hits = engine.search(QUERY, limit=3, mode="dense")
    version = add_version(root, tiny_models[1])

    summary = reembed(root, config)

    state = store.state()
    assert summary.switched and summary.version == version and summary.previous_key == before["active_key"]
    assert summary.key == state["active_key"] != before["active_key"]
    assert summary.embedded == summary.total == len(store.chunk_hashes()) > 20
    assert summary.embeddings_per_second > 0
    assert state["model"] == str(root.resolve() / f".codekin/models/{version}/checkpoints/epoch-1")
    assert f"Re-embedded {summary.total} of {summary.total} chunks with {version} on cpu" in summary.describe()
    assert store.vector_hashes(before["active_key"]) == store.chunk_hashes()  # the old table stays for rollback
    with MetricsStore(root) as metrics:
        (job,) = metrics.embedding_jobs()
    assert (job["status"], job["model_version"], job["chunks"]) == ("completed", version, summary.total)

    fresh = Engine(root, config)  # a new process: loads the model named by state.json
    hits = fresh.search(QUERY, limit=3, mode="dense")
    assert version_ref(root, fresh.embedder.name) == version
    index = fresh.index()
    hashes = [index.hashes[index.enclosing(h.path, h.start_line, h.end_line)] for h in hits]
    assert [h.score for h in hits] == pytest.approx(list(dense_scores(tiny_models[1], store, QUERY, hashes)), abs=1e-4)
    assert [h.score for h in hits] != pytest.approx([h.score for h in old_hits], abs=1e-4)

    again = reembed(root, config)
    assert again.embedded == 0 and "was already active" in again.describe()


def test_no_query_mixes_spaces_at_the_switch(tiny_index, tiny_models):
    """Between the state switch and the swap of the engine's model, the new snapshot is already
    searched with the new model (and the old model still answers old snapshots)."""
    root, config = tiny_index
    engine = Engine(root, config)
    old_model = engine.embedder
    store = IndexStore(root)
    add_version(root, tiny_models[1])
    seen: list[tuple[str, str]] = []

    def after_switch(embedder) -> None:  # state.json is switched, the engine's current model is not yet
        assert engine.embedder is old_model
        hit = engine.search(QUERY, limit=1, mode="dense")[0]
        index = engine.index()
        row = index.enclosing(hit.path, hit.start_line, hit.end_line)
        expected = dense_scores(tiny_models[1], store, QUERY, [index.hashes[row]])[0]
        seen.append((index.key, embedder.key))
        assert hit.score == pytest.approx(float(expected), abs=1e-4)
        engine.use_embedder(embedder)

    reembed(root, config, before_switch=lambda e: engine.use_embedder(e, current=False), after_switch=after_switch)
    assert seen and seen[0][0] == seen[0][1]
    assert engine.embedder.key == store.state()["active_key"]


def test_indexer_embeds_new_files_with_the_active_version(tiny_index, tiny_models):
    root, config = tiny_index
    version = add_version(root, tiny_models[1])
    assert version_ref(root, serving_model(root, config.model).primary) == version
    reembed(root, config)
    (root / "lib/kin_shop/extra.ex").write_text("defmodule KinShop.Extra do\n  def twice(x), do: x * 2\nend\n")
    summary = Indexer(root, config).run()
    assert summary.new_embeddings >= 1 and version_ref(root, summary.model) == version
    state = IndexStore(root).state()
    assert version_ref(root, state["model"]) == version
    assert IndexStore(root).vector_hashes(state["active_key"]) == IndexStore(root).chunk_hashes()


def test_a_process_holding_a_replaced_model_never_switches_the_index_back(tiny_index, tiny_models):
    """A server started before `codekin models promote` + `codekin reembed` ran in another
    process: its sync must neither embed with the old model nor point the index back at the
    old table; the queued path waits for the sync after its reload (LearningLoop.follow_index)."""
    from codekin.embedding import load_embedder
    from codekin.errors import StaleModelError
    from codekin.jobs.loop import LearningLoop
    from codekin.queue import ChangeQueue
    from codekin.sync import drain

    root, config = tiny_index
    held = load_embedder(config.model)  # what the long-running process loaded at its start
    add_version(root, tiny_models[1])
    reembed(root, config)  # the other process
    store = IndexStore(root)
    key = store.state()["active_key"]
    (root / "lib/kin_shop/greeter.ex").write_text("defmodule KinShop.Greeter do\n  def hello, do: :world\nend\n")
    with pytest.raises(StaleModelError, match="but the index now follows"):
        Indexer(root, config, embedder=held).run(paths=["lib/kin_shop/greeter.ex"])
    with ChangeQueue(root) as queue:
        queue.add(["lib/kin_shop/greeter.ex"], event="save")
    loop = LearningLoop(root, config, embedder=held)  # the server's loop, not started
    with pytest.raises(StaleModelError):
        drain(root, config, loop.serving)
    assert store.state()["active_key"] == key
    with ChangeQueue(root) as queue:
        assert queue.stats().pending == 1

    assert loop.follow_index() is True and loop.serving.key == key
    summary = drain(root, config, loop.serving)
    assert summary.completed == 1 and store.state()["active_key"] == key
    assert "lib/kin_shop/greeter.ex" in {r["path"] for r in store.load_chunks().to_pylist()}
    assert store.vector_hashes(key) == store.chunk_hashes()


def test_corrupted_version_is_refused_and_the_index_keeps_its_model(tiny_index, tiny_models):
    root, config = tiny_index
    before = IndexStore(root).state()
    version = add_version(root, tiny_models[1])
    weights = weights_file(root, version)
    weights.write_bytes(b"\0" * 64 + weights.read_bytes()[64:])
    with pytest.raises(HotReloadError, match=rf"model {version}/epoch-1 is corrupted: .*sha256"):
        load_active_model(root, config)
    with pytest.raises(HotReloadError, match="corrupted"):
        reembed(root, config)
    assert IndexStore(root).state()["active_key"] == before["active_key"]
    shutil.rmtree(weights.parent)
    with pytest.raises(HotReloadError, match="v1 has no checkpoint epoch-1"):
        load_active_model(root, config)


def test_reembed_cli(tiny_index, tiny_models, capsys):
    root, _ = tiny_index
    version = add_version(root, tiny_models[1])
    assert cli_main(["reembed", "--repo", str(root), "--device", "cpu", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["version"] == version and payload["embedded"] == payload["total"] > 0
    assert payload["key"] == IndexStore(root).state()["active_key"] and payload["device"] == "cpu"
    assert payload["wall_seconds"] >= payload["seconds"]  # the whole wait: model load (and export) too
    assert cli_main(["reembed", "--repo", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Re-embedded 0 of" in out and "s in all, loading the model included" in out
    shutil.rmtree(root / ".codekin" / "index.lance")
    (root / ".codekin" / "state.json").unlink()
    assert cli_main(["reembed", "--repo", str(root)]) == 7
    assert "no index in" in capsys.readouterr().err


def test_fallback_model_serves_when_the_indexed_version_does_not_load(tiny_index, tiny_models):
    """The promoted version's weights vanish: the engine falls back to the configured model, the
    loop re-embeds the index with it (one vector space again), and the registry returns to base."""
    from codekin.jobs.loop import LearningLoop

    root, config = tiny_index
    base_key = IndexStore(root).state()["active_key"]
    version = add_version(root, tiny_models[1])
    reembed(root, config)
    weights_file(root, version).unlink()

    engine = Engine(root, config)
    assert "cannot load model" in engine.embedder.fallback_reason and engine.embedder.key == base_key
    loop = LearningLoop(root, config, engine, engine.embedder)
    loop.check_registry()

    state = IndexStore(root).state()
    assert state["active_key"] == base_key and version_ref(root, state["model"]) == "base"
    status = loop.status()
    assert status["modelFallback"].startswith("the model of the index did not load (cannot load model")
    assert status["modelVersion"] == "base"
    assert status["hotReload"].startswith(f"Hot-reload failed: model {version}/epoch-1 is corrupted")
    registry = ModelRegistry(root)
    assert registry.active_ref() == "base" and registry.get(version).status == "failed"
    hit = engine.search(QUERY, limit=1, mode="dense")[0]
    index = engine.index()
    expected = dense_scores(tiny_models[0], IndexStore(root), QUERY, [index.hashes[index.enclosing(
        hit.path, hit.start_line, hit.end_line)]])[0]
    assert hit.score == pytest.approx(float(expected), abs=1e-4)
