"""Index faults, shared by tests/reliability/test_index_damage.py and benchmarks/reliability_index.py.

Each fault damages a real LanceDB index (or the working tree) of a real git repository the
way a disk, an editor or a killed process would; a trial then runs the real `codekin`
commands (the CLI's `main`, its exit codes and messages) and checks three things:
- no traceback: every command ends with an exit code and a message;
- no silently wrong answer: a command that exits 0 answers what the undamaged index
  answered, and `codekin doctor` does not call a damaged index healthy;
- nothing stays broken: after the fix the message names, search answers again, as before.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.harness import git

STATE_DIR = ".codekin"
LANCE = f"{STATE_DIR}/index.lance"
QUERIES = ("worker step update count", "case of ok", "static int nif")
BAD_NAME = b"lib/bad\xffname.ex"  # not UTF-8: git and the file system hold it, the index cannot


@dataclass
class Outcome:
    """What one command did: its exit code and output, or the traceback that escaped."""

    argv: list[str]
    code: int = 0
    out: str = ""
    err: str = ""
    traceback: str = ""


def codekin(*argv: str) -> Outcome:
    """The real command line in this process (its parser, its error edge, its exit code)."""
    from codekin.cli.main import main

    outcome = Outcome(list(argv))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            outcome.code = main(list(argv))
        except SystemExit as exc:  # argparse
            outcome.code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - a traceback is what the trial counts
            outcome.traceback = traceback.format_exc()
            outcome.code = -1
    outcome.out, outcome.err = out.getvalue(), err.getvalue()
    return outcome


def answers(root: Path) -> tuple[Outcome, list[list[tuple[str, int, int]]]]:
    """The search answers (path, start, end) for QUERIES, dense and lexical together."""
    found = []
    outcome = Outcome([])
    for query in QUERIES:
        outcome = codekin("search", query, "--repo", str(root), "--json", "--limit", "5")
        if outcome.code != 0:
            return outcome, []
        found.append([(h["path"], h["start_line"], h["end_line"]) for h in json.loads(outcome.out)])
    return outcome, found


# -- the faults ---------------------------------------------------------------------------------
def _data_files(root: Path, table: str = "") -> list[Path]:
    return sorted((root / LANCE).glob(f"{table or '*'}.lance/data/*.lance"))


def vector_bytes_span(path: Path, root: Path) -> tuple[int, int]:
    """Where the vector floats lie in a vectors data file: scribbling there changes answers
    without breaking the file's structure (the silent case)."""
    from codekin.index.store import IndexStore

    data = path.read_bytes()
    store = IndexStore(root)
    key = store.state()["active_key"]
    _, matrix = store.load_vectors(key)
    first = matrix[0].tobytes()
    start = data.find(first)
    if start < 0:
        return 0, len(data)
    return start, min(len(data), start + matrix.nbytes)


def scribble_vectors(root: Path, rng: random.Random) -> str:
    """512 random bytes inside the vector floats of the active table's data file."""
    from codekin.index.store import IndexStore

    key = IndexStore(root).state()["active_key"]
    path = rng.choice(_data_files(root, f"vectors_{key}"))
    start, end = vector_bytes_span(path, root)
    offset = rng.randrange(start, max(start + 1, end - 512))
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(rng.randbytes(512))
    return f"{path.name}@{offset}"


def scribble_any(root: Path, rng: random.Random) -> str:
    path = rng.choice(_data_files(root))
    size = path.stat().st_size
    offset = rng.randrange(0, max(1, size - 64))
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(rng.randbytes(min(512, size - offset)))
    return f"{path.parent.parent.name}/{path.name}@{offset}"


def truncate_data(root: Path, rng: random.Random) -> str:
    path = rng.choice(_data_files(root))
    size = rng.randrange(0, path.stat().st_size)
    with path.open("r+b") as handle:
        handle.truncate(size)
    return f"{path.parent.parent.name}/{path.name} to {size} bytes"


def delete_data(root: Path, rng: random.Random) -> str:
    path = rng.choice(_data_files(root))
    path.unlink()
    return f"{path.parent.parent.name}/{path.name}"


def truncate_manifest(root: Path, rng: random.Random) -> str:
    """The newest version manifest of a table (the one every read opens)."""
    tables = sorted((root / LANCE).glob("*.lance"))
    table = rng.choice(tables)
    newest = min(table.glob("_versions/*.manifest"), key=lambda p: int(p.stem))  # names count down
    size = rng.randrange(0, newest.stat().st_size)
    with newest.open("r+b") as handle:
        handle.truncate(size)
    return f"{table.name}/_versions/{newest.name} to {size} bytes"


def unrecorded(fault: Callable[[Path, random.Random], str]) -> Callable[[Path, random.Random], str]:
    """The same fault in an index written before codekin kept checksums: LanceDB's own error."""
    def apply(root: Path, rng: random.Random) -> str:
        (root / STATE_DIR / "index.sums.json").unlink(missing_ok=True)
        return fault(root, rng) + " (no checksums)"
    return apply


def lance_leftovers(root: Path, rng: random.Random) -> str:
    """What a killed LanceDB write leaves: temporary files beside data and manifests."""
    table = rng.choice(sorted((root / LANCE).glob("*.lance")))
    (table / "data" / f".tmp_{rng.randrange(1 << 30)}.lance").write_bytes(rng.randbytes(4096))
    (table / "_versions" / f".tmp_{rng.randrange(1 << 30)}.manifest").write_bytes(rng.randbytes(64))
    return table.name


