"""The benchmark corpus: real Erlang/OTP + C sources from Debian's erlang-src, plus examples/.

`build_corpus(lines)` returns a committed git repository (cached under
~/.cache/codekin-bench/, rebuilt only when the recipe or the inputs change) holding about
`lines` lines: all of examples/ (Elixir, Erlang, C++), C sources from erlang-src up to a
sixth of the budget, and Erlang modules taken round-robin across the OTP applications (so
every part of OTP is represented, not just the alphabetically first ones) for the rest.
The selection is deterministic: sorted paths, fixed budgets.

Run alone to build and print its size:  python benchmarks/corpus.py --lines 150000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
ERLANG_LIB = Path("/usr/lib/erlang/lib")
CACHE = Path(os.environ.get("CODEKIN_BENCH_CACHE", Path.home() / ".cache" / "codekin-bench"))
RECIPE = 2  # bump when the selection rules change
MAX_FILE_LINES = 3000  # generated parsers/tables are not what people search
C_SHARE = 1 / 6
C_SUFFIXES = (".c", ".h", ".cc", ".cpp", ".hpp")


# The corpus keeps OTP's own layout (otp/<app>/src/...), not the default training globs'
# lib/ src/ c_src/: benchmarks that mine triplets from it pass these instead.
TRAINING_GLOBS = {"beam_globs": ["**/*.ex", "**/*.exs", "**/*.erl", "**/*.hrl"],
                  "cpp_globs": ["**/*.{c,cc,cpp,h,hpp}"]}


class CorpusError(RuntimeError):
    pass


def ensure_erlang_src() -> None:
    """Install Debian's erlang-src when its sources are missing (needs root and apt)."""
    if any(ERLANG_LIB.glob("*/src/*.erl")):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise CorpusError("Erlang/OTP sources not found in /usr/lib/erlang/lib; "
                          "install them with: sudo apt-get install -y erlang-src")
    print("installing erlang-src (Erlang/OTP sources) with apt-get ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "erlang-src"], check=True,
                   stdout=subprocess.DEVNULL)


def _line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _select(lines: int) -> list[tuple[Path, str]]:
    """(source file, path inside the corpus) pairs, deterministic."""
    chosen: list[tuple[Path, str]] = []
    total = 0
    for path in sorted(p for p in EXAMPLES.rglob("*") if p.is_file()):
        rel = path.relative_to(EXAMPLES)
        if ".codekin" in rel.parts or "_build" in rel.parts:
            continue
        chosen.append((path, f"examples/{rel.as_posix()}"))
        total += _line_count(path)
    c_budget = int(lines * C_SHARE)
    c_files = sorted(p for p in ERLANG_LIB.rglob("*") if p.suffix in C_SUFFIXES and p.is_file())
    c_total = 0
    for path in c_files:
        count = _line_count(path)
        if count > MAX_FILE_LINES or c_total + count > c_budget:
            continue
        chosen.append((path, f"otp/{path.relative_to(ERLANG_LIB).as_posix()}"))
        c_total += count
    total += c_total
    apps: dict[str, list[Path]] = {}
    for path in sorted(ERLANG_LIB.glob("*/src/**/*.erl")):
        apps.setdefault(path.relative_to(ERLANG_LIB).parts[0], []).append(path)
    queues = [list(files) for _, files in sorted(apps.items())]
    while total < lines and any(queues):
        for queue in queues:
            if not queue or total >= lines:
                continue
            path = queue.pop(0)
            count = _line_count(path)
            if count > MAX_FILE_LINES:
                continue
            chosen.append((path, f"otp/{path.relative_to(ERLANG_LIB).as_posix()}"))
            total += count
    return chosen


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)


def commit_all(root: Path, message: str = "corpus") -> None:
    """`git init` + commit everything under `root` (fixed author and dates)."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", message]):
        _git(root, *args)


def build_corpus(lines: int = 150_000) -> Path:
    """A cached, committed git repository of about `lines` lines of BEAM + C/C++ code."""
    ensure_erlang_src()
    chosen = _select(lines)
    digest = hashlib.sha256(json.dumps(
        [RECIPE] + [(rel, src.stat().st_size) for src, rel in chosen]).encode()).hexdigest()[:12]
    root = CACHE / f"corpus-{lines}-{digest}"
    if (root / ".corpus-ok").is_file():
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    total = 0
    for src, rel in chosen:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        total += _line_count(src)
    (root / ".gitignore").write_text(".codekin/\n", encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "benchmark corpus")
    (root / ".git" / "info" / "exclude").write_text(".corpus-ok\n", encoding="utf-8")
    (root / ".corpus-ok").write_text(json.dumps({"files": len(chosen), "lines": total}), encoding="utf-8")
    return root


def corpus_stats(root: Path) -> dict[str, int]:
    return json.loads((root / ".corpus-ok").read_text(encoding="utf-8"))


def fresh_copy(root: Path, dest: Path) -> Path:
    """A private clone of the corpus (no .codekin), so every run indexes cold."""
    subprocess.run(["git", "clone", "-q", "--local", str(root), str(dest)], check=True)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=150_000)
    args = parser.parse_args()
    root = build_corpus(args.lines)
    print(json.dumps({"root": str(root), **corpus_stats(root)}))


if __name__ == "__main__":
    main()
