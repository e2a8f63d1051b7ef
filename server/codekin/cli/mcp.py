"""`codekin mcp`: the MCP server over stdio for coding agents (VS Code, Neovim, terminal agents)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from codekin.cli.common import repo_root


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("mcp", parents=[parents["model"]],
                              help="MCP server over stdio for coding agents (VS Code, Neovim, Claude Code, ...)")
    p.add_argument("--repo", help="repository root (default: found from the current directory)")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="what goes to stderr (the client's server log)")
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="codekin mcp %(levelname)s %(name)s: %(message)s")
    from codekin.cli.serve import end_children
    from codekin.config import load_config

    root = repo_root(args.repo, must_exist=True)
    config = load_config(root, {"model": {"device": args.device}})  # no --model: a repo's .vscode/mcp.json is not yours

    def stop(signum: int, frame: object) -> None:
        end_children()  # a training child must not outlive the server
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    from codekin.mcp.server import serve_stdio
    from codekin.mcp.service import Workspace

    try:
        serve_stdio(Workspace(Path(root), config))
    except KeyboardInterrupt:
        pass
    end_children()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (ValueError, OSError):
            pass
    # Leave now: a worker thread may still be busy (a query, an abandoned retrain's wait);
    # the index is crash-safe and a training child has just been ended.
    os._exit(0)
