"""`codekin doctor`: the checks of codekin.doctor, printed with their fixes."""

from __future__ import annotations

import argparse

from codekin.cli.common import config_for, emit, repo_root


def cmd_doctor(args: argparse.Namespace) -> int:
    from codekin.doctor import run_checks

    root = repo_root(args.path)
    checks = run_checks(root, config_for(root, args), load_model=not args.skip_model)
    lines = []
    for check in checks:
        lines.append(f"{'ok ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        if check.fix and not check.ok:
            lines.append(f"     fix: {check.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append("All checks passed." if not failed else f"{failed} check(s) failed.")
    emit(args, [c.to_dict() for c in checks], "\n".join(lines))
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("doctor", parents=[parents["common"], parents["model"]],
                              help="check grammars, model, device and index")
    p.add_argument("path", nargs="?")
    p.add_argument("--skip-model", action="store_true", help="do not load the model")
    p.set_defaults(func=cmd_doctor)
