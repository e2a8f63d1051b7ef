"""`codekin reembed` and `codekin dashboard` (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from codekin.cli.common import config_for, emit, repo_root
from codekin.errors import CodekinError
from codekin.state import DASHBOARD_FILE, state_path


def cmd_reembed(args: argparse.Namespace) -> int:
    from codekin.jobs.reembed import reembed
    from codekin.progress import BarProgress

    root = repo_root(args.repo)
    config = config_for(root, args)
    ray = None
    if args.engine == "ray":  # embed on Ray Data (optional extra)
        from codekin.distributed.ray_embed import RayOptions

        ray = RayOptions(address=args.address, workers=args.workers)
    elif args.address or args.workers:
        raise CodekinError(f"{'--address' if args.address else '--workers'} needs --engine ray",
                           "add --engine ray (pip install 'codekin[ray]'), or drop the option")
    started = time.perf_counter()
    summary = reembed(root, config, progress=BarProgress, lock_wait=args.wait, ray=ray)
    wall = time.perf_counter() - started  # what the user waited: model load and a first int8 export too
    emit(args, {"root": str(root), **summary.to_dict(), "wall_seconds": round(wall, 2)},
         f"{summary.describe()}\n{wall:.1f} s in all, loading the model included")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from codekin.dashboard.report import render_dashboard

    root = repo_root(args.repo)
    out = Path(args.out) if args.out else state_path(root, DASHBOARD_FILE)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_dashboard(root), encoding="utf-8")
    emit(args, {"path": str(out)}, f"Dashboard written to {out}")
    if args.open:
        import webbrowser

        if not webbrowser.open(out.resolve().as_uri()):
            print(f"No browser found: open {out.resolve().as_uri()} yourself")
    return 0


def register(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, model = parents["common"], parents["model"]
    repo = argparse.ArgumentParser(add_help=False)
    repo.add_argument("--repo", help="repository root (default: found from the current directory)")

    p = subparsers.add_parser("reembed", parents=[common, model, repo, parents["engine"]],
                              help="embed every chunk with the active model version, then switch queries to it")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for a running sync before switching (default 60)")
    p.set_defaults(func=cmd_reembed)

    p = subparsers.add_parser("dashboard", parents=[common, repo],
                              help="write the learning dashboard (HTML, works offline)")
    p.add_argument("--out", help="where to write it (default: .codekin/dashboard.html)")
    p.add_argument("--open", action="store_true", help="open it in the default browser")
    p.set_defaults(func=cmd_dashboard)
