"""How many triplets of each sort a request needs (the plan) and which pairs fill it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from codekin.training.mining.positives import Pair
from codekin.training.mining.snippets import BEAM, CPP

Buckets = dict[tuple[str, bool], list[Pair]]  # (anchor family, cross-language) -> pairs


@dataclass
class Capacity:
    beam: int  # BEAM-anchored pairs within BEAM
    cpp: int
    cross_beam: int  # BEAM-anchored pairs whose positive is C/C++
    cross_cpp: int
    beam_pool: bool  # a BEAM snippet exists to be a negative
    cpp_pool: bool


@dataclass
class Plan:
    count: int
    beam: int  # BEAM-anchored triplets (cross ones included)
    cpp: int
    real_beam: int  # real cross-language pairs used, BEAM-anchored
    real_cpp: int
    fill_beam: int  # same-family pairs given a negative from the other family
    fill_cpp: int


def plan_counts(n: int, beam_ratio: float, cross_ratio: float, cap: Capacity) -> Plan | None:
    """How many triplets of each sort `n` needs, or None when the pairs cannot supply them."""
    beam = round(n * beam_ratio)
    cpp = n - beam
    cross = round(n * cross_ratio)
    cross_beam = min(beam, round(cross * beam_ratio))
    cross_cpp = min(cpp, cross - cross_beam)
    cross_beam = min(beam, cross - cross_cpp)
    real_beam, real_cpp = min(cap.cross_beam, cross_beam), min(cap.cross_cpp, cross_cpp)
    plan = Plan(n, beam, cpp, real_beam, real_cpp, cross_beam - real_beam, cross_cpp - real_cpp)
    if beam - real_beam > cap.beam or cpp - real_cpp > cap.cpp:
        return None
    if (plan.fill_beam or real_beam or cpp - real_cpp - plan.fill_cpp) and not cap.cpp_pool:
        return None  # these need a C/C++ negative
    if (plan.fill_cpp or real_cpp or beam - real_beam - plan.fill_beam) and not cap.beam_pool:
        return None
    return plan


def interleave(pairs: list[Pair], rng: random.Random) -> list[Pair]:
    """Shuffled within each positive kind, then taken round-robin across kinds (variety first)."""
    by_kind: dict[str, list[Pair]] = {}
    for pair in sorted(pairs, key=lambda p: (p.kind, p.anchor.key, p.positive.key)):
        by_kind.setdefault(pair.kind, []).append(pair)
    for items in by_kind.values():
        rng.shuffle(items)
    out: list[Pair] = []
    queues = [by_kind[k] for k in sorted(by_kind)]
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out



def choose_pairs(plan: Plan, buckets: Buckets, rng: random.Random) -> list[tuple[Pair, str]]:
    """The pairs of `plan`, each with the family its negative comes from: real cross-language
    pairs first, then same-family ones, `fill` of them given a negative of the other family."""
    chosen: list[tuple[Pair, str]] = []  # (pair, family of its negative)
    for family, other, same_n, real_n, fill_n in ((BEAM, CPP, plan.beam - plan.real_beam, plan.real_beam,
                                                   plan.fill_beam),
                                                  (CPP, BEAM, plan.cpp - plan.real_cpp, plan.real_cpp,
                                                   plan.fill_cpp)):
        chosen += [(p, p.positive.family) for p in interleave(buckets[family, True], rng)[:real_n]]
        same = interleave(buckets[family, False], rng)[:same_n]
        fills = set(rng.sample(range(len(same)), fill_n))
        chosen += [(p, other if i in fills else family) for i, p in enumerate(same)]
    return chosen
