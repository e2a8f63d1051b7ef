"""The server (sync + a search loop), `codekin index` and a commit storm through the hooks,
all at once, with a promotion half way (see concurrency.py); and the mixed-vector-space
regression it found."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability.concurrency import run_storm
from tests.reliability.harness import CrashBench

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

COMMITS = int(os.environ.get("CODEKIN_STORM_COMMITS", "100"))


@pytest.mark.timeout(900)
@pytest.mark.storm
def test_server_index_and_commit_storm_at_once_lose_and_mix_nothing(crash_bench: CrashBench, crash_xdg: Path,
                                                                    tmp_path: Path):
    report = run_storm(crash_bench, tmp_path, COMMITS, deadline_s=800)
    assert report.ok, json.dumps(report.to_dict(), indent=1)
    assert report.answers >= 20 and report.index_runs >= 1 and report.hot_reloads >= 1, report.to_dict()


@pytest.mark.timeout(300)
def test_a_table_switched_by_another_process_is_queried_with_its_own_model(crash_bench: CrashBench, crash_xdg: Path,
                                                                           tmp_path: Path):
    """Regression (found by the storm): after `codekin models promote` + `codekin index` from a
    terminal, a running server embedded queries with its old model and searched the new
    model's table (a chunk's own text scored 0.02 against itself)."""
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.index.store import IndexStore
    from codekin.indexer import Indexer
    from tests.reliability.harness import initial_files, make_repo
    from tests.reliability.reembed_trials import register_version, tiny_model_for

    root = make_repo(tmp_path / "switch", initial_files(6))
    Indexer(root, load_config(root), embedder=crash_bench.embedder).run()
    engine = Engine(root, load_config(root), embedder=crash_bench.embedder)  # the server's long-lived engine
    store = IndexStore(root)
    texts = store.chunk_texts(store.chunk_hashes())
    query = texts[sorted(texts)[0]]
    assert engine.search(query, mode="dense", limit=1)[0].score == pytest.approx(1.0, abs=1e-3)
    version = register_version(root, tiny_model_for(crash_bench, 1), promote=True)
    Indexer(root, load_config(root)).run()  # "another process": embeds with the promoted version
    assert f"/models/{version}/" in store.state()["model"]
    assert engine.search(query, mode="dense", limit=1)[0].score == pytest.approx(1.0, abs=1e-3)
