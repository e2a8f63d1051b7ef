"""`codekin models list|rollback|promote|prune` (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from codekin.cli.common import emit, repo_root


def _age(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _score(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _mrr_key(metrics: dict[str, Any]) -> str:
    from codekin.metrics import deciding_metric

    return deciding_metric(metrics) or "mrr@10"


def cmd_models_list(args: argparse.Namespace) -> int:
    from codekin.models.registry import BASE, ModelRegistry
    from codekin.training.pipeline import training_holder

    root = repo_root(args.repo)
    registry = ModelRegistry(root)
    running = training_holder(root) is not None
    active = registry.active_ref()
    versions = registry.versions()
    rows = [f"{'':2}{'version':<18}{'parent':<14}{'created':<18}{'triplets':>9}{'acc':>8}{'mrr@10':>8}"
            f"{'recall@10':>10}  status"]
    rows.append(f"{'*' if active == BASE else ' ':2}{BASE:<18}{'-':<14}{'-':<18}{'-':>9}{'-':>8}{'-':>8}{'-':>10}"
                "  configured model")
    payload = []
    for version in versions:
        candidate = version.manifest.get("metrics", {}).get("candidate", {})
        for name in [version.id, *(f"{version.id}/{c}" for c in version.checkpoints()
                                   if c != version.final_checkpoint)]:
            is_epoch = "/" in name
            marker = "*" if active == name else " "
            status = "epoch checkpoint" if is_epoch else version.status
            reason = version.manifest.get("reason", "")
            if status == "training" and not running:  # its process was killed: `codekin train` resumes it
                status, reason = "interrupted", "the training process ended; `codekin train` resumes it"
            if not is_epoch and reason and status in ("rejected", "failed", "interrupted"):
                status += f": {reason}"
            rows.append(f"{marker:2}{name:<18}{version.manifest.get('parent', '-'):<14}"
                        f"{_age(version.manifest.get('created_at')):<18}{version.manifest.get('triplets', 0):>9}"
                        f"{'-' if is_epoch else _score(candidate, 'triplet_accuracy'):>8}"
                        f"{'-' if is_epoch else _score(candidate, _mrr_key(candidate)):>8}"
                        f"{'-' if is_epoch else _score(candidate, 'recall@10'):>10}  {status}")
        payload.append({**version.to_dict(), "active": active.split("/")[0] == version.id})
    emit(args, {"active": active, "versions": payload}, "\n".join(rows))
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from codekin.models.registry import ModelRegistry

    root = repo_root(args.repo)
    registry = ModelRegistry(root)
    before = registry.active_ref(strict=args.version is None)  # rollback VERSION repairs a damaged pointer
    after = registry.rollback(args.version, force=args.force)
    emit(args, {"previous": before, "active": after, **_serving(root)},
         f"Rolled back from {before} to {after}.{_serving_line(root)}")
    return 0


def _serving(root: Path) -> dict[str, str]:
    """Which version's vectors answer queries now ({} without an index)."""
    from codekin.index.store import IndexStore
    from codekin.models.serving import answering_and_active

    store = IndexStore(root)
    if not store.exists():
        return {}
    return {"answering": answering_and_active(root, store.state())[0]}


def _serving_line(root: Path) -> str:
    from codekin.index.store import IndexStore
    from codekin.models.serving import model_note

    store = IndexStore(root)
    note = model_note(root, store.state()) if store.exists() else ""
    return f" Until then {note}." if note else ""


def cmd_models_promote(args: argparse.Namespace) -> int:
    from codekin.models.registry import ModelRegistry

    root = repo_root(args.repo)
    registry = ModelRegistry(root)
    before = registry.active_ref(strict=False)  # promoting repairs a damaged pointer
    after = registry.promote(args.version)
    emit(args, {"previous": before, "active": after, **_serving(root)},
         f"Promoted {after} (was {before}).{_serving_line(root)}")
    return 0


def cmd_models_prune(args: argparse.Namespace) -> int:
    from codekin.models.registry import ModelRegistry

    removed = ModelRegistry(repo_root(args.repo)).prune(args.keep)
    emit(args, {"removed": removed},
         f"Removed {len(removed)} version(s): {', '.join(removed)}" if removed else "Nothing to prune.")
    return 0


def register(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    common = parents["common"]
    models = subparsers.add_parser("models", help="list, promote, roll back or prune fine-tuned model versions")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    repo = argparse.ArgumentParser(add_help=False)
    repo.add_argument("--repo", help="repository root (default: found from the current directory)")
    p = sub.add_parser("list", parents=[common, repo], help="versions, parents, eval scores; * marks the active one")
    p.set_defaults(func=cmd_models_list)
    p = sub.add_parser("rollback", parents=[common, repo], help="return to the previous (or the given) model")
    p.add_argument("version", nargs="?", help="a version (v2), an epoch checkpoint (v2/epoch-1) or base")
    p.add_argument("--force", action="store_true", help="also to a rejected version or one newer than the active")
    p.set_defaults(func=cmd_models_rollback)
    p = sub.add_parser("promote", parents=[common, repo], help="make a version the active model")
    p.add_argument("version")
    p.set_defaults(func=cmd_models_promote)
    p = sub.add_parser("prune", parents=[common, repo], help="delete all but the newest N versions")
    p.add_argument("--keep", type=int, required=True, help="versions to keep besides the active one")
    p.set_defaults(func=cmd_models_prune)
