"""Check out every corpus repository at its pinned commit, outside the project tree.

Each corpus/<name>.json names a GitHub repository and a commit; its sources go to
~/.cache/codekin-relevance/src/<name> (CODEKIN_RELEVANCE_CACHE moves the cache root).
A checkout is made from a git snapshot in --mirror DIR (DIR/<owner>+<repo>/repo, a bare
git directory or a clone, as the search tool's `fetch` verb leaves them in /work/.mirror),
or from any local clone given as --clone NAME=PATH. An existing checkout at another commit
is moved to the pinned one (fetching it from the mirror when it lacks it). When there is no
source at all, it prints what to fetch and exits 1.

Usage: python benchmarks/relevance/prepare.py [--mirror /work/.mirror] [--only a,b]
       [--clone NAME=PATH ...]
Prints one line per repository; `run.py` imports the helpers below.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
QUERIES_DIR = HERE / "queries"
DEFAULT_MIRROR = Path("/work/.mirror")


def cache_root() -> Path:
    return Path(os.environ.get("CODEKIN_RELEVANCE_CACHE") or Path.home() / ".cache" / "codekin-relevance")


def src_dir(name: str) -> Path:
    return cache_root() / "src" / name


def load_corpus(only: list[str] | None = None) -> list[dict]:
    """The corpus entries, sorted by name; `only` restricts them (unknown names are an error)."""
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CORPUS_DIR.glob("*.json"))]
    if only:
        known = {e["name"] for e in entries}
        unknown = sorted(set(only) - known)
        if unknown:
            raise SystemExit(f"unknown repositories: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        entries = [e for e in entries if e["name"] in only]
    return entries


def matches(path: str, patterns: list[str]) -> bool:
    """codekin's [index] glob rule (fnmatch, `*` crosses `/`, a leading `**/` also matches at
    the top level); a copy, so the file set never depends on the codekin being measured."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:]):
            return True
    return False


def included_files(entry: dict, root: Path | None = None) -> list[str]:
    """The tracked files of the checkout that the corpus entry's include/exclude globs keep."""
    root = root or src_dir(entry["name"])
    out = _git(["-C", str(root), "ls-files", "-z"], capture=True)
    paths = sorted(p for p in out.split("\0") if p)
    return [p for p in paths if matches(p, entry.get("include") or ["*"]) and not matches(p, entry.get("exclude") or [])]


class PrepareError(Exception):
    pass


def _git(args: list[str], capture: bool = False) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PrepareError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout if capture else ""


def _has_commit(git_dir_or_tree: Path, commit: str) -> bool:
    done = subprocess.run(["git", "-C", str(git_dir_or_tree), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True, check=False)
    return done.returncode == 0


def mirror_of(entry: dict, mirror: Path) -> Path | None:
    """The git directory (or clone) of the entry's snapshot under `mirror`, if there is one."""
    base = mirror / entry["github"].replace("/", "+") / "repo"
    for candidate in (base / ".git", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return base if candidate.name == ".git" else candidate
    return None


def head_of(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def is_ready(entry: dict) -> bool:
    """The checkout exists at the pinned commit with no tracked file modified."""
    root = src_dir(entry["name"])
    if not (root / ".git").exists() or head_of(root) != entry["commit"]:
        return False
    done = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0 and not done.stdout.strip()


def ensure_source(entry: dict, mirror: Path = DEFAULT_MIRROR, clone_from: Path | None = None) -> str:
    """Make src/<name> a checkout of the pinned commit; returns what was done. Raises
    PrepareError (with the fix in its message) when no source holds the commit."""
    name, commit = entry["name"], entry["commit"]
    root = src_dir(name)
    if is_ready(entry):
        return "ok"
    sources = [s for s in (clone_from, mirror_of(entry, mirror)) if s is not None]
    if not (root / ".git").exists():
        if root.exists() and any(root.iterdir()):
            raise PrepareError(f"{name}: {root} exists but is not a git checkout; move it away and rerun")
        source = next((s for s in sources if _has_commit(s, commit)), None)
        if source is None:
            raise PrepareError(_missing(entry, mirror, sources))
        root.parent.mkdir(parents=True, exist_ok=True)
        _git(["clone", "-q", "--no-checkout", str(source), str(root)])
        action = f"cloned from {source}"
    else:
        action = "moved to the pinned commit"
        if not _has_commit(root, commit):
            source = next((s for s in sources if _has_commit(s, commit)), None)
            if source is None:
                raise PrepareError(_missing(entry, mirror, sources, existing=root))
            _git(["-C", str(root), "fetch", "-q", str(source), commit])
            action = f"fetched the commit from {source}"
    _git(["-C", str(root), "-c", "advice.detachedHead=false", "checkout", "-q", "-f", "--detach", commit])
    if not is_ready(entry):
        raise PrepareError(f"{name}: {root} is not clean at {commit} after checkout; delete it and rerun")
    return action


def _missing(entry: dict, mirror: Path, sources: list[Path], existing: Path | None = None) -> str:
    owner_repo = entry["github"]
    where = mirror / owner_repo.replace("/", "+") / "repo"
    lacking = f" ({', '.join(str(s) for s in sources)} lack{'s' if len(sources) == 1 else ''} commit " \
              f"{entry['commit'][:12]})" if sources else ""
    have = f"; {existing} is a clone without it" if existing else ""
    return (f"{entry['name']}: no source for {owner_repo} at {entry['commit'][:12]}{lacking}{have}.\n"
            f"  fix: fetch github:{owner_repo} with the search tool's fetch verb (it leaves {where}),\n"
            f"       or pass --clone {entry['name']}=PATH of any clone holding the commit,\n"
            f"       then rerun: python benchmarks/relevance/prepare.py --only {entry['name']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR,
                        help="folder of git snapshots, <owner>+<repo>/repo (default /work/.mirror)")
    parser.add_argument("--only", help="comma-separated repository names")
    parser.add_argument("--clone", action="append", default=[], metavar="NAME=PATH",
                        help="take NAME's sources from this local clone")
    args = parser.parse_args(argv)
    clones = {}
    for item in args.clone:
        name, _, path = item.partition("=")
        if not path:
            parser.error(f"--clone wants NAME=PATH, got {item!r}")
        clones[name] = Path(path).expanduser().resolve()
    failed = 0
    for entry in load_corpus(args.only.split(",") if args.only else None):
        try:
            action = ensure_source(entry, args.mirror, clones.get(entry["name"]))
            files = len(included_files(entry))
            print(f"{entry['name']:<20} {entry['commit'][:12]}  {files:>5} files  {action}")
        except PrepareError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
    print(f"sources in {cache_root() / 'src'}: "
          + ("all ready" if not failed else f"{failed} missing (see above)"), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
