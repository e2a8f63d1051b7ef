"""What codekin's git hooks add to `git commit` and `git checkout`.

Two identical repositories, one with the hooks installed; commits (and branch switches)
alternate between them so machine noise hits both alike. Prints one JSON line: p50/p95
per command with and without hooks, the p95 difference (target: <= 30 ms per commit),
the ratio, and how long `codekin sync`'s ingest takes for all the records.

    python benchmarks/bench_hooks.py [--commits 1000] [--checkouts 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codekin import githooks
from codekin.queue import ChangeQueue

ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, env=ENV, stdout=subprocess.DEVNULL)


def make_repo(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for i in range(files):
        (root / "lib").mkdir(exist_ok=True)
        (root / "lib" / f"m{i}.ex").write_text(f"defmodule M{i} do\n  def f, do: {i}\nend\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "branch", "other")
    return root


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(root: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["git", "-C", str(root), *args], check=True, env=ENV, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5), 2), "p95_ms": round(percentile(values, 0.95), 2),
            "mean_ms": round(statistics.fmean(values), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--checkouts", type=int, default=200, help="branch switches (each changes 20 files)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="codekin-bench-hooks-") as tmp:
        plain = make_repo(Path(tmp) / "plain", 20)
        hooked = make_repo(Path(tmp) / "hooked", 20)
        githooks.install(hooked)
        for repo in (plain, hooked):  # `other` differs from main in every file
            git(repo, "checkout", "-q", "other")
            for path in (repo / "lib").iterdir():
                path.write_text(path.read_text() + "# other\n")
            git(repo, "commit", "-q", "-a", "-m", "other")
            git(repo, "checkout", "-q", "main")
        for record in (hooked / ".codekin" / "queue.d").glob("*.ev"):
            record.unlink()

        times: dict[str, list[float]] = {"commit_plain": [], "commit_hooked": [], "checkout_plain": [],
                                         "checkout_hooked": []}
        for i in range(args.commits):
            for name, repo in (("plain", plain), ("hooked", hooked)) if i % 2 else (("hooked", hooked),
                                                                                  ("plain", plain)):
                target = repo / "lib" / f"m{i % 20}.ex"
                target.write_text(target.read_text() + f"# {i}\n")
                times[f"commit_{name}"].append(timed(repo, "commit", "-q", "-a", "-m", f"c{i}"))
        for i in range(args.checkouts):
            branch = "other" if i % 2 == 0 else "main"
            for name, repo in (("plain", plain), ("hooked", hooked)) if i % 2 else (("hooked", hooked),
                                                                                  ("plain", plain)):
                times[f"checkout_{name}"].append(timed(repo, "checkout", "-q", branch))

        records = len(list((hooked / ".codekin" / "queue.d").glob("*.ev")))
        with ChangeQueue(hooked) as queue:
            started = time.perf_counter()
            ingested = queue.ingest()
            ingest_s = time.perf_counter() - started
            queued = len(queue.take().seqs)
        failures = (hooked / ".codekin" / "logs" / "hooks.log")

    commit = {k: stats(v) for k, v in times.items() if k.startswith("commit")}
    checkout = {k: stats(v) for k, v in times.items() if k.startswith("checkout") and v}
    p95_added = commit["commit_hooked"]["p95_ms"] - commit["commit_plain"]["p95_ms"]
    result = {
        "benchmark": "hooks", "commits": args.commits, "checkouts": args.checkouts,
        **commit, **checkout,
        "commit_p95_added_ms": round(p95_added, 2),
        "commit_p50_added_ms": round(commit["commit_hooked"]["p50_ms"] - commit["commit_plain"]["p50_ms"], 2),
        "commit_p95_ratio": round(commit["commit_hooked"]["p95_ms"] / commit["commit_plain"]["p95_ms"], 3),
        "target_commit_p95_added_ms": 30, "meets_target": p95_added <= 30,
        "records": records, "ingested": ingested, "queued_paths": queued,
        "ingest_ms": round(ingest_s * 1000, 1), "hook_failures_logged": failures.exists(),
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0 if records == args.commits + args.checkouts else 1


if __name__ == "__main__":
    sys.exit(main())
