"""Make N commits in a git repository as fast as git allows (the hooks run on each), then
print one JSON line: commits made, every failed git command, and the paths touched.

    python tests/reliability/commit_storm.py REPO N [--seed S] [--progress FILE]

Stdlib only (it runs beside the server and the indexer, and must not slow them with imports).
Each commit edits 1-3 source files; every 5th adds one, every 7th deletes one, every 11th
renames one. `lib/anchor/` is never touched (the search loop queries it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

PROTECTED = "lib/anchor/"


def _elixir(name: str, salt: int, rng: random.Random) -> str:
    funcs = "\n\n".join(f"  def step_{i}(state, value) do\n    Map.update(state, :n{i}, {salt}, &(&1 + value * {i}))\n"
                        f"  end" for i in range(rng.randint(1, 5)))
    return f"defmodule Storm.{name} do\n  @moduledoc \"commit {salt}\"\n\n{funcs}\nend\n"


def _erlang(name: str, salt: int, rng: random.Random) -> str:
    funcs = "\n\n".join(f"f{i}(X) ->\n    X * {i} + {salt}." for i in range(rng.randint(1, 4)))
    return f"-module({name}).\n-export([]).\n\n{funcs}\n"


def _cpp(name: str, salt: int, rng: random.Random) -> str:
    funcs = "\n\n".join(f"static int {name}_{i}(int x) {{\n    return x * {i} + {salt};\n}}"
                        for i in range(rng.randint(1, 4)))
    return f"#include <erl_nif.h>\n\n{funcs}\n"


def write_source(path: Path, salt: int, rng: random.Random) -> None:
    name = "".join(c for c in path.stem.title() if c.isalnum()) or "M"
    path.parent.mkdir(parents=True, exist_ok=True)
    make = {".ex": _elixir, ".erl": _erlang, ".cpp": _cpp}[path.suffix]
    path.write_text(make(name if path.suffix == ".ex" else path.stem, salt, rng), encoding="utf-8")


class Storm:
    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.failures: list[str] = []
        self.touched: set[str] = set()
        self.tracked = sorted(p for p in self.git("ls-files").split("\n")
                              if p.endswith((".ex", ".erl", ".cpp")) and not p.startswith(PROTECTED))

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, check=False)
        if done.returncode != 0 or done.stderr.strip():  # the hooks print nothing; git -q neither
            self.failures.append(f"git {' '.join(args)} -> exit {done.returncode}: {done.stderr.strip()[:300]}")
        return done.stdout

    def commit(self, number: int) -> None:
        rng = self.rng
        for rel in rng.sample(self.tracked, min(len(self.tracked), rng.randint(1, 3))):
            write_source(self.root / rel, number, rng)
            self.touched.add(rel)
        if number % 5 == 0:
            rel = f"lib/storm/added_{number}.ex" if number % 2 else f"c_src/added_{number}.cpp"
            write_source(self.root / rel, number, rng)
            self.tracked.append(rel)
            self.touched.add(rel)
        if number % 7 == 0 and len(self.tracked) > 10:
            rel = self.tracked.pop(rng.randrange(len(self.tracked)))
            (self.root / rel).unlink()
            self.touched.add(rel)
        if number % 11 == 0 and len(self.tracked) > 10:
            rel = self.tracked.pop(rng.randrange(len(self.tracked)))
            target = str(Path(rel).with_name(f"moved_{number}{Path(rel).suffix}"))
            os.rename(self.root / rel, self.root / target)  # `git add -A` records the rename
            self.tracked.append(target)
            self.touched |= {rel, target}
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"storm {number}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("commits", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--progress", help="write the number of commits made so far here after each one")
    args = parser.parse_args()
    storm = Storm(Path(args.repo), args.seed)
    for number in range(1, args.commits + 1):
        storm.commit(number)
        if args.progress:
            tmp = f"{args.progress}.{os.getpid()}"
            Path(tmp).write_text(str(number))
            os.replace(tmp, args.progress)
    print(json.dumps({"commits": args.commits, "failures": storm.failures, "touched": sorted(storm.touched)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
