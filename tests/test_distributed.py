"""The distributed engines on this machine's CPU: Ray Data indexing must write the tables the
single-process Indexer writes; `codekin train --gpus 2 --device cpu` runs two torchrun
processes on gloo and must leave a valid registry version whose weights equal a
single-process run with the effective batch. A tiny random-init BERT keeps both fast."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codekin.cli import main as cli_main
from codekin.config import load_config
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.models.checkpoints import read_manifest, verify_checkpoint
from codekin.models.registry import ModelRegistry
from tests.conftest import copy_examples, git
from tests.tiny_model import build_tiny_model, use_in_user_config

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is an optional extra: pip install 'codekin[ray]' "
                                                   "to run the Ray engine tests")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No dropout: runs must be comparable."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-dist"), dropout=False)


@pytest.fixture
def tiny_user_config(tiny_model: Path) -> Path:
    """The user's own config (XDG_CONFIG_HOME, a fresh tmp dir per test) picks the tiny model."""
    return use_in_user_config(tiny_model, "batch_size = 16\n")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module: starting one costs ~7 s on 2 cores."""
    if not HAS_RAY:
        pytest.skip("Ray is an optional extra: pip install 'codekin[ray]'")
    from codekin.distributed.ray_embed import RayOptions, RaySession

    session = RaySession(RayOptions(num_cpus=2))
    yield session.ray()
    session.close()


def _tables(root: Path) -> tuple[set, set, dict[str, np.ndarray], str]:
    store = IndexStore(root)
    chunks = store.load_chunks().to_pylist()
    chunk_keys = {(c["path"], c["start_line"], c["end_line"], c["kind"], c["symbol"], c["content_hash"],
                   c["text"], c["terms"]) for c in chunks}
    files = {(r.path, r.size, r.file_hash, r.chunks, r.skip_reason) for r in store.file_records().values()}
    key = store.state()["active_key"]
    hashes, matrix = store.load_vectors(key)
    assert len(hashes) == len(set(hashes)), "a content hash was embedded twice"
    return chunk_keys, files, dict(zip(hashes, matrix, strict=True)), key


def _assert_same_index(single: Path, ray_root: Path, same_key: bool = True) -> None:
    """Same rows, same vectors; `same_key=False` for a registry version, whose key holds its path."""
    chunks_a, files_a, vectors_a, key_a = _tables(single)
    chunks_b, files_b, vectors_b, key_b = _tables(ray_root)
    assert key_a == key_b or not same_key
    assert chunks_a == chunks_b and len(chunks_a) > 50
    assert {f[0]: f[2:] for f in files_a} == {f[0]: f[2:] for f in files_b}
    assert set(vectors_a) == set(vectors_b)  # old vectors stay (reused after a branch switch)
    assert {c[5] for c in chunks_a} <= set(vectors_a)
    worst = max(float(np.abs(vectors_a[h] - vectors_b[h]).max()) for h in vectors_a)
    assert worst < 1e-5, worst


def _edit(root: Path) -> None:
    """Append a function to one Elixir file, delete an Erlang one, commit."""
    target = next(p for p in sorted(root.rglob("*.ex")) if ".codekin" not in p.parts)
    text = target.read_text(encoding="utf-8").rstrip()
    assert text.endswith("end")
    target.write_text(text[:-3] + "  def ray_added(x), do: x * 41 + 1\nend\n", encoding="utf-8")
    next(p for p in sorted(root.rglob("*.erl")) if ".codekin" not in p.parts).unlink()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "edit")


@needs_ray
@pytest.mark.slow
@pytest.mark.storm
def test_ray_index_equals_single_process_and_embeds_only_new_hashes(local_ray, tiny_user_config, tmp_path,
                                                                     capfd):
    from codekin.distributed.ray_embed import RayIndexer, RayOptions

    single, on_ray = copy_examples(tmp_path / "single"), copy_examples(tmp_path / "ray")
    first = Indexer(single, load_config(single)).run()
    indexer = RayIndexer(on_ray, load_config(on_ray), RayOptions(batch_size=64))
    first_ray = indexer.run()
    assert first_ray.new_embeddings == first.new_embeddings == first.chunks
    assert first_ray.changed_files == first.changed_files and indexer.stats["workers"] == 2
    assert first_ray.device == "cpu" and first_ray.model == first.model == load_config(on_ray).model.primary
    _assert_same_index(single, on_ray)

    _edit(single)
    _edit(on_ray)
    second = Indexer(single, load_config(single)).run()
    capfd.readouterr()  # the first run's output
    assert cli_main(["index", str(on_ray), "--engine", "ray", "--json"]) == 0  # joins the running instance
    out, err = capfd.readouterr()  # file descriptors: Ray's own logging writes below Python
    second_ray = json.loads(out.strip().splitlines()[-1])
    assert not [line for line in err.splitlines() if re.search(r"\bERROR\b|Traceback", line)], err[-2000:]
    assert second_ray["removed_files"] == second.removed_files == 1
    assert second_ray["new_embeddings"] == second.new_embeddings
    assert 0 < second_ray["new_embeddings"] <= 3  # only the edited module's new chunks
    _assert_same_index(single, on_ray)


@needs_ray
@pytest.mark.slow
@pytest.mark.storm
def test_ray_reembed_writes_the_single_process_table_in_one_commit(local_ray, tiny_user_config, tmp_path, capsys):
    """A promoted version re-embedded on Ray: the table equals the local re-embed's, only the
    hashes it lacked are embedded, in one table version, and a fresh query engine (what
    `codekin serve` does at its next query) answers with the new version."""
    from codekin.distributed.ray_embed import RayOptions
    from codekin.engine import Engine
    from codekin.index.engines import embed_hashes
    from codekin.jobs.reembed import load_active_model, reembed
    from codekin.metrics import MetricsStore
    from codekin.models.serving import version_ref
    from tests.test_reembed import add_version

    other = build_tiny_model(tmp_path / "other", seed=1, dropout=False)
    single, on_ray = copy_examples(tmp_path / "single"), copy_examples(tmp_path / "ray")
    for root in (single, on_ray):
        Indexer(root, load_config(root)).run()
        version = add_version(root, other)
    config = load_config(on_ray)
    local = reembed(single, load_config(single))
    store = IndexStore(on_ray)
    seeded = sorted(store.chunk_hashes())[:10]  # a previous, interrupted job left these
    seeder = load_active_model(on_ray, config)
    embed_hashes(store, seeder, seeded, lambda n: None)
    table_name = store.vectors_table_name(seeder.key)
    before = store.db.open_table(table_name).version

    summary = reembed(on_ray, config, ray=RayOptions(batch_size=16))

    assert summary.switched and summary.key == seeder.key == store.state()["active_key"]
    assert summary.version == version == version_ref(on_ray, store.state()["model"])
    assert summary.total == local.total and summary.embedded == local.embedded - len(seeded) > 20
    assert summary.device == "cpu" and summary.previous_key != summary.key
    assert store.db.open_table(table_name).version == before + 1  # one commit
    _assert_same_index(single, on_ray, same_key=False)
    with MetricsStore(on_ray) as metrics:
        job = metrics.embedding_jobs()[-1]
    assert (job["status"], job["model_version"], job["chunks"]) == ("completed", version, summary.embedded)
    fresh = Engine(on_ray, config)
    assert fresh.search("retry with backoff", limit=1, mode="dense")
    assert version_ref(on_ray, fresh.embedder.name) == version and fresh.embedder.key == summary.key

    assert cli_main(["reembed", "--repo", str(on_ray), "--engine", "ray"]) == 0  # joins the running instance
    assert "Re-embedded 0 of" in capsys.readouterr().out
    assert store.db.open_table(table_name).version == before + 1


@needs_ray
@pytest.mark.slow
@pytest.mark.storm
def test_ray_workers_that_cannot_load_the_model_raise_codekins_own_error(local_ray, tiny_user_config, tmp_path):
    from codekin.config import ModelConfig
    from codekin.distributed.ray_embed import RayEngine, RayOptions
    from codekin.errors import ModelLoadError

    root = copy_examples(tmp_path / "repo")
    Indexer(root, load_config(root)).run()
    store = IndexStore(root)
    missing = str(tmp_path / "no-such-model")
    model = ModelConfig(primary=missing, fallback=missing, device="cpu", backend="torch")
    engine = RayEngine(RayOptions(workers=1))
    with pytest.raises(ModelLoadError, match="cannot load model"):
        engine.embed(store, set(sorted(store.chunk_hashes())[:3]), "k", model, lambda n: None)
    assert store.vectors_table_name("k") not in store.db.list_tables().tables  # nothing written


def test_a_checkout_a_ray_node_cannot_see_is_a_clear_error(tmp_path):
    """What a chunk task returns on such a node, and what the driver raises from it."""
    from codekin.config import IndexConfig
    from codekin.distributed.ray_embed import _raise_failure, chunk_batch
    from codekin.errors import WorkspaceError

    out = chunk_batch({"path": np.array(["lib/a.ex"]), "indexed_hash": np.array([""])}, str(tmp_path / "gone"),
                      IndexConfig())
    with pytest.raises(WorkspaceError, match="is not visible on Ray node") as raised:
        _raise_failure(out)
    assert raised.value.hint == "every node of the cluster needs the checkout at the same path"


def test_reembed_options_of_the_ray_engine_need_it(tmp_path, capsys):
    assert cli_main(["reembed", "--repo", str(tmp_path), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert "--workers needs --engine ray" in err and "add --engine ray" in err


def test_codekin_runs_without_ray_and_names_the_extra(tmp_path):
    script = ("import sys; sys.modules['ray'] = None\n"
              "import codekin.cli\n"
              "codekin.cli.build_parser()\n"
              "assert 'torch.distributed' not in sys.modules and 'ray.data' not in sys.modules\n"
              "from codekin.distributed.ray_embed import RayUnavailableError, import_ray\n"
              "try:\n    import_ray()\nexcept RayUnavailableError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "the Ray engine needs Ray Data" in out and "pip install 'codekin[ray]'" in out


def test_gpus_without_cuda_is_a_clear_error(tiny_user_config, repo_factory, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    root = repo_factory({"README.md": "x\n"})
    assert cli_main(["train", "--gpus", "2", "--repo", str(root)]) == 12
    err = capsys.readouterr().err
    assert "--gpus 2 needs 2 CUDA GPUs, this machine has 0" in err and "--device cpu" in err


def _triplets(count: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(seed)
    families = {"genserver": "use GenServer\n  def handle_call(req, from, state)",
                "supervisor": "use Supervisor\n  Supervisor.init(children, strategy: :one_for_one)",
                "nif": "static ERL_NIF_TERM add(ErlNifEnv* env)\n  enif_make_int(env, a + b)"}
    names = list(families)

    def snippet(family: str) -> str:
        name = "".join(rng.choice("abcdefgh") for _ in range(5))
        return f"defmodule Kin.{name.title()} do\n  {families[family]}\nend"

    out = []
    for _ in range(count):
        family = rng.choice(names)
        other = rng.choice([n for n in names if n != family])
        out.append({"anchor": snippet(family), "positive": snippet(family), "negative": snippet(other),
                    "split": split})
    return out


@pytest.mark.slow
@pytest.mark.storm
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_train_on_two_gloo_processes_writes_a_valid_version_equal_to_one_process(strategy, tiny_user_config,
                                                                                 tiny_model, repo_factory, tmp_path):
    import torch
    from safetensors.torch import load_file

    from codekin.training.trainer.args import TrainingArguments
    from codekin.training.trainer.trainer import Trainer

    root = repo_factory({"README.md": "x\n"})
    train, held_out = _triplets(32, 1, "train"), _triplets(24, 2, "eval")
    data = tmp_path / "triplets.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in train + held_out), encoding="utf-8")
    command = [sys.executable, "-m", "codekin.cli", "train", "--gpus", "2", "--device", "cpu", "--repo", str(root),
               "--triplets", str(data), "--epochs", "2", "--batch-size", "4", "--lr", "2e-3", "--json",
               "--strategy", strategy, "--recipe", "triplets"]  # a per-row loss: equal to one process
    # no OMP_NUM_THREADS from the caller: codekin sets torchrun's default so that it prints no banner
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Setting OMP_NUM_THREADS" not in done.stderr and "*****" not in done.stderr  # torchrun's banner
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "rank 1/2: trained 8 steps on its share of 32 triplets" in done.stderr  # 2 epochs x 32/8 steps
    assert f"Distributed: {strategy.upper()} over 2 processes (gloo)" in done.stderr
    assert "Effective batch: 8 (4 per process x 2)" in done.stderr
    assert "Effective learning rate: 0.002 (as given, not rescaled)" in done.stderr

    registry = ModelRegistry(root)
    version = registry.get(result["version"])
    assert version.status == result["status"] and result["status"] in ("promoted", "rejected")
    assert version.final_checkpoint == "epoch-2" and version.checkpoints() == ["epoch-1", "epoch-2"]
    final = registry.model_path(result["version"])  # verifies every sha256
    assert verify_checkpoint(final) == ""
    manifest = read_manifest(final)
    assert manifest["distributed"] == {"processes": 2, "strategy": strategy, "per_device_batch": 4,
                                       "effective_batch": 8}
    assert manifest["args"]["batch_size"] == 8 and result["candidate_metrics"]["dim"] == 32

    torch.set_num_threads(1)
    args = TrainingArguments(epochs=2, batch_size=8, learning_rate=2e-3, device="cpu", recipe="triplets")
    single = Trainer(str(tiny_model), "cpu", args, out=lambda s: None, show_progress=False)
    single.train(train, checkpoint_dir=tmp_path / "single", run="single", parent="base")
    ddp_weights = load_file(str(final / "model.safetensors"))
    one_weights = load_file(str(tmp_path / "single" / "epoch-2" / "model.safetensors"))
    assert ddp_weights.keys() == one_weights.keys()
    changed = max(float((one_weights[k] - load_file(str(tiny_model / "model.safetensors"))[k]).abs().max())
                  for k in one_weights)
    worst = max(float((ddp_weights[k] - one_weights[k]).abs().max()) for k in ddp_weights)
    assert changed > 1e-3 and worst < 1e-4, (changed, worst)