def non_utf8_name(root: Path, rng: random.Random, commit: bool = True) -> str:
    """A file whose name is not UTF-8 beside a good new file (committed through the hooks)."""
    (root / BAD_NAME.decode("utf-8", "surrogateescape")).write_bytes(b"defmodule Bad do\n  def x, do: 1\nend\n")
    good = root / f"lib/fresh_{rng.randrange(1 << 20)}.ex"
    good.write_text("defmodule Fresh do\n  def fresh_answer, do: 42\nend\n", encoding="utf-8")
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "a name that is not UTF-8")
    return good.relative_to(root).as_posix()


FAULTS: dict[str, Callable[[Path, random.Random], str]] = {
    "scribble-vectors": scribble_vectors,
    "scribble-data": scribble_any,
    "truncate-data": truncate_data,
    "delete-data": delete_data,
    "truncate-manifest": truncate_manifest,
    "truncate-data-unrecorded": unrecorded(truncate_data),
    "truncate-manifest-unrecorded": unrecorded(truncate_manifest),
}


# -- a trial ----------------------------------------------------------------------------------------
@dataclass
class Trial:
    fault: str
    detail: str = ""
    tracebacks: list[str] = field(default_factory=list)
    silently_wrong: list[str] = field(default_factory=list)
    still_broken: list[str] = field(default_factory=list)
    exits: dict[str, int] = field(default_factory=dict)  # command -> its exit code on the damaged index

    @property
    def ok(self) -> bool:
        return not (self.tracebacks or self.silently_wrong or self.still_broken)

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "detail": self.detail, "tracebacks": self.tracebacks,
                "silently_wrong": self.silently_wrong, "still_broken": self.still_broken, "exits": self.exits}

    def note(self, outcome: Outcome) -> Outcome:
        if outcome.traceback:
            self.tracebacks.append(f"{' '.join(outcome.argv[:2])}: {outcome.traceback.strip().splitlines()[-1]}")
        return outcome


def damage_trial(fault: str, root: Path, expected: list, rng: random.Random) -> Trial:
    """Damage the index of `root` (whose undamaged answers are `expected`), run the commands."""
    trial = Trial(fault, FAULTS[fault](root, rng))
    for argv in (["status", str(root), "--json"], ["doctor", str(root), "--skip-model", "--json"]):
        outcome = trial.note(codekin(*argv))
        trial.exits[argv[0]] = outcome.code
        if outcome.code == 0:
            trial.silently_wrong.append(f"{argv[0]} exited 0 on a damaged index")
    outcome, found = answers(root)
    trial.note(outcome)
    trial.exits["search"] = outcome.code
    if outcome.code == 0 and found != expected:
        trial.silently_wrong.append("search exited 0 with other answers")
    if outcome.code not in (0, -1) and "codekin index --rebuild" not in outcome.err:
        trial.still_broken.append(f"search exited {outcome.code} without naming the fix: {outcome.err[-200:]}")
    # The fix the message names; a plain `codekin index` must find recorded damage by itself.
    fix_argv = ["index", str(root)] + (["--rebuild"] if "unrecorded" in fault or rng.random() < 0.5 else [])
    fix = trial.note(codekin(*fix_argv))
    if fix.code == 0 and "--rebuild" not in fix_argv and "Rebuilt the index" not in fix.out:
        trial.silently_wrong.append("`codekin index` did not say it rebuilt a damaged index")
    after, found = answers(root)
    trial.note(after)
    if fix.code != 0 or after.code != 0 or found != expected:
        trial.still_broken.append(f"after `codekin {' '.join(fix_argv[::2])}` (exit {fix.code}): search exit "
                                  f"{after.code}, {'same' if found == expected else 'other'} answers {after.err[-200:]}")
    return trial


def name_trial(root: Path, rng: random.Random) -> Trial:
    """A file named with bytes that are not UTF-8: committed through the hooks after the first
    index (then `codekin sync` must drain the queue) or left untracked (`codekin index`)."""
    from codekin import githooks
    from codekin.queue import ChangeQueue

    committed = rng.random() < 0.5
    if committed:
        githooks.install(root)
    trial = Trial("non-utf8-name", "committed, codekin sync" if committed else "untracked, codekin index")
    good = non_utf8_name(root, rng, commit=committed)
    run = trial.note(codekin(*(["sync", str(root), "--queue-only"] if committed else ["index", str(root)]), "--json"))
    if run.code != 0 or '"name is not UTF-8": 1' not in run.out:
        trial.still_broken.append(f"{run.argv[0]} exited {run.code} {run.err[-200:]}")
    with ChangeQueue(root) as queue:
        if queue.stats().pending:
            trial.still_broken.append(f"{queue.stats().pending} paths stay queued")
    hits = trial.note(codekin("search", "fresh_answer", "--repo", str(root), "--json", "--mode", "lexical"))
    if hits.code != 0 or good not in hits.out:
        trial.still_broken.append(f"the good file beside it is not indexed (search exit {hits.code})")
    return trial


def leftovers_trial(root: Path, expected: list, rng: random.Random) -> Trial:
    """LanceDB temporary files of a killed index: the next `codekin index` removes them."""
    trial = Trial("lance-leftovers", lance_leftovers(root, rng))
    run = trial.note(codekin("index", str(root)))
    left = [p.name for p in (root / LANCE).rglob("*.tmp*")]
    if run.code != 0 or left:
        trial.still_broken.append(f"index exited {run.code}; left {left}")
    outcome, found = answers(root)
    trial.note(outcome)
    if outcome.code != 0 or found != expected:
        trial.silently_wrong.append(f"search exit {outcome.code}, {'same' if found == expected else 'other'} answers")
    return trial


def copy_index(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest
