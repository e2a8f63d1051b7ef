"""`codekin serve`: the language server over stdio (the editors start it)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

CHILD_GRACE_S = 2.0


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("serve", parents=[parents["model"]],
                              help="language server over stdio (LSP) for VS Code, Neovim, ...")
    p.add_argument("--model", help="embedding model name or path (default: model.primary from your config)")
    p.add_argument("--no-watch", action="store_true",
                   help="do not watch the workspace; the index then follows saves and the git-hook queue only")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="what goes to stderr (the editor's server log)")
    p.add_argument("--stdio", action="store_true", help=argparse.SUPPRESS)  # added by vscode-languageclient
    p.add_argument("--clientProcessId", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="codekin serve %(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":
        # pygls logs every error response with a traceback; the client gets those errors already
        logging.getLogger("pygls").setLevel(logging.CRITICAL)
    from codekin.lsp.memory import configure_process

    configure_process()
    from codekin.lsp.early import EarlyStart, Warmup

    # `initialize` is answered from the answer kept for this client when there is one
    # (lsp/early.py); the engine opens on a thread meanwhile, and the session takes it over.
    # the engine's modules (numpy, pyarrow: a third of a second) load while `initialize` is read
    threading.Thread(target=importlib.import_module, args=("codekin.engine",), name="codekin-preload",
                     daemon=True).start()
    early = EarlyStart(sys.stdin.buffer, sys.stdout.buffer)
    early.answer_initialize()
    overrides = {"model": {"primary": args.model, "device": args.device}}
    warm = Warmup.start(early, overrides)
    loaded = threading.Event()
    loading = threading.Thread(target=_load_pygls, args=(loaded,), name="codekin-load")
    if early.answered and warm is not None:
        # pygls and the engine both hold the GIL: the engine first, pygls once the model is
        # loaded (or a request only pygls answers arrives), and the searches and code lenses
        # asked meanwhile are answered without it (lsp/early_search.py)
        from codekin.lsp.early_search import answer_searches_until

        answer_searches_until(early, warm, loaded, loading.start)
    if not loading.is_alive() and not loaded.is_set():
        loading.start()
    loading.join()
    from codekin.lsp.server import create_server

    server = create_server(overrides, watch=not args.no_watch)
    server.warm = warm
    server.start_io(early=early)
    code = 0 if server.protocol._shutdown else 1  # `exit` without `shutdown` first is an error (LSP)
    end_children()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (ValueError, OSError):
            pass  # pygls closes stdout on `exit`
    # Leave now: the stdin reader thread may still block on a pipe the client keeps open, and
    # interpreter shutdown would join it. Nothing is lost: the index is crash-safe by design.
    os._exit(code)


def _load_pygls(loaded: threading.Event) -> None:
    try:
        importlib.import_module("codekin.lsp.server")
    finally:
        loaded.set()


def _children() -> list[int]:
    """Direct child processes of this one (Linux /proc; elsewhere none are found)."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[1]) == me and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def end_children() -> None:
    """Nothing outlives the server: SIGTERM each child, SIGKILL what is left after a grace period."""
    children = _children()
    _signal(children, signal.SIGTERM)
    deadline = time.monotonic() + CHILD_GRACE_S
    while children and time.monotonic() < deadline:
        time.sleep(0.05)
        children = _children()
    _signal(children, signal.SIGKILL)


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # it ended on its own
