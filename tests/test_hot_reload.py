"""End to end over stdio (pytest-lsp) against the real `codekin serve`: codekin.retrain trains a
tiny random-init model in the real pipeline, the new version is promoted, re-embedded and
swapped in while searches keep being answered (none fails, none mixes vector spaces), then a
corrupted version is refused and reported while the promoted one keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codekin.config import load_config
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.models.registry import ModelRegistry
from tests.conftest import copy_examples
from tests.test_reembed import add_version, dense_scores, weights_file
from tests.test_trainer import make_triplets, write_jsonl
from tests.tiny_model import build_tiny_model

# a real training run, then a corrupted version on top of the one it promoted (about 40 s together): storms
# CI runs after the README's command
pytestmark = [pytest.mark.slow, pytest.mark.storm, pytest.mark.asyncio(loop_scope="module")]

QUERY = "supervisor that restarts a crashed worker"
TIMEOUT_S = 240.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """examples/ indexed with a tiny base model; the user's config trains on a triplets file."""
    base = build_tiny_model(tmp_path_factory.mktemp("tiny-base"), 0)
    other = build_tiny_model(tmp_path_factory.mktemp("tiny-other"), 1)
    work = tmp_path_factory.mktemp("hot")
    triplets = write_jsonl(work / "triplets.jsonl", make_triplets(160, 12) + make_triplets(40, 11, split="eval"))
    xdg = work / "xdg"
    (xdg / "codekin").mkdir(parents=True)
    (xdg / "codekin/config.toml").write_text(
        f'[model]\nprimary = "{base}"\nfallback = "{base}"\ndevice = "cpu"\nbackend = "torch"\nmax_tokens = 96\n'
        f'[schedule]\ntriplets_file = "{triplets}"\nmin_improvement = 0.01\n'
        '[training]\nrecipe = "triplets"\nmode = "finetune"\n', encoding="utf-8")  # curated triplets, no adapter
    root = copy_examples(work / "examples")
    os.environ["XDG_CONFIG_HOME"] = str(xdg)  # this process builds the index with the same config
    try:
        Indexer(root, load_config(root)).run()
    finally:
        os.environ.pop("XDG_CONFIG_HOME")
    return {"root": root, "xdg": xdg, "base": base, "other": other}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(served: dict[str, Any]):
    """The real server over stdio, started once the user's config exists (its env names it)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "XDG_CONFIG_HOME": str(served["xdg"]), "CODEKIN_JOBS_TICK_S": "0.5",
           "CODEKIN_CACHE_DIR": str(served["xdg"].parent / "cache")}  # int8 exports stay in tmp
    config = ClientServerConfig(server_command=[sys.executable, "-m", "codekin.cli", "serve", "--no-watch"],
                                server_env=env)
    lsp_client = await config.start()
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=served["root"].resolve().as_uri()))
    yield lsp_client
    await lsp_client.shutdown_session()
    await lsp_client.stop()


async def command(client: LanguageClient, name: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(arguments)))


async def wait_for(client: LanguageClient, done, what: str) -> dict:
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while True:
        status = await command(client, "codekin.status", {})
        if done(status):
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last status: {json.dumps(status)}")
        await asyncio.sleep(0.2)


def chunk_hash(root: Path, result: dict) -> str:
    table = IndexStore(root).load_chunks().to_pylist()
    return next(r["content_hash"] for r in table if (r["path"], r["start_line"], r["end_line"]) ==
                (result["path"], result["startLine"], result["endLine"]))


def space_of(root: Path, answer: dict, models: dict[str, Path]) -> str:
    """Which model's vector space explains every score of a dense search answer."""
    store = IndexStore(root)
    hashes = [chunk_hash(root, r) for r in answer["results"]]
    scores = [r["score"] for r in answer["results"]]
    matching = [name for name, model in models.items()
                if scores == pytest.approx(list(dense_scores(model, store, QUERY, hashes)), abs=2e-3)]
    assert len(matching) == 1, f"scores {scores} match {matching or 'no model'}: vector spaces mixed"
    return matching[0]


