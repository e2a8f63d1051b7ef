"""A training run's data: read from a file, written beside its model version, or generated
from the repository's own code (split by file into train and held-out): the seed's triplets,
and for the signals recipe the training split's positive pairs (mining/signals.py), one JSON
line each ({"signal": kind, "query", "code", "group"}) after the triplets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codekin.config import Config
from codekin.errors import TrainingError
from codekin.training.pairs.batches import TextPair
from codekin.training.trainer.results import triplet_texts

Out = Callable[[str], None]


@dataclass
class TrainingData:
    train: list[Any]
    eval: list[Any]
    corpus: list[str] = field(default_factory=list)  # extra held-out snippets for retrieval
    held_out: dict[str, str] = field(default_factory=dict)  # held-out file -> text (not written out)
    pairs: list[TextPair] = field(default_factory=list)  # the signals recipe's pairs (training split)


def _as_dict(item: Any) -> dict[str, Any]:
    if hasattr(item, "to_dict"):
        return item.to_dict()
    if isinstance(item, dict):
        return item
    anchor, positive, negative = triplet_texts(item)
    return {"anchor": anchor, "positive": positive, "negative": negative}


def read_triplets_file(path: Path) -> TrainingData:
    """Triplet dicts (split "train" or "eval"); {"corpus": text} lines add held-out snippets,
    {"signal": kind, "query", "code"} lines training pairs."""
    data = TrainingData([], [])
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if "corpus" in item:
                data.corpus.append(str(item["corpus"]))
                continue
            if "signal" in item:
                data.pairs.append(TextPair.from_dict(item))
                continue
            triplet_texts(item)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"{path}:{number}: not a triplet ({exc.__class__.__name__}: {exc})",
                                "each line needs anchor, positive and negative (and split: train|eval), "
                                "or signal, query and code") from exc
        (data.eval if item.get("split") == "eval" else data.train).append(item)
    return data


def training_data_text(data: TrainingData) -> str:
    lines = [json.dumps({**_as_dict(t), "split": "train"}) for t in data.train]
    lines += [json.dumps({**_as_dict(t), "split": "eval"}) for t in data.eval]
    lines += [json.dumps({"corpus": text}) for text in data.corpus]
    lines += [json.dumps(pair.to_dict()) for pair in data.pairs]
    return "\n".join(lines) + "\n"


def generate_training_data(root: Path, config: Config, count: int, seed: int, embedder: Any,
                           out: Out = print, signals: Sequence[str] = ()) -> TrainingData:
    """Triplets from the repository's own code (PolyglotTripletGenerator), split by file, and
    the training split's pairs of the `signals` kinds."""
    from codekin.training.mining.snippets import describe_selection
    from codekin.training.mining.triplets import PolyglotTripletGenerator

    cfg = config.training
    generator = PolyglotTripletGenerator(root, config, embedder=embedder, eval_fraction=cfg.eval_fraction, seed=seed)
    out(f"Training files under {root}: {describe_selection(generator.files)}")
    train = generator.generate(count, cfg.beam_ratio, cfg.cross_language_ratio, seed, split="train")
    warnings = list(generator.report.warnings)
    eval_count = max(20, round(count * cfg.eval_fraction / max(1e-9, 1 - cfg.eval_fraction)))
    # a small held-out split rarely has C/C++ pairs for the ratios: the generator falls back to BEAM-only
    held_out = generator.generate(eval_count, cfg.beam_ratio, cfg.cross_language_ratio, seed, split="eval")
    warnings += generator.report.warnings
    corpus = [s.model_text for s in generator.snippets("eval")]
    for warning in warnings:
        out(f"  warning: {warning}")
    out(f"Generated {len(train)} training and {len(held_out)} held-out triplets "
        f"({len(generator.split_paths()['eval'])} held-out files, {len(corpus)} held-out snippets)")
    held_out_files = {p: generator.files.texts[p] for p in sorted(generator.split_paths()["eval"])}
    pairs = signal_pairs(root, config, generator, signals, seed)
    if pairs:
        kinds = Counter(p.kind for p in pairs)
        out(f"Training pairs: {len(pairs)} (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")")
    return TrainingData(list(train), list(held_out), corpus, held_out_files, pairs)


def signal_pairs(root: Path, config: Config, generator: Any, signals: Sequence[str], seed: int) -> list[TextPair]:
    """The training split's pairs of the wanted kinds (mining/signals.py, mining/tested.py)."""
    from codekin.training.mining.signals import TEXT_PAIR_KINDS, text_pairs
    from codekin.training.mining.tested import tested_pairs

    wanted = set(signals)
    train = generator.snippets("train")
    pairs = [p for p in text_pairs(train, seed=seed) if p.kind in wanted] if wanted & set(TEXT_PAIR_KINDS) else []
    return pairs + (tested_pairs(root, config, train) if "test" in wanted else [])
