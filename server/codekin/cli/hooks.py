"""`codekin hooks install|uninstall|status`: a thin wrapper over githooks.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from codekin.cli.common import emit, repo_root


def _describe_hooks(report, action: str = "status") -> str:
    configured = f" (core.hooksPath = {report.hooks_path_config})" if report.hooks_path_config else ""
    lines = [*report.actions, f"Hooks in {report.hooks_dir}{configured}"]
    if action == "uninstall" or not any(h.installed or h.chained for h in report.hooks):
        lines.append("  codekin's hooks are not installed" + ("" if action == "uninstall" else
                     ": run `codekin hooks install` to keep the index fresh on commit, merge and checkout"))
        return "\n".join(lines)
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

    root = repo_root(args.path, index=False, must_exist=True)
    action = {"install": githooks.install, "uninstall": githooks.uninstall, "status": githooks.status}
    report = action[args.action](root)
    emit(args, report.to_dict(), _describe_hooks(report, args.action))
    return 0 if args.action != "status" or report.healthy else 1


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("hooks", parents=[parents["common"]],
                              help="install, remove or check the git hooks that queue changed files")
    p.add_argument("action", choices=("install", "uninstall", "status"))
    p.add_argument("path", nargs="?", help="inside the repository (default: the current directory)")
    p.set_defaults(func=cmd_hooks)
