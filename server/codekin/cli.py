"""The `codekin` command: parse, call a service, print. Errors exit with a hint."""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codekin import __version__
from codekin.config import DEVICES, SEARCH_MODES, STATE_DIR, Config, load_config
from codekin.errors import CodekinError, WorkspaceError
from codekin.workspace import find_root

if TYPE_CHECKING:  # imported lazily: LanceDB costs seconds, and `codekin serve` must start fast
    from codekin.index.search import Hit


# Feature modules that add subcommands: each has `register(subparsers, parents)` where
# parents = {"common": --json, "model": --device, "query": --limit/--min-similarity/--mode/--repo,
#            "engine": --engine/--address/--workers}
# and sets `func(args) -> int` on its parsers (raise CodekinError for user errors).
COMMAND_MODULES: tuple[str, ...] = ("codekin.cli_sync", "codekin.cli_serve", "codekin.training.cli_train", "codekin.training.cli_triplets", "codekin.jobs.cli_jobs")


def index_root(start: Path) -> Path:
    """The nearest directory at or above `start` holding an index, else the git root."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        if (candidate / STATE_DIR / "state.json").is_file():
            return candidate
    return find_root(directory)


def _config(root: Path, args: argparse.Namespace) -> Config:
    model = {"device": getattr(args, "device", None), "primary": getattr(args, "model", None)}
    search = {"mode": getattr(args, "mode", None)}
    return load_config(root, {"model": model, "search": search})


def _emit(args: argparse.Namespace, payload: object, human: str) -> None:
    print(json.dumps(payload, indent=None if args.json else 2) if args.json else human)


# -- index -----------------------------------------------------------------------------------
def cmd_index(args: argparse.Namespace) -> int:
    from codekin.indexer import Indexer
    from codekin.progress import BarProgress

    root = Path(args.path).resolve() if args.path else find_root(Path.cwd())
    if not root.is_dir():
        raise WorkspaceError(f"{args.path} is not a directory")
    config = _config(root, args)
    indexer = Indexer(root, config, progress=BarProgress)
    if getattr(args, "engine", "local") == "ray":  # chunk + embed on Ray Data (optional extra)
        from codekin.distributed.ray_embed import RayIndexer, RayOptions

        indexer = RayIndexer(root, config, RayOptions(address=args.address, workers=args.workers),
                             progress=BarProgress)
    summary = indexer.run(wait=args.wait)
    skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(summary.skipped.items()))
    line = (f"Indexed {summary.files} files ({summary.changed_files} changed, {summary.removed_files} removed): "
            f"{summary.chunks} chunks, {summary.new_embeddings} new embeddings"
            + (f" on {summary.device}" if summary.device else "")
            + f", {sum(summary.skipped.values())} skipped" + (f" ({skipped})" if skipped else "")
            + f" in {summary.seconds:.1f} s ({summary.embeddings_per_second:.1f} embeddings/s)")
    _emit(args, {"root": str(root), **summary.to_dict()}, line)
    return 0


# -- search / similar --------------------------------------------------------------------------
def _engine(args: argparse.Namespace, start: Path):
    from codekin.engine import Engine

    root = index_root(Path(args.repo) if args.repo else start)
    return Engine(root, _config(root, args))


_SCORE_MEANING = {"hybrid": "ranked by dense + lexical fusion; scores are cosine similarity",
                  "dense": "scores are cosine similarity",
                  "lexical": "scores are BM25 relative to the best match"}


def _score_note(args: argparse.Namespace, engine) -> str:
    return _SCORE_MEANING.get(args.mode or engine.config.search.mode, "")


def _format_hits(hits: list[Hit]) -> str:
    if not hits:
        return "No results. Try --mode lexical, a lower --min-similarity, or `codekin index` if files changed."
    lines = []
    for rank, hit in enumerate(hits, 1):
        lines.append(f"{rank:>2}. {hit.score:.3f}  {hit.path}:{hit.start_line}-{hit.end_line}  {hit.symbol}")
        snippet = [s.strip() for s in hit.text.split("\n") if s.strip() and not s.strip().startswith(("@doc", '"""'))]
        for text in snippet[:2]:
            lines.append(f"      {text[:100]}")
    return "\n".join(lines)


def _format_files(files) -> str:
    if not files:
        return "No files. Try other words, or `codekin index` if files changed."
    return "\n".join(f"{rank:>2}. {f.score:.3f}  {f.path}  (best: {f.symbol}, lines {f.start_line}-{f.end_line})"
                     for rank, f in enumerate(files, 1))


def cmd_search(args: argparse.Namespace) -> int:
    engine = _engine(args, Path.cwd())
    started = time.perf_counter()
    if args.files:
        files = engine.search_files(args.query, args.limit, args.mode, args.lang, args.path, tests=args.tests)
        elapsed = time.perf_counter() - started
        human = _format_files(files) + f"\n{len(files)} files in {elapsed * 1000:.0f} ms (ranked by their chunks, " \
            "summary and mean vector)"
        _emit(args, [f.to_dict() for f in files], human)
        return 0
    hits = engine.search(args.query, args.limit, args.min_similarity, args.mode, args.lang, args.path,
                         tests=args.tests)
    elapsed = time.perf_counter() - started
    human = _format_hits(hits) + f"\n{len(hits)} results in {elapsed * 1000:.0f} ms ({_score_note(args, engine)})"
    _emit(args, [h.to_dict() for h in hits], human)
    return 0


