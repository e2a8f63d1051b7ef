"""`codekin index` and `codekin status`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.cli.common import config_for, emit, repo_root, shown_path
from codekin.errors import WorkspaceError
from codekin.state import state_path
from codekin.workspace import tracked_warning

if TYPE_CHECKING:
    from codekin.config import Config
    from codekin.indexer import IndexSummary


def _say_searchable(summary: IndexSummary, lexical_only: bool) -> None:
    """Phase 1 is committed: say so before the (long) embedding starts."""
    if summary.missing_vectors and not lexical_only:
        print(f"Searchable after {summary.searchable_seconds:.1f} s by words and definitions "
              f"({summary.chunks} chunks); embedding {summary.missing_vectors} chunks next "
              "(interrupting keeps what is embedded)", file=sys.stderr, flush=True)


def cmd_index(args: argparse.Namespace) -> int:
    from codekin.indexer import Indexer, skipped_files
    from codekin.progress import BarProgress

    root = Path(args.path).resolve() if args.path else repo_root(None)  # a named DIR becomes a root
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
    names = skipped_files(root, config) if summary.skipped or args.json else {}
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
    if names:
        line += "\n" + _describe_skipped(names, root, limit=5)
    emit(args, {"root": str(root), **summary.to_dict(), "skipped_files": names}, line)
    return 0


def _describe_skipped(names: dict[str, str], root: Path, limit: int | None = None) -> str:
    """The skipped files by name (paths as the shell opens them from here)."""
    shown = list(names.items())[:limit]
    lines = [f"  skipped {shown_path(root, path)}: {reason}" for path, reason in shown]
    if len(names) > len(shown):
        lines.append(f"  ... and {len(names) - len(shown)} more: `codekin status --skipped` lists them all")
    return "\n".join(lines)


def _counts(root: Path, config: Config) -> dict:
    """Counts from the index itself, for a state file that does not record them (LanceDB)."""
    from codekin.engine import Engine

    return Engine(root, config).counts()


def _changes(root: Path, config: Config, state: dict) -> tuple[dict[str, int], dict[str, str]]:
    """Pending changes and skipped files: from one scan and the state file when no file changed
    since the last commit, else from the index's file records (LanceDB)."""
    from codekin.index.recorded import recorded_changes

    recorded = recorded_changes(root, config.index, state)
    if recorded is not None:
        return recorded
    from codekin.indexer import pending_changes, skipped_files

    return pending_changes(root, config), skipped_files(root, config)


def cmd_status(args: argparse.Namespace) -> int:
    """Reads the state file and scans the tree (stat calls); LanceDB only when files changed."""
    from codekin.index.recorded import index_status
    from codekin.models.adapters import served_adapter
    from codekin.models.serving import answering_and_active, model_note

    root = repo_root(args.path or args.repo)
    config = config_for(root, args)
    status, state = index_status(root, lambda: _counts(root, config))
    if status["indexed"]:
        status["pending"], status["skipped_files"] = _changes(root, config, state)
        status["answering"], status["active_model"] = answering_and_active(root, state)
        status["model_note"] = model_note(root, state)
        status["query_adapter"] = served_adapter(root, state)
    partial = None
    if not status["indexed"]:
        from codekin.index.store import IndexStore

        partial = IndexStore(root).interrupted()
    if partial is not None:
        status["interrupted"] = partial
        human = (f"Indexing of {root} was interrupted: {partial['files']} files and {partial['chunks']} "
                 f"chunks are kept. Run `codekin index {root}` to resume from there.")
    elif status.get("foreign"):
        human = (f"Ignoring the index in {state_path(root)}: {status['foreign']}. "
                 f"Run `codekin index {root}` to rebuild it on this machine.")
    elif not status["indexed"]:
        human = f"No index in {root}. Run: codekin index {root}"
    else:
        pending = status["pending"]
        skipped = status["skipped_files"]
        shown_model = status["model"] if status["answering"] == "base" else status["answering"]
        human = (f"Index of {status['root']}\n  model: {shown_model}"
                 + (f"\n  note: {status['model_note']}" if status["model_note"] else "")
                 + (f"\n  query adapter: {status['query_adapter']} (moves text questions)"
                    if status.get("query_adapter") else "")
                 + f"\n  table: {status['active_table']}\n"
                 f"  files: {status['indexed_files']} ({status['files']} with chunks), {len(skipped)} skipped"
                 + (" (`codekin status --skipped` names them)" if skipped and not args.skipped else "")
                 + f", chunks: {status['chunks']} ({status['embedded_chunks']} embedded)\n"
                 + (f"  dense layer incomplete: {status['chunks'] - status['embedded_chunks']} chunks rank by "
                    "their words until `codekin index` embeds them\n"
                    if status["chunks"] > status["embedded_chunks"] else "")
                 + f"  updated: {status['age_seconds']:.0f} s ago at commit {status['head'][:10] or '-'}\n"
                 f"  stale: {pending['changed']} changed, {pending['new']} new, {pending['removed']} removed files")
    if args.skipped and status.get("skipped_files"):
        human += "\n" + _describe_skipped(status["skipped_files"], root)
    warning = tracked_warning(root)
    status["tracked_warning"] = warning
    emit(args, status, human + (f"\n  warning: {warning}" if warning else ""))
    return 0


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, model = parents["common"], parents["model"]
    p = subparsers.add_parser("index", parents=[common, model, parents["engine"]],
                              help="index a repository (incremental)")
    p.add_argument("path", nargs="?", help="directory to index, which becomes the root (default: the indexed directory at or above the current one, else its git root)")
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
    p.add_argument("--skipped", action="store_true", help="name every file the index leaves out, with the reason")
    p.set_defaults(func=cmd_status)
