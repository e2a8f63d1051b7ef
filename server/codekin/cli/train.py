"""`codekin train` (thin: parse, call, print)."""

from __future__ import annotations

import argparse
from typing import Any

from codekin.cli.common import config_for, emit, repo_root
from codekin.config import RECIPES
from codekin.training.trainer.args import LOSSES, PRECISIONS, TrainingArguments


def cmd_train(args: argparse.Namespace) -> int:
    from codekin.jobs.retrain import serve_active_model
    from codekin.progress import BarProgress
    from codekin.training.child import run_in_child
    from codekin.training.pipeline import PipelineOptions

    if args.adapter:
        return _train_adapter(args)
    root = repo_root(args.repo)
    training = TrainingArguments.from_config(config_for(root, args).training).replace(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, margin=args.margin, loss=args.loss,
        recipe=args.recipe, device=args.device, seed=args.seed, precision=args.precision, max_steps=args.max_steps)
    launch = None
    if getattr(args, "gpus", None) and args.gpus > 1:  # torchrun, one process per GPU (DDP/FSDP)
        from codekin.distributed.torchrun import check_launch, effective_arguments, launch_command

        check_launch(args.gpus, args.device or "auto", args.strategy)
        training, launch = effective_arguments(training, args.gpus), launch_command(args.gpus, args.strategy)
    options = PipelineOptions(args=training, count=args.count, triplets_file=args.triplets or "",
                              min_improvement=args.min_improvement, allow_dim_change=args.allow_dim_change,
                              resume=not args.no_resume,
                              config_overrides={"model": {"device": args.device}} if args.device else {})
    result = run_in_child(root, options, human_to_stderr=args.json, launch=launch)
    search = serve_active_model(root, config_for(root, args), BarProgress, reembed_now=not args.no_reembed)
    emit(args, {**result.to_dict(), "search": search}, f"Active model: {result.active}\n{search['message']}")
    return 0


def _train_adapter(args: argparse.Namespace) -> int:
    import sys

    from codekin.training.adapter import adapter_training

    root = repo_root(args.repo)
    result = adapter_training(root, config_for(root, args), args.min_improvement, args.seed or 13,
                              out=lambda line: print(line, file=sys.stderr if args.json else sys.stdout, flush=True))
    where = "text queries now use it (no re-embedding)" if result.promoted else "queries keep the model alone"
    emit(args, result.to_dict(), f"Query adapter {result.version}: {result.status}; {where}")
    return 0


def register(subparsers: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, model = parents["common"], parents["model"]
    p = subparsers.add_parser("train", parents=[common, model],
                              help="fine-tune the model on this repository, promote it if it is better")
    p.add_argument("--epochs", type=int, help="passes over the training data (default: training.epochs, 3)")
    p.add_argument("--batch-size", type=int, help="rows per step (default: training.batch_size, 32)")
    p.add_argument("--max-steps", type=int, help="steps of the whole run, all epochs (default: training.max_steps, "
                   "0 = auto: 96 on a CPU, every batch on a GPU)")
    p.add_argument("--lr", type=float, help="learning rate (default: training.learning_rate, 2e-5)")
    p.add_argument("--recipe", choices=RECIPES, help="signals (default: in-batch negatives over the repository's "
                   "doc/comment/renamed pairs plus the seed triplets) or triplets (the seed's, with --loss)")
    p.add_argument("--margin", type=float, help="triplet-loss margin on cosine distance (default 0.3)")
    p.add_argument("--loss", choices=LOSSES, help="the triplets recipe's loss: triplet (default) or mnrl "
                   "(in-batch + hard negatives)")
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
    p.add_argument("--no-reembed", action="store_true",
                   help="after a promotion, leave the index on its model (default: re-embed it so search uses the new one)")
    p.add_argument("--gpus", type=int, help="train on N GPUs under torchrun (--batch-size is then per GPU; "
                   "with --device cpu: N CPU processes on gloo)")
    p.add_argument("--strategy", choices=("auto", "ddp", "fsdp"), default="auto",
                   help="with --gpus: DDP, or FSDP when the model does not fit one card (default auto)")
    p.add_argument("--adapter", action="store_true",
                   help="fit only a query-side adapter on the served model (minutes on a CPU; no re-embedding)")
    p.add_argument("--repo", help="repository root (default: found from the current directory)")
    p.set_defaults(func=cmd_train)