_LOCATION = re.compile(r"^(?P<path>.+?):(?P<start>\d+)(?:-(?P<end>\d+))?$")


def cmd_similar(args: argparse.Namespace) -> int:
    match = _LOCATION.match(args.location)
    if not match:
        raise WorkspaceError(f"cannot read location {args.location!r}", "use FILE:LINE or FILE:START-END")
    path = match["path"]
    engine = _engine(args, Path(path) if not args.repo else Path.cwd())
    start = int(match["start"])
    end = int(match["end"]) if match["end"] else None
    query, hits = engine.similar(path, start, end, limit=args.limit, min_similarity=args.min_similarity,
                                 mode=args.mode)
    about = f"Similar to {query.symbol} ({query.path}:{query.start_line}-{query.end_line})" if query else \
        f"Similar to {args.location}"
    _emit(args, [h.to_dict() for h in hits], f"{about}\n{_format_hits(hits)}\n({_score_note(args, engine)})")
    return 0


# -- status / doctor ---------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from codekin.indexer import pending_changes

    engine = _engine(args, Path(args.path) if args.path else Path.cwd())
    status = engine.status()
    if status["indexed"]:
        status["pending"] = pending_changes(engine.root, engine.config)
    if not status["indexed"]:
        human = f"No index in {engine.root}. Run: codekin index {engine.root}"
    else:
        pending = status["pending"]
        human = (f"Index of {status['root']}\n  model: {status['model']}\n  table: {status['active_table']}\n"
                 f"  files: {status['files']}, chunks: {status['chunks']} ({status['embedded_chunks']} embedded)\n"
                 f"  updated: {status['age_seconds']:.0f} s ago at commit {status['head'][:10] or '-'}\n"
                 f"  stale: {pending['changed']} changed, {pending['new']} new, {pending['removed']} removed files")
    _emit(args, status, human)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from codekin.doctor import run_checks

    root = index_root(Path(args.path) if args.path else Path.cwd())
    checks = run_checks(root, _config(root, args), load_model=not args.skip_model)
    lines = []
    for check in checks:
        lines.append(f"{'ok ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        if check.fix and not check.ok:
            lines.append(f"     fix: {check.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append("All checks passed." if not failed else f"{failed} check(s) failed.")
    _emit(args, [c.to_dict() for c in checks], "\n".join(lines))
    return 1 if failed else 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codekin", description="Local code search that learns your codebase.")
    parser.add_argument("--version", action="version", version=f"codekin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--device", choices=DEVICES, help="where the model runs (default: auto)")
    query = argparse.ArgumentParser(add_help=False)
    query.add_argument("--limit", type=int, default=None, help="number of results (default 10)")
    query.add_argument("--min-similarity", type=float, default=None, help="drop results below this score")
    query.add_argument("--mode", choices=SEARCH_MODES, help="dense, lexical or hybrid (default)")
    query.add_argument("--repo", help="repository root (default: found from the current directory)")

    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (this process, default) or ray (on Ray Data: pip install 'codekin[ray]')")
    engine.add_argument("--address", help="with --engine ray: join this Ray cluster (default: start a local instance)")
    engine.add_argument("--workers", type=int, default=0,
                        help="with --engine ray: embedding actors (default: one per GPU, else one per CPU)")

    p = sub.add_parser("index", parents=[common, model, engine], help="index a repository (incremental)")
    p.add_argument("path", nargs="?", help="repository root (default: the git root of the current directory)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another indexer's lock")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", parents=[common, model, query], help="natural-language or code search")
    p.add_argument("query")
    p.add_argument("--lang", help="only this language (elixir, erlang, cpp, c, ...)")
    p.add_argument("--path", help="only paths matching this glob, e.g. 'lib/**'")
    p.add_argument("--files", action="store_true", help="rank files instead of chunks (whole-file questions)")
    p.add_argument("--tests", action="store_true",
                   help="rank tests, fixtures and examples like the code (default: weighed down for questions)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("similar", parents=[common, model, query], help="code similar to FILE:LINE or FILE:START-END")
    p.add_argument("location")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("status", parents=[common], help="index size, model and staleness")
    p.add_argument("path", nargs="?")
    p.add_argument("--repo", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("doctor", parents=[common, model], help="check grammars, model, device and index")
    p.add_argument("path", nargs="?")
    p.add_argument("--skip-model", action="store_true", help="do not load the model")
    p.set_defaults(func=cmd_doctor)

    parents = {"common": common, "model": model, "query": query, "engine": engine}
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, parents)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CodekinError as exc:
        print(f"codekin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("codekin: interrupted; the index keeps everything committed so far", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as exc:  # LanceDB reports a full disk as a RuntimeError
        if not disk_full(exc):
            raise
        print("codekin: error: the disk is full (no space left on device)\n"
              "  hint: free some space and run the command again; the index keeps everything committed "
              "before the error", file=sys.stderr)
        return 28


def disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)


if __name__ == "__main__":
    sys.exit(main())
