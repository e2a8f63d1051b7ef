"""Time to first answer: how soon a cold `codekin index` is searchable, and how quickly each
command and the language server answer, against baselines measured in the same run.

Corpus: the first --lines lines (whole files, sorted paths, round-robin over the projects) of
phoenix_live_view, ranch, hackney and zstd from the relevance cache
(~/.cache/codekin-relevance/src), copied into a temporary git repository (never committed).

Each step runs in its own process (wall time includes interpreter start and imports):
- naive: bench_index.py's naive dense indexer (40-line windows, the same model, plain encode);
- prepare: the one-time int8 export, timed apart (both indexers find the model on disk);
- cold `codekin index`: the moment its stderr says "Searchable after" (phase 1 committed,
  measured from spawning the process) and its end (phase 2 done), with its peak RSS;
- `codekin --version`, `codekin status`, `codekin search` (hybrid and --mode lexical) from a cold
  process, --runs times each, p50;
- `codekin serve`: initialize, the first codekin.search answer after it, and the idle RSS (the
  second start: the first keeps the server's answer to this client's `initialize`);
- `codekin search` from a cold process while that server runs (it answers over its socket).

`--repo DIR` times only the cold commands and the server on an index that already exists
(e.g. a 10k-chunk one), without building a corpus or indexing. With `--base-code SERVER_DIR`
and `--base-repo DIR` (another checkout's server/ folder, e.g. main's, and its own copy of the
index), the same cold commands of that code run interleaved with these, run for run, and the
line carries them as `baseline` (the ratios of both from the same minutes of a shared machine).

The machine is shared (2 cores, other work beside it): compare the ratios, not the seconds;
`load_average` says how busy it was. Prints one JSON line.
Usage: python benchmarks/bench_instant.py [--lines 30000] [--runs 5] [--no-naive] [--repo DIR
       [--base-code SERVER_DIR --base-repo DIR]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench_index import _child, run_child  # noqa: E402

SOURCES = Path.home() / ".cache" / "codekin-relevance" / "src"
PROJECTS = ("phoenix_live_view", "ranch", "hackney", "zstd")
SUFFIXES = (".ex", ".exs", ".erl", ".hrl", ".c", ".h", ".cc", ".cpp", ".hpp", ".heex")
QUERIES = ["parse the request headers", "compress a block of data", "retry the connection after a timeout",
           "render a live component", "acceptor pool for tcp connections"]
CODEKIN = [sys.executable, "-m", "codekin.cli"]


def build_corpus(dest: Path, lines: int) -> dict:
    """A git repository of whole source files, taken round-robin over PROJECTS up to `lines`."""
    queues = {p: sorted(f for f in (SOURCES / p).rglob("*") if f.is_file() and f.suffix in SUFFIXES
                        and ".git" not in f.parts) for p in PROJECTS}
    total, files = 0, 0
    while total < lines and any(queues.values()):
        for project, queue in queues.items():
            if not queue or total >= lines:
                continue
            source = queue.pop(0)
            text = source.read_bytes()
            target = dest / project / source.relative_to(SOURCES / project)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text)
            total, files = total + text.count(b"\n"), files + 1
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "corpus"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, env=env)
    return {"lines": total, "files": files}


def cold_index(repo: Path) -> dict:
    """`codekin index` in a child: wall seconds to "Searchable after" and to the end, peak RSS."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen([*CODEKIN, "index", str(repo), "--json"], stdout=out, stderr=subprocess.PIPE,
                                   text=True)
        searchable = None
        assert process.stderr is not None
        for line in process.stderr:
            if searchable is None and line.startswith("Searchable after"):
                searchable = time.perf_counter() - started
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("codekin index failed")
        out.seek(0)
        summary = json.loads(out.read().strip().splitlines()[-1])
    return {"searchable_seconds": round(searchable if searchable is not None else seconds, 2),
            "wall_seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "chunks": summary["chunks"], "new_embeddings": summary["new_embeddings"],
            "inner_searchable_seconds": summary.get("searchable_seconds")}


