"""Index -> search round trips on real git repositories with the real MiniLM model."""

from __future__ import annotations

import json

import pytest

from codekin.config import ModelConfig, load_config
from codekin.embedding import load_embedder
from codekin.engine import Engine
from codekin.errors import IndexFormatError, IndexLockedError, ModelLoadError, WorkspaceError
from codekin.index.lock import IndexLock
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.lsp.neighbours import relatives_of_file
from tests.conftest import git
from tests.samples import CART, LEDGER, RETRY, TREE_INSERT, TREE_INSERT_IN_LEAF

pytestmark = pytest.mark.slow

def index(root, embedder, **kw):
    return Indexer(root, load_config(root), embedder=embedder).run(**kw)


def keys(root):
    table = IndexStore(root).load_chunks()
    return sorted(zip(table.column("path").to_pylist(), table.column("start_line").to_pylist(),
                      table.column("end_line").to_pylist(), table.column("content_hash").to_pylist(),
                      strict=True))


def test_index_then_search_finds_the_documented_function(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    summary = index(root, minilm)
    assert summary.files == 3 and summary.chunks == summary.new_embeddings == 5
    engine = Engine(root, load_config(root), embedder=minilm)
    for mode in ("dense", "lexical", "hybrid"):
        hits = engine.search("retry with exponential backoff", mode=mode)
        assert hits[0].symbol == "Shop.Retry.with_backoff/2", mode
    hits = engine.search("total price", language="elixir", path_glob="lib/cart.ex", limit=1)
    assert [h.symbol for h in hits] == ["Shop.Cart.total/2"]
    assert engine.search("total price", min_similarity=0.99) == []


def test_text_search_prefers_the_function_named_for_the_query(repo_factory, minilm):
    tree = f"-module(tree).\n-export([insert/2]).\n\n{TREE_INSERT}\n\n{TREE_INSERT_IN_LEAF}\n"
    root = repo_factory({"src/tree.erl": tree})
    index(root, minilm)
    for weight, first in ((0.0, "tree:insert/2"), (None, "tree:insert_in_leaf/2")):  # None: the default
        engine = Engine(root, load_config(root, {"search": {"name_weight": weight}}), embedder=minilm)
        assert engine.search("Inserts a key in a leaf", mode="lexical")[0].symbol == first, weight


def test_similar_finds_the_renamed_twin_first_and_excludes_itself(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    index(root, minilm)
    engine = Engine(root, load_config(root), embedder=minilm)
    query, hits = engine.similar("lib/cart.ex", 11)
    assert query.symbol == "Shop.Cart.total/2"
    assert hits[0].symbol == "Shop.Ledger.total/2"
    assert all(not (h.path == "lib/cart.ex" and h.start_line == 9) for h in hits)
    assert "Shop.Cart" not in [h.symbol for h in hits]  # its own module head holds it: not a look-alike
    query, hits = engine.similar("lib/cart.ex", 10, 12)  # a free span is embedded
    assert query is None and hits[0].symbol == "Shop.Ledger.total/2"


def test_a_lens_counts_what_similar_lists_above_its_threshold(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    index(root, minilm)
    engine = Engine(root, load_config(root), embedder=minilm)
    threshold = 0.3
    lenses = relatives_of_file(engine.index(), "lib/cart.ex", threshold)
    assert lenses
    for (start, end), relatives in lenses.items():
        _, hits = engine.similar("lib/cart.ex", start, end, limit=1000, min_similarity=threshold)
        assert relatives.count == len(hits), f"lib/cart.ex:{start}-{end}"


def test_reindex_embeds_only_changed_chunks_and_drops_deleted_files(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY})
    index(root, minilm)
    unchanged = Indexer(root, load_config(root), embedder=None).run()
    assert unchanged.new_embeddings == 0 and unchanged.changed_files == 0
    (root / "lib/cart.ex").write_text(CART.replace("acc + Map.fetch!", "acc + 2 * Map.fetch!"))
    assert index(root, minilm).new_embeddings == 1
    (root / "lib/retry.ex").unlink()
    summary = index(root, minilm)
    assert summary.removed_files == 1 and summary.new_embeddings == 0
    engine = Engine(root, load_config(root), embedder=minilm)
    assert all(h.path != "lib/retry.ex" for h in engine.search("retry backoff"))


def test_rename_reuses_embeddings_and_matches_a_fresh_index(repo_factory, minilm, tmp_path):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY})
    index(root, minilm)
    git(root, "mv", "lib/cart.ex", "lib/basket.ex")
    assert index(root, minilm).new_embeddings == 0
    fresh = repo_factory({"lib/basket.ex": CART, "lib/retry.ex": RETRY})
    index(fresh, minilm)
    assert keys(root) == keys(fresh)


def test_bad_files_are_skipped_with_reasons(repo_factory, minilm):
    root = repo_factory({
        "lib/cart.ex": CART, "logo.png": b"\x89PNG\x00\x00data", "latin1.ex": b"caf\xe9",
        "empty.ex": "", "huge.txt": "x" * 1_100_000,
    })
    summary = index(root, minilm)
    assert summary.skipped == {"binary": 1, "not UTF-8": 1, "empty": 1, "too large": 1}
    assert summary.chunks == 3


def test_empty_repository_and_no_supported_files_say_what_to_do(repo_factory, minilm):
    with pytest.raises(WorkspaceError, match="repository is empty"):
        index(repo_factory({}), minilm)
    with pytest.raises(WorkspaceError, match="no supported files"):
        index(repo_factory({"a.bin": b"\x00\x01"}), minilm)


