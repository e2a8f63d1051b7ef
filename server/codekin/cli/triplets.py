"""`codekin triplets generate|analyze`: thin wrappers over PolyglotTripletGenerator and
analyze_triplets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codekin.cli.common import config_for, emit, repo_root
from codekin.config import load_config
from codekin.state import STATE_DIR, TRIPLETS_FILE

DEFAULT_OUT = f"{STATE_DIR}/{TRIPLETS_FILE}"


def _warn(message: str) -> None:
    print(f"codekin: warning: {message}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from codekin.training.mining.analysis import analyze_triplets
    from codekin.training.mining.snippets import describe_selection
    from codekin.training.mining.triplets import PolyglotTripletGenerator, write_jsonl

    root = repo_root(args.repo, must_exist=True)
    config = config_for(root, args)
    beam_ratio = config.training.beam_ratio if args.beam_ratio is None else args.beam_ratio
    cross_ratio = config.training.cross_language_ratio if args.cross_language_ratio is None \
        else args.cross_language_ratio
    embedder = None
    if not args.lexical:
        from codekin.embedding import load_embedder

        embedder = load_embedder(config.model)
    generator = PolyglotTripletGenerator(root, config, embedder=embedder)
    splits = ("train", "eval") if args.split == "both" else (args.split,)
    triplets = []
    reports = []
    for split in splits:
        count = args.count if split == "train" or args.split != "both" else \
            max(1, round(args.count * generator.eval_fraction))
        triplets += generator.generate(count, beam_ratio, cross_ratio, seed=args.seed, split=split)
        reports.append(generator.report)
    out = Path(args.out) if args.out else root / DEFAULT_OUT
    write_jsonl(triplets, out)
    report = reports[0]
    if not args.json:  # the ratios generated at: BEAM-only when the repository has too few C/C++ files
        print(f"Generating {args.count} polyglot triplets\n"
              f"  BEAM ratio: {report.beam_ratio:.1%}\n"
              f"  C++ ratio: {1 - report.beam_ratio:.1%}\n"
              f"  Cross-language: {report.cross_language_ratio:.1%}\n"
              f"  BEAM snippets found: {report.beam_snippets}\n"
              f"  C++ snippets found: {report.cpp_snippets}\n"
              f"  {describe_selection(generator.files)}")
    for r in reports:
        for warning in r.warnings + r.negatives.get("notes", []):
            _warn(warning)
    if args.json:
        stats = analyze_triplets(triplets, generator.split_paths()["eval"] if "eval" not in splits else None)
        print(json.dumps({"out": str(out), "requested": args.count, "generated": len(triplets),
                          "reports": [r.to_dict() for r in reports], "stats": stats}))
    else:
        print(f"Generated {len(triplets)} triplets")
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _describe(path: str, stats: dict) -> str:
    def mix(counts: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"

    splits = ", ".join(f"{k} {v}" for k, v in stats["splits"].items())
    leak = ", ".join(stats["leakage"][:5]) + (" ..." if len(stats["leakage"]) > 5 else "")
    lines = [
        f"Triplets in {path}: {stats['total']}" + (f" ({splits})" if splits else ""),
        f"  BEAM ratio: {stats['beam_ratio']:.1%}",
        f"  C++ ratio: {stats['cpp_ratio']:.1%}",
        f"  Cross-language: {stats['cross_language_ratio']:.1%} "
        f"(real cross-language pairs: {stats['cross_language_pair_ratio']:.1%})",
        f"  Positives: {mix(stats['positive_kinds'])}",
        f"  Negatives: {mix(stats['negative_kinds'])} (hard mined by: {mix(stats['hard_negative_mining'])})",
        f"  Duplicate triplets: {stats['duplicates']}",
        f"  Duplicate anchor/positive pairs: {stats['duplicate_pairs']}",
        f"  Near-duplicate anchor/positive pairs: {stats['near_duplicates']}",
        f"  Train/eval leakage: {len(stats['leakage'])} files" + (f" ({leak})" if leak else ""),
    ]
    lines += [f"  note: {note}" for note in stats["notes"]]
    return "\n".join(lines)


def cmd_analyze(args: argparse.Namespace) -> int:
    from codekin.training.mining.analysis import analyze_triplets
    from codekin.training.mining.triplets import PolyglotTripletGenerator, read_jsonl

    triplets = read_jsonl(args.file)
    eval_paths = None
    if args.repo:
        root = repo_root(args.repo, must_exist=True)
        eval_paths = PolyglotTripletGenerator(root, load_config(root)).split_paths()["eval"]
    stats = analyze_triplets(triplets, eval_paths)
    emit(args, stats, _describe(args.file, stats))
    return 0


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("triplets", help="mine training triplets from the repository's code")
    sub = p.add_subparsers(dest="triplets_command", required=True, metavar="ACTION")

    g = sub.add_parser("generate", parents=[parents["common"], parents["model"]],
                       help="generate (anchor, positive, negative) triplets")
    g.add_argument("--count", type=int, default=1000, help="number of triplets (default 1000)")
    g.add_argument("--beam-ratio", type=float, default=None, help="share of Elixir/Erlang anchors (default 0.7)")
    g.add_argument("--cross-language-ratio", type=float, default=None,
                   help="share of triplets pairing BEAM with C/C++ (default 0.3)")
    g.add_argument("--seed", type=int, default=None, help="sampling seed (default: training.seed)")
    g.add_argument("--split", choices=("train", "eval", "both"), default="train",
                   help="which held-out side to draw from; both = train plus a proportional eval set")
    g.add_argument("--out", help=f"JSON lines file to write (default {DEFAULT_OUT})")
    g.add_argument("--lexical", action="store_true",
                   help="mine hard negatives lexically, without loading the model (faster)")
    g.add_argument("--repo", help="repository root (default: found from the current directory)")
    g.set_defaults(func=cmd_generate)

    a = sub.add_parser("analyze", parents=[parents["common"]], help="statistics of a triplets file")
    a.add_argument("file")
    a.add_argument("--repo", help="also check leakage against this repository's held-out files")
    a.set_defaults(func=cmd_analyze)
