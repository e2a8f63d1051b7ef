"""`codekin train` and `codekin models list|rollback|promote|prune` (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from codekin.training.args import LOSSES, PRECISIONS, TrainingArguments


def _root(args: argparse.Namespace) -> Path:
    from codekin.cli import index_root

    return index_root(Path(args.repo) if args.repo else Path.cwd())


def _print(args: argparse.Namespace, payload: Any, human: str) -> None:
    print(json.dumps(payload) if args.json else human)


# -- train ---------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from codekin.training.pipeline import PipelineOptions, run_in_child

    training = TrainingArguments().replace(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                                           margin=args.margin, loss=args.loss, device=args.device, seed=args.seed,
                                           precision=args.precision)
    launch = None
    if getattr(args, "gpus", None) and args.gpus > 1:  # torchrun, one process per GPU (DDP/FSDP)
        from codekin.distributed.torchrun import check_launch, effective_arguments, launch_command

        check_launch(args.gpus, args.device or "auto", args.strategy)
        training, launch = effective_arguments(training, args.gpus), launch_command(args.gpus, args.strategy)
    options = PipelineOptions(args=training, count=args.count, triplets_file=args.triplets or "",
                              min_improvement=args.min_improvement, allow_dim_change=args.allow_dim_change,
                              resume=not args.no_resume,
                              config_overrides={"model": {"device": args.device}} if args.device else {})
    result = run_in_child(_root(args), options, human_to_stderr=args.json, launch=launch)
    _print(args, result.to_dict(), f"Active model: {result.active}")
    return 0


# -- models ------------------------------------------------------------------------------------
def _age(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _score(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def cmd_models_list(args: argparse.Namespace) -> int:
    from codekin.models.registry import BASE, ModelRegistry

    registry = ModelRegistry(_root(args))
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
            if not is_epoch and reason and version.status in ("rejected", "failed"):
                status += f": {reason}"
            rows.append(f"{marker:2}{name:<18}{version.manifest.get('parent', '-'):<14}"
                        f"{_age(version.manifest.get('created_at')):<18}{version.manifest.get('triplets', 0):>9}"
                        f"{'-' if is_epoch else _score(candidate, 'triplet_accuracy'):>8}"
                        f"{'-' if is_epoch else _score(candidate, 'mrr@10'):>8}"
                        f"{'-' if is_epoch else _score(candidate, 'recall@10'):>10}  {status}")
        payload.append({**version.to_dict(), "active": active.split("/")[0] == version.id})
    _print(args, {"active": active, "versions": payload}, "\n".join(rows))
    return 0


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from codekin.models.registry import ModelRegistry

    registry = ModelRegistry(_root(args))
    before = registry.active_ref()
    after = registry.rollback(args.version)
    _print(args, {"previous": before, "active": after},
           f"Rolled back from {before} to {after}. The index re-embeds with it on its next update.")
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from codekin.models.registry import ModelRegistry

    registry = ModelRegistry(_root(args))
    before = registry.active_ref()
    after = registry.promote(args.version)
    _print(args, {"previous": before, "active": after}, f"Promoted {after} (was {before}).")
    return 0


def cmd_models_prune(args: argparse.Namespace) -> int:
    from codekin.models.registry import ModelRegistry

    removed = ModelRegistry(_root(args)).prune(args.keep)
    _print(args, {"removed": removed},
           f"Removed {len(removed)} version(s): {', '.join(removed)}" if removed else "Nothing to prune.")
    return 0


def register(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, model = parents["common"], parents["model"]
    p = subparsers.add_parser("train", parents=[common, model],
                              help="fine-tune the model on this repository, promote it if it is better")
    p.add_argument("--epochs", type=int, help="passes over the triplets (default 3)")
    p.add_argument("--batch-size", type=int, help="triplets per step (default 16)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-5)")
    p.add_argument("--margin", type=float, help="triplet-loss margin on cosine distance (default 0.3)")
    p.add_argument("--loss", choices=LOSSES, help="triplet (default) or mnrl (in-batch + hard negatives)")
    p.add_argument("--count", type=int, default=1000, help="training triplets to generate (default 1000)")
    p.add_argument("--seed", type=int, help="seed for data order and generation (default 13)")
    p.add_argument("--precision", choices=PRECISIONS, help="auto (default): fp8 for big models on fp8 GPUs, "
                   "else bf16 on a GPU and on CPUs with native bf16; fp32 is the safe slow choice")
    p.add_argument("--triplets", help="train on this JSONL file instead of generating triplets")
    p.add_argument("--min-improvement", type=float, default=0.01,
                   help="MRR@10 gain over the active model needed to promote (default 0.01)")
    p.add_argument("--allow-dim-change", action="store_true",
                   help="promote a model with another output dimension (forces a full re-embed)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming an interrupted run")
    p.add_argument("--gpus", type=int, help="train on N GPUs under torchrun (--batch-size is then per GPU; "
                   "with --device cpu: N CPU processes on gloo)")
    p.add_argument("--strategy", choices=("auto", "ddp", "fsdp"), default="auto",
                   help="with --gpus: DDP, or FSDP when the model does not fit one card (default auto)")
    p.add_argument("--repo", help="repository root (default: found from the current directory)")
    p.set_defaults(func=cmd_train)

    models = subparsers.add_parser("models", help="list, promote, roll back or prune fine-tuned model versions")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    repo = argparse.ArgumentParser(add_help=False)
    repo.add_argument("--repo", help="repository root (default: found from the current directory)")
    p = sub.add_parser("list", parents=[common, repo], help="versions, parents, eval scores; * marks the active one")
    p.set_defaults(func=cmd_models_list)
    p = sub.add_parser("rollback", parents=[common, repo], help="return to the previous (or the given) model")
    p.add_argument("version", nargs="?", help="a version (v2), an epoch checkpoint (v2/epoch-1) or base")
    p.set_defaults(func=cmd_models_rollback)
    p = sub.add_parser("promote", parents=[common, repo], help="make a version the active model")
    p.add_argument("version")
    p.set_defaults(func=cmd_models_promote)
    p = sub.add_parser("prune", parents=[common, repo], help="delete all but the newest N versions")
    p.add_argument("--keep", type=int, required=True, help="versions to keep besides the active one")
    p.set_defaults(func=cmd_models_prune)