def test_locked_index_is_refused_clearly(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART})
    with IndexLock(root / ".codekin"), pytest.raises(IndexLockedError, match=r"locked by pid \d+"):
        index(root, minilm)


def test_index_from_a_newer_version_is_refused(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART})
    index(root, minilm)
    state = root / ".codekin" / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "format": 99}))
    with pytest.raises(IndexFormatError, match="newer codekin"):
        Engine(root, load_config(root), embedder=minilm).search("cart")


def test_another_vector_space_gets_its_own_table(repo_factory, minilm):
    root = repo_factory({"lib/cart.ex": CART})
    index(root, minilm)
    config = load_config(root, {"model": {"max_tokens": 128}})
    other = load_embedder(config.model)
    summary = Indexer(root, config, embedder=other).run()
    assert summary.new_embeddings == 3
    tables = IndexStore(root).counts()
    assert sorted(t for t in tables if t.startswith("vectors_")) == sorted([f"vectors_{minilm.key}", f"vectors_{other.key}"])


def test_model_that_will_not_load_falls_back_then_errors(tmp_path):
    embedder = load_embedder(ModelConfig(primary=str(tmp_path / "missing"), device="cpu"))
    assert embedder.name == "default" and "cannot load model" in embedder.fallback_reason
    with pytest.raises(ModelLoadError, match="neither model loads"):
        load_embedder(ModelConfig(primary=str(tmp_path / "a"), fallback=str(tmp_path / "b"), device="cpu"))


def test_large_index_uses_the_ann_index_with_exact_rescoring(repo_factory, minilm):
    files = {f"lib/m{i}.ex": CART.replace("Shop.Cart", f"Shop.Cart{i}").replace("price list", f"price list {i}")
             for i in range(120)}
    files["lib/retry.ex"] = RETRY
    root = repo_factory(files)
    config = load_config(root, {"index": {"ann_min_rows": 300}})
    Indexer(root, config, embedder=minilm).run()
    assert IndexStore(root).has_ann_index(minilm.key)
    engine = Engine(root, config, embedder=minilm)
    assert engine.index().store is not None  # candidates come from LanceDB's IVF-PQ index
    hits = engine.search("retry with exponential backoff", mode="dense", limit=3)
    assert hits[0].symbol == "Shop.Retry.with_backoff/2"
    exact = float(minilm.encode(["retry with exponential backoff"])[0] @ engine.index().vectors[
        engine.index().by_path["lib/retry.ex"][0]])
    assert hits[0].score == pytest.approx(exact, abs=1e-5)


def test_paths_resolve_from_cwd_or_root_and_never_outside(repo_factory, minilm, monkeypatch, tmp_path):
    root = repo_factory({"lib/cart.ex": CART})
    engine = Engine(root, load_config(root), embedder=minilm)
    monkeypatch.chdir(root / "lib")
    assert engine.relative("cart.ex") == "lib/cart.ex"
    assert engine.relative("lib/cart.ex") == "lib/cart.ex"
    assert engine.relative(str(root / "lib/cart.ex")) == "lib/cart.ex"
    with pytest.raises(WorkspaceError, match="outside the repository"):
        engine.relative(str(tmp_path / "elsewhere.ex"))
    with pytest.raises(WorkspaceError, match="outside the repository"):
        engine.relative("../../../etc/passwd")


def test_no_change_reindex_skips_the_tables_and_any_change_does_not(repo_factory, minilm, monkeypatch):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "logo.png": b"\x89PNG\x00"})
    index(root, minilm)

    def untouchable(self):
        raise AssertionError("the files table was read")

    with monkeypatch.context() as patch:
        patch.setattr(IndexStore, "file_records", untouchable)
        summary = Indexer(root, load_config(root), embedder=None).run()
    assert (summary.files, summary.chunks, summary.skipped, summary.changed_files) == (3, 4, {"binary": 1}, 0)
    (root / "lib/cart.ex").write_text(CART.replace("A shopping cart.", "A cart."))
    assert index(root, minilm).changed_files == 1
    Indexer(root, load_config(root), embedder=minilm).run(paths=["lib/retry.ex"])  # a partial pass...
    monkeypatch.setattr(IndexStore, "file_records", untouchable)
    with pytest.raises(AssertionError, match="files table was read"):  # ...makes the next one look
        Indexer(root, load_config(root), embedder=None).run()


def test_a_new_chunker_or_chunking_setting_rechunks_every_file(repo_factory, minilm, monkeypatch):
    root = repo_factory({"lib/cart.ex": CART, "lib/retry.ex": RETRY, "lib/ledger.ex": LEDGER})
    index(root, minilm)
    before = keys(root)
    monkeypatch.setattr("codekin.indexer.CHUNKER_VERSION", 10**6)  # codekin upgraded: new chunking code
    summary = index(root, minilm)
    assert summary.changed_files == 3 and summary.new_embeddings == 0 and keys(root) == before
    assert index(root, minilm).changed_files == 0  # once re-chunked, the digest holds again

    (root / ".codekin/config.toml").write_text("[index]\nchunker = \"windows\"\n")
    summary = index(root, minilm)
    assert summary.changed_files == 3 and keys(root) != before
    assert {kind for kind in IndexStore(root).load_chunks().column("kind").to_pylist()} == {"window"}
