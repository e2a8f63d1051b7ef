"""The evaluation step of a training run: both models through the search users get,
recorded, printed, and the gate's verdict.

The held-out files are those of the run's split (by file, seeded like the triplets). A run
given curated triplets with a held-out split (`--triplets`) is decided on those, as is one
whose repository yields no search queries; the summary says so. With neither, the
evaluation cannot run and the candidate is rejected (the active model stays).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekin.config import Config
from codekin.training.evaluation.evaluate import GateDecision
from codekin.training.judging.queries import build_eval_set
from codekin.training.judging.search import PRIMARY, SearchEvaluator, SearchGate, model_encoder

Out = Callable[[str], None]


@dataclass
class Judged:
    active: dict[str, float]
    candidate: dict[str, float]
    decision: GateDecision
    basis: str  # "search" | "triplets" | "none"


def held_out_files(root: Path, config: Config, seed: int, split: str = "eval") -> dict[str, str]:
    """path -> text of the files the run's by-file split holds out (as generate_training_data
    splits); split="train" gives the others."""
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    generator = PolyglotTripletGenerator(root, config, eval_fraction=config.training.eval_fraction, seed=seed)
    return {p: generator.files.texts[p] for p in sorted(generator.split_paths()[split])}


def judge(root: Path, config: Config, held_out: dict[str, str], seed: int, models: tuple[Any, Any],
          names: tuple[str, str], gate: SearchGate, data: Any = None, batch_size: int = 64,
          out: Out = print, prefer_triplets: bool = False) -> Judged:
    """Evaluate (active, candidate) `models` on the held-out files and decide.

    `prefer_triplets`: the run was given curated triplets with a held-out split (`--triplets`);
    those decide, and the search figures are recorded beside them."""
    others = held_out_files(root, config, seed, "train")
    eval_set = build_eval_set(root, held_out, config, seed, config.training.history_commits, distractors=others)
    counts = eval_set.counts()
    with SearchEvaluator(eval_set, config.search, scratch=None) as evaluator:
        active = evaluator(model_encoder(models[0], batch_size), "active")
        candidate = evaluator(model_encoder(models[1], batch_size), "candidate")
    searched = not math.isnan(active[PRIMARY])
    if searched:
        out(f"Held-out search evaluation ({len(held_out)} held-out files among {len(held_out) + len(others)}, "
            f"{len(eval_set.chunks)} chunks searched; queries: "
            + ", ".join(f"{k} {n}" for k, n in counts.items()) + f"; {config.search.mode} search)")
        out(search_table(names, active, candidate))
    has_triplets = data is not None and bool(data.eval)
    if has_triplets and (prefer_triplets or not searched):
        why = "the --triplets file has a held-out split" if prefer_triplets and searched else \
            f"no held-out search queries ({len(held_out)} held-out files, {len(eval_set.chunks)} chunks)"
        judged = _triplet_judgement(data, models, names, gate, batch_size, why, out)
        if searched:
            judged.active, judged.candidate = {**active, **judged.active}, {**candidate, **judged.candidate}
        return judged
    if searched:
        return Judged(active, candidate, gate(active, candidate), "search")
    why = f"no held-out search queries ({len(held_out)} held-out files, {len(eval_set.chunks)} chunks)"
    decision = GateDecision(False, f"the evaluation cannot run: {why}; add documented functions or more "
                                   "BEAM/C/C++ files, or pass --triplets with held-out (split: eval) triplets")
    return Judged(active, candidate, decision, "none")


def _triplet_judgement(data: Any, models: tuple[Any, Any], names: tuple[str, str], gate: SearchGate,
                       batch_size: int, why: str, out: Out) -> Judged:
    from codekin.training.evaluation.evaluate import (
        CodeSearchEvaluator,
        comparison_table,
        promotion_gate,
    )

    evaluator = CodeSearchEvaluator(data.eval, data.corpus, batch_size=batch_size)
    active, candidate = evaluator(models[0]), evaluator(models[1])
    size = evaluator.size
    out(f"  note: {why}: deciding on the held-out triplets (embedding only, not through search)")
    out(f"Held-out evaluation ({size['triplets']} triplets, {size['queries']} queries, {size['corpus']} snippets)")
    out(comparison_table(names[0], active, names[1], candidate))
    decision = promotion_gate(active, candidate, min_improvement=gate.min_improvement,
                              allow_dim_change=gate.allow_dim_change)
    return Judged(active, candidate, decision, "triplets")


def search_table(names: tuple[str, str], active: dict[str, float], candidate: dict[str, float]) -> str:
    """MRR@10 per query kind, side by side (n = queries)."""
    width = max(len(names[0]), len(names[1]), 9) + 2
    lines = [f"  {'MRR@10 through search':<26}{names[0]:>{width}}{names[1]:>{width}}"]
    for key in sorted(k for k in active if k.endswith("_mrr@10") and k != PRIMARY):
        kind = key[len("search_"):-len("_mrr@10")]
        label = f"{kind} (n={int(active.get(f'search_{kind}_queries', 0))})"
        lines.append(f"  {label:<26}{active[key]:>{width}.3f}{candidate.get(key, math.nan):>{width}.3f}")
    lines.append(f"  {'mean over kinds':<26}{active[PRIMARY]:>{width}.3f}{candidate[PRIMARY]:>{width}.3f}")
    return "\n".join(lines)
