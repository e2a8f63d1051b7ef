"""`codekin hooks install|uninstall|status`, `codekin sync` and `codekin watch`: thin
wrappers over githooks.py and sync.py."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from codekin.config import load_config
from codekin.errors import CodekinError, ConfigError, WorkspaceError
from codekin.workspace import find_root


def _root(args: argparse.Namespace, for_index: bool) -> Path:
    from codekin.cli import index_root

    start = Path(args.path) if args.path else Path.cwd()
    if not start.exists():
        raise WorkspaceError(f"{args.path} does not exist", "give the path of a git repository")
    return index_root(start) if for_index else find_root(start)


def _print(args: argparse.Namespace, payload: dict, human: str) -> None:
    print(json.dumps(payload) if args.json else human)


# -- hooks -----------------------------------------------------------------------------------
def _describe_hooks(report) -> str:
    configured = f" (core.hooksPath = {report.hooks_path_config})" if report.hooks_path_config else ""
    lines = [*report.actions, f"Hooks in {report.hooks_dir}{configured}"]
    for hook in report.hooks:
        mark = "ok  " if hook.healthy else "FAIL"
        extra = f", then runs {Path(hook.chained).name}" if hook.chained and hook.installed else ""
        extra += " (run by the pre-commit framework)" if hook.via else ""
        lines.append(f"  {mark} {hook.name}{extra}" + (f": {hook.problem}" if hook.problem else ""))
    if not report.state_dir:
        lines.append("  FAIL .codekin/ is missing in this worktree, so the hooks record nothing: "
                     "run `codekin hooks install` here")
    if report.pending_records:
        lines.append(f"  {report.pending_records} hook records wait for `codekin sync`")
    if report.last_failure:
        lines.append(f"  last hook failure: {report.last_failure}")
    return "\n".join(lines)


def cmd_hooks(args: argparse.Namespace) -> int:
    from codekin import githooks

    root = _root(args, for_index=False)
    action = {"install": githooks.install, "uninstall": githooks.uninstall, "status": githooks.status}
    report = action[args.action](root)
    _print(args, report.to_dict(), _describe_hooks(report))
    return 0 if args.action != "status" or report.healthy else 1


# -- sync ------------------------------------------------------------------------------------
def _config(root: Path, args: argparse.Namespace):
    return load_config(root, {"model": {"device": args.device}})


def cmd_sync(args: argparse.Namespace) -> int:
    from codekin.progress import BarProgress
    from codekin.sync import drain

    root = _root(args, for_index=True)
    summary = drain(root, _config(root, args), full_check=not args.queue_only, wait=args.wait,
                    progress=BarProgress)
    _print(args, {"root": str(root), **summary.to_dict()}, summary.describe())
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from codekin.sync import SyncSummary, Watcher, require_index

    if args.debounce < 0:
        raise ConfigError(f"--debounce must be 0 or more milliseconds, got {args.debounce}")
    root = _root(args, for_index=True)
    config = _config(root, args)
    require_index(root)  # fail early, with the fix, rather than in the watcher's thread

    def on_sync(summary: SyncSummary) -> None:
        _print(args, {"event": "sync", "root": str(root), **summary.to_dict()},
               f"{time.strftime('%H:%M:%S')} {summary.describe()}")
        sys.stdout.flush()

    def on_error(exc: BaseException) -> None:
        print(f"codekin: {exc}", file=sys.stderr, flush=True)

    watcher = Watcher(root, config, debounce_ms=args.debounce, lock_wait=args.wait, on_sync=on_sync,
                      on_error=on_error)
    watcher.start()
    try:
        while watcher.running and not watcher.wait_ready(0.2):
            pass
        if watcher.running:
            _print(args, {"event": "ready", "root": str(root)},
                   f"Watching {root} (debounce {args.debounce} ms); Ctrl-C stops.")
            sys.stdout.flush()
        while watcher.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("codekin: stopping; queued changes are kept for the next sync", file=sys.stderr)
    finally:
        watcher.stop()
    if watcher.error is None:
        return 0
    if isinstance(watcher.error, CodekinError):
        return watcher.error.exit_code  # on_error printed it
    raise watcher.error  # a bug: keep its traceback


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("hooks", parents=[parents["common"]],
                              help="install, remove or check the git hooks that queue changed files")
    p.add_argument("action", choices=("install", "uninstall", "status"))
    p.add_argument("path", nargs="?", help="inside the repository (default: the current directory)")
    p.set_defaults(func=cmd_hooks)

    p = subparsers.add_parser("sync", parents=[parents["common"], parents["model"]],
                              help="index what the hooks queued and whatever else changed")
    p.add_argument("path", nargs="?", help="repository root (default: found from the current directory)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for another sync or indexer")
    p.add_argument("--queue-only", action="store_true",
                   help="only the queued paths; skip comparing every file's size and mtime with the index")
    p.set_defaults(func=cmd_sync)

    p = subparsers.add_parser("watch", parents=[parents["common"], parents["model"]],
                              help="keep the index fresh while files change (until Ctrl-C)")
    p.add_argument("path", nargs="?", help="repository root (default: found from the current directory)")
    p.add_argument("--debounce", type=int, default=200, metavar="MS", help="quiet time before a sync (ms)")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for another sync or indexer")
    p.set_defaults(func=cmd_watch)
