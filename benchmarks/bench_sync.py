"""How fresh the index stays: commit -> searchable while `codekin watch` runs, and a
branch switch over N changed files -> `codekin sync` done.

1. watch: a git copy of examples/ is indexed, hooks installed, `codekin watch` started
   as its own process. Each trial adds a function with a unique word to one file and
   commits it; the time until a search (in this process, through Engine, as the
   language server does) finds the word is measured from the commit's return and from
   the file save. Target: <= 2 s after the commit.
2. switch: two branches whose N generated Elixir files (default 500) differ in one
   function each. `main` is indexed; then `git checkout other` (the hook queues the N
   paths) and `sync` are timed: the first switch embeds the N new functions; switching
   back and forth again re-uses every vector. Target: <= 15 s.

Prints one JSON line. Default model on the CPU (`--device` to change).

    python benchmarks/bench_sync.py [--files 500] [--trials 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from codekin import githooks  # noqa: E402
from codekin.config import load_config  # noqa: E402
from codekin.embedding import load_embedder  # noqa: E402
from codekin.engine import Engine  # noqa: E402
from codekin.indexer import Indexer  # noqa: E402
from codekin.sync import drain  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, env=ENV, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


# -- 1. commit -> searchable while `codekin watch` runs -------------------------------------
def bench_watch(tmp: Path, embedder, device: str, trials: int) -> dict:
    root = tmp / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".codekin", "_build", "deps"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "examples")
    config = load_config(root, {"model": {"device": device}})
    Indexer(root, config, embedder=embedder).run()
    githooks.install(root)
    engine = Engine(root, config, embedder=embedder)
    targets = sorted(p.relative_to(root).as_posix() for p in (root / "lib").rglob("*.ex"))[:trials]

    proc = subprocess.Popen([sys.executable, "-m", "codekin.cli", "watch", "--json", "--device", device],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    started = time.perf_counter()
    while json.loads(lines.get(timeout=300)).get("event") != "ready":
        pass
    ready_s = time.perf_counter() - started

    after_commit, after_save = [], []
    try:
        for trial, rel in enumerate(targets):
            word = f"zqfresh{trial}x{os.getpid()}"
            path = root / rel
            text = path.read_text().rstrip()
            assert text.endswith("end")
            new = text[:-3] + f"  def {word}(value) do\n    value\n  end\nend\n"
            saved = time.perf_counter()
            path.write_text(new)
            git(root, "commit", "-q", "-a", "-m", word)
            committed = time.perf_counter()
            while not any(h.path == rel for h in engine.search(word, limit=3, mode="lexical")):
                if time.perf_counter() - committed > 60:
                    raise RuntimeError(f"{word} not searchable after 60 s")
                time.sleep(0.01)
            found = time.perf_counter()
            after_commit.append(found - committed)
            after_save.append(found - saved)
            time.sleep(0.5)
        dense_ok = any(h.path == targets[-1] for h in engine.search(word, limit=5, mode="hybrid"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return {"watch_ready_s": round(ready_s, 2), "trials": len(after_commit),
            "searchable_after_commit_s": [round(x, 3) for x in after_commit],
            "searchable_after_commit_p50_s": round(statistics.median(after_commit), 3),
            "searchable_after_commit_max_s": round(max(after_commit), 3),
            "searchable_after_save_max_s": round(max(after_save), 3),
            "hybrid_search_finds_it": dense_ok,
            "watch_target_s": 2.0, "watch_meets_target": max(after_commit) <= 2.0}


# -- 2. branch switch over N changed files -------------------------------------------------
def generated(i: int, variant: str) -> str:
    """A module with a doc and one ordinary-sized function; `variant` changes the function."""
    return (f"defmodule Bench.Gen{i} do\n  @moduledoc \"Scoring rules for catalogue section {i}.\"\n\n"
            f"  @doc \"Scores an item of section {i} with the {variant} rule.\"\n"
            f"  def score_{i}(%{{id: id, weight: w}} = item, opts \\\\ []) do\n"
            f"    base = Keyword.get(opts, :base, {i})\n"
            f"    item\n    |> Map.get(:tags, [])\n"
            f"    |> Enum.reduce(base, fn tag, acc -> acc + weight_for(tag, w, id) end)\n"
            f"    |> Kernel.*({variant})\n    |> round()\n  end\nend\n")


def bench_switch(tmp: Path, embedder, device: str, files: int) -> dict:
    root = make_repo(tmp / "switch", {f"lib/gen/m{i}.ex": generated(i, "1") for i in range(files)})
    git(root, "checkout", "-q", "-b", "other")
    for i in range(files):
        (root / f"lib/gen/m{i}.ex").write_text(generated(i, f"offset_{i}(opts)"))
    git(root, "commit", "-q", "-a", "-m", "other")
    git(root, "checkout", "-q", "main")
    config = load_config(root, {"model": {"device": device}})
    started = time.perf_counter()
    base = Indexer(root, config, embedder=embedder).run()
    index_s = time.perf_counter() - started
    githooks.install(root)

    runs = []
    for branch in ("other", "main", "other"):
        started = time.perf_counter()
        git(root, "checkout", "-q", branch)
        checkout_s = time.perf_counter() - started
        summary = drain(root, config, embedder)
        runs.append({"to": branch, "checkout_s": round(checkout_s, 3), "sync_s": round(summary.seconds, 2),
                     "queued": summary.queued, "changed_files": summary.index.changed_files if summary.index else 0,
                     "new_embeddings": summary.index.new_embeddings if summary.index else 0,
                     "embed_s": round(summary.index.embed_seconds, 2) if summary.index else 0.0})
    return {"files": files, "base_chunks": base.chunks, "base_index_s": round(index_s, 1),
            "base_embeddings_per_s": round(base.embeddings_per_second, 1), "switches": runs,
            "first_switch_sync_s": runs[0]["sync_s"], "repeat_switch_sync_s": max(r["sync_s"] for r in runs[1:]),
            "switch_target_s": 15.0, "switch_meets_target": runs[0]["sync_s"] <= 15.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500, help="files that differ between the branches")
    parser.add_argument("--trials", type=int, default=5, help="commits timed while watching")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-watch", action="store_true")
    parser.add_argument("--skip-switch", action="store_true")
    args = parser.parse_args()
    from codekin.config import ModelConfig

    embedder = load_embedder(ModelConfig(device=args.device))
    result: dict = {"benchmark": "sync", "model": embedder.name, "device": embedder.device,
                    "cpus": os.cpu_count(), "load_avg_1m_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="codekin-bench-sync-") as tmp:
        if not args.skip_watch:
            result.update(bench_watch(Path(tmp), embedder, args.device, args.trials))
        if not args.skip_switch:
            result.update(bench_switch(Path(tmp), embedder, args.device, args.files))
    result["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