def p50(args: list[str], runs: int, cwd: Path, queries: list[str] | None = None) -> float:
    times = []
    for i in range(runs):
        started = time.perf_counter()
        extra = [queries[i % len(queries)]] if queries else []
        subprocess.run([*args, *extra], cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def p50_pair(args: list[str], runs: int, sides: dict[str, tuple[Path, dict]],
             queries: list[str] | None = None) -> dict[str, float]:
    """p50 of `args` for each side (its repository and environment), the sides taking turns run
    by run, so both see the same load."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(runs):
        extra = [queries[i % len(queries)]] if queries else []
        for name, (cwd, env) in sides.items():
            started = time.perf_counter()
            subprocess.run([*args, *extra], cwd=cwd, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def cold_pair(repo: Path, base_code: Path, base_repo: Path, runs: int) -> tuple[dict, dict]:
    """The cold commands of this code and of `base_code` (on its own copy of the index), interleaved."""
    base_env = {**os.environ, "PYTHONPATH": str(base_code)}
    sides = {"this": (repo, dict(os.environ)), "base": (base_repo, base_env)}
    out: dict[str, dict] = {"this": {}, "base": {}}
    commands = {"version_p50_s": ([*CODEKIN, "--version"], None), "status_p50_s": ([*CODEKIN, "status"], None),
                "search_p50_s": ([*CODEKIN, "search", "--limit", "5"], QUERIES),
                "search_lexical_p50_s": ([*CODEKIN, "search", "--limit", "5", "--mode", "lexical"], QUERIES)}
    for field, (args, queries) in commands.items():
        for name, value in p50_pair(args, runs, sides, queries).items():
            out[name][field] = value
    for side in out.values():
        version = side["version_p50_s"]
        side.update(search_vs_version=round(side["search_p50_s"] / version, 2),
                    lexical_vs_version=round(side["search_lexical_p50_s"] / version, 2),
                    status_vs_version=round(side["status_p50_s"] / version, 2))
    return out["this"], out["base"]


async def lsp(repo: Path, served_runs: int = 0) -> dict:
    """initialize, the first codekin.search after it, the idle RSS; with `served_runs`, also the
    p50 of a cold `codekin search` that this running server answers (over its socket)."""
    from bench_lsp import command, rss_mb
    from lsprotocol import types
    from pygls.lsp.client import BaseLanguageClient

    client = BaseLanguageClient("codekin-bench", "1")
    started = time.perf_counter()
    await client.start_io(*CODEKIN, "serve")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=repo.as_uri(), process_id=os.getpid()))
    initialize = time.perf_counter() - started
    client.initialized(types.InitializedParams())
    answer = await command(client, "codekin.search", {"query": QUERIES[0], "limit": 5})
    first = time.perf_counter() - started - initialize
    await asyncio.sleep(2.0)
    pid = client._server.pid  # type: ignore[union-attr]
    idle = rss_mb(pid)
    served = None
    if served_runs:
        socket = repo / ".codekin" / "serve.sock"
        while not socket.exists() and time.perf_counter() - started < 300:  # the model loads first
            await asyncio.sleep(0.1)
        served = await asyncio.to_thread(p50, [*CODEKIN, "search", "--limit", "5"], served_runs, repo, QUERIES)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    out = {"initialize_seconds": round(initialize, 2), "first_search_seconds": round(first, 2),
           "first_search_results": len(answer["results"]), "idle_rss_mb": idle}
    return {**out, "search_served_p50_s": served} if served_runs else out


def cold_commands(repo: Path, runs: int) -> dict:
    """`--version`, `status`, `search` (hybrid and lexical) from cold processes, p50, and the server."""
    version = p50([*CODEKIN, "--version"], runs, repo)
    status = p50([*CODEKIN, "status"], runs, repo)
    search = p50([*CODEKIN, "search", "--limit", "5"], runs, repo, QUERIES)
    lexical = p50([*CODEKIN, "search", "--limit", "5", "--mode", "lexical"], runs, repo, QUERIES)
    asyncio.run(lsp(repo))  # once first: the server keeps its answer to this client's initialize
    server = asyncio.run(lsp(repo, served_runs=runs))
    served = server.pop("search_served_p50_s")
    return {"version_p50_s": version, "status_p50_s": status, "search_p50_s": search,
            "search_lexical_p50_s": lexical, "search_vs_version": round(search / version, 2),
            "lexical_vs_version": round(lexical / version, 2), "status_vs_version": round(status / version, 2),
            "search_served_p50_s": served, "served_vs_version": round(served / version, 2) if served else None,
            "lsp": server}


def existing(repo: Path, runs: int) -> dict:
    """The cold commands on an index that already exists (--repo): its size, no indexing."""
    state = json.loads((repo / ".codekin" / "state.json").read_text(encoding="utf-8"))
    return {"repo": str(repo), "chunks": state.get("dense", {}).get("chunks"),
            "embedded_chunks": state.get("dense", {}).get("embedded_chunks"), **cold_commands(repo, runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive indexer (no ratios)")
    parser.add_argument("--repo", type=Path, help="only time the cold commands on this existing index")
    parser.add_argument("--base-code", type=Path, help="with --repo: the server/ folder of the code to compare")
    parser.add_argument("--base-repo", type=Path, help="with --base-code: its own copy of the index")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if args.repo is not None and args.base_code is not None:
        if args.base_repo is None:
            parser.error("--base-code needs --base-repo (the base code's own copy of the index)")
        this, base = cold_pair(args.repo.resolve(), args.base_code.resolve(), args.base_repo.resolve(), args.runs)
        state = json.loads((args.repo / ".codekin" / "state.json").read_text(encoding="utf-8"))
        out = {"bench": "instant-cold", "repo": str(args.repo.resolve()), "chunks": state.get("dense", {}).get("chunks"),
               "embedded_chunks": state.get("dense", {}).get("embedded_chunks"), **this,
               "baseline": {"code": str(args.base_code.resolve()), "repo": str(args.base_repo.resolve()), **base},
               "load_average_start": round(load, 2), "load_average_end": round(os.getloadavg()[0], 2),
               "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print(json.dumps(out))
        return
    if args.repo is not None:
        out = {"bench": "instant-cold", **existing(args.repo.resolve(), args.runs)}
        out.update(load_average_start=round(load, 2), load_average_end=round(os.getloadavg()[0], 2),
                   cpus=os.cpu_count(), at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory(prefix="bench-instant-") as tmp:
        corpus = build_corpus(Path(tmp) / "corpus", args.lines)
        naive = None
        if not args.no_naive:
            naive_root = Path(tmp) / "naive"
            shutil.copytree(Path(tmp) / "corpus", naive_root)
            naive = run_child(_child("naive", "--root", str(naive_root)))
        prepare = run_child(_child("prepare", "--backend", "auto"))
        repo = Path(tmp) / "corpus"
        index = cold_index(repo)
        cold = cold_commands(repo, args.runs)
    out = {"bench": "instant", "corpus": {"projects": list(PROJECTS), **corpus}, "index": index,
           "prepare_seconds": prepare["wall_seconds"], **cold,
           "load_average_start": round(load, 2), "load_average_end": round(os.getloadavg()[0], 2),
           "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if naive is not None:
        out.update(naive={k: naive[k] for k in ("wall_seconds", "chunks", "peak_rss_mb", "embeddings_per_second")},
                   searchable_speedup=round(naive["wall_seconds"] / index["searchable_seconds"], 2),
                   full_index_speedup=round(naive["wall_seconds"] / index["wall_seconds"], 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
