"""`codekin index` and `codekin status`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.cli.common import config_for, emit, repo_root
from codekin.errors import WorkspaceError
from codekin.workspace import find_root

if TYPE_CHECKING:
    from codekin.indexer import IndexSummary


def _say_searchable(summary: IndexSummary, lexical_only: bool) -> None:
    """Phase 1 is committed: say so before the (long) embedding starts."""
    if summary.missing_vectors and not lexical_only:
        print(f"Searchable after {summary.searchable_seconds:.1f} s by words and definitions "
              f"({summary.chunks} chunks); embedding {summary.missing_vectors} chunks next "
              "(interrupting keeps what is embedded)", file=sys.stderr, flush=True)


def cmd_index(args: argparse.Namespace) -> int:
    from codekin.indexer import Indexer
    from codekin.progress import BarProgress

    root = Path(args.path).resolve() if args.path else find_root(Path.cwd())
    if not root.is_dir():
        raise WorkspaceError(f"{args.path} is not a directory")
    config = config_for(root, args)
    indexer = Indexer(root, config, progress=BarProgress)
    if getattr(args, "engine", "local") == "ray":  # chunk + embed on Ray Data (optional extra)
        from codekin.distributed.ray_embed import RayIndexer, RayOptions

        indexer = RayIndexer(root, config, RayOptions(address=args.address, workers=args.workers),
                             progress=BarProgress)
    indexer.lexical_only = args.lexical_only
    indexer.on_searchable = lambda summary: _say_searchable(summary, args.lexical_only)
    indexer.announce = lambda message: print(message, file=sys.stderr, flush=True)
    summary = indexer.run(wait=args.wait, rebuild=args.rebuild)
    skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(summary.skipped.items()))
    line = (f"Indexed {summary.files} files ({summary.changed_files} changed, {summary.removed_files} removed): "
            f"{summary.chunks} chunks, {summary.new_embeddings} new embeddings"
            + (f" on {summary.device}" if summary.device else "")
            + f", {sum(summary.skipped.values())} skipped" + (f" ({skipped})" if skipped else "")
            + f" in {summary.seconds:.1f} s ({summary.embeddings_per_second:.1f} embeddings/s)"
            + (f"\n{summary.missing_vectors} chunks wait for vectors and rank by their words until "
               "`codekin index` (or the language server) embeds them" if summary.missing_vectors else ""))
    if summary.rebuilt:
        line = f"Rebuilt the index from the source files ({summary.rebuilt}).\n{line}"
    emit(args, {"root": str(root), **summary.to_dict()}, line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from codekin.index.phases import quick_status

    root = repo_root(args.repo, Path(args.path) if args.path else None)
    config = config_for(root, args)
    status = quick_status(root, config)  # the state file, when the files match it: no LanceDB
    if status is None:
        from codekin.engine import Engine
        from codekin.indexer import pending_changes

        status = Engine(root, config).status()
        if status["indexed"]:
            status["pending"] = pending_changes(root, config)
    if not status["indexed"]:
        human = f"No index in {root}. Run: codekin index {root}"
    else:
        pending = status["pending"]
        waiting = status["chunks"] - status["embedded_chunks"]
        human = (f"Index of {status['root']}\n  model: {status['model']}\n  table: {status['active_table']}\n"
                 f"  files: {status['files']}, chunks: {status['chunks']} ({status['embedded_chunks']} embedded)\n"
                 + (f"  dense layer incomplete: {waiting} chunks rank by their words until `codekin index` "
                    "embeds them\n" if waiting else "")
                 + f"  updated: {status['age_seconds']:.0f} s ago at commit {status['head'][:10] or '-'}\n"
                 f"  stale: {pending['changed']} changed, {pending['new']} new, {pending['removed']} removed files")
    emit(args, status, human)
    return 0


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, model = parents["common"], parents["model"]
    p = subparsers.add_parser("index", parents=[common, model, parents["engine"]],
                              help="index a repository (incremental)")
    p.add_argument("path", nargs="?", help="repository root (default: the git root of the current directory)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another indexer's lock")
    p.add_argument("--lexical-only", action="store_true",
                   help="stop once the index is searchable by words and definitions (phase 1); "
                        "the next `codekin index` or the language server adds the vectors")
    p.add_argument("--rebuild", action="store_true",
                   help="discard the index and rebuild it from the source files (re-embeds everything)")
    p.set_defaults(func=cmd_index)

    p = subparsers.add_parser("status", parents=[common], help="index size, model and staleness")
    p.add_argument("path", nargs="?")
    p.add_argument("--repo", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_status)
