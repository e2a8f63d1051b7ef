"""The `codekin` parser, built from the command groups, and the edge where errors become
exit codes with a hint."""

from __future__ import annotations

import argparse
import gc
import os
import select
import sys

from codekin import __version__
from codekin.cli import (
    doctor,
    hooks,
    index,
    jobs,
    mcp,
    models,
    search,
    serve,
    sync,
    train,
    triplets,
)
from codekin.config import DEVICES, SEARCH_MODES
from codekin.errors import DISK_FULL_EXIT, CodekinError, disk_full
from codekin.index.integrity import as_damage

# Each group has `register(subparsers, parents)` where
# parents = {"common": --json, "model": --device, "query": --limit/--min-similarity/--mode/--repo,
#            "engine": --engine/--address/--workers}
# and sets `func(args) -> int` on its parsers (raise CodekinError for user errors).
GROUPS = (index, search, doctor, hooks, sync, serve, train, models, triplets, jobs, mcp)


def _parents() -> dict[str, argparse.ArgumentParser]:
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
    return {"common": common, "model": model, "query": query, "engine": engine}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codekin", description="Local code search that learns your codebase.")
    parser.add_argument("--version", action="version", version=f"codekin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = _parents()
    for group in GROUPS:
        group.register(sub, parents)
    return parser


CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE, what `cat` reports when `| head` stops reading


def run() -> int:
    """The `codekin` program (its console script and `python -m codekin.cli`)."""
    return main(exit_quickly=True)


def main(argv: list[str] | None = None, exit_quickly: bool = False) -> int:
    """Run one command; a reader that stops early (`codekin status | head -1`) ends it quietly.

    With `exit_quickly` (the program itself, never a caller in the same process), a command whose
    parser sets `quick_exit` (a search) runs without the cyclic garbage collector and ends the
    process once its output is flushed: freeing the model (OpenVINO's compiled model and threads;
    the command leaves its engine on `args` so it is not freed on return) and the interpreter's
    teardown would add ~100 ms to a cold search, and nothing is left to write."""
    try:
        try:
            args = build_parser().parse_args(argv)
            quick = exit_quickly and getattr(args, "quick_exit", False)
            if quick:  # one query, then the process ends: no collector passes over what it loads (~10-25 ms)
                gc.disable()
            code = _main(args)
        except SystemExit:  # --help, --version and argparse's usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # here, not at interpreter exit, where a closed pipe cannot be caught
        # not under a profiler or coverage: they write their results at the interpreter's normal end.
        # An error ends quickly too: the model's thread may still be inside OpenVINO, and the
        # interpreter's teardown under it aborts the process (SIGABRT instead of the error's code).
        if quick and sys.getprofile() is None and sys.gettrace() is None:
            sys.stderr.flush()
            os._exit(code)
        return code
    except BrokenPipeError:
        if not _closed_pipe():
            raise  # a pipe of our own (a child process), not the reader of our output
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(devnull, stream.fileno())  # nothing more to write: exit without "Exception ignored"
        return CLOSED_PIPE_EXIT


def _closed_pipe() -> bool:
    """stdout or stderr is a pipe whose reader has gone."""
    poll = select.poll()
    for stream in (sys.stdout, sys.stderr):
        try:
            poll.register(stream.fileno(), select.POLLOUT)
        except (ValueError, OSError):
            continue
    return any(event & select.POLLERR for _, event in poll.poll(0))


def _main(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except CodekinError as exc:
        print(f"codekin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("codekin: interrupted; the index keeps everything committed so far, and running the command "
              "again resumes from there", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, ValueError) as exc:  # LanceDB reports a full disk as a RuntimeError
        damage = as_damage(exc)  # a damaged index file, wherever a command read it
        if damage is not None:
            print(f"codekin: error: {damage}", file=sys.stderr)
            return damage.exit_code
        if not disk_full(exc):
            raise
        print("codekin: error: the disk is full (no space left on device)\n"
              "  hint: free some space and run the command again; the index keeps everything committed "
              "before the error", file=sys.stderr)
        return DISK_FULL_EXIT


if __name__ == "__main__":
    sys.exit(run())
