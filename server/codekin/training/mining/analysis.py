"""Statistics over a set of triplets: ratios, positive/negative mix, duplicates, leakage."""

from __future__ import annotations

import re
from collections import Counter

from codekin.training.mining.snippets import BEAM, BEAM_LANGUAGES, Snippet
from codekin.training.mining.triplets import Triplet

NEAR_DUPLICATE = 0.9  # token-set Jaccard of anchor and positive at or above this: a trivial pair
_TOKEN = re.compile(r"\w+")


def _family(s: Snippet) -> str:
    return s.family or (BEAM if s.language in BEAM_LANGUAGES else "cpp")


def _jaccard(a: str, b: str) -> float:
    x, y = set(_TOKEN.findall(a.lower())), set(_TOKEN.findall(b.lower()))
    return len(x & y) / len(x | y) if x | y else 1.0


def _ratio(part: int, total: int) -> float:
    return round(part / total, 4) if total else 0.0


def analyze_triplets(triplets: list[Triplet], eval_paths: set[str] | None = None) -> dict:
    """Counts and ratios of a triplet set.

    `leakage` lists the paths found both in train triplets and in eval triplets (or in
    `eval_paths`, the held-out files of the repository, when given).
    """
    total = len(triplets)
    beam = sum(_family(t.anchor_source) == BEAM for t in triplets)
    pairs_cross = sum(_family(t.anchor_source) != _family(t.positive_source) for t in triplets)
    seen_triplets: Counter[tuple[str, str, str]] = Counter((t.anchor, t.positive, t.negative) for t in triplets)
    seen_pairs: Counter[tuple[str, str]] = Counter((t.anchor, t.positive) for t in triplets)
    near = sum(_jaccard(t.anchor, t.positive) >= NEAR_DUPLICATE for t in triplets)
    by_split: dict[str, set[str]] = {}
    for t in triplets:
        paths = by_split.setdefault(t.split, set())
        paths.update(s.path for s in (t.anchor_source, t.positive_source, t.negative_source))
    held = set(eval_paths or ()) | by_split.get("eval", set())
    leaked = sorted(by_split.get("train", set()) & held)
    mining = Counter(t.mining or "unknown" for t in triplets if t.negative_kind == "hard")
    hard = sum(mining.values())
    notes: list[str] = []
    stats = {
        "total": total,
        "splits": dict(sorted(Counter(t.split for t in triplets).items())),
        "beam_ratio": _ratio(beam, total),
        "cpp_ratio": _ratio(total - beam, total),
        "cross_language_ratio": _ratio(sum(t.cross_language for t in triplets), total),
        "cross_language_pair_ratio": _ratio(pairs_cross, total),
        "positive_kinds": dict(sorted(Counter(t.positive_kind for t in triplets).items())),
        "negative_kinds": dict(sorted(Counter(t.negative_kind for t in triplets).items())),
        "hard_negative_mining": dict(sorted(mining.items())),
        "anchor_languages": dict(sorted(Counter(t.anchor_source.language for t in triplets).items())),
        "duplicates": sum(n - 1 for n in seen_triplets.values()),
        "duplicate_pairs": sum(n - 1 for n in seen_pairs.values()),
        "near_duplicates": near,
        "anchor_equals_positive": sum(t.anchor == t.positive for t in triplets),
        "leakage": leaked,
        "notes": notes,
    }
    if hard and mining.get("lexical", 0) == hard:
        notes.append("hard negatives were mined lexically (no embedding model was given)")
    elif mining.get("lexical"):
        notes.append(f"{mining['lexical']} of {hard} hard negatives were mined lexically "
                     "(beyond the embedding budget)")
    if total and pairs_cross < sum(t.cross_language for t in triplets):
        notes.append(f"real cross-language pairs: {_ratio(pairs_cross, total):.1%}; the rest of "
                     "the cross-language triplets pair languages through their negative")
    return stats
