"""PolyglotTripletGenerator: (anchor, positive, negative) triplets mined from the repository.

Snippets are the index's chunks of the BEAM (Elixir/Erlang) and C/C++ files chosen by the
`[training]` globs. Positives share the anchor's pattern (behaviour/callback, doc -> code,
spec/declaration -> body, the same function across a commit, NIF stub <-> C function,
C++ class <-> wrapper module); negatives are hard (close under the active model) or
random. Files are split into train and eval once, by file, so eval code never reaches
training. Everything is seeded: the same seed gives the same triplets.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codekin.atomic import write_atomic
from codekin.config import Config, TrainingConfig, load_config
from codekin.embedding import Embedder
from codekin.errors import CodekinError, ConfigError, NotEnoughSnippetsError, TripletFileError
from codekin.state import INDEX_STATE, state_path
from codekin.training.evaluation.splits import split_by_file
from codekin.training.mining.history import history_pairs
from codekin.training.mining.negatives import Mined, MiningStats, NegativeMiner, Request
from codekin.training.mining.nif import nif_pairs
from codekin.training.mining.plan import Buckets, Capacity, Plan, choose_pairs, plan_counts
from codekin.training.mining.positives import (
    Pair,
    doc_and_signature_pairs,
    header_pairs,
    pattern_keys,
    pattern_pairs,
)
from codekin.training.mining.snippets import BEAM, CPP, Snippet, SourceFiles, collect

log = logging.getLogger(__name__)

MIN_BEAM_FILES = 3
MIN_BEAM_SNIPPETS = 10
MIN_CPP_FILES = 3
MIN_TRIPLETS = 10  # fewer than this (or than asked, if less) is an error, not a cap
SPLITS = ("train", "eval")

__all__ = ["NotEnoughSnippetsError", "PolyglotTripletGenerator", "Snippet", "Triplet", "TripletFileError",
           "read_jsonl", "split_by_file", "write_jsonl"]



@dataclass
class Triplet:
    anchor: str  # the texts the model sees (code chunks as header + code, like the index)
    positive: str
    negative: str
    anchor_source: Snippet  # path, lines, language, kind (a doc anchor has kind "doc")
    positive_source: Snippet
    negative_source: Snippet
    positive_kind: str  # pattern | doc | signature | history | nif | wrapper
    negative_kind: str  # hard | random
    cross_language: bool  # BEAM and C/C++ meet in this triplet (pair or negative)
    split: str  # train | eval
    mining: str = ""  # how the negative was found: model | lexical | random

    def to_dict(self) -> dict:
        def source(s: Snippet) -> dict:
            return {k: v for k, v in s.to_dict().items() if k != "text"}

        return {"anchor": self.anchor, "positive": self.positive, "negative": self.negative,
                "anchor_source": source(self.anchor_source),
                "positive_source": source(self.positive_source),
                "negative_source": source(self.negative_source),
                "positive_kind": self.positive_kind, "negative_kind": self.negative_kind,
                "cross_language": self.cross_language, "split": self.split, "mining": self.mining}

    @classmethod
    def from_dict(cls, d: dict) -> Triplet:
        def source(value: Snippet | dict) -> Snippet:
            return value if isinstance(value, Snippet) else Snippet.from_dict({"text": "", **value})

        return cls(d["anchor"], d["positive"], d["negative"], source(d["anchor_source"]),
                   source(d["positive_source"]), source(d["negative_source"]), d["positive_kind"],
                   d["negative_kind"], bool(d["cross_language"]), d["split"], d.get("mining", ""))


def write_jsonl(triplets: list[Triplet], path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in triplets))
    return path


def read_jsonl(path: Path | str) -> list[Triplet]:
    path = Path(path)
    if not path.is_file():
        raise TripletFileError(f"no triplets file {path}", "create one with `codekin triplets generate --out FILE`")
    triplets = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            triplets.append(Triplet.from_dict(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TripletFileError(f"{path}:{number}: not a triplet ({exc})",
                                   "the file must hold one JSON triplet per line, as written by "
                                   "`codekin triplets generate`") from exc
    return triplets


@dataclass
class GenerationReport:
    requested: int = 0
    generated: int = 0
    split: str = "train"
    beam_files: int = 0  # in the whole repository
    beam_snippets: int = 0
    cpp_files: int = 0
    cpp_snippets: int = 0
    split_files: int = 0
    split_snippets: int = 0
    beam_ratio: float = 0.0  # asked for (after the BEAM-only fallback)
    cross_language_ratio: float = 0.0
    pairs_available: dict[str, int] = field(default_factory=dict)  # positive kind -> pairs
    cross_language_pairs_available: int = 0
    cross_language_pairs_used: int = 0
    cross_language_filled: int = 0  # cross-language by a negative of the other family
    negatives: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class PolyglotTripletGenerator:
    """`PolyglotTripletGenerator(root, config).generate(count=1000, beam_ratio=0.7, ...)`."""

    def __init__(self, root: Path, config: Config | None = None, embedder: Embedder | None = None,
                 eval_fraction: float | None = None, seed: int | None = None) -> None:
        self.root = Path(root)
        self.config = config or load_config(self.root)
        self.training: TrainingConfig = self.config.training
        self.embedder = embedder
        self.eval_fraction = self.training.eval_fraction if eval_fraction is None else eval_fraction
        self.split_seed = self.training.seed if seed is None else seed
        self.report = GenerationReport()
        self._files: SourceFiles | None = None
        self._splits: dict[str, set[str]] | None = None
        self._pairs: dict[str, tuple[list[Pair], dict[tuple, frozenset[tuple]]]] = {}

    # -- data ------------------------------------------------------------------------------
    @property
    def files(self) -> SourceFiles:
        if self._files is None:
            self._files = collect(self.root, self.config)
        return self._files

    def split_paths(self) -> dict[str, set[str]]:
        """{"train": paths, "eval": paths}, split per family so both get BEAM and C/C++ files."""
        if self._splits is None:
            self._splits = {"train": set(), "eval": set()}
            for family in (BEAM, CPP):
                train, held = split_by_file(self.files.paths(family), self.split_seed, self.eval_fraction)
                self._splits["train"] |= train
                self._splits["eval"] |= held
        return self._splits

    def snippets(self, split: str = "train") -> list[Snippet]:
        """The chunks of the files in that split ("train", "eval" or "all")."""
        paths = set(self.files.family) if split == "all" else self.split_paths()[_check_split(split)]
        return [s for p in sorted(paths) for s in self.files.snippets[p]]

    def pairs(self, split: str = "train") -> tuple[list[Pair], dict[tuple, frozenset[tuple]]]:
        """Every positive pair of a split and the pattern keys of its snippets (cached)."""
        if split not in self._pairs:
            snippets = self.snippets(split)
            keys = pattern_keys(self.files, snippets)
            cross, extra = nif_pairs(self.files, snippets)
            paths = self.split_paths()[split]
            # The most specific kind first: a pair found twice keeps that kind.
            pairs = (cross + history_pairs(self.root, self.files.family, paths, self.config.index,
                                           self.training.history_commits)
                     + doc_and_signature_pairs(snippets) + header_pairs(self.files, snippets)
                     + pattern_pairs(snippets, keys, self.split_seed))
            for key, values in extra.items():  # after pattern_pairs: these keys only exclude negatives
                keys[key] = keys.get(key, frozenset()) | frozenset(values)
            unique: dict[tuple, Pair] = {}
            for pair in pairs:
                if pair.anchor.path in paths and pair.positive.path in paths:
                    unique.setdefault((pair.anchor.key, pair.positive.key), pair)
            self._pairs[split] = (list(unique.values()), keys)
        return self._pairs[split]

    def _index_vectors(self, pool: list[Snippet]) -> dict[str, np.ndarray]:
        """Vectors of these snippets already in the repository's index for the same model."""
        if self.embedder is None or not state_path(self.root, INDEX_STATE).is_file():
            return {}
        from codekin.index.store import IndexStore

        try:
            hashes, matrix = IndexStore(self.root).load_vectors(self.embedder.key)
        except CodekinError as exc:
            log.warning("index vectors not used: %s", exc.message)
            return {}
        wanted = {s.content_hash for s in pool}
        return {h: matrix[i] for i, h in enumerate(hashes) if h in wanted}

    def _warn(self, message: str) -> None:
        log.info("%s", message)
        self.report.warnings.append(message)

    # -- generation ------------------------------------------------------------------------
    def generate(self, count: int = 1000, beam_ratio: float | None = None,
                 cross_language_ratio: float | None = None, seed: int | None = None,
                 split: str = "train") -> list[Triplet]:
        started = time.perf_counter()
        beam_ratio = self.training.beam_ratio if beam_ratio is None else beam_ratio
        cross_ratio = self.training.cross_language_ratio if cross_language_ratio is None else cross_language_ratio
        _check_arguments(count, beam_ratio, cross_ratio, self.training.hard_negative_ratio)
        split = _check_split(split)
        seed = self.split_seed if seed is None else seed
        rng = random.Random(seed)
        files = self.files
        report = self.report = GenerationReport(requested=count, split=split)
        beam_ratio, cross_ratio = self._check_files(files, report, beam_ratio, cross_ratio)
        report.beam_ratio, report.cross_language_ratio = beam_ratio, cross_ratio
        pairs, keys = self.pairs(split)
        snippets = self.snippets(split)
        plan, buckets = self._plan(report, pairs, snippets, count, beam_ratio, cross_ratio)
        chosen = choose_pairs(plan, buckets, rng)
        hard = set(rng.sample(range(len(chosen)), round(len(chosen) * self.training.hard_negative_ratio)))
        requests = [Request(p.anchor, p.positive, fam, i in hard) for i, (p, fam) in enumerate(chosen)]
        miner = NegativeMiner(snippets, keys, self.embedder,
                              self._index_vectors(snippets) if self.embedder else {},
                              self.training.embed_budget, seed)
        triplets = self._triplets(chosen, miner.mine(requests), split)
        rng.shuffle(triplets)
        report.generated = len(triplets)
        report.cross_language_pairs_used = sum(t.anchor_source.family != t.positive_source.family
                                               for t in triplets)
        report.cross_language_filled = sum(t.cross_language for t in triplets) - report.cross_language_pairs_used
        report.negatives = _mining_summary(miner.stats)
        report.seconds = round(time.perf_counter() - started, 2)
        return triplets

    def _check_files(self, files: SourceFiles, report: GenerationReport, beam_ratio: float,
                     cross_ratio: float) -> tuple[float, float]:
        """Count the repository's snippets; too few BEAM ones is an error, too few C/C++ files
        makes the triplets BEAM-only. -> (beam ratio, cross-language ratio) to generate at."""
        report.beam_files, report.beam_snippets = files.count(BEAM)
        report.cpp_files, report.cpp_snippets = files.count(CPP)
        if report.beam_files < MIN_BEAM_FILES or report.beam_snippets < MIN_BEAM_SNIPPETS:
            raise self._not_enough()
        if report.cpp_files < MIN_CPP_FILES and (beam_ratio < 1.0 or cross_ratio > 0.0):
            self._warn(f"only {report.cpp_files} C/C++ files (fewer than {MIN_CPP_FILES}): generating "
                       "BEAM-only triplets, C++ ratio 0")
            return 1.0, 0.0
        return beam_ratio, cross_ratio

    def _plan(self, report: GenerationReport, pairs: list[Pair], snippets: list[Snippet], count: int,
              beam_ratio: float, cross_ratio: float) -> tuple[Plan, Buckets]:
        """The largest plan up to `count` that the split's pairs supply, and those pairs by bucket."""
        split = report.split
        report.split_files = len(self.split_paths()[split])
        report.split_snippets = len(snippets)
        report.pairs_available = dict(sorted(Counter(p.kind for p in pairs).items()))
        if beam_ratio == 1.0 and cross_ratio == 0.0:
            pairs = [p for p in pairs if p.anchor.family == BEAM and p.positive.family == BEAM]
        buckets = {(a, x): [p for p in pairs if p.anchor.family == a and p.cross_language == x]
                   for a in (BEAM, CPP) for x in (False, True)}
        report.cross_language_pairs_available = len(buckets[BEAM, True]) + len(buckets[CPP, True])
        families = {s.family for s in snippets}
        capacity = Capacity(len(buckets[BEAM, False]), len(buckets[CPP, False]), len(buckets[BEAM, True]),
                            len(buckets[CPP, True]), BEAM in families, CPP in families)
        plan = next((p for n in range(count, 0, -1)
                     if (p := plan_counts(n, beam_ratio, cross_ratio, capacity)) is not None), None)
        if plan is None or plan.count < min(count, MIN_TRIPLETS):
            if split == "eval" and (beam_ratio, cross_ratio) != (1.0, 0.0):  # a small held-out split
                self._warn("the held-out split cannot meet the language ratios: generating BEAM-only "
                           "triplets for it, C++ ratio 0")
                report.beam_ratio, report.cross_language_ratio = 1.0, 0.0
                return self._plan(report, pairs, snippets, count, 1.0, 0.0)
            raise self._not_enough(split)
        if plan.count < count:
            self._warn(f"the {split} split supports {plan.count} triplets without duplicate pairs at these "
                       f"ratios; capped from {count}")
        real = plan.real_beam + plan.real_cpp
        if real < round(plan.count * cross_ratio):
            self._warn(f"only {real} real cross-language pairs ({real / plan.count:.1%}) in the {split} split; "
                       f"filled {plan.fill_beam + plan.fill_cpp} with cross-language negatives")
        return plan, buckets

    def _triplets(self, chosen: list[tuple[Pair, str]], mined: list[Mined | None], split: str) -> list[Triplet]:
        """A triplet for each chosen pair that got a negative."""
        triplets = []
        for (pair, _), found in zip(chosen, mined, strict=True):
            if found is None:
                continue
            cross = pair.cross_language or found.negative.family != pair.anchor.family
            triplets.append(Triplet(pair.anchor.model_text, pair.positive.model_text, found.negative.model_text,
                                    pair.anchor, pair.positive, found.negative, pair.kind, found.kind, cross,
                                    split, found.mining))
        if len(triplets) < len(chosen):
            self._warn(f"{len(chosen) - len(triplets)} triplets dropped: no snippet could be their negative")
        return triplets

    def _beam_rule(self) -> str:
        return _beam_rule_text(self.training.beam_globs)

    def _not_enough(self, split: str | None = None) -> NotEnoughSnippetsError:
        r = self.report
        where = f" ({len(self.split_paths()[split])} files in the {split} split)" if split else ""
        found = f"found {r.beam_files} files / {r.beam_snippets} snippets" if not split else \
            f"its {r.split_files} files hold {r.split_snippets} snippets, too little related code for {MIN_TRIPLETS}"
        return NotEnoughSnippetsError(
            f"Not enough BEAM snippets in {f'the {split} split of ' if split else ''}{self.root}: {found}; "
            "add code or lower --count",
            f"BEAM files are {self._beam_rule()}; "
            f"at least {MIN_BEAM_FILES} files and {MIN_BEAM_SNIPPETS} snippets are needed, and enough "
            f"related code for {MIN_TRIPLETS} triplets{where}",
        )


def _beam_rule_text(globs: list[str]) -> str:
    if globs:
        return f"those matching training.beam_globs ({', '.join(globs)})"
    return "the .ex/.exs/.erl/.hrl files the index sees, less tests, deps/, _build/, vendored and generated code"


def _mining_summary(stats: MiningStats) -> dict:
    method = "model" if stats.model and not stats.lexical else "lexical" if not stats.model else "mixed"
    return {"hard_model": stats.model, "hard_lexical": stats.lexical, "random": stats.random,
            "method": method, "embedded": stats.embedded,
            "embed_seconds": round(stats.embed_seconds, 2), "index_vectors": stats.index_vectors,
            "dense": stats.dense, "relaxed": stats.relaxed, "notes": stats.notes}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}", "use train or eval")
    return split


def _check_arguments(count: int, beam_ratio: float, cross_ratio: float, hard_ratio: float) -> None:
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"count must be a positive integer, got {count!r}", "e.g. --count 1000")
    for name, value in (("beam ratio", beam_ratio), ("cross-language ratio", cross_ratio),
                        ("training.hard_negative_ratio", hard_ratio)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be between 0 and 1, got {value}", "e.g. --beam-ratio 0.7")