async def test_retrain_promotes_and_swaps_without_a_failed_request(client: LanguageClient, served):
    root = served["root"]
    status = await wait_for(client, lambda s: s["state"] == "ready", "the server to be ready")
    assert status["modelVersion"] == "base" and status["lastTraining"] is None
    assert status["nextTraining"].endswith("T02:00:00+00:00") and status["dashboard"].startswith("http://127.0.0.1:")
    old_key = IndexStore(root).state()["active_key"]
    before = await command(client, "codekin.search", {"query": QUERY, "mode": "dense", "limit": 5})

    started = await command(client, "codekin.retrain", {"epochs": 3, "learningRate": 1e-3, "batchSize": 16})
    assert started["started"] is True and "retraining started (epochs 3" in started["message"]
    again = await command(client, "codekin.retrain", {})
    assert again == {"started": False, "message": again["message"]}
    assert again["message"].startswith("training already running")

    answers: list[dict] = []
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while True:  # search all through training, re-embedding and the switch: any error fails the test
        answers.append(await command(client, "codekin.search", {"query": QUERY, "mode": "dense", "limit": 5}))
        status = await command(client, "codekin.status", {})
        last = status["lastTraining"] or {}
        rejected = last.get("status") == "completed" and not last.get("promoted")
        reloaded = status["modelVersion"] == "v1" and (status["hotReload"] or "").startswith("Re-embedded")
        if reloaded or rejected or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status["modelVersion"] == "v1", json.dumps(status)
    after = await command(client, "codekin.search", {"query": QUERY, "mode": "dense", "limit": 5})

    state = IndexStore(root).state()
    assert state["active_key"] != old_key and state["model"].endswith("models/v1/checkpoints/epoch-3")
    last = status["lastTraining"]
    assert (last["version"], last["promoted"], last["status"]) == ("v1", True, "completed")
    assert status["hotReload"].startswith("Re-embedded ") and "embeddings/s" in status["hotReload"]
    assert f"queries now use vectors_{state['active_key']}" in status["hotReload"]

    models = {"base": served["base"], "v1": Path(state["model"])}
    assert space_of(root, before, models) == "base" and space_of(root, after, models) == "v1"
    spaces = [space_of(root, a, models) for a in answers[::max(1, len(answers) // 12)] + [answers[-1]]]
    assert spaces[0] == "base" and spaces == sorted(spaces)  # base ... then v1, never back, never mixed
    assert len(answers) >= 5 and all(a["results"] for a in answers)

    titles = [r[0].title for r in client.progress_reports.values() if r and hasattr(r[0], "title")]
    assert any(t.startswith("codekin: retraining (epochs 3") for t in titles), titles
    assert any(t.startswith("codekin: re-embedding ") and t.endswith("with v1") for t in titles), titles

    with urllib.request.urlopen(status["dashboard"], timeout=10) as page:
        html = page.read().decode()
    assert html.count('<svg class="chart"') == 7 and "<td>v1 ★</td>" in html


async def test_corrupted_version_keeps_the_old_model_serving(client: LanguageClient, served):
    root = served["root"]
    registry = ModelRegistry(root)
    assert registry.active_ref() == "v1"
    version = add_version(root, served["other"], promote=False)
    weights = weights_file(root, version)
    weights.write_bytes(weights.read_bytes()[:-64] + b"\0" * 64)  # damaged after it was written
    registry._set_active(version)  # as if promoted, then damaged on disk

    status = await wait_for(client, lambda s: (s.get("hotReload") or "").startswith("Hot-reload failed"),
                            "the hot reload to fail")
    assert f"model {version}/epoch-1 is corrupted" in status["hotReload"]
    assert status["hotReload"].endswith("(still serving v1)") and status["modelVersion"] == "v1"
    assert registry.active_ref() == "v1"
    assert registry.get(version).status == "failed" and registry.get(version).manifest["reason"].startswith(
        "Hot-reload failed: ")
    answer = await command(client, "codekin.search", {"query": QUERY, "mode": "dense", "limit": 5})
    v1 = Path(IndexStore(root).state()["model"])
    assert space_of(root, answer, {"base": served["base"], "v1": v1}) == "v1"
