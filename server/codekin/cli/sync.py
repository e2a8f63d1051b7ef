"""`codekin sync` and `codekin watch`: thin wrappers over sync.py."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from codekin.cli.common import config_for, emit, repo_root
from codekin.errors import CodekinError, ConfigError


def cmd_sync(args: argparse.Namespace) -> int:
    from codekin.progress import BarProgress
    from codekin.sync import drain

    root = repo_root(args.path, must_exist=True)
    summary = drain(root, config_for(root, args), full_check=not args.queue_only, wait=args.wait,
                    progress=BarProgress)
    emit(args, {"root": str(root), **summary.to_dict()}, summary.describe())
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from codekin.sync import SyncSummary, Watcher, require_index

    if args.debounce < 0:
        raise ConfigError(f"--debounce must be 0 or more milliseconds, got {args.debounce}")
    root = repo_root(args.path, must_exist=True)
    config = config_for(root, args)
    require_index(root)  # fail early, with the fix, rather than in the watcher's thread

    def on_sync(summary: SyncSummary) -> None:
        emit(args, {"event": "sync", "root": str(root), **summary.to_dict()},
             f"{time.strftime('%H:%M:%S')} {summary.describe()}")
        sys.stdout.flush()

    def on_error(exc: BaseException) -> None:
        print(f"codekin: {exc}", file=sys.stderr, flush=True)

    watcher = Watcher(root, config, debounce_ms=args.debounce, lock_wait=args.wait, on_sync=on_sync,
                      on_error=on_error)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops it as Ctrl-C does (a background watcher ignores SIGINT)
    watcher.start()
    try:
        while watcher.running and not watcher.wait_ready(0.2):
            pass
        if watcher.running:
            emit(args, {"event": "ready", "root": str(root)},
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
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
