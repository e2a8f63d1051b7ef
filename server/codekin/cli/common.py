"""What the command groups share: the repository a command works on, its configuration, and
how a result is printed."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from codekin.config import Config, load_config
from codekin.errors import WorkspaceError
from codekin.workspace import find_root, index_root


def repo_root(given: str | None, start: Path | None = None, index: bool = True,
              must_exist: bool = False) -> Path:
    """The repository of `given` (a --repo or path argument), else of `start` (default: the
    current directory), by workspace.index_root's rule (with `index`; else the git root).
    With `must_exist`, a `given` path that does not exist is an error."""
    where = Path(given) if given else (start or Path.cwd())
    if must_exist and given and not where.exists():
        raise WorkspaceError(f"{given} does not exist", "give the path of a git repository")
    return index_root(where, named=bool(given)) if index else find_root(where)


def config_for(root: Path, args: argparse.Namespace) -> Config:
    """The configuration of `root` with the command line's --device, --model and --mode."""
    model = {"device": getattr(args, "device", None), "primary": getattr(args, "model", None)}
    search = {"mode": getattr(args, "mode", None)}
    return load_config(root, {"model": model, "search": search})


def emit(args: argparse.Namespace, payload: object, human: str) -> None:
    """Print one JSON line with --json, else the human text."""
    print(json.dumps(payload) if args.json else human)


def shown_path(root: Path, rel: str) -> str:
    """A repository-relative path as the shell opens it from the current directory (human
    output; --json keeps the repository-relative path beside the root)."""
    try:
        return os.path.relpath(root / rel)
    except ValueError:  # another drive (Windows)
        return str(root / rel)
