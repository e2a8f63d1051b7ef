"""Crash trials of promotion + re-embed (`codekin models promote`, then `codekin reembed`).

A trial registers a new fine-tuned version (a tiny random-init model of its own seed, so its
own vector space), then (odd trials) SIGKILLs `codekin models promote vN` at a random moment
of its run, or (even trials) promotes it and SIGKILLs `codekin reembed` at a random moment
after it took `reembed.lock`, and checks:

- right after the kills: the index answers from one vector space (the table state.json
  names holds a vector for every chunk, and a query embedded with the model state.json
  names finds its own chunk with cosine 1: nothing mixed);
- after the restart (promote again if the pointer did not move, then re-embed): the rows
  equal a fresh full index, state.json names the registry's active model and its table,
  the active model loads and its files match the manifests' sha256, nothing mixed;
- always: no temporary file is left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.reliability.harness import (
    STATE_DIR,
    CrashBench,
    Trial,
    check_active_model,
    check_index,
    codekin_command,
    fresh_rows,
    initial_files,
    lock_held,
    make_repo,
    run_and_kill,
    temp_leftovers,
)

SEEDS = 4  # distinct tiny models the versions cycle through (each version is a new vector space anyway)
SELF_SCORE = 0.99  # a chunk's own text, embedded by the table's model, scores 1.0 against itself


def register_version(root: Path, model_dir: Path, promote: bool = False) -> str:
    from tests.tiny_model import register_version as register

    return register(root, model_dir, promote, reason="reliability trial")


def tiny_model_for(bench: CrashBench, seed: int) -> Path:
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(bench.work / f"tiny-{seed}", seed=seed, max_tokens=128)


def self_query_problems(root: Path, when: str) -> list[str]:
    """A fresh Engine (what a new `codekin search` or server sees) embeds a chunk's own text
    and must find that chunk with cosine ~1: query model and table share one vector space."""
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.index.store import IndexStore

    store = IndexStore(root)
    texts = store.chunk_texts(store.chunk_hashes())
    if not texts:
        return [f"{when}: the index holds no chunk"]
    wanted = sorted(texts)[0]
    hits = Engine(root, load_config(root)).search(texts[wanted], mode="dense", limit=3)
    if not hits or hits[0].score < SELF_SCORE:
        top = f"{hits[0].score:.3f}" if hits else "nothing"
        return [f"{when}: a chunk's own text scored {top} (< {SELF_SCORE}): query and table vector spaces differ"]
    return []


def active_table_problems(root: Path, when: str) -> list[str]:
    """state.json names a table with a vector for every chunk, written by the model it names."""
    from codekin.config import load_config
    from codekin.embedding.model import expected_key
    from codekin.index.store import IndexStore
    from codekin.models.serving import indexed_model

    store = IndexStore(root)
    state = store.state()
    problems = []
    missing = store.chunk_hashes() - store.vector_hashes(state["active_key"])
    if missing:
        problems.append(f"{when}: {len(missing)} chunks have no vector in the active table vectors_{state['active_key']}")
    model = indexed_model(root, load_config(root).model, state)
    if expected_key(model) != state["active_key"]:
        problems.append(f"{when}: state.json names model {state.get('model')} but table {state['active_key']}")
    return problems


def reembed_trial(bench: CrashBench) -> Trial:
    from codekin.config import load_config
    from codekin.indexer import Indexer
    from codekin.jobs.reembed import reembed
    from codekin.models.registry import ModelRegistry

    root = bench.work / "reembed-repo"
    if not root.is_dir():
        make_repo(root, initial_files())
        Indexer(root, load_config(root), embedder=bench.embedder).run()
    number = sum(t.operation == "reembed" for t in bench.trials) + 1
    trial = Trial("reembed", number)
    registry = ModelRegistry(root)
    version = register_version(root, tiny_model_for(bench, 1 + number % SEEDS))
    promote = codekin_command("models", "promote", version, "--repo", str(root))
    command = codekin_command("reembed", "--repo", str(root), "--wait", "60")
    lock = root / STATE_DIR / "reembed.lock"
    if "reembed" not in bench.calibration:
        bench.calibration["promote"], bench.calibration["reembed"] = (
            _calibrate(bench, root, command, lock) if bench.calibrate else (3.0, 2.0))
    if number % 2:  # odd trials: kill the promotion at a random moment of its run
        trial.kill = run_and_kill(promote, bench.env, lambda: True,
                                  bench.rng.uniform(0.0, 1.1 * bench.calibration["promote"]), bench.log("reembed"))
    else:  # even trials: the promotion completes, the re-embed is killed after it took its lock
        registry.promote(version, "reliability trial")
        trial.kill = run_and_kill(command, bench.env, lambda: lock_held(lock),
                                  bench.rng.uniform(0.0, 1.1 * bench.calibration["reembed"]), bench.log("reembed"))
    try:
        trial.problems += active_table_problems(root, "after the kill")
        trial.problems += self_query_problems(root, "after the kill")
        trial.problems += check_active_model(root, "after the kill")
        if registry.active_ref() != version:
            registry.promote(version, "reliability trial (restart)")
        reembed(root, load_config(root))  # the restart
        state = _state(root)
        if registry.active_ref() != version or not state["model"].startswith(str(registry.dir / version)):
            trial.problems.append(f"after the restart state.json names {state['model']}, the registry {version}")
        trial.problems += active_table_problems(root, "after the restart")
        trial.problems += self_query_problems(root, "after the restart")
        trial.problems += check_active_model(root, "after the restart")
        trial.problems += check_index(root, None, fresh_rows(root, bench.embedder))
        registry.prune(keep=1)  # the registry stays small over 50 trials
    except Exception as exc:  # a failed restart is the failure this trial looks for
        trial.problems.append(f"restart failed: {exc.__class__.__name__}: {exc}")
    leftovers = temp_leftovers(root)
    if leftovers and not any("temporary files" in p for p in trial.problems):
        trial.problems.append(f"temporary files left: {leftovers[:5]}")
    bench.trials.append(trial)
    return trial


def _state(root: Path) -> dict[str, Any]:
    from codekin.index.store import IndexStore

    return IndexStore(root).state()


def _calibrate(bench: CrashBench, root: Path, command: list[str], lock: Path) -> tuple[float, float]:
    """Seconds one uninterrupted `models promote` runs, and one `reembed` holds reembed.lock."""
    import subprocess
    import time

    version = register_version(root, tiny_model_for(bench, 1 + SEEDS))
    started = time.monotonic()
    subprocess.run(codekin_command("models", "promote", version, "--repo", str(root)), env=bench.env, check=True,
                   capture_output=True)
    promote_s = time.monotonic() - started
    return promote_s, bench.time_with_lock("reembed", command, lock)
